package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/module"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/ctxio"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

const toolchainModule = bundle.ToolchainModule

// storeResult is what stageStore did.
type storeResult struct {
	added, present int
	addedBytes     int64
	warnings       []string
}

// stageStore builds the store tree of a new generation in dir (which it
// creates): the tree base (the current generation's, "" if none) cloned by
// hard links, plus the items of m, the checksum databases' "supported"
// files, the image layout index and the regenerated version lists.
func stageStore(ctx context.Context, src Source, m *bundle.Manifest, dir, base string,
	jobs int, checkEncoded bool, prog *progress, log *slog.Logger) (res storeResult, err error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return res, fmt.Errorf("creating %s: %w", dir, err)
	}
	if base != "" {
		log.Debug("linking current generation", "from", base, "to", dir)
		if err := cloneTree(ctx, base, dir); err != nil {
			return res, err
		}
	}

	var (
		mu  sync.Mutex
		dec = &zipcodec.Checker{TempDir: dir}
	)
	note := func(f func()) { mu.Lock(); f(); mu.Unlock() }
	err = parallel(ctx, jobs, len(m.Items), func(ctx context.Context, i int) error {
		it := m.Items[i]
		if it.Kind == bundle.KindImage {
			prog.add(it.Size)
			return nil // its blob is a KindOCI item too; writeImageIndex names it
		}
		act, warn, err := placeItem(ctx, src, it, dir, dec, checkEncoded)
		if err != nil {
			return err
		}
		note(func() {
			if act == actWritten {
				res.added++
				res.addedBytes += it.Size
			} else {
				res.present++
			}
			if warn != "" {
				res.warnings = append(res.warnings, warn)
			}
		})
		prog.add(it.Size)
		return nil
	})
	if err != nil {
		return res, err
	}

	// Checksum database: the go command asks <proxy>/sumdb/<name>/supported first.
	names := map[string]bool{}
	if m.SumDB != nil && m.SumDB.Name != "" {
		names[m.SumDB.Name] = true
	}
	moduleDirs := map[string]bool{}
	for _, it := range m.Items {
		if it.Kind == bundle.KindSumDB || strings.HasPrefix(it.File, "sumdb/") {
			if parts := strings.SplitN(it.File, "/", 3); len(parts) == 3 {
				names[parts[1]] = true
			}
			continue
		}
		if d := path.Dir(it.File); path.Base(d) == "@v" {
			moduleDirs[d] = true
		}
	}
	for name := range names {
		if err := checkFile("sumdb/" + name + "/supported"); err != nil {
			return res, fmt.Errorf("checksum database name %q: %w", name, err)
		}
		if _, err := ensureFile(filepath.Join(dir, "sumdb", name, "supported"), nil); err != nil {
			return res, err
		}
	}
	if _, err := writeImageIndex(dir, m); err != nil {
		return res, err
	}
	for d := range moduleDirs {
		if _, err := writeList(dir, d); err != nil {
			return res, err
		}
	}
	return res, nil
}

// genNumber parses a generation directory name.
func genNumber(name string) (int, bool) {
	if name == "" || strings.Trim(name, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(name)
	return n, err == nil
}

// lastGeneration returns the highest generation number under root, 0 if none.
func lastGeneration(root string) (int, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return 0, fmt.Errorf("listing generations: %w", err)
	}
	last := 0
	for _, e := range ents {
		if n, ok := genNumber(e.Name()); ok && n > last {
			last = n
		}
	}
	return last, nil
}

// cloneTree recreates the tree from in to (an existing directory) with hard
// links to the files of from, or copies where linking fails (another file
// system).
func cloneTree(ctx context.Context, from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading current generation: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			if err := os.Mkdir(dst, 0o755); err != nil {
				return fmt.Errorf("creating %s: %w", dst, err)
			}
		case d.Type().IsRegular():
			if err := os.Link(p, dst); err != nil {
				if err := copyFile(p, dst); err != nil {
					return err
				}
			}
		default:
			// The store holds only directories and regular files.
		}
		return nil
	})
}

func copyFile(from, to string) (err error) {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copying %s: %w", from, err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	return nil
}

type action int

const (
	actPresent action = iota
	actWritten
)

// placeItem makes sure the staging tree holds item it. An encoded item's
// blob is kept in the generation's blobsDir and its decoded file goes into
// the tree; with checkEncoded the decoded zip's h1: hash must be the item's.
func placeItem(ctx context.Context, src Source, it bundle.Item, staging string, dec *zipcodec.Checker, checkEncoded bool) (action, string, error) {
	dst := filepath.Join(staging, filepath.FromSlash(it.File))
	if it.Kind == bundle.KindSumDB {
		if kind := sumdbFileKind(it.File); kind == "lookup" || kind == "latest" {
			return placeSigned(ctx, src, it, dst, kind == "lookup")
		}
	}
	var blob string
	if it.Encoded() {
		var err error
		if blob, err = keepBlob(ctx, src, it, staging); err != nil {
			return 0, "", err
		}
	}
	digest, size := it.FileID()
	fi, err := os.Lstat(dst)
	warn := ""
	if err == nil {
		if fi.Mode().IsRegular() && fi.Size() == size {
			d, err := fileDigest(dst)
			if err != nil {
				return 0, "", err
			}
			if d == digest && (!checkEncoded || !it.Encoded() || zipHashIs(dst, it.Hash)) {
				return actPresent, "", nil
			}
		}
		warn = fmt.Sprintf("store file %s differed from the bundle; replaced it", it.File)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, "", fmt.Errorf("inspecting %s: %w", dst, err)
	}
	if err := writeItem(ctx, src, it, dst, blob, dec, checkEncoded); err != nil {
		return 0, "", err
	}
	return actWritten, warn, nil
}

func zipHashIs(p, h1 string) bool {
	h, err := zipcodec.HashZipFile(p)
	return err == nil && h == h1
}

// blobsDir, in a store generation, holds the blobs of encoded items (the
// base a later delta is read through) as blobsDir/<hex>. A module path
// cannot start with a dot, so no proxy path falls in it.
const blobsDir = ".blobs/sha256"

func blobPath(gen, digest string) string {
	return filepath.Join(gen, filepath.FromSlash(blobsDir), strings.TrimPrefix(digest, "sha256:"))
}

// keepBlob makes sure the staging generation has the blob of encoded item
// it and returns its path. A file there (linked from the current
// generation) is kept only if it has the blob's digest: a damaged one is
// replaced, so that a rerun of a failed install repairs it.
func keepBlob(ctx context.Context, src Source, it bundle.Item, staging string) (string, error) {
	p := blobPath(staging, it.Digest)
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == it.Size {
		if d, err := fileDigest(p); err == nil && d == it.Digest {
			return p, nil
		}
	}
	if err := writeFile(ctx, p, it.File, it.Size, func(f *os.File) (int64, error) {
		return copyBlob(ctx, src, it.Digest, it.Size, f)
	}); err != nil {
		return "", err
	}
	return p, nil
}

// writeItem writes item it to dst through a temporary file in the same
// directory, so that dst (perhaps a hard link shared with another
// generation) is replaced, never modified. An encoded item is decoded from
// its kept blob; with checkEncoded its h1: hash is checked before the rename.
func writeItem(ctx context.Context, src Source, it bundle.Item, dst, blob string, dec *zipcodec.Checker, checkEncoded bool) error {
	if !it.Encoded() {
		return writeFile(ctx, dst, it.File, it.Size, func(f *os.File) (int64, error) {
			return copyBlob(ctx, src, it.Digest, it.Size, f)
		})
	}
	return writeFile(ctx, dst, it.File, it.FileSize, func(f *os.File) (int64, error) {
		in, err := os.Open(blob)
		if err != nil {
			return 0, err
		}
		defer in.Close()
		h, err := dec.DecodeTo(ctx, f, in, it.FileSize, it.FileDigest, checkEncoded)
		if err != nil {
			return 0, err
		}
		if checkEncoded && h != it.Hash {
			return 0, fmt.Errorf("decoded zip has h1 %s, manifest says %s", h, it.Hash)
		}
		return it.FileSize, nil
	})
}

// writeFile makes dst hold size bytes that fill writes, through a
// temporary file in dst's directory renamed over dst. Not synced: the
// generation is made durable as a whole (durable.Tree) before it is published.
func writeFile(ctx context.Context, dst, what string, size int64, fill func(*os.File) (int64, error)) (err error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := fill(f)
	if err != nil {
		return fmt.Errorf("writing %s to %s: %w", what, dir, err)
	}
	if n != size {
		return fmt.Errorf("writing %s: copied %d bytes, manifest says %d", what, n, size)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s to %s: %w", what, dir, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	return nil
}

// writeBytes replaces dst with data through a temporary file.
func writeBytes(dst string, data []byte) (err error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// ensureFile makes dst hold data, reporting whether it wrote.
func ensureFile(dst string, data []byte) (bool, error) {
	old, err := os.ReadFile(dst)
	if err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("reading %s: %w", dst, err)
	}
	return true, writeBytes(dst, data)
}

// copyBlob copies the blob with the given digest and size from src to w,
// hashing what it writes: bytes that are not the blob's (a bundle file
// changed since it was verified) are an error, and the caller discards
// what was written.
func copyBlob(ctx context.Context, src Source, digest string, size int64, w io.Writer) (int64, error) {
	sr, err := src.Open(digest)
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(io.MultiWriter(w, h), ctxio.Reader(ctx, io.LimitReader(sr, size+1)), buf)
	if err != nil {
		return n, err
	}
	if n != size {
		return n, fmt.Errorf("blob %s has %d bytes, manifest says %d (bundle changed after it was verified?)", digest, n, size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return n, fmt.Errorf("blob has digest %s, manifest says %s (bundle changed after it was verified?)", got, digest)
	}
	return n, nil
}

// readBlob reads a small blob (at most max bytes) from src and checks its digest.
func readBlob(ctx context.Context, src Source, digest string, size, max int64) ([]byte, error) {
	if size > max {
		return nil, fmt.Errorf("blob %s: %d bytes, more than %d", digest, size, max)
	}
	var b bytes.Buffer
	if _, err := copyBlob(ctx, src, digest, size, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// writeList regenerates <module>/@v/list in the staging tree from the
// versions that have a .mod file (for the toolchain module, also a .zip),
// semver-sorted, without pseudo-versions (kept for the toolchain module).
func writeList(staging, vdir string) (bool, error) {
	escMod := strings.TrimSuffix(vdir, "/@v")
	mod, err := module.UnescapePath(escMod)
	if err != nil {
		return false, fmt.Errorf("regenerating version list of %s: %w", escMod, err)
	}
	dir := filepath.Join(staging, filepath.FromSlash(vdir))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("regenerating version list of %s: %w", mod, err)
	}
	var versions []string
	for _, e := range ents {
		name := e.Name()
		ext := path.Ext(name)
		if ext != ".mod" && !(mod == toolchainModule && ext == ".zip") {
			continue
		}
		if v, err := module.UnescapeVersion(strings.TrimSuffix(name, ext)); err == nil {
			versions = append(versions, v)
		}
	}
	list, _ := bundle.VersionList(mod, versions)
	return ensureFile(filepath.Join(dir, "list"), list)
}
