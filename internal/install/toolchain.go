package install

import (
	"archive/zip"
	"context"
	"fmt"
	kflate "github.com/klauspost/compress/flate"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	modzip "golang.org/x/mod/zip"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/durable"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// toolchainPlan is the toolchain of a bundle for the host platform.
type toolchainPlan struct {
	Version string // "go1.26.8"
	Dir     string // "go1.26.8.linux-amd64", under PREFIX/.ferry/toolchains
	Item    bundle.Item
}

// pickToolchain returns the first toolchain of m that has a zip for platform
// (GOOS/GOARCH), or nil.
func pickToolchain(m *bundle.Manifest, platform string) (*toolchainPlan, error) {
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok || !isWord(goos) || !isWord(goarch) {
		return nil, fmt.Errorf("invalid platform %q: want GOOS/GOARCH", platform)
	}
	for _, v := range m.Toolchains {
		if !strings.HasPrefix(v, "go") || !isWord(strings.ReplaceAll(strings.ReplaceAll(v, ".", ""), "-", "")) {
			return nil, fmt.Errorf("invalid toolchain name %q in manifest", v)
		}
		dir := v + "." + goos + "-" + goarch
		version := "v0.0.1-" + dir
		for _, it := range m.Items {
			if it.Kind == bundle.KindZip && it.Module == toolchainModule && it.Version == version {
				if it.Encoded() {
					return nil, fmt.Errorf("toolchain %s: encoded toolchain zips are not supported by this ferry", dir)
				}
				return &toolchainPlan{Version: v, Dir: dir, Item: it}, nil
			}
		}
	}
	return nil, nil
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// toolchainPresent reports whether tc is extracted under PREFIX/.ferry/toolchains.
// Extraction finishes with a rename, so an existing directory is complete.
func toolchainPresent(prefix string, tc *toolchainPlan) bool {
	fi, err := os.Stat(filepath.Join(prefix, filepath.FromSlash(tcDir), tc.Dir, "bin", "go"))
	return err == nil && fi.Mode().IsRegular()
}

// extractToolchain extracts tc into PREFIX/.ferry/toolchains/<tc.Dir>
// through a staging directory renamed into place when complete.
func extractToolchain(ctx context.Context, src Source, prefix string, tc *toolchainPlan,
	jobs int, prog *progress, log *slog.Logger) (err error) {
	root := filepath.Join(prefix, filepath.FromSlash(tcDir))
	final := filepath.Join(root, tc.Dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", root, err)
	}
	// A directory without bin/go cannot come from a finished extraction; replace it.
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("removing incomplete toolchain %s: %w", final, err)
	}
	staging, err := os.MkdirTemp(root, tc.Dir+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating staging directory in %s: %w", root, err)
	}
	defer func() {
		if err != nil {
			if rerr := os.RemoveAll(staging); rerr != nil {
				log.Warn("removing staging directory", "path", staging, "err", rerr)
			}
		}
	}()
	if err = os.Chmod(staging, 0o755); err != nil {
		return fmt.Errorf("creating staging directory: %w", err)
	}
	// Extract from a checked copy in the prefix, never from the bundle
	// file, which may change after it was verified.
	zf, err := copyToolchainZip(ctx, src, root, tc)
	if err != nil {
		return err
	}
	defer func() {
		zf.Close()
		os.Remove(zf.Name())
	}()
	sr := io.NewSectionReader(zf, 0, tc.Item.Size)
	log.Info("extracting toolchain", "toolchain", tc.Dir, "to", final)
	zipPrefix := toolchainModule + "@v0.0.1-" + tc.Dir + "/"
	reported, err := extractZip(ctx, sr, staging, zipPrefix, jobs, prog)
	if err != nil {
		return fmt.Errorf("extracting toolchain %s: %w", tc.Item.File, err)
	}
	prog.add(tc.Item.Size - reported)
	if err = durable.Tree(staging); err != nil {
		return err
	}
	if err = os.Rename(staging, final); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", staging, final, err)
	}
	return durable.Dir(root)
}

// copyToolchainZip copies the toolchain zip into a temporary file in dir,
// checking its digest as it is written, and returns the file, open.
func copyToolchainZip(ctx context.Context, src Source, dir string, tc *toolchainPlan) (_ *os.File, err error) {
	f, err := os.CreateTemp(dir, tc.Dir+".zip.tmp-*")
	if err != nil {
		return nil, fmt.Errorf("copying toolchain %s: %w", tc.Item.File, err)
	}
	if _, err := copyBlob(ctx, src, tc.Item.Digest, tc.Item.Size, f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("copying toolchain %s: %w", tc.Item.File, err)
	}
	return f, nil
}

// extractZip extracts the entries of the zip in sr whose names start with
// zipPrefix into dir, without the prefix. It refuses entries outside the
// prefix, unsafe names, symlinks, duplicate and overlapping entries, and
// more than the go command's 500 MiB uncompressed (zipcodec.CheckZip)
// before it inflates anything. It renames nested _go.mod
// files to go.mod (src/go.mod last) and makes bin/*, pkg/tool/*/* and
// lib/**/go_*_*_exec executable; other files are 0644, directories 0755.
// It returns the compressed bytes it reported to prog.
func extractZip(ctx context.Context, sr *io.SectionReader, dir, zipPrefix string, jobs int, prog *progress) (int64, error) {
	zr, err := zip.NewReader(sr, sr.Size())
	if err != nil {
		return 0, err
	}
	// The go command's own bound on a toolchain (a module zip), and no
	// overlapping or duplicate entries, before any entry is inflated.
	if err := zipcodec.CheckZip(zr, sr.Size(), modzip.MaxZipFile); err != nil {
		return 0, err
	}
	zr.RegisterDecompressor(zip.Deflate, kflate.NewReader) // faster than compress/flate
	var reported atomic.Int64
	type entry struct {
		f   *zip.File
		rel string
	}
	var files []entry
	dirs := map[string]bool{}
	var goMods []string
	for _, f := range zr.File {
		rest, ok := strings.CutPrefix(f.Name, zipPrefix)
		if !ok {
			return 0, fmt.Errorf("zip entry %q is not under %s", f.Name, zipPrefix)
		}
		if rest == "" {
			continue
		}
		isDir := strings.HasSuffix(rest, "/")
		rel := strings.TrimSuffix(rest, "/")
		if err := checkFile(rel); err != nil {
			return 0, fmt.Errorf("zip entry %q: %w", f.Name, err)
		}
		mode := f.Mode()
		switch {
		case isDir || mode.IsDir():
			dirs[rel] = true
			continue
		case !mode.IsRegular():
			return 0, fmt.Errorf("zip entry %q is not a regular file (%v)", f.Name, mode.Type())
		}
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
		if path.Base(rel) == "_go.mod" {
			goMods = append(goMods, rel)
		}
		files = append(files, entry{f, rel})
	}
	sortedDirs := make([]string, 0, len(dirs))
	for d := range dirs {
		sortedDirs = append(sortedDirs, d)
	}
	slices.Sort(sortedDirs)
	for _, d := range sortedDirs {
		p := filepath.Join(dir, filepath.FromSlash(d))
		if err := os.MkdirAll(p, 0o755); err != nil {
			return 0, fmt.Errorf("creating %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return 0, fmt.Errorf("creating %s: %w", p, err)
		}
	}
	// One worker per directory at a time: files created in parallel in one
	// directory contend for its lock in the kernel (measured: a third of
	// the extraction's CPU time spinning on it with four workers).
	byDir := map[string][]entry{}
	var order []string
	for _, e := range files {
		d := path.Dir(e.rel)
		if _, ok := byDir[d]; !ok {
			order = append(order, d)
		}
		byDir[d] = append(byDir[d], e)
	}
	err = parallel(ctx, jobs, len(order), func(ctx context.Context, i int) error {
		for _, e := range byDir[order[i]] {
			if err := ctx.Err(); err != nil {
				return err
			}
			perm := fs.FileMode(0o644)
			if isExecutable(e.rel) {
				perm = 0o755
			}
			if err := extractFile(e.f, filepath.Join(dir, filepath.FromSlash(e.rel)), perm); err != nil {
				return err
			}
			prog.add(int64(e.f.CompressedSize64))
			reported.Add(int64(e.f.CompressedSize64))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Nested go.mod files are stored as _go.mod so that the zip is one
	// module; restore them, src/go.mod last as the go command does.
	slices.SortFunc(goMods, func(a, b string) int {
		if (a == "src/_go.mod") != (b == "src/_go.mod") {
			if a == "src/_go.mod" {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	for _, rel := range goMods {
		from := filepath.Join(dir, filepath.FromSlash(rel))
		to := filepath.Join(filepath.Dir(from), "go.mod")
		if _, err := os.Lstat(to); err == nil {
			return 0, fmt.Errorf("zip has both %s and go.mod in %s", rel, path.Dir(rel))
		}
		if err := os.Rename(from, to); err != nil {
			return 0, fmt.Errorf("renaming %s: %w", rel, err)
		}
	}
	return reported.Load(), nil
}

func extractFile(f *zip.File, dst string, perm fs.FileMode) (err error) {
	r, err := f.Open()
	if err != nil {
		return fmt.Errorf("reading zip entry %s: %w", f.Name, err)
	}
	defer r.Close()
	w, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", f.Name, err)
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("extracting %s: %w", f.Name, cerr)
		}
	}()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("extracting %s to %s: %w", f.Name, dst, err)
	}
	if err := w.Chmod(perm); err != nil {
		return fmt.Errorf("extracting %s: %w", f.Name, err)
	}
	return nil // made durable with the whole tree (durable.Tree) before it is published
}

// isExecutable reports whether the GOROOT file rel needs exec bits
// (cmd/go/internal/toolchain: bin/*, pkg/tool/*/*, lib/**/go_?*_?*_exec).
func isExecutable(rel string) bool {
	parts := strings.Split(rel, "/")
	switch {
	case len(parts) == 2 && parts[0] == "bin":
		return true
	case len(parts) == 4 && parts[0] == "pkg" && parts[1] == "tool":
		return true
	case parts[0] == "lib":
		ok, _ := path.Match("go_?*_?*_exec", parts[len(parts)-1])
		return ok
	}
	return false
}
