package fetch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestHandler(t *testing.T) {
	zip := bytes.Repeat([]byte("z"), 4096)
	up := newUpstream(t, map[string][]byte{
		infoPath:                      []byte(`{"Version":"v1.0.0"}`),
		"example.com/a/@v/v1.0.0.zip": zip,
	})
	up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		switch r.URL.Path {
		case "/example.com/gone/@v/list":
			http.Error(w, "gone for good\nsecond", http.StatusGone)
			return true
		case "/example.com/broken/@v/list":
			http.Error(w, "kaput", http.StatusInternalServerError)
			return true
		}
		return false
	}
	c := newClient(t, Options{GOPROXY: up.srv.URL + ",direct", CacheDir: t.TempDir(), Retries: -1})
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	status, h, body := get(t, "GET", srv.URL+"/"+infoPath)
	if status != 200 || body != `{"Version":"v1.0.0"}` || h.Get("Content-Type") != "application/json" {
		t.Errorf("GET info = %d %q %v", status, body, h)
	}
	status, h, body = get(t, "HEAD", srv.URL+"/"+infoPath)
	if status != 200 || body != "" || h.Get("Content-Length") != "20" {
		t.Errorf("HEAD info = %d %q Content-Length %s", status, body, h.Get("Content-Length"))
	}
	status, h, body = get(t, "HEAD", srv.URL+"/example.com/a/@v/v1.0.0.zip")
	if status != 200 || body != "" || h.Get("Content-Length") != "4096" {
		t.Errorf("HEAD zip = %d %q Content-Length %s", status, body, h.Get("Content-Length"))
	}
	status, _, body = get(t, "GET", srv.URL+"/example.com/a/@v/v1.0.0.zip")
	if status != 200 || body != string(zip) {
		t.Errorf("GET zip = %d, %d bytes", status, len(body))
	}
	status, _, body = get(t, "GET", srv.URL+"/example.com/missing/@v/list")
	if status != 404 || body != "not found: example.com/missing/@v/list\n" {
		t.Errorf("GET missing = %d %q", status, body)
	}
	status, _, body = get(t, "GET", srv.URL+"/example.com/gone/@v/list")
	if status != 410 || body != "gone for good\n" {
		t.Errorf("GET gone = %d %q", status, body)
	}
	status, _, body = get(t, "GET", srv.URL+"/example.com/broken/@v/list")
	if status != 502 || strings.Count(body, "\n") != 1 || !strings.Contains(body, "500") {
		t.Errorf("GET broken = %d %q", status, body)
	}
	status, _, _ = get(t, "POST", srv.URL+"/"+infoPath)
	if status != 405 {
		t.Errorf("POST = %d; want 405", status)
	}

	before := up.total()
	for _, p := range []string{
		"/example.com/../../etc/passwd/@v/list",
		"/%2e%2e/x/@v/list",
		"/example.com/a%5C..%5Cb/@v/list",
		"/example.com/!!a/@v/list",
		"/example.com/A/@v/list",
		"/example.com/a/@v/v1.0.0.exe",
		"/sumdb/sum.example/tile/8/0/..%2F..%2Fx",
		"//example.com/a/@v/list",
	} {
		if status, _, body := get(t, "GET", srv.URL+p); status != 400 {
			t.Errorf("GET %s = %d %q; want 400", p, status, body)
		}
	}
	// An invalid URL escape, sent raw because the client refuses to.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /example.com/%%zz/@v/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	conn.Close()
	if resp.StatusCode != 400 {
		t.Errorf("invalid escape = %d; want 400", resp.StatusCode)
	}
	if n := up.total() - before; n != 0 {
		t.Errorf("bad paths made %d upstream requests", n)
	}

	recs := c.Records()
	want := []Record{
		{Path: infoPath, Status: 200, Size: 20},
		{Path: infoPath, Status: 200, Size: 20, Cached: true},
		{Path: "example.com/a/@v/v1.0.0.zip", Status: 200, Size: 4096},
		{Path: "example.com/a/@v/v1.0.0.zip", Status: 200, Size: 4096, Cached: true},
		{Path: "example.com/missing/@v/list", Status: 404},
		{Path: "example.com/gone/@v/list", Status: 410},
		{Path: "example.com/broken/@v/list", Status: 502},
		{Path: infoPath, Status: 405},
	}
	if len(recs) != len(want)+8 {
		t.Fatalf("%d records; want %d: %+v", len(recs), len(want)+8, recs)
	}
	for i, w := range want {
		if recs[i] != w {
			t.Errorf("record %d = %+v; want %+v", i, recs[i], w)
		}
	}
	for _, r := range recs[len(want):] {
		if r.Status != 400 {
			t.Errorf("record %+v; want status 400", r)
		}
	}
}

// fixtureProxy writes a file:// style proxy tree with the given modules
// (path@version -> files) and serves it on 127.0.0.1.
func fixtureProxy(t *testing.T, mods map[string]map[string]string) *upstream {
	t.Helper()
	files := map[string][]byte{}
	lists := map[string][]string{}
	for mv, content := range mods {
		path, vers, _ := strings.Cut(mv, "@")
		dir := t.TempDir()
		for name, data := range content {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var zbuf bytes.Buffer
		if err := modzip.CreateFromDir(&zbuf, module.Version{Path: path, Version: vers}, dir); err != nil {
			t.Fatal(err)
		}
		ep, _ := module.EscapePath(path)
		ev, _ := module.EscapeVersion(vers)
		files[ep+"/@v/"+ev+".zip"] = zbuf.Bytes()
		files[ep+"/@v/"+ev+".mod"] = []byte(content["go.mod"])
		files[ep+"/@v/"+ev+".info"] = fmt.Appendf(nil, `{"Version":%q,"Time":"2024-01-02T03:04:05Z"}`, vers)
		lists[ep] = append(lists[ep], vers)
	}
	for ep, vs := range lists {
		files[ep+"/@v/list"] = []byte(strings.Join(vs, "\n") + "\n")
	}
	return newUpstream(t, files)
}

// TestHandlerGoCommand runs the real go command through Handler. The fixture
// modules are private (GOPRIVATE), the legitimate way for modules that are not
// in the checksum database; checksum verification stays on.
func TestHandlerGoCommand(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	up := fixtureProxy(t, map[string]map[string]string{
		"example.com/hello@v1.0.0": {
			"go.mod":   "module example.com/hello\n\ngo 1.21\n\nrequire example.com/dep v1.1.0\n",
			"hello.go": "package hello\n\nimport \"example.com/dep\"\n\nfunc Hello() string { return dep.Name }\n",
		},
		"example.com/dep@v1.0.0": {"go.mod": "module example.com/dep\n", "dep.go": "package dep\n\nconst Name = \"old\"\n"},
		"example.com/dep@v1.1.0": {"go.mod": "module example.com/dep\n", "dep.go": "package dep\n\nconst Name = \"new\"\n"},
	})
	cache := t.TempDir()

	run := func(c *Client, args ...string) string {
		t.Helper()
		srv := httptest.NewServer(c.Handler())
		defer srv.Close()
		home := t.TempDir()
		cmd := exec.CommandContext(context.Background(), goCmd, args...)
		cmd.Dir = home
		cmd.Env = append(os.Environ(),
			"GOPROXY="+srv.URL, "GOPRIVATE=example.com/*", "GONOPROXY=none",
			"GOPATH="+filepath.Join(home, "gopath"), "GOMODCACHE="+filepath.Join(home, "mod"),
			"GOCACHE="+filepath.Join(home, "cache"), "GOFLAGS=-modcacherw", "GOTOOLCHAIN=local",
			"GO111MODULE=on", "GOWORK=off", "GOENV=off")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return string(out)
	}

	var st Stats
	c := newClient(t, Options{GOPROXY: up.srv.URL, CacheDir: cache, Stats: &st})
	out := run(c, "mod", "download", "-json", "example.com/hello@v1.0.0", "example.com/dep@v1.1.0")
	dec := json.NewDecoder(strings.NewReader(out))
	n := 0
	for {
		var m struct{ Path, Version, Error, Sum, GoModSum, Zip string }
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go mod download output: %v\n%s", err, out)
		}
		n++
		if m.Error != "" || !strings.HasPrefix(m.Sum, "h1:") || !strings.HasPrefix(m.GoModSum, "h1:") {
			t.Errorf("go mod download: %+v", m)
		}
	}
	if n != 2 {
		t.Errorf("go mod download reported %d modules; want 2:\n%s", n, out)
	}
	if out := run(c, "list", "-m", "-versions", "example.com/dep"); out != "example.com/dep v1.0.0 v1.1.0\n" {
		t.Errorf("go list -m -versions = %q", out)
	}
	seen := map[string]bool{}
	for _, r := range c.Records() {
		// The second command's fresh module cache asks again for some
		// answers; only those may come from the ferry cache.
		if r.Status != 200 || r.Cached != (seen[r.Path] && Immutable(r.Path)) {
			t.Errorf("first run: record %+v", r)
		}
		seen[r.Path] = true
	}
	for _, p := range []string{"example.com/hello/@v/v1.0.0.zip", "example.com/hello/@v/v1.0.0.mod", "example.com/dep/@v/v1.1.0.info", "example.com/dep/@v/list"} {
		if !seen[p] {
			t.Errorf("go command did not request %s; records: %+v", p, c.Records())
		}
	}

	// A fresh module cache and a new Client on the same ferry cache: every
	// immutable answer comes from the cache.
	before := up.total()
	c2 := newClient(t, Options{GOPROXY: up.srv.URL, CacheDir: cache})
	run(c2, "mod", "download", "example.com/hello@v1.0.0", "example.com/dep@v1.1.0")
	for _, r := range c2.Records() {
		if r.Status != 200 || !r.Cached {
			t.Errorf("second run: record %+v; want cached", r)
		}
	}
	if n := up.total() - before; n != 0 {
		t.Errorf("second run made %d upstream requests; want 0", n)
	}
}
