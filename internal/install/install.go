// Package install installs a verified ferry bundle into a prefix, offline and
// atomically, so that the real go command works from it with GOSUMDB left on.
//
// Layout under PREFIX:
//
//	PREFIX/go   -> .ferry/current/go    (GOROOT; PREFIX/go/bin/go)
//	PREFIX/mod  -> .ferry/current/mod   (a GOPROXY directory tree)
//	PREFIX/.ferry/current -> gen/NNNNNN       the installed state: one rename switches it
//	PREFIX/.ferry/gen/NNNNNN/mod/             the module store of that generation
//	PREFIX/.ferry/gen/NNNNNN/mod/.blobs/sha256/<hex>  blobs of encoded zips (a delta's base)
//	PREFIX/.ferry/gen/NNNNNN/go -> ../../toolchains/<name>   its toolchain, if any
//	PREFIX/.ferry/gen/NNNNNN/state.json       the bundles installed, oldest first
//	PREFIX/.ferry/toolchains/<name>/          extracted toolchains
//	PREFIX/.ferry/manifests/<hex>.json        ferry manifests (a delta's base is read through them)
//	PREFIX/.ferry/lock                        lock held by whoever changes the prefix
//
// Invariants:
//   - Install never writes outside PREFIX, except the go env file it is told to
//     edit. Item file names and toolchain zip entries with "..", absolute
//     paths, backslashes or empty elements are refused before anything is
//     written.
//   - Every byte Install writes is hashed as it is written and must have the
//     digest the manifest gives it: a bundle file changed after it was
//     verified fails the install, it never reaches the prefix. The
//     toolchain zip is copied (and so checked) into the prefix before it is
//     extracted from that copy.
//   - One rename is the commit point: a new generation (store tree,
//     toolchain link and state) is staged in a "*.tmp-*" directory, made
//     durable, renamed into place, and .ferry/current is switched to it by
//     renaming a new symlink over the old one. PREFIX/mod and PREFIX/go are
//     made once and never change. A kill at any point leaves the prefix at
//     the previous generation or at the new one; the next Lock removes what
//     the killed run staged.
//   - Cleanup only removes what was staged and never published, and runs
//     with the lock held: a failed install leaves the current generation as
//     it was, and a failed first install leaves the prefix as it found it.
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
//   - Install does not verify bundles: its caller does that first, with the
//     prefix already locked (Lock). Install never sets GOSUMDB, GONOSUMDB,
//     GOINSECURE, GOPRIVATE or -insecure; it only sets GOPROXY and warns
//     about settings that weaken verification.
//   - Changes to one prefix are serialized by a lock on PREFIX/.ferry/lock.
//     Installing the same bundle twice changes nothing the second time.
//   - A prefix laid out by an earlier ferry (PREFIX/mod and PREFIX/go
//     pointing straight into .ferry/gen and .ferry/toolchains, the state in
//     .ferry/state.json) is moved to this layout by the next install: its
//     new generation is committed first, then the two links are replaced,
//     each by rename; a kill between them is repaired by the next Lock.
package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/durable"
	"github.com/ferry-dev/ferry/internal/goenv"
)

// Source is the bundle being installed. *bundle.Reader satisfies it.
type Source interface {
	Manifest() *bundle.Manifest
	ManifestDigest() string
	// Open returns the bytes of the item with the given digest. Install
	// hashes whatever it reads and refuses bytes that do not match.
	Open(digest string) (*io.SectionReader, error)
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
	// Hook, if not nil, is called at each step boundary of Install with
	// the step's name ("staged", "sealed", "linked", "committed",
	// "tidied", "goenv"): tests stop or kill the process there.
	Hook func(step string)
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

// Install locks opt.Prefix, installs the bundle src into it and unlocks.
// See the package documentation for what it guarantees. A caller that
// verifies the bundle first takes the lock before that (Lock) and calls
// Prefix.Install.
func Install(ctx context.Context, src Source, opt Options) (*Report, error) {
	if opt.Prefix == "" {
		return nil, errors.New("installing bundle: no prefix given")
	}
	p, err := Lock(ctx, opt.Prefix, opt.Log)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Install(ctx, src, opt)
}

// installed is what a prefix holds before an install or rollback.
type installed struct {
	gen    string // current generation, "" if none (legacy: PREFIX/mod's store generation)
	tree   string // path of its store tree, "" if none
	tc     string // toolchain directory its go link names, "" if none
	state  *State
	legacy bool // laid out by an earlier ferry
}

// readInstalled reads what the prefix holds now.
func (p *Prefix) readInstalled() (*installed, error) {
	if err := p.checkLinks(); err != nil {
		return nil, err
	}
	cur, err := p.current()
	if err != nil {
		return nil, err
	}
	in := &installed{gen: cur}
	if cur != "" {
		in.tree = p.genPath(cur, genMod)
		if in.tc, err = p.genToolchain(cur); err != nil {
			return nil, err
		}
		in.state, err = readStateFile(p.genPath(cur, genState))
		return in, err
	}
	in.state, err = readStateFile(p.path(legacyState))
	if err != nil {
		return nil, err
	}
	if in.gen = p.legacyTarget(modLink, genDir); in.gen != "" {
		in.legacy = true
		in.tree = p.genPath(in.gen)
		in.tc = p.legacyTarget(goLink, tcDir)
	}
	return in, nil
}

// has reports whether the bundle with manifest digest is installed and
// everything it installed is in place: the generation, and tc (its
// toolchain for this platform, if any) as the current toolchain.
func (in *installed) has(p *Prefix, digest string, tc *toolchainPlan) bool {
	if in.legacy || in.gen == "" || in.state.find(digest) < 0 {
		return false
	}
	if fi, err := os.Stat(in.tree); err != nil || !fi.IsDir() {
		return false
	}
	return tc == nil || in.tc == tc.Dir && toolchainPresent(p.dir, tc)
}

// Install installs the bundle src into the locked prefix p (opt.Prefix is
// not used). See the package documentation for what it guarantees.
func (p *Prefix) Install(ctx context.Context, src Source, opt Options) (_ *Report, err error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hook := opt.Hook
	if hook == nil {
		hook = func(string) {}
	}
	prefix := p.dir

	// Check the request: item names, the toolchain, the go env file.
	m := src.Manifest()
	if m == nil {
		return nil, errors.New("installing bundle: source has no manifest")
	}
	// The one manifest validation every reader shares: kinds agree with
	// files, no unsafe or ferry-owned path, module files where their
	// module and version say.
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("installing bundle: %w", err)
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

	// What the prefix holds now.
	cur, err := p.readInstalled()
	if err != nil {
		return nil, err
	}
	digest := src.ManifestDigest()
	if cur.has(p, digest, tc) {
		log.Info("bundle already installed", "prefix", prefix, "manifest", digest, "generation", cur.gen)
		rep.AlreadyInstalled = true
		rep.Generation = cur.gen
		return rep, p.pointGoEnv(envFile, rep)
	}
	if err := checkWritable(prefix); err != nil {
		return nil, err
	}

	// Stage the new generation: the toolchain is extracted (and renamed
	// into .ferry/toolchains, where nothing points to it yet) while the
	// store tree is built from the current one plus the bundle's items.
	// Until the commit, a failure removes both.
	committed := false
	next, staging, err := p.newGeneration()
	if err != nil {
		return nil, err
	}
	defer func() {
		if !committed {
			if rerr := os.RemoveAll(staging); rerr != nil {
				log.Warn("removing staging directory", "path", staging, "err", rerr)
			}
		}
	}()
	prog := newProgress(opt.Progress)
	for _, it := range m.Items {
		prog.addTotal(it.Size)
	}
	extract := tc != nil && !toolchainPresent(prefix, tc)
	if extract {
		prog.addTotal(tc.Item.Size)
		defer func() {
			if !committed {
				os.RemoveAll(filepath.Join(prefix, filepath.FromSlash(tcDir), tc.Dir))
			}
		}()
	}
	var sr storeResult
	g, gctx := errgroup.WithContext(ctx)
	if extract {
		g.Go(func() error { return extractToolchain(gctx, src, prefix, tc, jobs, prog, log) })
	}
	g.Go(func() (err error) {
		sr, err = stageStore(gctx, src, m, filepath.Join(staging, genMod), cur.tree, jobs, opt.CheckEncoded, prog, log)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep.Added, rep.Present, rep.AddedBytes = sr.added, sr.present, sr.addedBytes
	rep.Warnings = append(rep.Warnings, sr.warnings...)
	hook("staged")

	// Seal it: its toolchain link and state, durable, renamed into place.
	tcName := cur.tc
	if tc != nil {
		tcName = tc.Dir
	}
	if tcName != "" {
		if err := os.Symlink("../../toolchains/"+tcName, filepath.Join(staging, genGo)); err != nil {
			return nil, fmt.Errorf("linking the toolchain of generation %s: %w", next, err)
		}
	}
	if err := saveManifest(prefix, src); err != nil {
		return nil, err
	}
	st := &State{Bundles: slices.Clone(cur.state.Bundles)}
	rec := BundleRecord{
		ManifestDigest: digest,
		Name:           m.Name,
		Version:        m.Version,
		Created:        m.Created,
		Installed:      time.Now().UTC().Format(time.RFC3339),
		Signer:         opt.Signer,
		Generation:     next,
		Toolchain:      rep.Toolchain,
		ToolchainDir:   tcName,
	}
	if d, ok := src.(interface{ Digest() string }); ok {
		rec.Digest = d.Digest()
	}
	if m.Base != nil {
		rec.Base = m.Base.ManifestDigest
	}
	st.record(rec)
	if err := writeState(staging, st); err != nil {
		return nil, err
	}
	if err := durable.Tree(staging); err != nil {
		return nil, err
	}
	final := p.genPath(next)
	if err := os.Rename(staging, final); err != nil {
		return nil, fmt.Errorf("renaming %s to %s: %w", staging, final, err)
	}
	staging = final // removed on failure until committed
	if err := durable.Dir(p.path(genDir)); err != nil {
		return nil, err
	}
	hook("sealed")

	// Commit: PREFIX/mod and PREFIX/go (made once, never changed; a legacy
	// prefix's are replaced after the commit), then .ferry/current.
	if !cur.legacy {
		for _, l := range []string{modLink, goLink} {
			if err := p.ensureLink(l); err != nil {
				return nil, err
			}
		}
	}
	hook("linked")
	if err := swapSymlink(p.path(currentLink), "gen/"+next); err != nil {
		return nil, err
	}
	committed = true
	rep.Generation = next
	log.Info("installed bundle", "prefix", prefix, "manifest", digest, "generation", next,
		"previous", cur.gen, "added", rep.Added, "present", rep.Present, "toolchain", rep.Toolchain)
	hook("committed")

	// Tidy: finish a legacy prefix's move; keep the previous generation
	// for rollback and remove older ones.
	if err := p.repairLinks(); err != nil {
		return rep, fmt.Errorf("installed into %s, but: %w", prefix, err)
	}
	rep.Warnings = append(rep.Warnings, p.removeGenerations(next, cur)...)
	hook("tidied")

	if err := p.pointGoEnv(envFile, rep); err != nil {
		return rep, fmt.Errorf("installed into %s (generation %s), but: %w", prefix, next, err)
	}
	hook("goenv")
	return rep, nil
}

// newGeneration creates the staging directory of the next generation.
func (p *Prefix) newGeneration() (name, staging string, err error) {
	root := p.path(genDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", "", fmt.Errorf("creating %s: %w", root, err)
	}
	last, err := lastGeneration(root)
	if err != nil {
		return "", "", err
	}
	name = fmt.Sprintf("%06d", last+1)
	staging, err = os.MkdirTemp(root, name+".tmp-*")
	if err != nil {
		return "", "", fmt.Errorf("creating staging directory in %s: %w", root, err)
	}
	if err := os.Chmod(staging, 0o755); err != nil {
		os.RemoveAll(staging)
		return "", "", fmt.Errorf("creating staging directory: %w", err)
	}
	return name, staging, nil
}

// removeGenerations removes every generation but keep and the one it was
// made from (for rollback), unless that was a legacy one, which cannot be
// rolled back to. It returns warnings: the install is done either way.
func (p *Prefix) removeGenerations(keep string, prev *installed) []string {
	root := p.path(genDir)
	ents, err := os.ReadDir(root)
	if err != nil {
		return []string{fmt.Sprintf("listing old generations: %v", err)}
	}
	var warnings []string
	for _, e := range ents {
		name := e.Name()
		if _, ok := genNumber(name); !ok || name == keep || name == prev.gen && !prev.legacy {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
			warnings = append(warnings, fmt.Sprintf("removing old generation: %v", err))
		}
	}
	return warnings
}

// pointGoEnv sets GOPROXY in the go env file and warns about settings there
// that turn checksum verification off. The value it replaces is recorded
// first (once per file and key), for Uninstall to put back.
func (p *Prefix) pointGoEnv(envFile string, rep *Report) error {
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
	want := map[string]string{"GOPROXY": rep.GOPROXY}
	if err := p.recordGoEnv(envFile, cur, want); err != nil {
		return err
	}
	changed, err := goenv.Set(envFile, want)
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
