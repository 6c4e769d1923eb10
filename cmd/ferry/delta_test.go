package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/modtest"
)

// writeProject writes a small project requiring example.com/lib at libVer
// (and, when extra, example.com/extra) and makes its go.sum online.
func writeProject(t *testing.T, dir string, env []string, libVer string, extra bool) {
	t.Helper()
	req := "require example.com/lib " + libVer + "\n"
	imp := "\t\"example.com/lib\"\n"
	if extra {
		req = "require (\n\texample.com/lib " + libVer + "\n\texample.com/extra v1.0.0\n)\n"
		imp += "\t_ \"example.com/extra\"\n"
	}
	files := map[string]string{
		"go.mod":  "module example.com/app\n\ngo 1.22\n\n" + req,
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n" + imp + ")\n\nfunc main() { fmt.Println(lib.Hello()) }\n",
	}
	for name, data := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, dir, append(env, "GOFLAGS=-mod=mod"), "go", "list", "-deps", "./...")
}

// TestDeltaInstallRollback: a full bundle of a project's first version, a
// delta for its second; refusals without the base; base + delta builds the
// second version offline with the checksum database on, a client that
// verified the base's modules keeps verifying; rollback brings back the
// first version and the second no longer resolves.
func TestDeltaInstallRollback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	needNetNS(t)
	ferry := ferryBin(t)
	local := modtest.LocalToolchain(t)
	goVer := strings.TrimPrefix(local.Version, "v0.0.1-")
	goVer = goVer[:strings.LastIndexByte(goVer, '.')]
	lib := func(v string) modtest.Module {
		return modtest.Module{Path: "example.com/lib", Version: v, Files: map[string]string{
			"go.mod": "module example.com/lib\n\ngo 1.21\n",
			"lib.go": "package lib\n\nfunc Hello() string { return \"hello " + v + "\" }\n",
		}}
	}
	srv := modtest.NewServer(t, local, lib("v1.0.0"))
	env := modtest.GoEnv(t, srv)
	work := t.TempDir()
	v1, v2 := filepath.Join(work, "v1"), filepath.Join(work, "v2")
	writeProject(t, v1, env, "v1.0.0", false)
	base := filepath.Join(work, "app-v1.ferry")
	cache := filepath.Join(work, "cache")
	mustRun(t, v1, env, ferry, "pack", "--no-sign", ".", "-o", base, "--name", "app", "--bundle-version", "v1.0.0", "--cache", cache, "--toolchain", goVer)

	// Upstream moves on: new versions enter the checksum database.
	srv.Add(lib("v1.2.0"), modtest.Module{Path: "example.com/extra", Version: "v1.0.0", Files: map[string]string{
		"go.mod": "module example.com/extra\n\ngo 1.21\n", "x.go": "package extra\n",
	}})
	writeProject(t, v2, env, "v1.2.0", true)
	delta := filepath.Join(work, "app-v2.delta.ferry")
	full := filepath.Join(work, "app-v2.ferry")
	out := mustRun(t, v2, env, ferry, "pack", "--no-sign", ".", "-o", delta, "--base", base, "--name", "app", "--bundle-version", "v2.0.0", "--cache", cache, "--toolchain", goVer)
	t.Logf("pack delta:\n%s", out)
	mustRun(t, v2, env, ferry, "pack", "--no-sign", ".", "-o", full, "--name", "app", "--bundle-version", "v2.0.0", "--cache", cache, "--toolchain", goVer)
	fiDelta, _ := os.Stat(delta)
	fiFull, _ := os.Stat(full)
	t.Logf("delta %d bytes, full %d bytes", fiDelta.Size(), fiFull.Size())
	if fiDelta.Size()*10 > fiFull.Size() {
		t.Errorf("delta is %d bytes, more than a tenth of the full bundle (%d): it carries what the base has", fiDelta.Size(), fiFull.Size())
	}
	out = mustRun(t, work, env, ferry, "diff", base, delta)
	if !strings.Contains(out, "~ example.com/lib v1.0.0 -> v1.2.0") || !strings.Contains(out, "+ example.com/extra v1.0.0") {
		t.Errorf("diff:\n%s", out)
	}

	t.Run("store", func(t *testing.T) { deltaThroughStore(t, ferry, srv, work, base, delta, v2) })

	// The far side.
	home := t.TempDir()
	prefix := filepath.Join(home, "ferry")
	farEnv := []string{
		"PATH=" + filepath.Join(prefix, "go", "bin") + ":/usr/bin:/bin",
		"HOME=" + home,
		"GOENV=" + filepath.Join(home, ".config", "go", "env"),
		"GOSUMDB=" + srv.GOSUMDB,
		"GOFLAGS=-modcacherw",
		"CGO_ENABLED=0",
	}
	goDir := filepath.Dir(mustLookPath(t, "go"))
	ferryEnv := append(farEnv[:len(farEnv):len(farEnv)], "PATH=/usr/bin:/bin:"+goDir)

	// A delta without its base: refused, naming the base; nothing changes.
	out, err := offline(t, work, ferryEnv, ferry, "verify", delta)
	if err == nil || !strings.Contains(out, "is a delta of app v1.0.0 (sha256:") {
		t.Fatalf("verify delta alone: %v\n%s", err, out)
	}
	out, err = offline(t, work, ferryEnv, ferry, "install", delta, "--prefix", prefix)
	if err == nil || !strings.Contains(out, "is a delta of app v1.0.0") || !strings.Contains(out, "not installed in "+prefix) {
		t.Fatalf("install delta alone: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(prefix); len(ents) != 0 {
		t.Errorf("refused install left %d entries in the prefix", len(ents))
	}
	mustRun(t, work, ferryEnv, ferry, "verify", delta, "--base", base)

	// Base first; the offline client verifies v1's modules, keeping the
	// base's tree head in its module cache.
	if out, err := offline(t, work, ferryEnv, ferry, "install", base, "--prefix", prefix); err != nil {
		t.Fatalf("install base: %v\n%s", err, out)
	}
	p1, p2 := filepath.Join(home, "v1"), filepath.Join(home, "v2")
	mustRun(t, "", nil, "cp", "-r", v1, p1)
	mustRun(t, "", nil, "cp", "-r", v2, p2)
	goOff := func(dir string, args ...string) (string, error) {
		return offline(t, dir, farEnv, "go", args...)
	}
	os.Remove(filepath.Join(p1, "go.sum"))
	if out, err := goOff(p1, "mod", "tidy"); err != nil {
		t.Fatalf("v1 tidy against the base: %v\n%s", err, out)
	}
	if out, err := goOff(p1, "run", "."); err != nil || !strings.Contains(out, "hello v1.0.0") {
		t.Fatalf("v1 run: %v\n%s", err, out)
	}

	// Then the delta, read through the installed base.
	out, err = offline(t, work, ferryEnv, ferry, "install", delta, "--prefix", prefix)
	if err != nil {
		t.Fatalf("install delta: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(p2, "go.sum"))
	if out, err := goOff(p2, "mod", "tidy"); err != nil {
		t.Fatalf("v2 tidy (the client holds the base's tree head): %v\n%s", err, out)
	}
	if out, err := goOff(p2, "run", "."); err != nil || !strings.Contains(out, "hello v1.2.0") {
		t.Fatalf("v2 run: %v\n%s", err, out)
	}
	out = mustRun(t, work, ferryEnv, ferry, "state", "--prefix", prefix)
	if !strings.Contains(out, "v1.0.0") || !strings.Contains(out, "v2.0.0") {
		t.Errorf("state:\n%s", out)
	}
	// The far side's manifest: a delta packed against it names the same base.
	exported := filepath.Join(work, "far.json")
	mustRun(t, work, ferryEnv, ferry, "state", "export", "app@v1.0.0", "--prefix", prefix, "-o", exported)
	delta2 := filepath.Join(work, "app-v2.delta2.ferry")
	mustRun(t, v2, env, ferry, "pack", "--no-sign", ".", "-o", delta2, "--base-manifest", exported, "--name", "app", "--bundle-version", "v2.0.0", "--cache", cache, "--toolchain", goVer)
	mustRun(t, work, ferryEnv, ferry, "verify", delta2, "--base", base)

	// Rollback: v1 builds again, v2 no longer resolves.
	out = mustRun(t, work, ferryEnv, ferry, "rollback", "--prefix", prefix)
	if !strings.Contains(out, "rolled back") || !strings.Contains(out, "app v2.0.0") {
		t.Errorf("rollback:\n%s", out)
	}
	if out, err := goOff(p1, "build", "./..."); err != nil {
		t.Fatalf("v1 after rollback: %v\n%s", err, out)
	}
	// A module cache that never saw v2's modules.
	clean := filepath.Join(home, "v2clean")
	mustRun(t, "", nil, "cp", "-r", v2, clean)
	if out, err := offline(t, clean, append(farEnv, "GOMODCACHE="+filepath.Join(home, "fresh-modcache")), "go", "build", "./..."); err == nil {
		t.Errorf("v2 still builds after rollback:\n%s", out)
	}
	// Installing the delta again brings v2 back.
	if out, err := offline(t, work, ferryEnv, ferry, "install", delta, "--prefix", prefix); err != nil {
		t.Fatalf("install delta again: %v\n%s", err, out)
	}
	if out, err := offline(t, clean, append(farEnv, "GOMODCACHE="+filepath.Join(home, "fresh-modcache2")), "go", "build", "./..."); err != nil {
		t.Fatalf("v2 after reinstalling the delta: %v\n%s", err, out)
	}

	// Base + delta gives exactly the module store that base + full gives.
	prefix2 := filepath.Join(t.TempDir(), "ferry")
	for _, b := range []string{base, full} {
		if out, err := offline(t, work, ferryEnv, ferry, "install", b, "--prefix", prefix2, "--goenv", "-"); err != nil {
			t.Fatalf("install %s: %v\n%s", b, err, out)
		}
	}
	if a, b := treeSums(t, filepath.Join(prefix, "mod")), treeSums(t, filepath.Join(prefix2, "mod")); a != b {
		t.Errorf("base + delta and base + full give different stores:\n--- base + delta\n%s\n--- base + full\n%s", a, b)
	}
}

// treeSums lists every file under dir (following the top symlink) with its
// sha256, sorted.
func treeSums(t *testing.T, dir string) string {
	t.Helper()
	out := mustRun(t, dir+"/", nil, "sh", "-c", "find . -type f | LC_ALL=C sort | xargs -r sha256sum")
	if !strings.Contains(out, ".zip") || !strings.Contains(out, "/lookup/") {
		t.Fatalf("store %s has no zips or lookups:\n%s", dir, out)
	}
	return out
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deltaThroughStore: a store refuses the delta until the base is imported;
// with both imported and then the base pruned, `ferry serve` still serves
// everything the delta needs and the go command builds v2 through it
// offline with the checksum database on.
func deltaThroughStore(t *testing.T, ferry string, srv *modtest.Server, work, base, delta, v2 string) {
	needNetNS(t)
	store := filepath.Join(t.TempDir(), "store")
	client := modtest.GoEnv(t, nil)
	goDir := filepath.Dir(mustLookPath(t, "go"))
	client = append(client, "GOSUMDB="+srv.GOSUMDB, "PATH=/usr/sbin:/usr/bin:/bin:"+goDir,
		"SERVE_LOG="+filepath.Join(work, "serve-delta.log"))
	out, err := offline(t, work, client, ferry, "import", "-q", delta, "--store", store)
	if err == nil || !strings.Contains(out, "is a delta of app v1.0.0") || !strings.Contains(out, "not in store "+store) {
		t.Fatalf("import of a delta without its base: %v\n%s", err, out)
	}
	for _, b := range []string{base, delta} {
		if out, err := offline(t, work, client, ferry, "import", "-q", b, "--store", store); err != nil {
			t.Fatalf("import %s: %v\n%s", b, err, out)
		}
	}
	out = mustRun(t, work, client, ferry, "state", "--store", store)
	if !strings.Contains(out, "v2.0.0") || !strings.Contains(out, "app v1.0.0 (sha256:") {
		t.Errorf("state --store:\n%s", out)
	}
	out = mustRun(t, work, client, ferry, "prune", "app@v1.0.0", "--store", store)
	if !strings.Contains(out, "kept for other bundles") {
		t.Errorf("prune:\n%s", out)
	}
	proj := filepath.Join(t.TempDir(), "v2")
	mustRun(t, "", nil, "cp", "-r", v2, proj)
	os.Remove(filepath.Join(proj, "go.sum"))
	const addr = "127.0.0.1:8080"
	script := serveScript(ferry, store, addr, `
echo "== go mod tidy, go run through the pruned store"; go mod tidy; go run . | grep -q "hello v1.2.0"
`)
	if out, err := run(t, proj, append(client, "GOPROXY=http://"+addr), "unshare", "-n", "--", "bash", "-c", script); err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "serve-delta.log"))
		t.Fatalf("offline through ferry serve: %v\n%s\nserver log:\n%s", err, out, log)
	}
}
