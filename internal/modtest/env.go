package modtest

import (
	"os"
	"path/filepath"
	"testing"
)

// GoEnv returns a clean environment for running the real go command against s:
// fresh HOME, GOPATH, GOMODCACHE and an empty GOENV file under t.TempDir(),
// the shared build cache of SharedGoCache, PATH (and TMPDIR, if set) from the current environment,
// GOPROXY=s.URL, GOSUMDB=s.GOSUMDB, GOTOOLCHAIN=local, GOFLAGS=-modcacherw,
// CGO_ENABLED=0 and empty GONOSUMDB, GOPRIVATE, GONOPROXY and GOINSECURE.
// If s is nil, GOPROXY and GOSUMDB are left out.
func GoEnv(t testing.TB, s *Server) []string {
	t.Helper()
	root := t.TempDir()
	dir := func(name string) string {
		d := filepath.Join(root, name)
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatalf("modtest: %v", err)
		}
		return d
	}
	goenv := filepath.Join(root, "goenv")
	if err := os.WriteFile(goenv, nil, 0o666); err != nil {
		t.Fatalf("modtest: %v", err)
	}
	gopath := dir("gopath")
	home := dir("home")
	// Telemetry off: otherwise the go command may start a background
	// uploader that still writes under HOME while the test's TempDir is
	// removed ("directory not empty" at cleanup).
	tdir := filepath.Join(home, ".config", "go", "telemetry")
	if err := os.MkdirAll(tdir, 0o777); err != nil {
		t.Fatalf("modtest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tdir, "mode"), []byte("off"), 0o666); err != nil {
		t.Fatalf("modtest: %v", err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GOPATH=" + gopath,
		"GOMODCACHE=" + filepath.Join(gopath, "pkg", "mod"),
		"GOCACHE=" + SharedGoCache(t),
		"GOENV=" + goenv,
		"GOTOOLCHAIN=local",
		"GOFLAGS=-modcacherw",
		"CGO_ENABLED=0",
		"GONOSUMDB=",
		"GOPRIVATE=",
		"GONOPROXY=",
		"GOINSECURE=",
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	if s != nil {
		env = append(env, "GOPROXY="+s.URL, "GOSUMDB="+s.GOSUMDB)
	}
	return env
}

// SharedGoCache returns one go build cache for every test on this machine
// (under the system temporary directory), so that tests do not compile the
// standard library again for each platform. The build cache holds compiled
// packages only, keyed by their inputs, and is safe for concurrent use by
// several go commands; it has no bearing on where modules come from.
func SharedGoCache(t testing.TB) string {
	t.Helper()
	d := filepath.Join(os.TempDir(), "ferry-testcache", "gocache")
	if err := os.MkdirAll(d, 0o777); err != nil {
		t.Fatalf("modtest: %v", err)
	}
	return d
}
