package modtest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/dirhash"
)

var hello = Module{
	Path:    "example.com/hello",
	Version: "v1.0.0",
	Files: map[string]string{
		"go.mod":   "module example.com/hello\n\ngo 1.21\n",
		"hello.go": "package hello\n\nfunc Hello() string { return \"hello, ferry\" }\n",
	},
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestProxyRoutes(t *testing.T) {
	upper := Module{Path: "example.com/Upper", Version: "v0.1.0-Beta", Files: map[string]string{"go.mod": "module example.com/Upper\n"}}
	pseudo := Module{Path: "example.com/hello", Version: "v1.1.0-0.20240101000000-abcdefabcdef", Files: hello.Files}
	v2 := hello
	v2.Version = "v1.0.10"
	v2.Time = time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	s := NewServer(t, hello, upper, pseudo)
	s.Add(v2)

	tests := []struct {
		path string
		code int
		body string
	}{
		{"/example.com/hello/@v/list", 200, "v1.0.0\nv1.0.10\n"},
		{"/example.com/hello/@latest", 200, `{"Version":"v1.0.10","Time":"2025-05-06T07:08:09Z"}` + "\n"},
		{"/example.com/hello/@v/v1.0.0.info", 200, `{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}` + "\n"},
		{"/example.com/hello/@v/v1.0.0.mod", 200, hello.Files["go.mod"]},
		{"/example.com/!upper/@v/list", 200, "v0.1.0-Beta\n"},
		{"/example.com/!upper/@v/v0.1.0-!beta.mod", 200, "module example.com/Upper\n"},
		{"/example.com/!upper/@latest", 200, `{"Version":"v0.1.0-Beta","Time":"2024-01-02T03:04:05Z"}` + "\n"},
		{"/example.com/hello/@v/v9.9.9.info", 404, ""},
		{"/example.com/nope/@v/list", 404, ""},
		{"/example.com/nope/@latest", 404, ""},
		{"/sumdb/" + s.SumDBName + "/supported", 200, ""},
		{"/sumdb/other.example/supported", 404, ""},
		{"/sumdb/" + s.SumDBName + "/lookup/example.com/nope@v1.0.0", 404, ""},
	}
	for _, tt := range tests {
		code, body := get(t, s.URL+tt.path)
		if code != tt.code {
			t.Errorf("GET %s: status %d, want %d (body %q)", tt.path, code, tt.code, body)
			continue
		}
		if code == 404 && !strings.HasPrefix(body, "not found") {
			t.Errorf("GET %s: 404 body %q does not start with \"not found\"", tt.path, body)
		}
		if tt.body != "" && body != tt.body {
			t.Errorf("GET %s: body %q, want %q", tt.path, body, tt.body)
		}
	}

	// The zip hashes to the hash in the checksum database.
	code, body := get(t, s.URL+"/example.com/hello/@v/v1.0.0.zip")
	if code != 200 {
		t.Fatalf("zip: status %d", code)
	}
	zf := filepath.Join(t.TempDir(), "h.zip")
	if err := os.WriteFile(zf, []byte(body), 0o666); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(zf, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	zipHash, modHash, _ := s.Hashes("example.com/hello", "v1.0.0")
	if h != zipHash {
		t.Errorf("zip hash %s, server says %s", h, zipHash)
	}
	code, body = get(t, s.URL+"/sumdb/"+s.SumDBName+"/lookup/example.com/hello@v1.0.0")
	want := "example.com/hello v1.0.0 " + zipHash + "\nexample.com/hello v1.0.0/go.mod " + modHash + "\n"
	if code != 200 || !strings.Contains(body, want) {
		t.Errorf("lookup: status %d body %q, want it to contain %q", code, body, want)
	}
	code, body = get(t, s.URL+"/sumdb/"+s.SumDBName+"/latest")
	if code != 200 || !strings.HasPrefix(body, "go.sum database tree\n4\n") {
		t.Errorf("latest: status %d body %q", code, body)
	}
}

func TestFailuresAndLog(t *testing.T) {
	s := NewServer(t, hello)
	const p = "/example.com/hello/@v/v1.0.0.info"
	s.FailNext(p, 503, 2)
	s.Refuse("/example.com/hello/@v/v1.0.0.zip", 410)
	for _, want := range []int{503, 503, 200, 200} {
		if code, _ := get(t, s.URL+p); code != want {
			t.Errorf("GET %s: status %d, want %d", p, code, want)
		}
	}
	for range 2 {
		if code, _ := get(t, s.URL+"/example.com/hello/@v/v1.0.0.zip"); code != 410 {
			t.Errorf("refused zip: status %d, want 410", code)
		}
	}
	want := []string{
		"GET " + p + " 503", "GET " + p + " 503", "GET " + p + " 200", "GET " + p + " 200",
		"GET /example.com/hello/@v/v1.0.0.zip 410", "GET /example.com/hello/@v/v1.0.0.zip 410",
	}
	if got := s.Requests(); !slices.Equal(got, want) {
		t.Errorf("Requests() = %q, want %q", got, want)
	}
	s.ResetRequests()
	if got := s.Requests(); len(got) != 0 {
		t.Errorf("after ResetRequests, Requests() = %q", got)
	}
}

func TestAddConflict(t *testing.T) {
	s := NewServer(t, hello)
	s.Add(hello) // same content: fine
	ft := &fakeTB{TB: t}
	s.t = ft
	other := hello
	other.Files = map[string]string{"go.mod": "module example.com/hello\n"}
	func() {
		defer func() { recover() }()
		s.Add(other)
	}()
	if !strings.Contains(ft.msg, "already added with other content") {
		t.Errorf("adding a changed version: got %q, want a conflict failure", ft.msg)
	}
}

type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = strings.TrimSpace(strings.ReplaceAll(format, "%v", "")) + " " + errString(args)
	panic("fatal")
}

func errString(args []any) string {
	var s []string
	for _, a := range args {
		if e, ok := a.(error); ok {
			s = append(s, e.Error())
		}
	}
	return strings.Join(s, " ")
}

func goCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestGoCommand checks that the real go command downloads, verifies (through
// the checksum database) and builds fixture modules.
func TestGoCommand(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	s := NewServer(t, hello)
	env := GoEnv(t, s)

	out := goCmd(t, t.TempDir(), env, "mod", "download", "-json", "example.com/hello@v1.0.0")
	var dl struct{ Path, Version, Sum, GoModSum, Error string }
	if err := json.Unmarshal([]byte(out), &dl); err != nil {
		t.Fatalf("parsing go mod download output: %v\n%s", err, out)
	}
	zipHash, modHash, _ := s.Hashes("example.com/hello", "v1.0.0")
	if dl.Sum != zipHash || dl.GoModSum != modHash || dl.Error != "" {
		t.Errorf("go mod download: %+v, want Sum %s GoModSum %s", dl, zipHash, modHash)
	}
	lookup := "GET /sumdb/" + s.SumDBName + "/lookup/example.com/hello@v1.0.0 200"
	if !slices.Contains(s.Requests(), lookup) {
		t.Errorf("go mod download did not verify through the checksum database; requests:\n%s", strings.Join(s.Requests(), "\n"))
	}

	// A main module requiring the fixture, with a fresh environment.
	env = GoEnv(t, s)
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/main\n\ngo 1.21\n\nrequire example.com/hello v1.0.0\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/hello\"\n)\n\nfunc main() { fmt.Println(hello.Hello()) }\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	goCmd(t, dir, env, "mod", "download", "example.com/hello")
	goCmd(t, dir, env, "mod", "tidy")
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sum), "example.com/hello v1.0.0 "+zipHash) {
		t.Errorf("go.sum lacks the zip hash:\n%s", sum)
	}
	bin := filepath.Join(dir, "main.exe")
	goCmd(t, dir, env, "build", "-o", bin, ".")
	got, err := exec.Command(bin).Output()
	if err != nil || string(got) != "hello, ferry\n" {
		t.Errorf("running built program: %q, %v", got, err)
	}
}

// TestGoCommandRejectsWrongKey checks that the go command really verifies:
// a checksum database key other than the server's must fail.
func TestGoCommandRejectsWrongKey(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	s := NewServer(t, hello)
	other := NewServer(t)
	env := append(GoEnv(t, s), "GOSUMDB="+other.GOSUMDB)
	cmd := exec.Command("go", "mod", "download", "-json", "example.com/hello@v1.0.0")
	cmd.Dir = t.TempDir()
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("go mod download with another server's key succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "verifying") && !strings.Contains(string(out), "signature") {
		t.Errorf("unexpected failure output:\n%s", out)
	}
}

func TestFakeToolchain(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("fake toolchain is a shell script")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	s := NewServer(t, FakeToolchain("1.99.1", runtime.GOOS, runtime.GOARCH))
	env := append(GoEnv(t, s), "GOTOOLCHAIN=go1.99.1")
	out := goCmd(t, t.TempDir(), env, "version")
	want := "go version go1.99.1 " + runtime.GOOS + "/" + runtime.GOARCH + " (ferry fake)\n"
	if out != want {
		t.Errorf("go version = %q, want %q", out, want)
	}
	zipPath := "GET /golang.org/toolchain/@v/" + ToolchainVersion("go1.99.1", runtime.GOOS, runtime.GOARCH) + ".zip 200"
	if reqs := s.Requests(); !slices.Contains(reqs, zipPath) {
		t.Errorf("requests lack %q:\n%s", zipPath, strings.Join(reqs, "\n"))
	}
}
