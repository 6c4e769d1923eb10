package ocistore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/store/ocistore"
	"github.com/ferry-dev/ferry/internal/store/ocistore/ocitest"
)

// replica is one `ferry serve` over a store.
type replica struct {
	st  store.Store
	srv *serve.Server
	ts  *httptest.Server
}

func newReplica(t *testing.T, st store.Store) *replica {
	t.Helper()
	srv, err := serve.New(st, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler(serve.Routes{}))
	t.Cleanup(ts.Close)
	return &replica{st: st, srv: srv, ts: ts}
}

// answer is what a replica answers for one path.
type answer struct {
	code int
	etag string
	body string
}

func (r *replica) get(t *testing.T, p string) answer {
	t.Helper()
	resp, err := http.Get(r.ts.URL + p)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("ETag"), string(body)}
}

// TestReplicasServeSameBytes runs two servers over one registry-backed
// store (separate blob caches) and one over a local store holding the same
// bundles: every path answers the same bytes on all three, and a bundle
// imported through one replica is served by the other after its refresh.
func TestReplicasServeSameBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	reg := ocitest.Start(t, ocitest.Options{})
	ref := reg.Host + "/ferry/store"
	openOCI := func() store.Store {
		st, err := ocistore.Open(ctx, ref, ocistore.Options{PlainHTTP: true, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	loc, err := local.Open(filepath.Join(dir, "local"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loc.Close() })
	r1, r2, rl := newReplica(t, openOCI()), newReplica(t, openOCI()), newReplica(t, loc)

	zip := make([]byte, 300_000)
	for i := range zip {
		zip[i] = byte(i * 7)
	}
	files1 := map[string][]byte{
		"example.com/a/@v/v1.0.0.info":                            []byte(`{"Version":"v1.0.0"}`),
		"example.com/a/@v/v1.0.0.mod":                             []byte("module example.com/a\n"),
		"example.com/a/@v/v1.0.0.zip":                             zip,
		"example.com/!upper/@v/v0.1.0.mod":                        []byte("module example.com/Upper\n"),
		"example.com/!upper/@v/v0.1.0.info":                       []byte(`{"Version":"v0.1.0"}`),
		"sumdb/" + testbundle.DB + "/latest":                      testbundle.Head(t, 5),
		"sumdb/" + testbundle.DB + "/tile/8/0/000.p/5":            []byte("tile5"),
		"sumdb/" + testbundle.DB + "/lookup/example.com/a@v1.0.0": testbundle.Lookup(t, 1, "example.com/a v1.0.0 h1:x=\n", 5),
	}
	files2 := map[string][]byte{
		"example.com/a/@v/v1.0.0.info":                            []byte(`{"Version":"v1.0.0","Time":"other"}`),
		"example.com/a/@v/v1.1.0.info":                            []byte(`{"Version":"v1.1.0"}`),
		"example.com/a/@v/v1.1.0.mod":                             []byte("module example.com/a\n"),
		"example.com/b/@v/v2.0.0+incompatible.mod":                []byte("module example.com/b\n"),
		"example.com/b/@v/v2.0.0+incompatible.info":               []byte(`{"Version":"v2.0.0+incompatible"}`),
		"golang.org/toolchain/@v/v0.0.1-go1.99.1.linux-amd64.zip": []byte("toolchain zip"),
		"sumdb/" + testbundle.DB + "/latest":                      testbundle.Head(t, 9),
		"sumdb/" + testbundle.DB + "/tile/8/0/000.p/9":            []byte("tile9"),
		"sumdb/" + testbundle.DB + "/lookup/example.com/a@v1.1.0": testbundle.Lookup(t, 6, "example.com/a v1.1.0 h1:y=\n", 9),
	}
	b1 := testbundle.Write(t, dir, "b1.ferry", files1)
	b2 := testbundle.Write(t, dir, "b2.ferry", files2)

	paths := []string{
		"/example.com/a/@v/list", "/example.com/a/@latest", "/example.com/b/@v/list",
		"/example.com/!upper/@v/list", "/golang.org/toolchain/@v/list",
		"/sumdb/" + testbundle.DB + "/supported", "/example.com/nope/@v/list",
		"/example.com/a/@v/v9.9.9.zip",
	}
	for _, files := range []map[string][]byte{files1, files2} {
		for f := range files {
			paths = append(paths, "/"+f)
		}
	}
	sort.Strings(paths)
	refresh := func() {
		t.Helper()
		for _, r := range []*replica{r1, r2, rl} {
			if err := r.srv.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare := func(step string) {
		t.Helper()
		var served int
		for _, p := range paths {
			a1, a2, al := r1.get(t, p), r2.get(t, p), rl.get(t, p)
			if a1 != a2 || a1 != al {
				t.Errorf("%s: GET %s differs: replica 1 %d %s (%d bytes), replica 2 %d %s (%d bytes), local %d %s (%d bytes)",
					step, p, a1.code, a1.etag, len(a1.body), a2.code, a2.etag, len(a2.body), al.code, al.etag, len(al.body))
			}
			if a1.code == http.StatusOK {
				served++
			}
		}
		t.Logf("%s: %d of %d paths served (200) alike by both replicas and the local store", step, served, len(paths))
	}

	testbundle.Import(t, r1.st, b1) // through replica 1
	testbundle.Import(t, loc, b1)
	refresh()
	compare("after bundle 1")
	if a := r2.get(t, "/example.com/a/@v/v1.0.0.zip"); a.code != 200 || a.body != string(zip) {
		t.Fatalf("replica 2 does not serve bundle 1 imported through replica 1: %d, %d bytes", a.code, len(a.body))
	}

	testbundle.Import(t, r2.st, b2) // through replica 2
	testbundle.Import(t, loc, b2)
	refresh()
	compare("after bundle 2")
	if a := r1.get(t, "/example.com/b/@v/v2.0.0+incompatible.mod"); a.code != 200 || a.body != "module example.com/b\n" {
		t.Fatalf("replica 1 does not serve bundle 2 imported through replica 2: %d %q", a.code, a.body)
	}
	if a := r1.get(t, "/"); a.code == http.StatusOK {
		if b := r2.get(t, "/"); b != a {
			t.Errorf("browse pages of the replicas differ")
		}
	}
}
