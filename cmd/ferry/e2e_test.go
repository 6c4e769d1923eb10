package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-dev/ferry/internal/modtest"
)

// ferryBin builds the ferry binary once per test process.
var buildOnce = struct {
	sync.Once
	path string
	err  error
}{}

func ferryBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "ferry")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("building ferry: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// run runs a command with env in dir and returns its combined output.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func mustRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// offline runs a command in a new network namespace with no network at all.
func offline(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	return run(t, dir, env, "unshare", append([]string{"-n", "--", name}, args...)...)
}

func needNetNS(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("unshare", "-n", "true").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but cannot create a network namespace (unshare -n): %v %s", err, out)
		}
		t.Skipf("no network namespaces here (need root for unshare -n): %v", err)
	}
}

// fixture is a module proxy + checksum DB with an untidy little world, and a
// project that uses it.
type fixture struct {
	srv     *modtest.Server
	project string
	env     []string // the connected user's environment
	goVer   string   // local toolchain, e.g. go1.26.8
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	local := modtest.LocalToolchain(t)
	goVer := strings.TrimPrefix(local.Version, "v0.0.1-")
	goVer = goVer[:strings.LastIndexByte(goVer, '.')]
	mods := []modtest.Module{
		local,
		modtest.FakeToolchain(goVer, "windows", "amd64"),
		modtest.FakeToolchain("go1.99.1", "linux", "amd64"),
		modtest.FakeToolchain("go1.99.1", "windows", "amd64"),
		{Path: "example.com/lib", Version: "v1.0.0", Files: map[string]string{
			"go.mod": "module example.com/lib\n\ngo 1.21\n",
			"lib.go": "package lib\n\nfunc Hello() string { return \"hello v1.0.0\" }\n",
		}},
		{Path: "example.com/lib", Version: "v1.1.0", Files: map[string]string{
			"go.mod":         "module example.com/lib\n\ngo 1.21\n\nrequire (\n\texample.com/old v1.0.0\n\texample.com/refused v1.0.0\n)\n",
			"lib.go":         "package lib\n\nfunc Hello() string { return \"hello v1.1.0\" }\n",
			"extra/extra.go": "package extra\n\nimport _ \"example.com/refused\"\n",
		}},
		{Path: "example.com/old", Version: "v1.0.0", Files: map[string]string{
			"go.mod": "module example.com/old\n\ngo 1.21\n", "old.go": "package old\n",
		}},
		{Path: "example.com/old", Version: "v1.2.0", Files: map[string]string{
			"go.mod": "module example.com/old\n\ngo 1.21\n", "old.go": "package old\n\nconst V = 2\n",
		}},
		{Path: "example.com/refused", Version: "v1.0.0", Files: map[string]string{
			"go.mod": "module example.com/refused\n\ngo 1.21\n", "r.go": "package refused\n",
		}},
		{Path: "example.com/winonly", Version: "v1.0.0", Files: map[string]string{
			"go.mod": "module example.com/winonly\n\ngo 1.21\n", "w.go": "package winonly\n\nconst OS = \"windows\"\n",
		}},
		{Path: "example.com/testdep", Version: "v1.0.0", Files: map[string]string{
			"go.mod": "module example.com/testdep\n\ngo 1.21\n", "t.go": "package testdep\n\nfunc OK() bool { return true }\n",
		}},
		{Path: "example.com/tool", Version: "v1.0.0", Files: map[string]string{
			"go.mod":            "module example.com/tool\n\ngo 1.21\n\nrequire example.com/lib v1.0.0\n",
			"go.sum":            "",
			"cmd/hello/main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/lib\"\n)\n\nfunc main() { fmt.Println(\"tool says\", lib.Hello()) }\n",
		}},
	}
	srv := modtest.NewServer(t, mods...)
	// The mirror refuses the zip of a module that is in the graph only
	// through a go.mod requirement.
	srv.Refuse("/example.com/refused/@v/v1.0.0.zip", 410)

	proj := filepath.Join(t.TempDir(), "app")
	files := map[string]string{
		"go.mod":          "module example.com/app\n\ngo 1.22\n\nrequire (\n\texample.com/lib v1.1.0\n\texample.com/old v1.2.0\n\texample.com/testdep v1.0.0\n\texample.com/winonly v1.0.0\n)\n",
		"main.go":         "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/lib\"\n\t_ \"example.com/old\"\n)\n\nfunc main() { fmt.Println(lib.Hello()) }\n",
		"main_windows.go": "package main\n\nimport _ \"example.com/winonly\"\n",
		"main_test.go":    "package main\n\nimport (\n\t\"testing\"\n\n\t\"example.com/testdep\"\n)\n\nfunc TestOK(t *testing.T) {\n\tif !testdep.OK() {\n\t\tt.Fatal()\n\t}\n}\n",
	}
	for name, data := range files {
		p := filepath.Join(proj, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := modtest.GoEnv(t, srv)
	// The connected developer's go.sum, made the normal way.
	mustRun(t, proj, env, "go", "mod", "download", "example.com/lib", "example.com/old", "example.com/testdep", "example.com/winonly")
	mustRun(t, proj, append(env, "GOFLAGS=-mod=mod"), "go", "list", "-deps", "-test", "./...")
	mustRun(t, proj, append(env, "GOFLAGS=-mod=mod", "GOOS=windows"), "go", "list", "-deps", "-test", "./...")
	return &fixture{srv: srv, project: proj, env: env, goVer: goVer}
}

// TestPackInstallOffline is the main job, end to end, through the ferry
// binary: pack on the connected side, verify and install, then the real go
// command in a network namespace with no network.
func TestPackInstallOffline(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	needNetNS(t)
	ferry := ferryBin(t)
	fx := newFixture(t)
	work := t.TempDir()
	bundlePath := filepath.Join(work, "app.ferry")

	sumBefore, _ := os.ReadFile(filepath.Join(fx.project, "go.sum"))
	out := mustRun(t, fx.project, fx.env, ferry, "pack", ".", "-o", bundlePath,
		"--platform", "linux/amd64,windows/amd64",
		"--toolchain", fx.goVer+",go1.99.1",
		"--tool", "example.com/tool/cmd/hello@v1.0.0",
		"--cache", filepath.Join(work, "cache"))
	t.Logf("pack:\n%s", out)
	if !strings.Contains(out, "example.com/refused@v1.0.0") {
		t.Errorf("pack did not warn about the refused zip:\n%s", out)
	}
	if sumAfter, _ := os.ReadFile(filepath.Join(fx.project, "go.sum")); !bytes.Equal(sumBefore, sumAfter) {
		t.Errorf("pack changed the project's go.sum")
	}

	// The far side: a fresh HOME, no network, GOSUMDB as the user has it.
	home := t.TempDir()
	goenvFile := filepath.Join(home, ".config", "go", "env")
	prefix := filepath.Join(home, "ferry")
	farEnv := []string{
		"PATH=" + filepath.Join(prefix, "go", "bin") + ":/usr/bin:/bin",
		"HOME=" + home,
		"GOENV=" + goenvFile,
		"GOSUMDB=" + fx.srv.GOSUMDB, // the organisation's checksum DB, verified offline
		"GOFLAGS=-modcacherw",
		"CGO_ENABLED=0",
	}
	if !strings.Contains(out, "created your signing key") {
		t.Errorf("pack did not say it created the signing key:\n%s", out)
	}
	// ferry runs on a bare host: no go command on PATH.
	ferryEnv := append(farEnv[:len(farEnv):len(farEnv)], "PATH=/usr/bin:/bin")
	if _, err := exec.LookPath("/usr/bin/go"); err == nil {
		t.Fatal("/usr/bin/go exists: this host is not bare")
	}
	// The bundle is signed (by default) by a key not trusted here, and
	// there is no terminal: refused, naming the fingerprint and the fix,
	// before any hashing.
	out, err := offline(t, work, ferryEnv, ferry, "install", bundlePath, "--prefix", prefix)
	if err == nil || !strings.Contains(out, "SHA256:") || !strings.Contains(out, "ferry key trust '") {
		t.Fatalf("install of a bundle signed by an untrusted key: %v\n%s", err, out)
	}
	if _, err := os.Stat(prefix); err == nil {
		t.Errorf("the refused install left %s", prefix)
	}
	trustKey := out[strings.Index(out, "ferry key trust '")+len("ferry key trust '"):]
	trustKey = trustKey[:strings.IndexByte(trustKey, '\'')]
	out, err = offline(t, work, ferryEnv, ferry, "key", "trust", trustKey)
	if err != nil {
		t.Fatalf("key trust: %v\n%s", err, out)
	}
	out, err = offline(t, work, ferryEnv, ferry, "verify", bundlePath)
	if err != nil || !strings.Contains(out, "signed by") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	out, err = offline(t, work, ferryEnv, ferry, "install", bundlePath, "--prefix", prefix)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	t.Logf("install:\n%s", out)
	out, err = offline(t, work, ferryEnv, ferry, "install", bundlePath, "--prefix", prefix)
	if err != nil || !strings.Contains(out, "already installed") {
		t.Fatalf("second install: %v\n%s", err, out)
	}

	// Another bare host, interactive: through a pseudo-terminal (script)
	// the fingerprint is shown and the answer "y" trusts the key.
	home2 := t.TempDir()
	cmd := exec.Command("unshare", "-n", "--", "script", "-qec",
		ferry+" install "+bundlePath+" --prefix "+filepath.Join(home2, "ferry")+" --goenv -", "/dev/null")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home2, "TERM=dumb"}
	cmd.Stdin = strings.NewReader("y\n")
	pty, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(pty), "key fingerprint SHA256:") || !strings.Contains(string(pty), "installed") {
		t.Fatalf("interactive install through a pty: %v\n%s", err, pty)
	}
	if keys, err := os.ReadFile(filepath.Join(home2, ".config", "ferry", "trusted_keys")); err != nil || !strings.Contains(string(keys), trustKey) {
		t.Errorf("the key accepted at the prompt is not in trusted_keys: %v %q", err, keys)
	}

	// A copy of the project as the offline developer has it.
	proj := filepath.Join(home, "app")
	mustRun(t, "", nil, "cp", "-r", fx.project, proj)
	goOff := func(extra []string, args ...string) string {
		t.Helper()
		out, err := offline(t, proj, append(append([]string(nil), farEnv...), extra...), "go", args...)
		if err != nil {
			t.Fatalf("offline go %s %v: %v\n%s", strings.Join(args, " "), extra, err, out)
		}
		return out
	}
	if got := strings.TrimSpace(goOff(nil, "env", "GOSUMDB")); got != fx.srv.GOSUMDB {
		t.Errorf("go env GOSUMDB = %q, want it unchanged (%q)", got, fx.srv.GOSUMDB)
	}
	if got := goOff(nil, "version"); !strings.Contains(got, fx.goVer) {
		t.Errorf("go version = %q, want %s from PREFIX/go", got, fx.goVer)
	}
	goOff(nil, "build", "./...")
	goOff([]string{"GOOS=windows"}, "build", "./...")
	goOff(nil, "list", "-deps", "-test", "./...")
	goOff([]string{"GOOS=windows"}, "list", "-deps", "-test", "./...")
	goOff(nil, "test", "./...")
	goOff(nil, "mod", "verify")
	goOff(nil, "install", "example.com/tool/cmd/hello@v1.0.0")
	if got := mustRun(t, proj, farEnv, filepath.Join(home, "go", "bin", "hello")); !strings.Contains(got, "tool says hello v1.0.0") {
		t.Errorf("installed tool printed %q", got)
	}
	if got := goOff([]string{"GOTOOLCHAIN=go1.99.1"}, "version"); !strings.Contains(got, "go1.99.1") {
		t.Errorf("GOTOOLCHAIN=go1.99.1 go version = %q", got)
	}
	// tidy needs @v/list and the checksum DB for modules not in go.sum yet.
	os.Remove(filepath.Join(proj, "go.sum"))
	goOff(nil, "mod", "tidy")
	goOff(nil, "build", "./...")
}

// goBinary is the connected side's go command.
func (fx *fixture) goBinary(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}
