package goenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestReadFollowsGoCommandRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	data := "# comment=ignored\n" +
		"GOPROXY=first\n" +
		"lower=ignored\n" +
		"\n" +
		"no equals sign\n" +
		"GOFLAGS=-mod=mod -x\n" +
		"GOPROXY=second\n" +
		"EMPTY=\n" +
		"LAST= spaces kept "
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"GOPROXY": "second",
		"GOFLAGS": "-mod=mod -x",
		"EMPTY":   "",
		"LAST":    " spaces kept ",
	}
	if len(m) != len(want) {
		t.Errorf("Read = %q, want %q", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("Read[%s] = %q, want %q", k, m[k], v)
		}
	}
}

func TestReadMissing(t *testing.T) {
	m, err := Read(filepath.Join(t.TempDir(), "nope", "env"))
	if err != nil || len(m) != 0 {
		t.Fatalf("Read(missing) = %v, %v; want empty, nil", m, err)
	}
}

func TestSetKeepsOtherLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	data := "# my settings\n" +
		"GOPROXY=old1\n" +
		"GOPRIVATE=corp.example\n" +
		"\n" +
		"weird line\n" +
		"GOPROXY=old2\n" +
		"GOFLAGS=-mod=mod"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := Set(path, map[string]string{
		"GOPROXY":  "file:///x/mod",
		"GOFLAGS":  "-mod=mod", // unchanged
		"GOTOOLCH": "local",    // new
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 2 || changed["GOPROXY"] != [2]string{"old2", "file:///x/mod"} || changed["GOTOOLCH"] != [2]string{"", "local"} {
		t.Errorf("Set changed = %q", changed)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# my settings\n" +
		"GOPRIVATE=corp.example\n" +
		"\n" +
		"weird line\n" +
		"GOPROXY=file:///x/mod\n" +
		"GOFLAGS=-mod=mod\n" +
		"GOTOOLCH=local\n"
	if string(got) != want {
		t.Errorf("file after Set:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after Set = %v, %v; want 0600", fi.Mode(), err)
	}

	// Setting the same values again does not touch the file.
	before, _ := os.Stat(path)
	changed, err = Set(path, map[string]string{"GOPROXY": "file:///x/mod"})
	if err != nil || len(changed) != 0 {
		t.Fatalf("second Set = %v, %v; want no change", changed, err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Errorf("second Set replaced the file although nothing changed")
	}
}

func TestSetCreatesFileAndFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "env")
	if _, err := Set(path, map[string]string{"GOPROXY": "off"}); err != nil {
		t.Fatal(err)
	}
	if m, err := Read(path); err != nil || m["GOPROXY"] != "off" {
		t.Fatalf("Read after Set = %v, %v", m, err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Set(link, map[string]string{"GOPROXY": "file:///y"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("Set replaced the symlink: %v, %v", fi, err)
	}
	if m, _ := Read(path); m["GOPROXY"] != "file:///y" {
		t.Errorf("target not updated: %v", m)
	}
}

func TestSetRejectsBadValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	for _, kv := range []map[string]string{
		{"GOPROXY": "a\nGOSUMDB=off"},
		{"GOPROXY": "a\x00"},
		{"GOPROXY": "\xff"},
		{"goproxy": "x"},
		{"": "x"},
		{"A=B": "x"},
		{"GOENV": "/x"},
	} {
		if _, err := Set(path, kv); err == nil {
			t.Errorf("Set(%q) succeeded, want error", kv)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("rejected Set created the file")
	}
}

func TestDefaultFile(t *testing.T) {
	if f, err := DefaultFile([]string{"GOENV=/a/env", "HOME=/h"}); err != nil || f != "/a/env" {
		t.Errorf("DefaultFile(GOENV) = %q, %v", f, err)
	}
	if _, err := DefaultFile([]string{"GOENV=off"}); err == nil {
		t.Errorf("DefaultFile(GOENV=off) succeeded")
	}
	if runtime.GOOS != "linux" {
		t.Skip("XDG rules checked on linux only")
	}
	if f, err := DefaultFile([]string{"HOME=/h"}); err != nil || f != "/h/.config/go/env" {
		t.Errorf("DefaultFile(HOME) = %q, %v", f, err)
	}
	if f, err := DefaultFile([]string{"HOME=/h", "XDG_CONFIG_HOME=/x"}); err != nil || f != "/x/go/env" {
		t.Errorf("DefaultFile(XDG) = %q, %v", f, err)
	}
	if _, err := DefaultFile([]string{"XDG_CONFIG_HOME=rel"}); err == nil {
		t.Errorf("DefaultFile(relative XDG) succeeded")
	}
	if _, err := DefaultFile(nil); err == nil {
		t.Errorf("DefaultFile(empty env) succeeded")
	}
}

// TestGoCommandAgrees checks that the real go command reads what Set wrote
// and that DefaultFile names the file `go env GOENV` reports.
func TestGoCommandAgrees(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "with space", "env")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("# keep me\nGOFLAGS=-mod=mod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const proxy = "file:///tmp/with%20space/mod"
	if _, err := Set(path, map[string]string{"GOPROXY": proxy}); err != nil {
		t.Fatal(err)
	}
	env := cleanEnv("GOENV=" + path)
	out, err := goEnv(gobin, env, "GOPROXY", "GOFLAGS")
	if err != nil {
		t.Fatal(err)
	}
	if want := proxy + "\n-mod=mod\n"; out != want {
		t.Errorf("go env GOPROXY GOFLAGS = %q, want %q", out, want)
	}

	// `go env -w` must be able to edit our file, and we must read its edits.
	cmd := exec.Command(gobin, "env", "-w", "GONOSUMDB=corp.example")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go env -w: %v\n%s", err, out)
	}
	m, err := Read(path)
	if err != nil || m["GOPROXY"] != proxy || m["GONOSUMDB"] != "corp.example" {
		t.Errorf("Read after go env -w = %v, %v", m, err)
	}

	// DefaultFile agrees with the go command without GOENV.
	// Telemetry off, so that the go command starts no background uploader
	// writing into the temporary directory.
	xdg := filepath.Join(dir, "xdg")
	if err := os.MkdirAll(filepath.Join(xdg, "go", "telemetry"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(xdg, "go", "telemetry", "mode"), []byte("off"), 0o644); err != nil {
		t.Fatal(err)
	}
	env = cleanEnv("HOME="+dir, "XDG_CONFIG_HOME="+xdg)
	out, err = goEnv(gobin, env, "GOENV")
	if err != nil {
		t.Fatal(err)
	}
	f, err := DefaultFile(env)
	if err != nil || f+"\n" != out {
		t.Errorf("DefaultFile = %q, %v; go env GOENV = %q", f, err, out)
	}
}

func goEnv(gobin string, env []string, keys ...string) (string, error) {
	cmd := exec.Command(gobin, append([]string{"env"}, keys...)...)
	cmd.Env = env
	out, err := cmd.Output()
	return string(out), err
}

// cleanEnv is the test process environment without the variables a go env
// file could set, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GO") || k == "HOME" || k == "XDG_CONFIG_HOME" {
			if k != "GOROOT" && k != "GOPATH" && k != "GOCACHE" && k != "GOMODCACHE" && k != "GOTOOLCHAIN" {
				continue
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
