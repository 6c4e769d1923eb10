// Package install installs a verified ferry bundle into a prefix, offline and
// atomically, so that the real go command works from it with GOSUMDB left on.
//
// Layout under PREFIX:
//
//	PREFIX/go   -> .ferry/toolchains/goX.Y.Z.GOOS-GOARCH  (GOROOT; PREFIX/go/bin/go)
//	PREFIX/mod  -> .ferry/gen/NNNNNN                      (a GOPROXY directory tree)
//	PREFIX/.ferry/gen/NNNNNN/             module store generations
//	PREFIX/.ferry/gen/NNNNNN/.blobs/sha256/<hex>  blobs of encoded zips (a delta's base)
//	PREFIX/.ferry/toolchains/<name>/      extracted toolchains
//	PREFIX/.ferry/state.json              installed bundles, oldest first
//	PREFIX/.ferry/manifests/<hex>.json    their ferry manifests (a delta's base is read through them)
//	PREFIX/.ferry/lock                    lock held by a running Install
//
// Invariants:
//   - Install never writes outside PREFIX, except the go env file it is told to
//     edit. Item file names and toolchain zip entries with "..", absolute
//     paths, backslashes or empty elements are refused before anything is
//     written.
//   - Every change becomes visible by one rename: a new store generation is
//     built in a "*.tmp-*" staging directory and PREFIX/mod is swapped to it
//     by renaming a new symlink over the old one; toolchains are extracted
//     into a staging directory and renamed into place before PREFIX/go is
//     swapped; state.json and the go env file are replaced by rename. A kill
//     at any point leaves the previous state usable, and the next Install
//     removes the leftovers and finishes the job.
//   - Store files are shared between generations by hard links, so a file in
//     a generation is never modified in place: new content is written to a
//     temporary file and renamed over the link.
//   - Module files are immutable: a file already in the store with the
//     item's size and digest is kept. An encoded zip is decoded into the
//     store and must have the size and digest its item gives the file
//     (Item.FileID), and with Options.CheckEncoded its h1: hash, before it
//     is renamed into place. The checksum database snapshot is
//     merged: tiles are a union, and "latest" and lookups keep the copy
//     signed with the larger tree.
//   - Install does not verify bundles: its caller does that first. Install
//     never sets GOSUMDB, GONOSUMDB, GOINSECURE, GOPRIVATE or -insecure; it
//     only sets GOPROXY and warns about settings that weaken verification.
//   - Installs of one prefix are serialized by a lock on PREFIX/.ferry/lock.
//     Installing the same bundle twice changes nothing the second time.
package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/goenv"
)

// Source is the bundle being installed. *bundle.Reader satisfies it.
type Source interface {
	Manifest() *bundle.Manifest
	ManifestDigest() string
	// Open returns the bytes of the item with the given digest.
	Open(digest string) (*io.SectionReader, error)
	// CopyBlob copies the item with the given digest to dst and returns the
	// number of bytes copied.
	CopyBlob(ctx context.Context, digest string, dst *os.File) (int64, error)
}

// Options configure Install.
type Options struct {
	Prefix string
	// GoEnvFile is the go env file to point at the store (the file
	// `go env GOENV` names). "" means the go command's default for this
	// process's environment; "-" means do not touch any go env file.
	GoEnvFile string
	// Platform is the host GOOS/GOARCH whose toolchain is installed;
	// "" means the platform Install runs on.
	Platform string
	// Jobs is the number of parallel workers; <= 0 means a default.
	Jobs int
	// Signer is the name of the key that signed the bundle, "" if unsigned.
	Signer string
	// CheckEncoded recomputes the h1: hash of every encoded zip as it is
	// decoded into the store: set it when the caller's verify left those
	// to install (verify.Options.LeaveEncoded) and the signature does not
	// vouch for them.
	CheckEncoded bool
	// Progress, if not nil, is called with bytes done and total bytes,
	// possibly from several goroutines one at a time.
	Progress func(done, total int64)
	Log      *slog.Logger
}

// Report says what Install changed.
type Report struct {
	Prefix     string `json:"prefix"`
	Generation string `json:"generation"` // store generation PREFIX/mod points to, e.g. "000002"
	Added      int    `json:"added"`      // store files written
	Present    int    `json:"present"`    // store files already there
	AddedBytes int64  `json:"addedBytes"`
	// Toolchain is the Go version installed at PREFIX/go, e.g. "go1.26.8",
	// or "" if the bundle has no toolchain for the platform.
	Toolchain string `json:"toolchain,omitempty"`
	// GOPROXY is the value that points the go command at the store.
	GOPROXY string `json:"goproxy"`
	// GoEnv maps each key changed in the go env file to its [old, new] value.
	GoEnv            map[string][2]string `json:"goenv,omitempty"`
	GoEnvFile        string               `json:"goenvFile,omitempty"`
	AlreadyInstalled bool                 `json:"alreadyInstalled"`
	Warnings         []string             `json:"warnings,omitempty"`
}

const (
	ferryDir = ".ferry"
	genDir   = ".ferry/gen"
	tcDir    = ".ferry/toolchains"
	modLink  = "mod"
	goLink   = "go"
)

// Install installs the bundle src into opt.Prefix. See the package
// documentation for what it guarantees.
func Install(ctx context.Context, src Source, opt Options) (_ *Report, err error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Prefix == "" {
		return nil, errors.New("installing bundle: no prefix given")
	}
	prefix, err := filepath.Abs(opt.Prefix)
	if err != nil {
		return nil, fmt.Errorf("installing bundle: prefix %s: %w", opt.Prefix, err)
	}
	m := src.Manifest()
	if m == nil {
		return nil, errors.New("installing bundle: source has no manifest")
	}
	for _, it := range m.Items {
		if err := checkFile(it.File); err != nil {
			return nil, fmt.Errorf("installing bundle: item %q: %w", it.File, err)
		}
		if strings.HasPrefix(it.File, path.Dir(blobsDir)+"/") {
			return nil, fmt.Errorf("installing bundle: item %q: a store file of ferry's own", it.File)
		}
	}
	platform := opt.Platform
	if platform == "" {
		platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	tc, err := pickToolchain(m, platform)
	if err != nil {
		return nil, fmt.Errorf("installing bundle: %w", err)
	}
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = max(4, runtime.NumCPU())
	}
	envFile := opt.GoEnvFile
	if envFile == "" {
		if envFile, err = goenv.DefaultFile(os.Environ()); err != nil {
			return nil, fmt.Errorf("installing bundle: %w (use another go env file or none)", err)
		}
	}

	rep := &Report{Prefix: prefix, GOPROXY: fileURL(filepath.Join(prefix, modLink))}
	if tc != nil {
		rep.Toolchain = tc.Version
	}

	// A failed first install into a prefix leaves it as it found it.
	_, statErr := os.Lstat(filepath.Join(prefix, ferryDir))
	if errors.Is(statErr, fs.ErrNotExist) {
		_, prefixErr := os.Lstat(prefix)
		defer func() {
			if err != nil {
				os.RemoveAll(filepath.Join(prefix, ferryDir))
				if errors.Is(prefixErr, fs.ErrNotExist) {
					os.Remove(prefix) // only if empty
				}
			}
		}()
	}
	if err := os.MkdirAll(filepath.Join(prefix, ferryDir), 0o755); err != nil {
		return nil, fmt.Errorf("prefix %s is not writable: %w", prefix, err)
	}
	unlock, err := lockPrefix(ctx, filepath.Join(prefix, ferryDir, "lock"), log)
	if err != nil {
		return nil, fmt.Errorf("prefix %s is not writable: %w", prefix, err)
	}
	defer unlock()
	cleanLeftovers(prefix, log)

	// Refuse to take over paths ferry does not own before changing anything.
	curGen, err := currentTarget(prefix, modLink, genDir)
	if err != nil {
		return nil, err
	}
	curTC, err := currentTarget(prefix, goLink, tcDir)
	if err != nil {
		return nil, err
	}

	st, err := ReadState(prefix)
	if err != nil {
		return nil, err
	}
	digest := src.ManifestDigest()
	if st.find(digest) >= 0 && intact(prefix, curGen, curTC, tc) {
		log.Info("bundle already installed", "prefix", prefix, "manifest", digest, "generation", curGen)
		rep.AlreadyInstalled = true
		rep.Generation = curGen
		if err := pointGoEnv(envFile, rep); err != nil {
			return rep, err
		}
		return rep, nil
	}

	if err := checkWritable(prefix); err != nil {
		return nil, err
	}

	prog := newProgress(opt.Progress)
	for _, it := range m.Items {
		prog.addTotal(it.Size)
	}
	// The toolchain is extracted while the store generation is staged (the
	// one mostly creates files, the other decodes); it becomes visible only
	// when PREFIX/go is swapped, after the store, and the store is published
	// only once the toolchain is in place, so a bad zip changes nothing
	// visible. Until PREFIX/go points to a toolchain extracted now, remove it
	// on failure.
	extracted := ""
	defer func() {
		if err != nil && extracted != "" {
			os.RemoveAll(extracted)
		}
	}()
	tcDone := make(chan error, 1) // holds the extraction's result once it is known
	waitToolchain := func() error {
		err := <-tcDone
		tcDone <- err
		return err
	}
	cancelTC := func() {}
	if tc != nil && !toolchainPresent(prefix, tc) {
		prog.addTotal(tc.Item.Size)
		extracted = filepath.Join(prefix, filepath.FromSlash(tcDir), tc.Dir)
		var tcCtx context.Context
		tcCtx, cancelTC = context.WithCancel(ctx)
		go func() { tcDone <- extractToolchain(tcCtx, src, prefix, tc, jobs, prog, log) }()
		defer func() {
			cancelTC()
			waitToolchain() // never return while it is still writing
		}()
	} else {
		tcDone <- nil
	}

	gen, err := buildGeneration(ctx, src, m, prefix, curGen, jobs, opt.CheckEncoded, waitToolchain, prog, log)
	if err != nil {
		cancelTC()
		if tcErr := waitToolchain(); tcErr != nil && !errors.Is(tcErr, context.Canceled) && !errors.Is(err, tcErr) {
			log.Warn("extracting the toolchain", "err", tcErr)
		}
		return nil, err
	}
	rep.Generation = gen.name
	rep.Added, rep.Present, rep.AddedBytes = gen.added, gen.present, gen.addedBytes
	rep.Warnings = append(rep.Warnings, gen.warnings...)

	if tc != nil && curTC != tc.Dir {
		log.Info("switching toolchain", "from", curTC, "to", tc.Dir)
		if err := swapSymlink(filepath.Join(prefix, goLink), tcDir+"/"+tc.Dir); err != nil {
			return nil, err
		}
	}
	extracted = ""

	if err := saveManifest(prefix, src); err != nil {
		return nil, err
	}
	rec := BundleRecord{
		ManifestDigest: digest,
		Name:           m.Name,
		Version:        m.Version,
		Created:        m.Created,
		Installed:      time.Now().UTC().Format(time.RFC3339),
		Signer:         opt.Signer,
		Generation:     gen.name,
		Toolchain:      rep.Toolchain,
		ToolchainDir:   curTC,
	}
	if tc != nil {
		rec.ToolchainDir = tc.Dir
	}
	if d, ok := src.(interface{ Digest() string }); ok {
		rec.Digest = d.Digest()
	}
	if m.Base != nil {
		rec.Base = m.Base.ManifestDigest
	}
	st.record(rec)
	if err := writeState(prefix, st); err != nil {
		return nil, err
	}
	log.Info("installed bundle", "prefix", prefix, "manifest", digest, "generation", gen.name,
		"added", rep.Added, "present", rep.Present, "toolchain", rep.Toolchain)

	if err := pointGoEnv(envFile, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// pointGoEnv sets GOPROXY in the go env file and warns about settings there
// that turn checksum verification off.
func pointGoEnv(envFile string, rep *Report) error {
	if envFile == "-" {
		return nil
	}
	rep.GoEnvFile = envFile
	cur, err := goenv.Read(envFile)
	if err != nil {
		return fmt.Errorf("installing bundle: %w", err)
	}
	rep.Warnings = append(rep.Warnings, weakeningSettings(cur, envFile)...)
	if v := os.Getenv("GOPROXY"); v != "" && v != rep.GOPROXY {
		rep.Warnings = append(rep.Warnings,
			fmt.Sprintf("GOPROXY=%s is set in the environment and overrides the go env file; unset it or use GOPROXY=%s", v, rep.GOPROXY))
	}
	changed, err := goenv.Set(envFile, map[string]string{"GOPROXY": rep.GOPROXY})
	if err != nil {
		return fmt.Errorf("installing bundle: pointing the go command at the store: %w", err)
	}
	if len(changed) > 0 {
		rep.GoEnv = changed
	}
	return nil
}

// weakeningSettings lists go env file settings that disable or bypass
// checksum verification.
func weakeningSettings(env map[string]string, file string) []string {
	var w []string
	if env["GOSUMDB"] == "off" {
		w = append(w, fmt.Sprintf("%s sets GOSUMDB=off: module checksums are not verified", file))
	}
	for _, k := range []string{"GONOSUMDB", "GOINSECURE"} {
		if v := env[k]; v != "" {
			w = append(w, fmt.Sprintf("%s sets %s=%s: checksums of matching modules are not verified", file, k, v))
		}
	}
	if slices.ContainsFunc(strings.Fields(env["GOFLAGS"]), func(f string) bool {
		return f == "-insecure" || strings.HasPrefix(f, "-insecure=")
	}) {
		w = append(w, fmt.Sprintf("%s sets GOFLAGS with -insecure", file))
	}
	return w
}

// fileURL returns the file:// URL of the absolute path p, escaped so that
// the go command's GOPROXY list parsing (which splits at ',' and '|') and
// URL parsing give back p.
func fileURL(p string) string {
	s := filepath.ToSlash(p)
	if !strings.HasPrefix(s, "/") {
		s = "/" + s // Windows: C:/x -> /C:/x
	}
	u := url.URL{Scheme: "file", Path: s}
	return strings.NewReplacer(",", "%2C", "|", "%7C").Replace(u.String())
}

// checkWritable makes sure a file can be created in PREFIX/.ferry.
func checkWritable(prefix string) error {
	dir := filepath.Join(prefix, ferryDir)
	f, err := os.CreateTemp(dir, "writable.tmp-*")
	if err != nil {
		return fmt.Errorf("prefix %s is not writable: %w", prefix, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
