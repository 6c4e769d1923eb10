package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstream is a fake module proxy on 127.0.0.1 serving files from a map,
// counting requests per path. fail, when set, may answer a request itself.
type upstream struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	fail  func(w http.ResponseWriter, r *http.Request, n int) bool // n = hit number for the path, from 1
}

func newUpstream(t *testing.T, files map[string][]byte) *upstream {
	u := &upstream{t: t, files: files, hits: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	u.mu.Lock()
	u.hits[p]++
	n := u.hits[p]
	data, ok := u.files[p]
	fail := u.fail
	u.mu.Unlock()
	if fail != nil && fail(w, r, n) {
		return
	}
	if !ok {
		http.Error(w, "not found: "+p+"\nsecond line", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Write(data)
}

func (u *upstream) count(p string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[p]
}

func (u *upstream) total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, h := range u.hits {
		n += h
	}
	return n
}

func newClient(t *testing.T, opt Options) *Client {
	t.Helper()
	c, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	c.backoffBase = time.Millisecond
	c.backoffCap = 5 * time.Millisecond
	return c
}

const infoPath = "example.com/a/@v/v1.0.0.info"

func TestNewNeedsAnUpstream(t *testing.T) {
	for _, v := range []string{"off", "direct", "direct,https://x.example"} {
		if _, err := New(Options{GOPROXY: v}); err == nil || !strings.Contains(err.Error(), "nothing to fetch from") {
			t.Errorf("New(GOPROXY=%s) = %v; want nothing to fetch from", v, err)
		}
	}
	c, err := New(Options{GOPROXY: "https://x.example,direct"})
	if err != nil || !c.HasDirect() {
		t.Errorf("New(https://x.example,direct) = %v, HasDirect false", err)
	}
	c, err = New(Options{GOPROXY: "https://x.example"})
	if err != nil || c.HasDirect() {
		t.Errorf("New(https://x.example) = %v, HasDirect true", err)
	}
}

func TestRetryTransient(t *testing.T) {
	up := newUpstream(t, map[string][]byte{infoPath: []byte(`{"Version":"v1.0.0"}`)})
	statuses := []int{500, 503, 429, 502}
	up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n <= len(statuses) {
			http.Error(w, "try later", statuses[n-1])
			return true
		}
		return false
	}
	var st Stats
	c := newClient(t, Options{GOPROXY: up.srv.URL, Stats: &st})
	got, err := c.Get(context.Background(), infoPath)
	if err != nil || string(got) != `{"Version":"v1.0.0"}` {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if n := up.count(infoPath); n != 5 {
		t.Errorf("upstream saw %d requests; want 5", n)
	}
	if s := st.Snapshot(); s.Retries != 4 || s.ItemsFetched != 1 || s.BytesFetched != int64(len(got)) {
		t.Errorf("stats = %+v; want 4 retries, 1 item fetched", s)
	}
}

func TestRetryGivesUp(t *testing.T) {
	up := newUpstream(t, nil)
	up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	}
	var st Stats
	c := newClient(t, Options{GOPROXY: up.srv.URL, Retries: 2, Stats: &st})
	_, err := c.Get(context.Background(), infoPath)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 503 || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get = %v; want 503 StatusError", err)
	}
	if n := up.count(infoPath); n != 3 {
		t.Errorf("upstream saw %d requests; want 3", n)
	}
	if s := st.Snapshot(); s.Retries != 2 {
		t.Errorf("retries = %d; want 2", s.Retries)
	}
}

func TestRetryTimeout(t *testing.T) {
	up := newUpstream(t, map[string][]byte{infoPath: []byte("{}")})
	up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			<-r.Context().Done() // never answer; the client gives up
			return true
		}
		return false
	}
	var st Stats
	hc := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 200 * time.Millisecond}}
	c := newClient(t, Options{GOPROXY: up.srv.URL, Client: hc, Stats: &st})
	if got, err := c.Get(context.Background(), infoPath); err != nil || string(got) != "{}" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	// A loaded machine may time out more than once; at least one retry happened.
	if s := st.Snapshot(); s.Retries < 1 {
		t.Errorf("retries = %d; want at least 1", s.Retries)
	}
}

func TestRetryStalledBody(t *testing.T) {
	body := bytes.Repeat([]byte("z"), 1000)
	up := newUpstream(t, map[string][]byte{infoPath: body})
	up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			w.Header().Set("Content-Length", "1000")
			w.Write(body[:10])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return true
		}
		return false
	}
	var st Stats
	c := newClient(t, Options{GOPROXY: up.srv.URL, Stats: &st, StallTimeout: 200 * time.Millisecond})
	if got, err := c.Get(context.Background(), infoPath); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
	if s := st.Snapshot(); s.Retries < 1 {
		t.Errorf("retries = %d; want at least 1", s.Retries)
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	for _, status := range []int{400, 403, 404, 410} {
		up := newUpstream(t, nil)
		up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
			http.Error(w, fmt.Sprintf("answer %d\nmore", status), status)
			return true
		}
		var st Stats
		c := newClient(t, Options{GOPROXY: up.srv.URL, Stats: &st})
		_, err := c.Get(context.Background(), infoPath)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != status || se.Message != fmt.Sprintf("answer %d", status) {
			t.Errorf("status %d: Get = %v", status, err)
		}
		if want := status == 404 || status == 410; errors.Is(err, fs.ErrNotExist) != want {
			t.Errorf("status %d: errors.Is(err, fs.ErrNotExist) = %v", status, !want)
		}
		if n := up.count(infoPath); n != 1 {
			t.Errorf("status %d: upstream saw %d requests; want 1", status, n)
		}
		if s := st.Snapshot(); s.Retries != 0 {
			t.Errorf("status %d: %d retries", status, s.Retries)
		}
	}
}

func TestFallThrough(t *testing.T) {
	good := newUpstream(t, map[string][]byte{infoPath: []byte("good")})
	notFound := newUpstream(t, nil)
	broken := newUpstream(t, nil)
	broken.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "broken", http.StatusForbidden)
		return true
	}
	ctx := context.Background()

	// ',' after a 404 falls through.
	c := newClient(t, Options{GOPROXY: notFound.srv.URL + "," + good.srv.URL})
	if got, err := c.Get(ctx, infoPath); err != nil || string(got) != "good" {
		t.Errorf("404 then good with ',': %q, %v", got, err)
	}
	// ',' after another error stops.
	c = newClient(t, Options{GOPROXY: broken.srv.URL + "," + good.srv.URL})
	before := good.count(infoPath)
	if _, err := c.Get(ctx, infoPath); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("403 then good with ',': %v; want 403 error", err)
	}
	if good.count(infoPath) != before {
		t.Errorf("',' fell through after a 403")
	}
	// '|' after any error falls through.
	c = newClient(t, Options{GOPROXY: broken.srv.URL + "|" + good.srv.URL})
	if got, err := c.Get(ctx, infoPath); err != nil || string(got) != "good" {
		t.Errorf("403 then good with '|': %q, %v", got, err)
	}
	// The most useful error wins: a 403 over a later 404.
	c = newClient(t, Options{GOPROXY: broken.srv.URL + "|" + notFound.srv.URL + ",direct"})
	if _, err := c.Get(ctx, infoPath); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("403 | 404: %v; want the 403", err)
	}
	// 404 everywhere before direct is not-exist.
	c = newClient(t, Options{GOPROXY: notFound.srv.URL + ",direct"})
	if _, err := c.Get(ctx, infoPath); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "not found: "+infoPath) {
		t.Errorf("404, direct: %v; want not exist with the upstream message", err)
	}
	// file:// entries.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "example.com/a/@v"), 0o755)
	os.WriteFile(filepath.Join(dir, infoPath), []byte("file"), 0o644)
	c = newClient(t, Options{GOPROXY: notFound.srv.URL + ",file://" + filepath.ToSlash(dir)})
	if got, err := c.Get(ctx, infoPath); err != nil || string(got) != "file" {
		t.Errorf("404 then file://: %q, %v", got, err)
	}
	if _, err := c.Get(ctx, "example.com/b/@v/list"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing in file://: %v; want not exist", err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const jobs = 3
	var inflight, peak atomic.Int64
	full := make(chan struct{})
	var once sync.Once
	up := newUpstream(t, nil)
	up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		cur := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			old := peak.Load()
			if cur <= old || peak.CompareAndSwap(old, cur) {
				break
			}
		}
		if cur == jobs {
			once.Do(func() { close(full) })
		}
		<-full // hold the first requests until the limit is reached
		w.Write([]byte("x"))
		return true
	}
	c := newClient(t, Options{GOPROXY: up.srv.URL, Jobs: jobs})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := c.Get(context.Background(), fmt.Sprintf("example.com/m%d/@v/list", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != jobs {
		t.Errorf("peak in-flight requests = %d; want %d", p, jobs)
	}
}

func TestCacheResume(t *testing.T) {
	zip := bytes.Repeat([]byte("PK"), 5000)
	files := map[string][]byte{
		"example.com/a/@v/v1.0.0.info":                  []byte(`{"Version":"v1.0.0"}`),
		"example.com/a/@v/v1.0.0.mod":                   []byte("module example.com/a\n"),
		"example.com/a/@v/v1.0.0.zip":                   zip,
		"example.com/a/@v/list":                         []byte("v1.0.0\n"),
		"example.com/a/@latest":                         []byte(`{"Version":"v1.0.0"}`),
		"sumdb/sum.example/lookup/example.com/a@v1.0.0": []byte("lookup"),
		"sumdb/sum.example/tile/8/0/000":                []byte("tile"),
		"sumdb/sum.example/latest":                      []byte("head"),
	}
	up := newUpstream(t, files)
	cache := t.TempDir()
	ctx := context.Background()
	immutable := []string{
		"example.com/a/@v/v1.0.0.info", "example.com/a/@v/v1.0.0.mod",
		"sumdb/sum.example/lookup/example.com/a@v1.0.0", "sumdb/sum.example/tile/8/0/000",
	}
	mutable := []string{"example.com/a/@v/list", "example.com/a/@latest", "sumdb/sum.example/latest"}

	var st1 Stats
	c1 := newClient(t, Options{GOPROXY: up.srv.URL, CacheDir: cache, Stats: &st1})
	for _, p := range append(immutable, mutable...) {
		if got, err := c1.Get(ctx, p); err != nil || !bytes.Equal(got, files[p]) {
			t.Fatalf("Get(%s) = %q, %v", p, got, err)
		}
	}
	name, err := c1.GetFile(ctx, "example.com/a/@v/v1.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, zip) {
		t.Fatalf("GetFile wrote %d bytes; want %d", len(got), len(zip))
	}
	if s := st1.Snapshot(); s.ItemsFetched != 8 || s.ItemsCached != 0 {
		t.Errorf("first client stats = %+v", s)
	}
	if _, err := os.Stat(filepath.Join(cache, "example.com/a/@v/list")); err == nil {
		t.Errorf("@v/list was cached")
	}

	// A second client with the same cache: no upstream request for immutable paths.
	before := up.total()
	var st2 Stats
	c2 := newClient(t, Options{GOPROXY: up.srv.URL, CacheDir: cache, Stats: &st2})
	var cachedBytes int64
	for _, p := range immutable {
		if got, err := c2.Get(ctx, p); err != nil || !bytes.Equal(got, files[p]) {
			t.Fatalf("cached Get(%s) = %q, %v", p, got, err)
		}
		cachedBytes += int64(len(files[p]))
	}
	if name2, err := c2.GetFile(ctx, "example.com/a/@v/v1.0.0.zip"); err != nil || name2 != name {
		t.Fatalf("cached GetFile = %s, %v; want %s", name2, err, name)
	}
	cachedBytes += int64(len(zip))
	if n := up.total() - before; n != 0 {
		t.Errorf("second client made %d upstream requests; want 0", n)
	}
	if s := st2.Snapshot(); s.ItemsCached != 5 || s.BytesCached != cachedBytes || s.ItemsFetched != 0 {
		t.Errorf("second client stats = %+v; want 5 items / %d bytes cached", s, cachedBytes)
	}
	// Mutable answers are always fetched.
	for _, p := range mutable {
		if _, err := c2.Get(ctx, p); err != nil {
			t.Fatal(err)
		}
		if n := up.count(p); n != 2 {
			t.Errorf("%s fetched %d times; want 2", p, n)
		}
	}
}

// cutBody answers with the full Content-Length but only half of the body,
// then drops the connection.
func cutBody(w http.ResponseWriter, body []byte) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
	buf.Write(body[:len(body)/2])
	buf.Flush()
}

func TestGetFileInterrupted(t *testing.T) {
	const p = "example.com/a/@v/v1.0.0.zip"
	zip := bytes.Repeat([]byte("0123456789"), 100000)
	up := newUpstream(t, map[string][]byte{p: zip})
	var cut atomic.Bool
	cut.Store(true)
	up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if cut.Load() {
			cutBody(w, zip)
			return true
		}
		return false
	}
	cache := t.TempDir()
	ctx := context.Background()
	c := newClient(t, Options{GOPROXY: up.srv.URL, CacheDir: cache, Retries: -1})
	if name, err := c.GetFile(ctx, p); err == nil {
		t.Fatalf("GetFile of a cut body = %s, nil", name)
	}
	// Nothing but directories may be left in the cache.
	filepath.WalkDir(cache, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("interrupted download left %s", path)
		}
		return err
	})

	// Retrying succeeds, both on a later call and within one call.
	cut.Store(false)
	name, err := c.GetFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, zip) {
		t.Fatalf("GetFile after retry wrote %d bytes; want %d", len(got), len(zip))
	}

	var st Stats
	up.fail = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 3 { // the first request of the client below
			cutBody(w, zip)
			return true
		}
		return false
	}
	c = newClient(t, Options{GOPROXY: up.srv.URL, Stats: &st}) // no cache: a temp file
	name, err = c.GetFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(name)
	if got, _ := os.ReadFile(name); !bytes.Equal(got, zip) {
		t.Fatalf("GetFile with retry wrote %d bytes; want %d", len(got), len(zip))
	}
	if s := st.Snapshot(); s.Retries != 1 {
		t.Errorf("retries = %d; want 1", s.Retries)
	}
}

func TestGetRejectsBadPaths(t *testing.T) {
	up := newUpstream(t, nil)
	c := newClient(t, Options{GOPROXY: up.srv.URL, CacheDir: t.TempDir()})
	for _, p := range []string{"../x/@v/list", "example.com/a/@v/../../../etc/passwd", `example.com\a/@v/list`, "/abs/@v/list"} {
		if _, err := c.Get(context.Background(), p); err == nil || !errors.Is(err, errBadPath) {
			t.Errorf("Get(%q) = %v; want invalid path", p, err)
		}
		if _, err := c.GetFile(context.Background(), p); err == nil || !errors.Is(err, errBadPath) {
			t.Errorf("GetFile(%q) = %v; want invalid path", p, err)
		}
	}
	if n := up.total(); n != 0 {
		t.Errorf("bad paths made %d upstream requests", n)
	}
}
