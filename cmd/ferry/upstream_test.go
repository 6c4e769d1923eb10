package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// upstreamEnv is a clean go environment that uses the upstream proxy and
// checksum database of this machine's go configuration.
func upstreamEnv(t *testing.T) []string {
	t.Helper()
	get := func(k string) string {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		return strings.TrimSpace(string(out))
	}
	proxy, sumdb := get("GOPROXY"), get("GOSUMDB")
	if proxy == "off" || sumdb == "off" {
		t.Skip("this machine's go has GOPROXY or GOSUMDB off")
	}
	root := t.TempDir()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(root, "home"),
		"GOPATH=" + filepath.Join(root, "gopath"),
		"GOMODCACHE=" + filepath.Join(root, "gopath", "pkg", "mod"),
		"GOCACHE=" + filepath.Join(root, "gocache"),
		"GOENV=" + filepath.Join(root, "goenv"),
		"GOPROXY=" + proxy,
		"GOSUMDB=" + sumdb,
		"GOFLAGS=-modcacherw",
		"GOTOOLCHAIN=local",
		"CGO_ENABLED=0",
	}
}

// withRetry runs f up to 4 times with a growing pause: the upstream proxy
// may be slow or flaky, but a wrong answer still fails.
func withRetry(t *testing.T, what string, f func() (string, error)) string {
	t.Helper()
	var out string
	var err error
	for i := 0; i < 4; i++ {
		if out, err = f(); err == nil {
			return out
		}
		t.Logf("%s: attempt %d: %v\n%s", what, i+1, err, out)
		time.Sleep(time.Duration(i+1) * 3 * time.Second)
	}
	if os.Getenv("CI") != "true" && strings.Contains(out, "dial tcp") {
		t.Skipf("%s: upstream unreachable: %s", what, out)
	}
	t.Fatalf("%s: %v\n%s", what, err, out)
	return ""
}

// TestUpstreamProjectOffline packs a small real project from the upstream
// module proxy and checksum database of `go env`, then builds it offline
// with GOSUMDB left at its default.
func TestUpstreamProjectOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the upstream module proxy")
	}
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	needNetNS(t)
	ferry := ferryBin(t)
	env := upstreamEnv(t)
	proj := filepath.Join(t.TempDir(), "uuidgen")
	os.MkdirAll(proj, 0o755)
	os.WriteFile(filepath.Join(proj, "go.mod"), []byte("module example.com/uuidgen\n\ngo 1.22\n\nrequire (\n\tgithub.com/google/uuid v1.6.0\n\tgolang.org/x/mod v0.20.0\n)\n"), 0o644)
	os.WriteFile(filepath.Join(proj, "main.go"), []byte(`package main

import (
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/mod/semver"
)

func main() { fmt.Println(uuid.NewSHA1(uuid.NameSpaceURL, []byte("ferry")), semver.Major("v1.2.3")) }
`), 0o644)
	withRetry(t, "go mod tidy", func() (string, error) { return run(t, proj, env, "go", "mod", "tidy") })

	goVer := strings.TrimSpace(mustRun(t, proj, env, "go", "env", "GOVERSION"))
	defaultSumDB := strings.TrimSpace(mustRun(t, proj, append(env[:len(env):len(env)], "GOSUMDB="), "go", "env", "GOSUMDB"))
	bundlePath := filepath.Join(t.TempDir(), "uuidgen.ferry")
	withRetry(t, "ferry pack", func() (string, error) {
		return run(t, proj, env, ferry, "pack", "--no-sign", ".", "-o", bundlePath, "--toolchain", goVer, "--cache", filepath.Join(t.TempDir(), "cache"))
	})

	home := t.TempDir()
	prefix := filepath.Join(home, "ferry")
	far := []string{
		"PATH=" + filepath.Join(prefix, "go", "bin") + ":/usr/bin:/bin",
		"HOME=" + home,
		"GOENV=" + filepath.Join(home, "goenv"),
		"CGO_ENABLED=0",
	}
	goDir := filepath.Dir(strings.TrimSpace(mustRun(t, proj, env, "go", "env", "GOROOT"))) // .../go
	ferryEnv := append(far[:len(far):len(far)], "PATH=/usr/bin:/bin:"+filepath.Join(goDir, "go", "bin"))
	if out, err := offline(t, home, ferryEnv, ferry, "install", bundlePath, "--prefix", prefix); err != nil {
		t.Fatalf("offline install: %v\n%s", err, out)
	}
	mustRun(t, "", nil, "cp", "-r", proj, filepath.Join(home, "uuidgen"))
	for _, args := range [][]string{
		{"env", "GOSUMDB"},
		{"build", "./..."},
		{"mod", "verify"},
		{"run", "."},
	} {
		out, err := offline(t, filepath.Join(home, "uuidgen"), far, "go", args...)
		if err != nil {
			t.Fatalf("offline go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "env" && strings.TrimSpace(out) != defaultSumDB {
			t.Fatalf("GOSUMDB is %q offline, want the default %q", out, defaultSumDB)
		}
	}
	// With go.sum gone, the go command must prove every module against the
	// checksum database, offline, from ferry's snapshot.
	os.Remove(filepath.Join(home, "uuidgen", "go.sum"))
	if out, err := offline(t, filepath.Join(home, "uuidgen"), far, "go", "mod", "tidy"); err != nil {
		t.Fatalf("offline go mod tidy without go.sum: %v\n%s", err, out)
	}
}
