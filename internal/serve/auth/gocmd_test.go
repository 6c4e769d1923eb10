package auth

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/ferry-dev/ferry/internal/modtest"
)

const fixtureModule = "example.test/hello"

// writeProxyDir writes fixtureModule v1.0.0 in the GOPROXY file layout.
func writeProxyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	gomod := "module " + fixtureModule + "\n\ngo 1.21\n"
	files := map[string]string{
		"go.mod":   gomod,
		"hello.go": "package hello\n\nfunc Hello() string { return \"hello\" }\n",
	}
	vdir := filepath.Join(dir, fixtureModule, "@v")
	if err := os.MkdirAll(vdir, 0o777); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(vdir, name), []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	write("list", "v1.0.0\n")
	write("v1.0.0.info", `{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}`)
	write("v1.0.0.mod", gomod)
	var zfiles []modzip.File
	for name, content := range files {
		zfiles = append(zfiles, memFile{name, content})
	}
	var zbuf bytes.Buffer
	if err := modzip.Create(&zbuf, module.Version{Path: fixtureModule, Version: "v1.0.0"}, zfiles); err != nil {
		t.Fatal(err)
	}
	write("v1.0.0.zip", zbuf.String())
	return dir
}

type memFile struct{ name, content string }

func (f memFile) Path() string                { return f.name }
func (f memFile) Lstat() (fs.FileInfo, error) { return memInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(f.content)), nil
}

type memInfo memFile

func (i memInfo) Name() string       { return filepath.Base(i.name) }
func (i memInfo) Size() int64        { return int64(len(i.content)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// TestGoCommandNetrc runs the real go command against a file-tree module
// proxy behind Checker.Middleware and TLSConfig. The go command sends
// netrc (GOAUTH) credentials only over https, and matches the netrc machine
// against the host:port of the GOPROXY URL.
func TestGoCommandNetrc(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	cfg, err := TLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c := testChecker(t)
	srv := startTLS(t, cfg, c.Middleware(http.FileServer(http.Dir(writeProxyDir(t)))))
	hostport := strings.TrimPrefix(srv.URL, "https://")

	run := func(t *testing.T, netrc string) (string, error) {
		t.Helper()
		env := modtest.GoEnv(t, nil)
		var home string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "HOME="); ok {
				home = v
			}
		}
		// modtest.GoEnv has turned telemetry off in this HOME.
		if netrc != "" {
			if err := os.WriteFile(filepath.Join(home, ".netrc"), []byte(netrc), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		env = append(env,
			"GOPROXY="+srv.URL,
			"GOPRIVATE="+fixtureModule, // no checksum database for the fixture
			"GONOPROXY=none",           // but still through the proxy
			"SSL_CERT_FILE="+certFile,
			"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		)
		cmd := exec.Command(gobin, "mod", "download", "-json", fixtureModule+"@v1.0.0")
		cmd.Dir = t.TempDir()
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	t.Run("basic", func(t *testing.T) {
		out, err := run(t, "machine "+hostport+" login alice password "+alicePass+"\n")
		if err != nil {
			t.Fatalf("go mod download with netrc: %v\n%s", err, out)
		}
	})
	t.Run("token", func(t *testing.T) {
		out, err := run(t, "machine "+hostport+"\n\tlogin ci\n\tpassword "+testToken+"\n")
		if err != nil {
			t.Fatalf("go mod download with netrc: %v\n%s", err, out)
		}
		if !strings.Contains(out, `"Zip"`) || !strings.Contains(out, `"Sum": "h1:`) {
			t.Fatalf("unexpected output:\n%s", out)
		}
	})
	t.Run("machine without port", func(t *testing.T) {
		// Documents the go command's matching: a netrc machine without the
		// port does not match an https GOPROXY on another port.
		out, err := run(t, "machine 127.0.0.1 login alice password "+alicePass+"\n")
		if err == nil || !strings.Contains(out, "401") {
			t.Logf("go command now matches netrc machine without port: %v\n%s", err, out)
		}
	})
	t.Run("no netrc", func(t *testing.T) {
		out, err := run(t, "")
		if err == nil {
			t.Fatalf("go mod download without credentials succeeded:\n%s", out)
		}
		if !strings.Contains(out, "401") {
			t.Fatalf("want a 401 error, got:\n%s", out)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		out, err := run(t, "machine "+hostport+" login ci password wrong\n")
		if err == nil || !strings.Contains(out, "401") {
			t.Fatalf("want a 401 error, got %v:\n%s", err, out)
		}
	})
}
