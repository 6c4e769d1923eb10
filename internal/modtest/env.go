package modtest

import (
	"os"
	"path/filepath"
	"testing"
)

// GoEnv returns a clean environment for running the real go command against s:
// fresh HOME, GOPATH, GOMODCACHE, GOCACHE and an empty GOENV file under
// t.TempDir(), PATH (and TMPDIR, if set) from the current environment,
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
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir("home"),
		"GOPATH=" + gopath,
		"GOMODCACHE=" + filepath.Join(gopath, "pkg", "mod"),
		"GOCACHE=" + dir("gocache"),
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
