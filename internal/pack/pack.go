// Package pack builds a ferry bundle on the connected side.
//
// It drives the real go command (in a throwaway GOPATH and module cache,
// with the user's GOPROXY, GOSUMDB, GOPRIVATE, GONOSUMDB and GOFLAGS) to learn
// what each project needs for every listed platform, and lets the go command
// fetch it through a local recording proxy (package fetch) that retries,
// caches and counts. pack never re-implements module resolution: whatever
// the go command put in its download cache is what the far side's go
// command will ask for.
//
// Invariants:
//   - the user's go.mod, go.sum, go.work and go.work.sum are never written
//     (the go command works on scratch copies);
//   - every module and toolchain carried is proved against the checksum
//     database named by GOSUMDB (except GOPRIVATE/GONOSUMDB modules, which
//     are marked as such), and the hash of the carried bytes must equal the
//     database's record, or pack fails;
//   - pack fails when something a package, test or tool of a listed
//     platform needs could not be fetched; anything else it could not fetch
//     is reported in the manifest's Missing list and as a warning;
//   - the bundle is written to a temporary file and renamed into place.
package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/fetch"
	"github.com/ferry-dev/ferry/internal/gocmd"
	"github.com/ferry-dev/ferry/internal/sumdbsnap"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// Options configure one pack run.
type Options struct {
	Dirs       []string // Go projects (go.mod or go.work)
	Output     string   // bundle file to write
	Platforms  []string // GOOS/GOARCH; default: the host platform
	Toolchains []string // goX.Y.Z; default: what the projects ask for, else the local go
	Tools      []string // PKG@VERSION for `go install PKG@VERSION`
	Modules    []string // MODULE@VERSION
	// Images are container images to carry: "oci:DIR" (the images an OCI
	// layout names, and their referrers) or registry references.
	Images []string
	// ImagePlatforms, if set, keeps only these GOOS/GOARCH of multi-platform
	// images (the image index is rewritten to list only them).
	ImagePlatforms []string
	PlainHTTP      bool // talk to image registries over plain HTTP
	Name           string
	Version        string
	Signer         note.Signer // nil: unsigned
	SignerKey      string      // the verifier key of Signer, recorded in the bundle ("" for none)
	Jobs           int
	CacheDir       string // persistent download cache (resume); "" = the user cache dir
	// Compression is how module zips are encoded for transport: "better"
	// (the default, ""), "best", "default" (fastest), or "none" (carried as
	// the proxy serves them).
	Compression string
	Go          string // go binary; "" = found on PATH
	// Env is the user's go environment (go env -json); nil = read it.
	Env     map[string]string
	ModTime time.Time
	// SumDBHeads are signed tree heads of earlier bundles (or of clients):
	// the snapshot also carries the tiles proving each consistent with the
	// new head, and the manifest records them in SumDB.Heads.
	SumDBHeads [][]byte
	// Base, when set, makes the bundle a delta of the bundle whose ferry
	// manifest this is (with digest BaseDigest): blobs the base has are left
	// out, and the checksum snapshot proves the base's tree heads
	// consistent with the new one.
	Base       *bundle.Manifest
	BaseDigest string
	Log        *slog.Logger
	// Phase is told when pack starts a phase; Stats counts transfers.
	Phase func(name string, total int64)
	Bytes func(n int64)
	Stats *fetch.Stats
}

// Result says what pack wrote.
type Result struct {
	Bundle     string           `json:"bundle"`
	Digest     string           `json:"digest"`
	Size       int64            `json:"size"`
	Items      int              `json:"items"`
	Modules    int              `json:"modules"`
	Zips       int              `json:"zips"`
	Toolchains []string         `json:"toolchains"`
	Platforms  []string         `json:"platforms"`
	Missing    []bundle.Missing `json:"missing,omitempty"`
	Warnings   []string         `json:"warnings,omitempty"`
}

// Pack runs the whole connected-side job: plan, fetch, prove, write.
func Pack(ctx context.Context, opt Options) (*Result, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Jobs <= 0 {
		opt.Jobs = 8
	}
	if opt.Phase == nil {
		opt.Phase = func(string, int64) {}
	}
	if opt.Output == "" {
		return nil, errors.New("no output bundle given (-o)")
	}
	if err := bundle.CheckOutput("-o", opt.Output); err != nil {
		return nil, err
	}
	if opt.Compression != "none" {
		if _, err := zipcodec.ParseLevel(opt.Compression); err != nil {
			return nil, fmt.Errorf("--compression %q: want better, best, default or none", opt.Compression)
		}
	}
	if len(opt.Dirs) == 0 && len(opt.Tools) == 0 && len(opt.Modules) == 0 && len(opt.Toolchains) == 0 {
		return nil, errors.New("nothing to pack: give a project DIR, --tool, --module or --toolchain")
	}
	if opt.Go == "" {
		g, err := gocmd.Find()
		if err != nil {
			return nil, err
		}
		opt.Go = g
	}
	if opt.Env == nil {
		env, err := gocmd.UserEnv(ctx, opt.Go)
		if err != nil {
			return nil, fmt.Errorf("reading the go environment: %w", err)
		}
		opt.Env = env
	}
	env := opt.Env

	// Checksum database: refuse to pack anything that cannot be proved.
	sumName, sumKey, _, err := sumdbsnap.ParseGOSUMDB(env["GOSUMDB"])
	if err != nil {
		return nil, fmt.Errorf("GOSUMDB=%q: %w", env["GOSUMDB"], err)
	}
	if sumKey == "" {
		if sumKey, err = sumdbsnap.GoRootKey(env["GOROOT"], sumName); err != nil {
			return nil, fmt.Errorf("finding the verifier key of checksum database %s: %w", sumName, err)
		}
	}

	// Platforms.
	if len(opt.Platforms) == 0 {
		opt.Platforms = []string{env["GOOS"] + "/" + env["GOARCH"]}
	}
	known, err := distList(ctx, opt.Go)
	if err != nil {
		return nil, err
	}
	for _, p := range opt.Platforms {
		if !known[p] {
			return nil, fmt.Errorf("unknown platform %q (see `go tool dist list`)", p)
		}
	}
	opt.Platforms = uniq(opt.Platforms)
	for _, t := range opt.Toolchains {
		if !validToolchain(t) {
			return nil, fmt.Errorf("invalid toolchain %q: want a Go release name like go1.26.8", t)
		}
	}
	for _, t := range opt.Tools {
		if p, v, ok := strings.Cut(t, "@"); !ok || p == "" || v == "" {
			return nil, fmt.Errorf("--tool %q: want PACKAGE@VERSION", t)
		}
	}
	for _, m := range opt.Modules {
		p, v, ok := strings.Cut(m, "@")
		if !ok || p == "" || v == "" {
			return nil, fmt.Errorf("--module %q: want MODULE@VERSION", m)
		}
		if err := module.CheckPath(p); err != nil {
			return nil, fmt.Errorf("--module %q: %w", m, err)
		}
	}

	// Work area: a persistent download cache (resume) and a throwaway GOPATH.
	if opt.CacheDir == "" {
		uc, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("finding a cache directory: %w (use --cache)", err)
		}
		opt.CacheDir = filepath.Join(uc, "ferry")
	}
	if err := os.MkdirAll(opt.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cache directory: %w", err)
	}
	work, err := os.MkdirTemp(opt.CacheDir, "pack-")
	if err != nil {
		return nil, fmt.Errorf("creating work directory: %w", err)
	}
	defer os.RemoveAll(work)

	client, err := fetch.New(fetch.Options{
		GOPROXY:  env["GOPROXY"],
		CacheDir: filepath.Join(opt.CacheDir, "download"),
		Jobs:     opt.Jobs,
		Log:      opt.Log,
		Stats:    opt.Stats,
	})
	if err != nil {
		return nil, err
	}
	proxyURL, stop, err := serveLocal(client.Handler())
	if err != nil {
		return nil, err
	}
	defer stop()

	run := &gocmd.Runner{Go: opt.Go, Env: goEnv(env, work, proxyURL, client.HasDirect())}
	res := &resolver{run: run, platforms: opt.Platforms}

	// Projects.
	opt.Phase("resolve", 0)
	var projects []*project
	guard := &fileGuard{}
	defer guard.restore(opt.Log)
	for i, d := range opt.Dirs {
		p, err := loadProject(ctx, run, d, filepath.Join(work, fmt.Sprintf("project%d", i)))
		if err != nil {
			return nil, err
		}
		guard.watch(p)
		projects = append(projects, p)
	}
	if len(opt.Toolchains) == 0 {
		for _, p := range projects {
			if p.Toolchain != "" {
				opt.Toolchains = append(opt.Toolchains, p.Toolchain)
			}
		}
		if len(opt.Toolchains) == 0 {
			opt.Toolchains = []string{env["GOVERSION"]}
		}
	}
	opt.Toolchains = uniq(opt.Toolchains)
	if len(projects) > 0 {
		if opt.Name == "" {
			opt.Name = defaultName(projects[0])
		}
		if opt.Version == "" {
			opt.Version = gitVersion(ctx, projects[0].Dir)
		}
	}

	for _, p := range projects {
		opt.Log.Info("resolving", "project", p.Dir, "modules", p.Modules)
		if err := res.downloadAll(ctx, p); err != nil {
			return nil, err
		}
		if err := res.loadPackages(ctx, p); err != nil {
			return nil, err
		}
	}
	for _, t := range opt.Tools {
		opt.Log.Info("resolving tool", "tool", t)
		if err := res.installTool(ctx, work, t); err != nil {
			return nil, err
		}
	}
	for _, m := range opt.Modules {
		if err := res.downloadModule(ctx, work, m); err != nil {
			return nil, err
		}
	}

	// Messages must not depend on the local proxy's port: the manifest
	// carries them, and the same inputs must give the same bundle.
	for i := range res.failures {
		res.failures[i].Reason = strings.ReplaceAll(res.failures[i].Reason, proxyURL+"/", "")
	}
	for i := range res.pkgErrors {
		res.pkgErrors[i].Err = strings.ReplaceAll(res.pkgErrors[i].Err, proxyURL+"/", "")
	}

	// Collect what the go command fetched, then the toolchains.
	files := map[string]*file{}
	if err := harvest(filepath.Join(work, "gopath", "pkg", "mod", "cache", "download"), files); err != nil {
		return nil, fmt.Errorf("collecting downloaded modules: %w", err)
	}
	// Versions known only by their go.mod (never selected) still show up in
	// @v/list on the far side; the go command reads their .info when one of
	// them is the newest (go get m@latest, go list -m -versions -json).
	noProxy := env["GONOPROXY"]
	if noProxy == "" {
		noProxy = env["GOPRIVATE"]
	}
	if err := fetchInfos(ctx, client, files, noProxy, opt.Jobs); err != nil {
		return nil, err
	}
	opt.Phase("toolchains", 0)
	var tcMissing []bundle.Missing
	for _, t := range opt.Toolchains {
		opt.Log.Info("fetching toolchain", "toolchain", t, "platforms", opt.Platforms)
		miss, err := fetchToolchain(ctx, client, t, opt.Platforms, files)
		if err != nil {
			return nil, err
		}
		tcMissing = append(tcMissing, miss...)
	}
	var imageRefs []string
	if len(opt.Images) > 0 {
		opt.Phase("images", 0)
		ip := &imagePacker{cacheDir: opt.CacheDir, plainHTTP: opt.PlainHTTP, files: map[string]*file{}}
		if len(opt.ImagePlatforms) > 0 {
			ip.platforms = map[string]bool{}
			for _, pl := range opt.ImagePlatforms {
				ip.platforms[pl] = true
			}
		}
		for _, spec := range opt.Images {
			opt.Log.Info("carrying image", "image", spec)
			if err := ip.add(ctx, spec); err != nil {
				return nil, err
			}
		}
		var imgs []*file
		imgs, imageRefs = ip.list()
		for _, f := range imgs {
			files[f.File] = f
		}
	}

	// Fail on what a listed platform needs but could not be fetched; warn
	// about the rest.
	result := &Result{Bundle: opt.Output, Toolchains: opt.Toolchains, Platforms: opt.Platforms}
	missing, fatal := classify(res, files)
	if len(fatal) > 0 {
		return nil, fmt.Errorf("cannot carry what the listed platforms need:\n  %s", strings.Join(fatal, "\n  "))
	}
	missing = append(missing, tcMissing...)
	result.Missing = missing
	for _, pe := range res.pkgErrors {
		result.Warnings = append(result.Warnings, fmt.Sprintf("package %s (%s) does not load: %s", pe.Package, pe.Platform, pe.Err))
	}

	// Hash every file.
	list := make([]*file, 0, len(files))
	var total int64
	for _, f := range files {
		list = append(list, f)
		if f.src != "" {
			if fi, err := os.Stat(f.src); err == nil {
				total += fi.Size()
			}
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].File < list[j].File })
	opt.Phase("hash", total)
	if err := hashFiles(ctx, list, max(runtime.GOMAXPROCS(0), 2), opt.Bytes); err != nil {
		return nil, err
	}
	nosum := env["GONOSUMDB"]
	if nosum == "" {
		nosum = env["GOPRIVATE"]
	}
	for _, f := range list {
		if f.Kind == bundle.KindZip || f.Kind == bundle.KindMod || f.Kind == bundle.KindInfo {
			f.NoSumDB = module.MatchPrefixPatterns(nosum, f.Module)
		}
	}

	// Prove everything against the checksum database and snapshot the proof.
	opt.Phase("checksum database", 0)
	wants := wantsOf(list)
	snap, err := sumdbsnap.Build(ctx, sumName, sumKey, remote{client, sumName}, wants, opt.Jobs)
	if err != nil {
		return nil, fmt.Errorf("checksum database %s: %w", sumName, err)
	}
	var heads []string
	sumHeads := opt.SumDBHeads
	if b := opt.Base; b != nil && b.SumDB != nil && b.SumDB.Name == sumName {
		// A client that verified modules from the base holds one of its
		// heads: prove each consistent with the new one.
		sumHeads = append(sumHeads, []byte(b.SumDB.Head))
		for _, h := range b.SumDB.Heads {
			sumHeads = append(sumHeads, []byte(h))
		}
		sumHeads = uniqueHeads(sumHeads)
	}
	if len(sumHeads) > 0 {
		if err := snap.AddConsistency(ctx, remote{client, sumName}, sumHeads); err != nil {
			return nil, err
		}
		for _, h := range sumHeads {
			heads = append(heads, string(h))
		}
	}
	for rel, data := range snap.Files {
		p := "sumdb/" + sumName + "/" + rel
		list = append(list, &file{Item: bundle.Item{File: p, Kind: bundle.KindSumDB}, data: data})
	}
	if err := hashFiles(ctx, list[len(list)-len(snap.Files):], 4, nil); err != nil {
		return nil, err
	}

	if opt.Compression != "none" {
		level, err := zipcodec.ParseLevel(opt.Compression)
		if err != nil {
			return nil, err
		}
		var total int64
		for _, f := range list {
			if f.Kind == bundle.KindZip && f.Module != toolchainModule {
				total += f.Size
			}
		}
		opt.Phase("encode", total)
		if err := encodeZips(ctx, list, opt.CacheDir, level, runtime.GOMAXPROCS(0), opt.Bytes); err != nil {
			return nil, err
		}
	}

	m := &bundle.Manifest{
		SchemaVersion: bundle.SchemaVersion,
		Name:          opt.Name,
		Version:       opt.Version,
		Platforms:     opt.Platforms,
		Toolchains:    opt.Toolchains,
		Tools:         opt.Tools,
		Modules:       opt.Modules,
		Images:        imageRefs,
		SumDB:         &bundle.SumDB{Name: sumName, Key: sumKey, Head: string(snap.Head), Heads: heads},
		Missing:       missing,
	}
	if !opt.ModTime.IsZero() {
		m.Created = opt.ModTime.UTC().Format(time.RFC3339)
	}
	for _, p := range projects {
		m.Projects = append(m.Projects, p.Modules...)
	}
	src := blobSource{}
	mods := map[string]bool{}
	for _, f := range list {
		m.Items = append(m.Items, f.Item)
		src[f.Digest] = f
		if f.Module != "" {
			mods[f.Module+"@"+f.Version] = true
		}
		if f.Kind == bundle.KindZip {
			result.Zips++
		}
	}
	result.Items = len(m.Items)
	result.Modules = len(mods)

	var sum int64
	for _, f := range src {
		sum += f.Size
	}
	opt.Phase("write", sum)
	var written int64
	progress := func(total int64) { // bundle.Write reports a running total
		if opt.Bytes != nil {
			opt.Bytes(total - written)
		}
		written = total
	}
	wopt := bundle.WriteOptions{Signer: opt.Signer, SignerKey: opt.SignerKey, ModTime: opt.ModTime, Progress: progress}
	if opt.Base != nil {
		m.Base = &bundle.Base{ManifestDigest: opt.BaseDigest, Name: opt.Base.Name, Version: opt.Base.Version}
		wopt.Omit = omitInBase(opt.Base)
	}
	digest, err := bundle.Write(ctx, opt.Output, m, src, wopt)
	if err != nil {
		return nil, fmt.Errorf("writing bundle %s: %w", opt.Output, err)
	}
	result.Digest = digest
	if fi, err := os.Stat(opt.Output); err == nil {
		result.Size = fi.Size()
	}
	return result, nil
}

// classify sorts what the go command could not fetch: fatal when a package of
// a listed platform failed because of it, otherwise a Missing entry.
func classify(res *resolver, files map[string]*file) (missing []bundle.Missing, fatal []string) {
	for _, pe := range res.pkgErrors {
		if fetchError(pe.Err, res.failures) {
			fatal = append(fatal, fmt.Sprintf("package %s (%s): %s", pe.Package, pe.Platform, pe.Err))
		}
	}
	seen := map[string]bool{}
	for _, f := range res.failures {
		key := f.Module + "@" + f.Version
		if seen[key] {
			continue
		}
		seen[key] = true
		ev, _ := module.EscapeVersion(f.Version)
		ep, _ := module.EscapePath(f.Module)
		if _, ok := files[ep+"/@v/"+ev+".zip"]; ok {
			continue // fetched after all (another project or retry)
		}
		what := ".zip"
		if _, ok := files[ep+"/@v/"+ev+".mod"]; !ok {
			what = ".mod"
		}
		missing = append(missing, bundle.Missing{
			Module: f.Module, Version: f.Version, File: what, Reason: f.Reason,
			Impact: "no package or test of a listed platform needs it; offline `go mod download all` (and commands that download every module) will fail on it",
		})
	}
	sort.Slice(missing, func(i, j int) bool {
		return missing[i].Module+missing[i].Version < missing[j].Module+missing[j].Version
	})
	return missing, fatal
}

// fetchError reports whether a package error is about a module that could
// not be fetched or verified.
func fetchError(msg string, failures []failure) bool {
	for _, f := range failures {
		if strings.Contains(msg, f.Module+"@") {
			return true
		}
	}
	for _, s := range []string{"verifying module", "SECURITY ERROR", "checksum mismatch", "reading http", "missing go.sum entry", "unrecognized import path", "410 Gone", "404 Not Found"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// wantsOf lists the checksum-database records the files must match.
func wantsOf(list []*file) []sumdbsnap.Want {
	byMod := map[module.Version]*sumdbsnap.Want{}
	var order []module.Version
	for _, f := range list {
		if f.NoSumDB || (f.Kind != bundle.KindZip && f.Kind != bundle.KindMod) {
			continue
		}
		mv := module.Version{Path: f.Module, Version: f.Version}
		w := byMod[mv]
		if w == nil {
			w = &sumdbsnap.Want{Path: f.Module, Version: f.Version}
			byMod[mv] = w
			order = append(order, mv)
		}
		if f.Kind == bundle.KindZip {
			w.ZipHash = f.Hash
		} else {
			w.ModHash = f.Hash
		}
	}
	out := make([]sumdbsnap.Want, 0, len(order))
	for _, mv := range order {
		out = append(out, *byMod[mv])
	}
	return out
}

// remote reads the checksum database through the proxy's /sumdb/ route, as
// the go command does.
type remote struct {
	c    *fetch.Client
	name string
}

func (r remote) ReadRemote(ctx context.Context, path string) ([]byte, error) {
	return r.c.Get(ctx, "sumdb/"+r.name+path)
}

// blobSource serves bundle blobs from the files pack collected.
type blobSource map[string]*file

func (s blobSource) OpenBlob(_ context.Context, digest string) (io.ReadCloser, error) {
	f, ok := s[digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", digest, os.ErrNotExist)
	}
	if f.data != nil {
		return io.NopCloser(strings.NewReader(string(f.data))), nil
	}
	return os.Open(f.src)
}

// goEnv is the environment pack runs the go command in: the caller's
// process environment without any GO* settings, then the user's go settings
// that decide what is fetched and how it is verified, and a throwaway
// GOPATH.
func goEnv(user map[string]string, work, proxyURL string, direct bool) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GO") || k == "CGO_ENABLED" {
			continue
		}
		env = append(env, kv)
	}
	goproxy := proxyURL
	if direct {
		goproxy += ",direct"
	}
	flags := strings.TrimSpace(user["GOFLAGS"] + " -modcacherw")
	gopath := filepath.Join(work, "gopath")
	return append(env,
		"GOENV=off",
		"GOPATH="+gopath,
		"GOMODCACHE="+filepath.Join(gopath, "pkg", "mod"),
		"GOCACHE="+filepath.Join(work, "gocache"),
		"GOTOOLCHAIN=auto",
		"GOTELEMETRY=off",
		"GOPROXY="+goproxy,
		"GOSUMDB="+user["GOSUMDB"],
		"GOPRIVATE="+user["GOPRIVATE"],
		"GONOSUMDB="+user["GONOSUMDB"],
		"GONOPROXY="+user["GONOPROXY"],
		"GOINSECURE="+user["GOINSECURE"],
		"GOFLAGS="+flags,
		"GIT_TERMINAL_PROMPT=0",
	)
}

// serveLocal serves h on a loopback port for the go command.
func serveLocal(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("starting the local proxy: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// distList returns the platforms the go command knows.
func distList(ctx context.Context, goBin string) (map[string]bool, error) {
	r := &gocmd.Runner{Go: goBin, Env: os.Environ()}
	out, err := r.Run(ctx, ".", nil, "tool", "dist", "list")
	if err != nil {
		return nil, fmt.Errorf("listing platforms: %w", err)
	}
	m := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		m[l] = true
	}
	return m, nil
}

func uniq(s []string) []string {
	var out []string
	for _, v := range s {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// fileGuard keeps the bytes of the user's module files and puts them back if
// anything changed them while pack ran.
type fileGuard struct{ files map[string][]byte }

func (g *fileGuard) watch(p *project) {
	if g.files == nil {
		g.files = map[string][]byte{}
	}
	var names []string
	if p.GoMod != "" {
		names = append(names, p.GoMod, filepath.Join(p.Dir, "go.sum"))
	}
	if p.GoWork != "" {
		names = append(names, p.GoWork, p.GoWork+".sum")
		for _, d := range p.UseDirs {
			names = append(names, filepath.Join(d, "go.mod"), filepath.Join(d, "go.sum"))
		}
	}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			data = nil
		}
		g.files[n] = data
	}
}

func (g *fileGuard) restore(log *slog.Logger) {
	for n, want := range g.files {
		got, err := os.ReadFile(n)
		if err != nil && want == nil {
			continue
		}
		if string(got) == string(want) {
			continue
		}
		log.Warn("the go command changed a project file; restoring it", "file", n)
		if want == nil {
			os.Remove(n)
		} else {
			os.WriteFile(n, want, 0o644)
		}
	}
}

// omitInBase reports the blobs a delta of base leaves out: every blob an
// item of base has, except the checksum database's signed files (its
// latest head and lookups), which are small and which an install may since
// have replaced with copies signed by a larger tree.
func omitInBase(base *bundle.Manifest) func(string) bool {
	in := make(map[string]bool, len(base.Items))
	for _, it := range base.Items {
		if it.Kind == bundle.KindSumDB && (strings.HasSuffix(it.File, "/latest") || strings.Contains(it.File, "/lookup/")) {
			continue
		}
		in[it.Digest] = true
	}
	return func(d string) bool { return in[d] }
}

// uniqueHeads drops repeated tree heads, keeping the first of each.
func uniqueHeads(heads [][]byte) [][]byte {
	seen := map[string]bool{}
	var out [][]byte
	for _, h := range heads {
		if !seen[string(h)] {
			seen[string(h)] = true
			out = append(out, h)
		}
	}
	return out
}
