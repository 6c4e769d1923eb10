package install

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/goenv"
	"github.com/ferry-dev/ferry/internal/sumdbsnap"
)

const pseudo = "v0.0.0-20200101000000-abcdefabcdef"

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func options(t *testing.T, prefix string) Options {
	return Options{
		Prefix:    prefix,
		GoEnvFile: filepath.Join(t.TempDir(), "goenv", "env"),
		Platform:  "linux/amd64",
		Jobs:      3,
		Signer:    "test-signer",
		Log:       testLog(t),
	}
}

// firstBundle: example.com/a v1.0.0 (all files), v1.1.0 (.mod), a
// pseudo-version .mod, example.com/Upper v0.1.0, toolchains for two
// platforms and a checksum snapshot of size 10.
func firstBundle(t *testing.T, db *testSumDB) *memSource {
	b := newBuilder("first")
	b.module(t, "example.com/a", "v1.0.0", ".info", ".mod", ".zip")
	b.module(t, "example.com/a", "v1.1.0", ".info", ".mod")
	b.module(t, "example.com/a", pseudo, ".info", ".mod")
	b.module(t, "example.com/Upper", "v0.1.0", ".info", ".mod", ".zip")
	b.toolchain(t, "go1.26.8", "darwin/arm64", nil)
	b.toolchain(t, "go1.26.8", "linux/amd64", nil)
	b.m.Toolchains = []string{"go1.26.8"}
	b.snapshot(t, db, 10, []string{"example.com/a@v1.0.0", "example.com/!upper@v0.1.0"},
		map[string]string{"tile/8/0/000.p/10": "tile10", "tile/8/1/000.p/1": "l1"})
	return b.source()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestInstallFresh(t *testing.T) {
	db := newSumDB(t)
	src := firstBundle(t, db)
	prefix := filepath.Join(t.TempDir(), "pre fix,1")
	opt := options(t, prefix)
	var lastDone, lastTotal int64
	opt.Progress = func(done, total int64) { lastDone, lastTotal = done, total }
	rep, err := Install(context.Background(), src, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AlreadyInstalled || rep.Generation != "000001" || rep.Toolchain != "go1.26.8" ||
		rep.Added != len(src.m.Items) || rep.Present != 0 {
		t.Errorf("report = %+v", rep)
	}
	if lastDone != lastTotal || lastTotal == 0 {
		t.Errorf("progress ended at %d/%d", lastDone, lastTotal)
	}

	for link, want := range map[string]string{
		"mod":                  ".ferry/current/mod",
		"go":                   ".ferry/current/go",
		".ferry/current":       "gen/000001",
		".ferry/gen/000001/go": "../../toolchains/go1.26.8.linux-amd64",
	} {
		if target, err := os.Readlink(filepath.Join(prefix, link)); err != nil || target != want {
			t.Errorf("PREFIX/%s -> %q, %v; want %q", link, target, err, want)
		}
	}
	mod := filepath.Join(prefix, "mod")
	for _, it := range src.m.Items {
		if got := readFile(t, filepath.Join(mod, it.File)); got != string(src.blobs[it.Digest]) {
			t.Errorf("%s has wrong content", it.File)
		}
	}
	if got := readFile(t, filepath.Join(mod, "example.com/a/@v/list")); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("example.com/a list = %q", got)
	}
	if got := readFile(t, filepath.Join(mod, "example.com/!upper/@v/list")); got != "v0.1.0\n" {
		t.Errorf("example.com/Upper list = %q", got)
	}
	if got := readFile(t, filepath.Join(mod, "golang.org/toolchain/@v/list")); got != "v0.0.1-go1.26.8.darwin-arm64\nv0.0.1-go1.26.8.linux-amd64\n" {
		t.Errorf("toolchain list = %q", got)
	}
	if got := readFile(t, filepath.Join(mod, "sumdb/sum.test/supported")); got != "" {
		t.Errorf("supported = %q", got)
	}

	// Toolchain tree.
	goroot := filepath.Join(prefix, "go")
	modes := map[string]fs.FileMode{
		"bin/go":                       0o755,
		"bin/gofmt":                    0o755,
		"pkg/tool/linux_amd64/compile": 0o755,
		"lib/wasm/go_js_wasm_exec":     0o755,
		"misc/wasm/go_js_wasm_exec":    0o644,
		"VERSION":                      0o644,
		"src/go.mod":                   0o644,
		"src/cmd/go.mod":               0o644,
		"src/fmt/print.go":             0o644,
		"src":                          0o755 | fs.ModeDir,
		"pkg/tool/linux_amd64":         0o755 | fs.ModeDir,
	}
	for rel, want := range modes {
		fi, err := os.Stat(filepath.Join(goroot, rel))
		if err != nil {
			t.Errorf("toolchain: %v", err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("toolchain %s mode = %v, want %v", rel, fi.Mode(), want)
		}
	}
	for _, rel := range []string{"src/_go.mod", "src/cmd/_go.mod"} {
		if _, err := os.Stat(filepath.Join(goroot, rel)); err == nil {
			t.Errorf("toolchain still has %s", rel)
		}
	}
	if got := readFile(t, filepath.Join(goroot, "src/cmd/go.mod")); got != "module cmd\n" {
		t.Errorf("src/cmd/go.mod = %q", got)
	}
	if _, err := os.Stat(filepath.Join(prefix, ".ferry/toolchains/go1.26.8.darwin-arm64")); err == nil {
		t.Errorf("toolchain of another platform extracted")
	}

	// State and go env.
	st, err := ReadState(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Bundles) != 1 || st.Bundles[0].ManifestDigest != src.digest || st.Bundles[0].Name != "first" ||
		st.Bundles[0].Signer != "test-signer" || st.Bundles[0].Generation != "000001" || st.Bundles[0].Toolchain != "go1.26.8" {
		t.Errorf("state = %+v", st)
	}
	env, err := goenv.Read(opt.GoEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "file://" + filepath.ToSlash(prefix) + "/mod"
	want = strings.NewReplacer(" ", "%20", ",", "%2C").Replace(want)
	if env["GOPROXY"] != want || rep.GOPROXY != want {
		t.Errorf("GOPROXY = %q (report %q), want %q", env["GOPROXY"], rep.GOPROXY, want)
	}
	if rep.GoEnv["GOPROXY"] != [2]string{"", want} {
		t.Errorf("report GoEnv = %v", rep.GoEnv)
	}
	for _, k := range []string{"GOSUMDB", "GONOSUMDB", "GOINSECURE", "GOPRIVATE", "GOFLAGS"} {
		if _, ok := env[k]; ok {
			t.Errorf("go env file sets %s", k)
		}
	}
}

// snapshotTree records path -> (inode identity, mtime) of everything under root.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		// Directory mtimes change when temporary files come and go; what
		// matters is the entries, file contents and mtimes, and link targets.
		m[p] = fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			m[p] += " " + fi.ModTime().String() + " " + readFile(t, p)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[p] += " -> " + target + " " + fi.ModTime().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed: %q -> %q", p, v, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared", p)
		}
	}
}

func TestInstallTwiceChangesNothing(t *testing.T) {
	db := newSumDB(t)
	src := firstBundle(t, db)
	prefix := t.TempDir()
	opt := options(t, prefix)
	if _, err := Install(context.Background(), src, opt); err != nil {
		t.Fatal(err)
	}
	before := snapshotTree(t, prefix)
	envBefore := snapshotTree(t, filepath.Dir(opt.GoEnvFile))
	time.Sleep(10 * time.Millisecond) // let mtimes differ if anything is rewritten
	rep, err := Install(context.Background(), src, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.AlreadyInstalled || rep.Generation != "000001" || rep.Added != 0 || len(rep.GoEnv) != 0 {
		t.Errorf("second report = %+v", rep)
	}
	sameTree(t, before, snapshotTree(t, prefix))
	sameTree(t, envBefore, snapshotTree(t, filepath.Dir(opt.GoEnvFile)))
}

func TestSecondBundleMerges(t *testing.T) {
	db := newSumDB(t)
	prefix := t.TempDir()
	opt := options(t, prefix)
	first := firstBundle(t, db)
	if _, err := Install(context.Background(), first, opt); err != nil {
		t.Fatal(err)
	}

	b := newBuilder("second")
	b.module(t, "example.com/a", "v1.0.0", ".info", ".mod", ".zip") // already there
	b.module(t, "example.com/a", "v1.2.0", ".info", ".mod", ".zip")
	b.module(t, "example.com/a", "v1.10.0", ".mod")
	b.module(t, "example.com/b", "v0.0.1", ".mod")
	b.snapshot(t, db, 20, []string{"example.com/a@v1.2.0", "example.com/a@v1.0.0"},
		map[string]string{"tile/8/0/000.p/20": "tile20", "tile/8/1/000.p/1": "l1"})
	second := b.source()
	rep, err := Install(context.Background(), second, opt)
	if err != nil {
		t.Fatal(err)
	}
	// New: 3+1+1 module files, latest, 2 lookups (one replaced), 1 tile.
	if rep.AlreadyInstalled || rep.Generation != "000002" || rep.Added != 9 || rep.Present != 4 || rep.Toolchain != "" {
		t.Errorf("report = %+v", rep)
	}
	mod := filepath.Join(prefix, "mod")
	if got := readFile(t, filepath.Join(mod, "example.com/a/@v/list")); got != "v1.0.0\nv1.1.0\nv1.2.0\nv1.10.0\n" {
		t.Errorf("merged list = %q", got)
	}
	if got := readFile(t, filepath.Join(mod, "example.com/b/@v/list")); got != "v0.0.1\n" {
		t.Errorf("new list = %q", got)
	}
	if _, err := os.Stat(filepath.Join(mod, "example.com/!upper/@v/v0.1.0.zip")); err != nil {
		t.Errorf("first bundle's file lost: %v", err)
	}
	for _, tile := range []string{"tile/8/0/000.p/10", "tile/8/0/000.p/20"} {
		if _, err := os.Stat(filepath.Join(mod, "sumdb/sum.test", tile)); err != nil {
			t.Errorf("tile union: %v", err)
		}
	}
	sizeOf := func(file string, lookup bool) int64 {
		n, err := sumdbsnap.SignedTreeSize([]byte(readFile(t, filepath.Join(mod, file))), lookup)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := sizeOf("sumdb/sum.test/latest", false); n != 20 {
		t.Errorf("latest tree size %d, want 20", n)
	}
	if n := sizeOf("sumdb/sum.test/lookup/example.com/a@v1.0.0", true); n != 20 {
		t.Errorf("lookup a@v1.0.0 tree size %d, want 20", n)
	}
	if n := sizeOf("sumdb/sum.test/lookup/example.com/!upper@v0.1.0", true); n != 10 {
		t.Errorf("lookup Upper tree size %d, want 10", n)
	}
	// The first generation is kept for rollback and still unchanged.
	gen1 := filepath.Join(prefix, ".ferry/gen/000001/mod")
	if got := readFile(t, filepath.Join(gen1, "example.com/a/@v/list")); got != "v1.0.0\nv1.1.0\n" {
		t.Errorf("previous generation changed: list = %q", got)
	}
	if n, _ := sumdbsnap.SignedTreeSize([]byte(readFile(t, filepath.Join(gen1, "sumdb/sum.test/latest"))), false); n != 10 {
		t.Errorf("previous generation's latest changed")
	}
	// The toolchain of the first bundle stays.
	if target, _ := os.Readlink(filepath.Join(prefix, ".ferry/current/go")); target != "../../toolchains/go1.26.8.linux-amd64" {
		t.Errorf("PREFIX/.ferry/current/go -> %q", target)
	}

	// An older snapshot does not replace newer lookups; a third generation
	// removes the first.
	b = newBuilder("third")
	b.module(t, "example.com/c", "v1.0.0", ".mod")
	b.snapshot(t, db, 15, []string{"example.com/a@v1.0.0", "example.com/c@v1.0.0"}, nil)
	rep, err = Install(context.Background(), b.source(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Generation != "000003" {
		t.Errorf("third generation = %q", rep.Generation)
	}
	if n := sizeOf("sumdb/sum.test/latest", false); n != 20 {
		t.Errorf("latest tree size %d after older snapshot, want 20", n)
	}
	if n := sizeOf("sumdb/sum.test/lookup/example.com/a@v1.0.0", true); n != 20 {
		t.Errorf("lookup tree size %d after older snapshot, want 20", n)
	}
	if n := sizeOf("sumdb/sum.test/lookup/example.com/c@v1.0.0", true); n != 15 {
		t.Errorf("new lookup tree size %d, want 15", n)
	}
	ents, _ := os.ReadDir(filepath.Join(prefix, ".ferry/gen"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "000002 000003" {
		t.Errorf("generations = %v, want 000002 000003", names)
	}
	st, _ := ReadState(prefix)
	if len(st.Bundles) != 3 {
		t.Errorf("state has %d bundles", len(st.Bundles))
	}
}

func TestFailureLeavesPreviousState(t *testing.T) {
	db := newSumDB(t)
	prefix := t.TempDir()
	opt := options(t, prefix)
	if _, err := Install(context.Background(), firstBundle(t, db), opt); err != nil {
		t.Fatal(err)
	}

	b := newBuilder("second")
	for _, v := range []string{"v1.2.0", "v1.3.0", "v1.4.0", "v1.5.0"} {
		b.module(t, "example.com/a", v, ".info", ".mod", ".zip")
	}
	b.toolchain(t, "go1.27.1", "linux/amd64", nil)
	b.snapshot(t, db, 30, []string{"example.com/a@v1.2.0"}, nil)
	for failAt := int64(1); failAt <= 10; failAt += 3 {
		before := snapshotTree(t, prefix)
		envBefore := readFile(t, opt.GoEnvFile)
		src := b.source()
		src.failAt = failAt
		_, err := Install(context.Background(), src, opt)
		if !errors.Is(err, errInjected) {
			t.Fatalf("failAt %d: Install error = %v, want injected failure", failAt, err)
		}
		if !strings.Contains(err.Error(), "example.com/a") && !strings.Contains(err.Error(), "sumdb") && !strings.Contains(err.Error(), "toolchain") {
			t.Errorf("error does not name the file: %v", err)
		}
		sameTree(t, before, snapshotTree(t, prefix))
		if got := readFile(t, opt.GoEnvFile); got != envBefore {
			t.Errorf("go env file changed")
		}
	}

	// Simulate leftovers of a kill at various points.
	for _, p := range []string{".ferry/gen/000002.tmp-123/example.com/x", ".ferry/toolchains/go1.27.1.linux-amd64.tmp-9/bin"} {
		if err := os.MkdirAll(filepath.Join(prefix, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(".ferry/gen/000001", filepath.Join(prefix, "mod.tmp-abc")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, ".ferry/.state.json.tmp-77"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A generation renamed into place whose commit never happened.
	if err := os.MkdirAll(filepath.Join(prefix, ".ferry/gen/000002"), 0o755); err != nil {
		t.Fatal(err)
	}

	rep, err := Install(context.Background(), b.source(), opt)
	if err != nil {
		t.Fatal(err)
	}
	// The uncommitted generation 000002 was removed and made anew.
	if rep.Generation != "000002" || rep.Toolchain != "go1.27.1" {
		t.Errorf("rerun report = %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(prefix, ".ferry/gen/000002/state.json")); err != nil {
		t.Errorf("generation 000002 was not made anew: %v", err)
	}
	for _, p := range []string{".ferry/gen/000002.tmp-123", ".ferry/toolchains/go1.27.1.linux-amd64.tmp-9",
		"mod.tmp-abc", ".ferry/.state.json.tmp-77"} {
		if _, err := os.Lstat(filepath.Join(prefix, p)); err == nil {
			t.Errorf("leftover %s not removed", p)
		}
	}
	if got := readFile(t, filepath.Join(prefix, "go/VERSION")); got != "go1.27.1\n" {
		t.Errorf("PREFIX/go/VERSION = %q", got)
	}
	// The old toolchain stays extracted.
	if _, err := os.Stat(filepath.Join(prefix, ".ferry/toolchains/go1.26.8.linux-amd64/bin/go")); err != nil {
		t.Error(err)
	}
}

func TestPrefixNotWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "regular-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(file, "x")
	_, err := Install(context.Background(), firstBundle(t, newSumDB(t)), options(t, prefix))
	if err == nil || !strings.Contains(err.Error(), "prefix "+prefix+" is not writable") {
		t.Fatalf("Install = %v, want not writable error", err)
	}
}

func TestUnsafeItemNamesRefused(t *testing.T) {
	for _, name := range []string{"../evil", "a/../../evil", "/etc/evil", "a\\..\\evil", "a//b", "a/./b", "a/", "", "C:/x", "a/b\x00"} {
		b := newBuilder("evil")
		b.add(bundle.Item{File: name, Kind: bundle.KindMod}, []byte("x"))
		prefix := filepath.Join(t.TempDir(), "p")
		_, err := Install(context.Background(), b.source(), options(t, prefix))
		if err == nil {
			t.Errorf("item %q: Install succeeded", name)
			continue
		}
		if _, serr := os.Stat(prefix); serr == nil {
			t.Errorf("item %q: prefix created before refusing (%v)", name, err)
		}
	}
}

func TestZipSlipRefused(t *testing.T) {
	db := newSumDB(t)
	for name, extra := range map[string]map[string]string{
		"dotdot":    {"../../escape": "x"},
		"outside":   {"!golang.org/toolchain@v0.0.1-go1.26.8.linux-amd64-other/x": "x"},
		"abs":       {"!/tmp/abs-escape": "x"},
		"backslash": {"bin\\..\\..\\x": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			prefix := t.TempDir()
			opt := options(t, prefix)
			if _, err := Install(context.Background(), firstBundle(t, db), opt); err != nil {
				t.Fatal(err)
			}
			before := snapshotTree(t, filepath.Dir(prefix))
			b := newBuilder("slip")
			b.toolchain(t, "go1.26.9", "linux/amd64", extra)
			_, err := Install(context.Background(), b.source(), opt)
			if err == nil {
				t.Fatal("Install succeeded")
			}
			t.Log(err)
			sameTree(t, before, snapshotTree(t, filepath.Dir(prefix)))
		})
	}
}

func TestRefusesForeignGo(t *testing.T) {
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "go", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Install(context.Background(), firstBundle(t, newSumDB(t)), options(t, prefix))
	if err == nil || !strings.Contains(err.Error(), "not installed by ferry") {
		t.Fatalf("Install = %v, want refusal", err)
	}
	if _, err := os.Lstat(filepath.Join(prefix, "mod")); err == nil {
		t.Errorf("PREFIX/mod created although Install refused")
	}
}

func TestConcurrentInstalls(t *testing.T) {
	db := newSumDB(t)
	prefix := t.TempDir()
	opt := options(t, prefix)
	srcs := []*memSource{firstBundle(t, db)}
	for _, m := range []string{"example.com/x", "example.com/y", "example.com/z"} {
		b := newBuilder(m)
		b.module(t, m, "v1.0.0", ".mod", ".zip")
		srcs = append(srcs, b.source())
	}
	var wg sync.WaitGroup
	errs := make([]error, len(srcs))
	for i, src := range srcs {
		wg.Go(func() { _, errs[i] = Install(context.Background(), src, opt) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"example.com/x", "example.com/y", "example.com/z", "example.com/a"} {
		if _, err := os.Stat(filepath.Join(prefix, "mod", m, "@v/list")); err != nil {
			t.Error(err)
		}
	}
	if st, _ := ReadState(prefix); len(st.Bundles) != 4 {
		t.Errorf("state has %d bundles, want 4", len(st.Bundles))
	}
}

func TestWarnsAboutWeakenedVerification(t *testing.T) {
	prefix := t.TempDir()
	opt := options(t, prefix)
	if _, err := goenv.Set(opt.GoEnvFile, map[string]string{
		"GOSUMDB": "off", "GONOSUMDB": "corp.example", "GOINSECURE": "*", "GOFLAGS": "-mod=mod -insecure",
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := Install(context.Background(), firstBundle(t, newSumDB(t)), opt)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.Warnings, "\n")
	for _, k := range []string{"GOSUMDB=off", "GONOSUMDB", "GOINSECURE", "-insecure"} {
		if !strings.Contains(all, k) {
			t.Errorf("no warning about %s in %q", k, all)
		}
	}
	env, _ := goenv.Read(opt.GoEnvFile)
	if env["GOSUMDB"] != "off" || env["GONOSUMDB"] != "corp.example" {
		t.Errorf("Install changed unrelated settings: %v", env)
	}
}

// TestBundleWithNothingNewSharesFiles: a bundle whose files the store has
// makes a new generation (it holds the new state) whose store files are the
// previous generation's, linked, not copied.
func TestBundleWithNothingNewSharesFiles(t *testing.T) {
	db := newSumDB(t)
	prefix := t.TempDir()
	opt := options(t, prefix)
	if _, err := Install(context.Background(), firstBundle(t, db), opt); err != nil {
		t.Fatal(err)
	}
	b := newBuilder("subset")
	b.module(t, "example.com/a", "v1.0.0", ".info", ".mod", ".zip")
	rep, err := Install(context.Background(), b.source(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AlreadyInstalled || rep.Generation != "000002" || rep.Added != 0 || rep.Present != 3 {
		t.Errorf("report = %+v", rep)
	}
	const f = "example.com/a/@v/v1.0.0.zip"
	fi1, err1 := os.Stat(filepath.Join(prefix, ".ferry/gen/000001/mod", f))
	fi2, err2 := os.Stat(filepath.Join(prefix, ".ferry/gen/000002/mod", f))
	if err1 != nil || err2 != nil || !os.SameFile(fi1, fi2) {
		t.Errorf("%s is not shared between generations: %v %v", f, err1, err2)
	}
	st, _ := ReadState(prefix)
	if len(st.Bundles) != 2 || st.Bundles[1].Generation != "000002" || st.Bundles[1].ToolchainDir != "go1.26.8.linux-amd64" {
		t.Errorf("state = %+v", st)
	}
}

func TestReplacesCorruptStoreFile(t *testing.T) {
	db := newSumDB(t)
	prefix := t.TempDir()
	opt := options(t, prefix)
	src := firstBundle(t, db)
	if _, err := Install(context.Background(), src, opt); err != nil {
		t.Fatal(err)
	}
	// Corrupt a file of the current generation (same size), then install
	// a bundle carrying it: the new generation gets the good bytes and the
	// old generation's file (a hard link in the new one) is not modified.
	p := filepath.Join(prefix, "mod/example.com/a/@v/v1.0.0.mod")
	good := readFile(t, p)
	bad := strings.Repeat("x", len(good))
	if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBuilder("fix")
	b.module(t, "example.com/a", "v1.0.0", ".mod")
	rep, err := Install(context.Background(), b.source(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 1 || len(rep.Warnings) == 0 || !strings.Contains(strings.Join(rep.Warnings, "\n"), "v1.0.0.mod") {
		t.Errorf("report = %+v", rep)
	}
	if got := readFile(t, p); got != good {
		t.Errorf("store file = %q, want %q", got, good)
	}
	if got := readFile(t, filepath.Join(prefix, ".ferry/gen/000001/mod/example.com/a/@v/v1.0.0.mod")); got != bad {
		t.Errorf("previous generation modified in place")
	}
}
