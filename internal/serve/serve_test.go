package serve_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store/local"
)

const pseudo = "v0.0.0-20200101000000-abcdefabcdef"

func bundle1(t testing.TB) map[string][]byte {
	zip := make([]byte, 300_000)
	for i := range zip {
		zip[i] = byte(i * 7)
	}
	return map[string][]byte{
		"example.com/a/@v/v1.0.0.info":                            []byte(`{"Version":"v1.0.0"}`),
		"example.com/a/@v/v1.0.0.mod":                             []byte("module example.com/a\n"),
		"example.com/a/@v/v1.0.0.zip":                             zip,
		"example.com/p/@v/" + pseudo + ".info":                    []byte(`{"Version":"` + pseudo + `"}`),
		"example.com/p/@v/" + pseudo + ".mod":                     []byte("module example.com/p\n"),
		"example.com/!upper/@v/v0.1.0.mod":                        []byte("module example.com/Upper\n"),
		"example.com/!upper/@v/v0.1.0.info":                       []byte(`{"Version":"v0.1.0"}`),
		"sumdb/" + testbundle.DB + "/latest":                      testbundle.Head(t, 5),
		"sumdb/" + testbundle.DB + "/tile/8/0/000.p/5":            []byte("tile5"),
		"sumdb/" + testbundle.DB + "/lookup/example.com/a@v1.0.0": testbundle.Lookup(t, 1, "example.com/a v1.0.0 h1:x=\n", 5),
	}
}

func bundle2(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"example.com/a/@v/v1.0.0.info":                            []byte(`{"Version":"v1.0.0","Time":"other"}`), // first import wins
		"example.com/a/@v/v1.0.0.mod":                             []byte("module example.com/a\n"),
		"example.com/a/@v/v1.1.0.info":                            []byte(`{"Version":"v1.1.0"}`),
		"example.com/a/@v/v1.1.0.mod":                             []byte("module example.com/a\n"),
		"example.com/a/@v/v1.2.0.mod":                             []byte("module example.com/a\n"), // listed, no .info
		"example.com/b/@v/v2.0.0+incompatible.mod":                []byte("module example.com/b\n"),
		"example.com/b/@v/v2.0.0+incompatible.info":               []byte(`{"Version":"v2.0.0+incompatible"}`),
		"golang.org/toolchain/@v/v0.0.1-go1.99.1.linux-amd64.zip": []byte("toolchain zip"),
		"sumdb/" + testbundle.DB + "/latest":                      testbundle.Head(t, 9),
		"sumdb/" + testbundle.DB + "/tile/8/0/000.p/9":            []byte("tile9"),
		"sumdb/" + testbundle.DB + "/lookup/example.com/a@v1.0.0": testbundle.Lookup(t, 1, "example.com/a v1.0.0 h1:x=\n", 9),
		"sumdb/" + testbundle.DB + "/lookup/example.com/a@v1.1.0": testbundle.Lookup(t, 6, "example.com/a v1.1.0 h1:y=\n", 9),
	}
}

type env struct {
	st  *local.Store
	srv *serve.Server
	ts  *httptest.Server
	dir string
}

func newEnv(t testing.TB, bundles ...map[string][]byte) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	st, err := local.Open(filepath.Join(e.dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	for i, files := range bundles {
		testbundle.Import(t, st, testbundle.Write(t, e.dir, fmt.Sprintf("b%d.ferry", i), files))
	}
	srv, err := serve.New(st, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler(serve.Routes{}))
	t.Cleanup(e.ts.Close)
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) do(t *testing.T, method, p string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func (e *env) get(t *testing.T, p string) (int, string) {
	t.Helper()
	resp, body := e.do(t, "GET", p)
	return resp.StatusCode, body
}

func TestMerge(t *testing.T) {
	b1, b2 := bundle1(t), bundle2(t)
	e := newEnv(t, b1, b2)
	want := map[string]string{
		"/example.com/a/@v/list":                                   "v1.0.0\nv1.1.0\nv1.2.0\n",
		"/example.com/a/@latest":                                   `{"Version":"v1.1.0"}`,
		"/example.com/a/@v/v1.0.0.info":                            `{"Version":"v1.0.0"}`,
		"/example.com/p/@v/list":                                   "",
		"/example.com/p/@latest":                                   `{"Version":"` + pseudo + `"}`,
		"/example.com/!upper/@v/list":                              "v0.1.0\n",
		"/example.com/b/@v/list":                                   "v2.0.0+incompatible\n",
		"/golang.org/toolchain/@v/list":                            "v0.0.1-go1.99.1.linux-amd64\n",
		"/example.com/a/@v/v1.0.0.zip":                             string(b1["example.com/a/@v/v1.0.0.zip"]),
		"/sumdb/" + testbundle.DB + "/supported":                   "",
		"/sumdb/" + testbundle.DB + "/latest":                      string(b2["sumdb/"+testbundle.DB+"/latest"]),
		"/sumdb/" + testbundle.DB + "/lookup/example.com/a@v1.0.0": string(b2["sumdb/"+testbundle.DB+"/lookup/example.com/a@v1.0.0"]),
		"/sumdb/" + testbundle.DB + "/tile/8/0/000.p/5":            "tile5",
		"/sumdb/" + testbundle.DB + "/tile/8/0/000.p/9":            "tile9",
	}
	for p, body := range want {
		code, got := e.get(t, p)
		if code != 200 || got != body {
			t.Errorf("GET %s = %d %q, want 200 %q", p, code, trunc(got), trunc(body))
		}
	}
	// The older head does not win when imported after the newer one.
	e2 := newEnv(t, b2, b1)
	if code, got := e2.get(t, "/sumdb/"+testbundle.DB+"/lookup/example.com/a@v1.0.0"); code != 200 || got != string(b2["sumdb/"+testbundle.DB+"/lookup/example.com/a@v1.0.0"]) {
		t.Errorf("lookup after importing the older bundle second = %d %q, want the newer head's", code, got)
	}
	mods := e.srv.Modules()
	var paths []string
	for _, m := range mods {
		paths = append(paths, m.Path)
	}
	if got := strings.Join(paths, " "); got != "example.com/Upper example.com/a example.com/b example.com/p" {
		t.Errorf("Modules() = %s", got)
	}
	if got := e.srv.Toolchains(); len(got) != 1 || got[0] != "go1.99.1" {
		t.Errorf("Toolchains() = %v", got)
	}
	if got := e.srv.Bundles(); len(got) != 2 || got[0].Name != "b0.ferry" || got[0].Size == 0 {
		t.Errorf("Bundles() = %+v", got)
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func TestProtocol(t *testing.T) {
	b1 := bundle1(t)
	e := newEnv(t, b1)
	zip := b1["example.com/a/@v/v1.0.0.zip"]

	// HEAD: headers, no body.
	resp, body := e.do(t, "HEAD", "/example.com/a/@v/v1.0.0.zip")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(zip)) {
		t.Errorf("HEAD zip = %d, %d body bytes, length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
	etag := resp.Header.Get("ETag")
	if etag != `"`+bundle.Digest(zip)+`"` {
		t.Errorf("ETag = %s, want the digest", etag)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("zip Cache-Control = %q", cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("zip Content-Type = %q", ct)
	}
	// Range.
	resp, body = e.do(t, "GET", "/example.com/a/@v/v1.0.0.zip", "Range", "bytes=1000-1009")
	if resp.StatusCode != http.StatusPartialContent || body != string(zip[1000:1010]) {
		t.Errorf("Range = %d %q", resp.StatusCode, body)
	}
	// If-None-Match.
	resp, body = e.do(t, "GET", "/example.com/a/@v/v1.0.0.zip", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("If-None-Match = %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, _ = e.do(t, "GET", "/example.com/a/@v/list", "If-None-Match", `"sha256:00"`)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Errorf("list = %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	for p, cc := range map[string]string{
		"/example.com/a/@v/v1.0.0.info":                            "immutable",
		"/example.com/a/@v/v1.0.0.mod":                             "immutable",
		"/sumdb/" + testbundle.DB + "/tile/8/0/000.p/5":            "immutable",
		"/sumdb/" + testbundle.DB + "/lookup/example.com/a@v1.0.0": "immutable",
		"/example.com/a/@latest":                                   "max-age=60",
		"/sumdb/" + testbundle.DB + "/latest":                      "max-age=60",
		"/sumdb/" + testbundle.DB + "/supported":                   "max-age=60",
	} {
		resp, _ := e.do(t, "GET", p)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), cc) {
			t.Errorf("GET %s = %d, Cache-Control %q, want %s", p, resp.StatusCode, resp.Header.Get("Cache-Control"), cc)
		}
	}

	// Not found, bad requests.
	outside := filepath.Join(e.dir, "secret.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, code := range map[string]int{
		"/example.com/nope/@v/list":                  404,
		"/example.com/a/@v/v9.9.9.zip":               404,
		"/example.com/a/@latest/":                    400,
		"/example.com/Upper/@v/list":                 400, // unescaped upper case
		"/example.com/!!upper/@v/list":               400,
		"/example.com/a/@v/V1.0.0.info":              400,
		"/sumdb/" + testbundle.DB + "/nope":          400,
		"/sumdb/other.db/supported":                  404,
		"/example.com/a/../a/@v/list":                400,
		"/example.com/a/%2e%2e/a/@v/list":            400,
		"/example.com%2Fa/@v/list":                   400,
		"/example.com/a/@v/v1.0.0.info%00":           400,
		"/example.com\\a/@v/list":                    400,
		"/example.com/a/@v/list?x=1":                 400,
		"/" + strings.Repeat("a/", 2100) + "@v/list": 400,
		"/..%2F..%2Fsecret.txt":                      400,
		"/" + outside:                                400,
		"/bundles/x.ferry":                           400,
		"/index.json":                                400,
	} {
		req, err := http.NewRequest("GET", e.ts.URL+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("GET %s = %d %q, want %d", trunc(p), resp.StatusCode, body, code)
		}
		if strings.Count(strings.TrimSuffix(string(body), "\n"), "\n") > 0 || strings.Contains(string(body), "secret") && !strings.Contains(p, "secret") {
			t.Errorf("GET %s: body %q is not one line", trunc(p), body)
		}
	}
	if resp, _ := e.do(t, "POST", "/example.com/a/@v/list"); resp.StatusCode != 405 {
		t.Errorf("POST = %d", resp.StatusCode)
	}
	for p, code := range map[string]int{"/healthz": 200, "/readyz": 200, "/": 200, "/metrics": 404} {
		if got, _ := e.get(t, p); got != code {
			t.Errorf("GET %s = %d, want %d", p, got, code)
		}
	}
}

func TestNotReady(t *testing.T) {
	st, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(st, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler(serve.Routes{}))
	defer ts.Close()
	for p, code := range map[string]int{"/readyz": 503, "/healthz": 200, "/example.com/a/@v/list": 503} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("GET %s before Refresh = %d, want %d", p, resp.StatusCode, code)
		}
	}
}

// TestImportWhileServing hammers the server while a second bundle is
// imported and the index refreshed: every answer is the old or the new one.
func TestImportWhileServing(t *testing.T) {
	b1, b2 := bundle1(t), bundle2(t)
	e := newEnv(t, b1)
	p2 := testbundle.Write(t, e.dir, "second.ferry", b2)
	oldList, newList := "v1.0.0\n", "v1.0.0\nv1.1.0\nv1.2.0\n"
	lookup := "/sumdb/" + testbundle.DB + "/lookup/example.com/a@v1.0.0"
	oldLookup := string(b1["sumdb/"+testbundle.DB+"/lookup/example.com/a@v1.0.0"])
	newLookup := string(b2["sumdb/"+testbundle.DB+"/lookup/example.com/a@v1.0.0"])

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	var requests atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for p, ok := range map[string]func(string) bool{
					"/example.com/a/@v/list":       func(s string) bool { return s == oldList || s == newList },
					lookup:                         func(s string) bool { return s == oldLookup || s == newLookup },
					"/example.com/a/@v/v1.0.0.zip": func(s string) bool { return s == string(b1["example.com/a/@v/v1.0.0.zip"]) },
				} {
					resp, err := http.Get(e.ts.URL + p)
					if err != nil {
						errs <- err
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					requests.Add(1)
					if err != nil || resp.StatusCode != 200 || !ok(string(body)) {
						errs <- fmt.Errorf("GET %s = %d %q %v", p, resp.StatusCode, trunc(string(body)), err)
						return
					}
				}
			}
		}()
	}
	// A second store handle stands for another process importing.
	other, err := local.Open(e.st.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for range 20 {
		if err := e.srv.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	testbundle.Import(t, other, p2)
	for range 20 {
		if err := e.srv.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if code, got := e.get(t, "/example.com/a/@v/list"); code != 200 || got != newList {
		t.Errorf("after import: list = %d %q", code, got)
	}
	t.Logf("%d requests during the import", requests.Load())
}
