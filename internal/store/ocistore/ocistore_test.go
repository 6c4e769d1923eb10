package ocistore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/ocistore/ocitest"
)

const repoPath = "ferry/store"

// registry is a real OCI registry (distribution) on 127.0.0.1.
type registry struct {
	srv  *httptest.Server
	host string // 127.0.0.1:PORT
}

func (r *registry) ref() string { return r.host + "/" + repoPath }

// startRegistry starts a registry with filesystem storage in a temporary
// directory. wrap, if not nil, wraps its handler (to corrupt responses).
func startRegistry(t *testing.T, tls bool, wrap func(http.Handler) http.Handler) *registry {
	t.Helper()
	reg := ocitest.Start(t, ocitest.Options{TLS: tls, Wrap: wrap})
	return &registry{srv: reg.Server, host: reg.Host}
}

// testBundle writes a bundle of n random items (plus one item sharing the
// content of another) and opens it.
func testBundle(t *testing.T, name string, seed uint64, n int) (*bundle.Reader, bundle.MemSource) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	src := bundle.MemSource{}
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: name, Version: "v1"}
	add := func(file string, kind bundle.Kind, data []byte) {
		d := bundle.Digest(data)
		src[d] = data
		mod, _, _ := strings.Cut(file, "/@v/")
		m.Items = append(m.Items, bundle.Item{File: file, Kind: kind, Module: mod, Version: "v1.0.0", Size: int64(len(data)), Digest: d})
	}
	for i := range n {
		data := make([]byte, 1000+rng.IntN(40_000))
		for j := range data {
			data[j] = byte(rng.UintN(256))
		}
		add(fmt.Sprintf("example.com/%s%d/@v/v1.0.0.zip", name, i), bundle.KindZip, data)
	}
	gomod := []byte("module example.com/" + name + "\n\ngo 1.22\n")
	add("example.com/"+name+"/@v/v1.0.0.mod", bundle.KindMod, gomod)
	add("example.com/"+name+"-copy/@v/v1.0.0.mod", bundle.KindMod, gomod) // same digest twice
	add("example.com/"+name+"/@v/v1.0.0.info", bundle.KindInfo, []byte{}) // empty blob
	path := filepath.Join(t.TempDir(), name+".ferry")
	if _, err := bundle.Write(context.Background(), path, m, src, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, src
}

// counter is an http.RoundTripper that counts what a Store sends.
type counter struct {
	rt http.RoundTripper

	uploads   atomic.Int64 // blob uploads started (POST .../blobs/uploads/)
	commits   atomic.Int64 // blob uploads finished (PUT ...?digest=)
	manifests atomic.Int64 // manifest PUTs
	// afterManifest, if set, is called after each stored manifest.
	afterManifest func(n int64)
	mu            sync.Mutex
	gets          map[string]int // blob GETs by digest

	// afterCommit, if set, is called after each finished blob upload.
	afterCommit func(n int64)
}

func newCounter() *counter {
	return &counter{rt: http.DefaultTransport, gets: make(map[string]int)}
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	p := req.URL.Path
	switch {
	case req.Method == http.MethodPost && strings.HasSuffix(p, "/blobs/uploads/"):
		c.uploads.Add(1)
	case req.Method == http.MethodPut && strings.Contains(p, "/manifests/"):
		c.manifests.Add(1)
	case req.Method == http.MethodGet && strings.Contains(p, "/blobs/sha256:"):
		c.mu.Lock()
		c.gets[p[strings.LastIndex(p, "/")+1:]]++
		c.mu.Unlock()
	}
	resp, err := c.rt.RoundTrip(req)
	if err == nil && req.Method == http.MethodPut && req.URL.Query().Get("digest") != "" && resp.StatusCode == http.StatusCreated {
		n := c.commits.Add(1)
		if c.afterCommit != nil {
			c.afterCommit(n)
		}
	}
	if err == nil && req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") && resp.StatusCode == http.StatusCreated && c.afterManifest != nil {
		c.afterManifest(c.manifests.Load())
	}
	return resp, err
}

func (c *counter) blobGets(digest string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets[digest]
}

func openStore(t *testing.T, reg *registry, rt http.RoundTripper, cache bool) *Store {
	t.Helper()
	opt := Options{PlainHTTP: true, Transport: rt}
	if cache {
		opt.CacheDir = t.TempDir()
	}
	s, err := Open(context.Background(), reg.ref(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*Store)
}

// checkBundle reads back the manifest and every blob of r through s.
func checkBundle(t *testing.T, s store.Store, r *bundle.Reader, src bundle.MemSource) {
	t.Helper()
	ctx := context.Background()
	m, err := s.Manifest(ctx, r.Digest())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := bundle.EncodeManifest(r.Manifest())
	got, _ := bundle.EncodeManifest(m)
	if !bytes.Equal(got, want) {
		t.Fatalf("Manifest(%s) differs from the bundle's", r.Digest())
	}
	for _, it := range m.Items {
		b, err := s.Blob(ctx, r.Digest(), it.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if b.Size() != it.Size {
			t.Fatalf("Blob %s: Size %d, want %d", it.Digest, b.Size(), it.Size)
		}
		data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, src[it.Digest]) {
			t.Fatalf("Blob %s (%s): bytes differ from the bundle's", it.Digest, it.File)
		}
	}
}

func TestImportListRead(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false, nil)
	c := newCounter()
	s := openStore(t, reg, c, true)

	list, err := s.List(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("List of an empty repository = %v, %v; want none", list, err)
	}
	r, src := testBundle(t, "alpha", 1, 5)
	imported := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := s.Import(ctx, r, store.BundleInfo{Signer: "release", Imported: imported}); err != nil {
		t.Fatal(err)
	}
	// 5 random items + 1 go.mod + 1 empty blob, and the ferry manifest; the
	// import record adds its config and the empty JSON blob.
	if got := c.uploads.Load(); got != 10 {
		t.Errorf("first import uploaded %d blobs, want 10", got)
	}
	list, err = s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(r.Path())
	want := []store.BundleInfo{{
		Digest: r.Digest(), ManifestDigest: r.ManifestDigest(), Name: "alpha", Version: "v1",
		Imported: imported, Signer: "release", Size: fi.Size(), Items: len(r.Manifest().Items),
	}}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("List = %+v\nwant %+v", list, want)
	}
	checkBundle(t, s, r, src)

	// A fresh Store (no in-memory state) reads the same.
	s2 := openStore(t, reg, nil, false)
	if list2, err := s2.List(ctx); err != nil || !reflect.DeepEqual(list2, want) {
		t.Fatalf("fresh Store: List = %+v, %v\nwant %+v", list2, err, want)
	}
	checkBundle(t, s2, r, src)

	// Importing again changes nothing: no upload, no manifest, same record.
	uploads, manifests := c.uploads.Load(), c.manifests.Load()
	if err := s.Import(ctx, r, store.BundleInfo{Signer: "other"}); err != nil {
		t.Fatal(err)
	}
	if c.uploads.Load() != uploads || c.manifests.Load() != manifests {
		t.Errorf("second import uploaded %d blobs and %d manifests, want none", c.uploads.Load()-uploads, c.manifests.Load()-manifests)
	}
	if list2, err := s2.List(ctx); err != nil || !reflect.DeepEqual(list2, want) {
		t.Fatalf("after second import: List = %+v, %v\nwant %+v", list2, err, want)
	}

	// Unknown bundles and blobs.
	if _, err := s.Blob(ctx, r.Digest(), r.ManifestDigest()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Blob of the manifest digest: %v, want fs.ErrNotExist", err)
	}
	other := bundle.Digest([]byte("no such bundle"))
	if _, err := s.Manifest(ctx, other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Manifest of an unknown bundle: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Manifest(ctx, "sha256:../../x"); err == nil {
		t.Error("Manifest of an invalid digest: no error")
	}
}

func TestTwoReplicas(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false, nil)
	c1, c2 := newCounter(), newCounter()
	s1 := openStore(t, reg, c1, true)
	s2 := openStore(t, reg, c2, true)

	a, srcA := testBundle(t, "alpha", 1, 4)
	b, srcB := testBundle(t, "beta", 2, 4)
	if err := s1.Import(ctx, a, store.BundleInfo{Imported: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	l2, err := s2.List(ctx)
	if err != nil || len(l2) != 1 || l2[0].Digest != a.Digest() {
		t.Fatalf("replica 2 List after import through replica 1 = %+v, %v", l2, err)
	}
	// Replica 2 imports beta; it shares blobs (none here) and skips nothing it lacks.
	if err := s2.Import(ctx, b, store.BundleInfo{Imported: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	l1, err := s1.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l2, err = s2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l1, l2) || len(l1) != 2 || l1[0].Digest != a.Digest() || l1[1].Digest != b.Digest() {
		t.Fatalf("replicas disagree or wrong order:\n1: %+v\n2: %+v", l1, l2)
	}
	for _, s := range []store.Store{s1, s2} {
		checkBundle(t, s, a, srcA)
		checkBundle(t, s, b, srcB)
	}
	// Everything now comes from the caches: no blob is fetched twice.
	for _, s := range []*Store{s1, s2} {
		checkBundle(t, s, a, srcA)
		checkBundle(t, s, b, srcB)
	}
	for d := range srcA {
		if n1, n2 := c1.blobGets(d), c2.blobGets(d); n1 > 1 || n2 > 1 {
			t.Errorf("blob %s fetched %d and %d times, want at most once per replica", d, n1, n2)
		}
	}
}

func TestConcurrentBlobFetchesOnce(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t, false, nil)
	a, srcA := testBundle(t, "alpha", 1, 3)
	if err := openStore(t, reg, nil, false).Import(ctx, a, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	c := newCounter()
	s := openStore(t, reg, c, true)
	it := a.Manifest().Items[0]
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			b, err := s.Blob(ctx, a.Digest(), it.Digest)
			if err != nil {
				errs <- err
				return
			}
			data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
			b.Close()
			if err == nil && !bytes.Equal(data, srcA[it.Digest]) {
				err = fmt.Errorf("blob %s: wrong bytes", it.Digest)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.blobGets(it.Digest); n != 1 {
		t.Errorf("16 concurrent Blob calls fetched the blob %d times, want 1", n)
	}
}

func TestKilledImport(t *testing.T) {
	reg := startRegistry(t, false, nil)
	r, src := testBundle(t, "alpha", 3, 12)

	// Import, cancelled after the third finished blob upload.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCounter()
	c.afterCommit = func(n int64) {
		if n == 3 {
			cancel()
		}
	}
	s := openStore(t, reg, c, false)
	if err := s.Import(ctx, r, store.BundleInfo{}); err == nil {
		t.Fatal("cancelled import succeeded")
	}
	other := openStore(t, reg, nil, false)
	for _, st := range []*Store{s, other} {
		if l, err := st.List(context.Background()); err != nil || len(l) != 0 {
			t.Fatalf("List after a killed import = %+v, %v; want nothing", l, err)
		}
	}
	if _, err := other.Manifest(context.Background(), r.Digest()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Manifest after a killed import: %v, want fs.ErrNotExist", err)
	}

	// Which blobs did the registry keep? An upload the client gave up on may
	// still be committed by the registry a moment later: count until the
	// answer is stable.
	countMissing := func() int {
		var missing int
		for _, bl := range r.Blobs() {
			if bl.Digest == r.Digest() {
				continue // the OCI manifest is not a blob upload
			}
			req, _ := http.NewRequest(http.MethodHead, reg.srv.URL+"/v2/"+repoPath+"/blobs/"+bl.Digest, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				missing++
			}
		}
		return missing
	}
	missing := countMissing()
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		again := countMissing()
		if again == missing {
			break
		}
		missing = again
	}
	if missing == 0 || missing == len(r.Blobs())-1 {
		t.Fatalf("%d of %d blobs missing after the killed import: it was not killed midway", missing, len(r.Blobs())-1)
	}

	// A rerun uploads exactly what is missing, plus the import record's two blobs.
	c2 := newCounter()
	s2 := openStore(t, reg, c2, true)
	if err := s2.Import(context.Background(), r, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	if got, want := c2.uploads.Load(), int64(missing+2); got != want {
		t.Errorf("rerun uploaded %d blobs, want %d (%d missing + 2 for the import record)", got, want, missing)
	}
	l, err := other.List(context.Background())
	if err != nil || len(l) != 1 || l[0].Digest != r.Digest() {
		t.Fatalf("List after the rerun = %+v, %v", l, err)
	}
	checkBundle(t, other, r, src)
}

// corrupting returns a registry wrapper that flips the first byte of the
// body of GET responses for blob digest.
func corrupting(digest string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, "/blobs/"+digest) {
				h.ServeHTTP(w, req)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[0] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
}

func TestWrongDigestRefused(t *testing.T) {
	ctx := context.Background()
	r, _ := testBundle(t, "alpha", 1, 3)
	var item bundle.Item
	for _, it := range r.Manifest().Items {
		if it.Size > 0 {
			item = it
			break
		}
	}
	for _, tc := range []struct {
		name, digest string
	}{
		{"item", item.Digest},
		{"ferry manifest", r.ManifestDigest()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var corrupt atomic.Bool
			wrap := corrupting(tc.digest)
			reg := startRegistry(t, false, func(h http.Handler) http.Handler {
				bad := wrap(h)
				return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					if corrupt.Load() {
						bad.ServeHTTP(w, req)
					} else {
						h.ServeHTTP(w, req)
					}
				})
			})
			if err := openStore(t, reg, nil, false).Import(ctx, r, store.BundleInfo{}); err != nil {
				t.Fatal(err)
			}
			corrupt.Store(true)
			s := openStore(t, reg, nil, true)
			if tc.digest == r.ManifestDigest() {
				if _, err := s.Manifest(ctx, r.Digest()); err == nil {
					t.Fatal("Manifest accepted a corrupted ferry manifest")
				} else {
					t.Log(err)
				}
				return
			}
			b, err := s.Blob(ctx, r.Digest(), tc.digest)
			if err == nil {
				b.Close()
				t.Fatal("Blob accepted a blob with the wrong digest")
			}
			t.Log(err)
			ents, _ := os.ReadDir(s.cache)
			if len(ents) != 0 {
				t.Errorf("cache holds %d entries after a refused blob, want none", len(ents))
			}
			// Once the registry answers right again, the blob is served.
			corrupt.Store(false)
			b, err = s.Blob(ctx, r.Digest(), tc.digest)
			if err != nil {
				t.Fatal(err)
			}
			b.Close()
		})
	}
}

func TestHTTPS(t *testing.T) {
	ctx := context.Background()
	r, src := testBundle(t, "alpha", 1, 2)

	// Without PlainHTTP a registry on plain http is not used, even on loopback.
	plain := startRegistry(t, false, nil)
	s, err := Open(ctx, plain.ref(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Import(ctx, r, store.BundleInfo{}); err == nil {
		t.Fatal("Import over plain http succeeded without PlainHTTP")
	} else {
		t.Log(err)
	}

	reg := startRegistry(t, true, nil)
	s, err = Open(ctx, reg.ref(), Options{Transport: reg.srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Import(ctx, r, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	checkBundle(t, s, r, src)
}

func TestOpenRefs(t *testing.T) {
	for _, ref := range []string{"oci://127.0.0.1:5000/ferry", "127.0.0.1:5000/Upper", "", "127.0.0.1:5000/a:tag"} {
		if _, err := Open(context.Background(), ref, Options{}); err == nil {
			t.Errorf("Open(%q): no error", ref)
		}
	}
}

// TestSkopeo inspects a pushed bundle with skopeo, an independent client.
func TestSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("skopeo not installed")
		}
		t.Skip("skopeo not installed")
	}
	ctx := context.Background()
	reg := startRegistry(t, false, nil)
	r, _ := testBundle(t, "alpha", 1, 2)
	s := openStore(t, reg, nil, false)
	if err := s.Import(ctx, r, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	tag := bundleTagPrefix + r.Digest()[len("sha256:"):][:tagHexLen]
	out, err := exec.CommandContext(ctx, skopeo, "inspect", "--raw", "--tls-verify=false",
		"docker://"+reg.ref()+":"+tag).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	want, err := readAll(r, r.Digest(), maxBundleManifest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("skopeo sees manifest\n%s\nwant the bundle's\n%s", out, want)
	}
}

// TestKilledAfterBundleManifest kills an import between the bundle manifest
// and the import record: the bundle is in the registry but not listed.
func TestKilledAfterBundleManifest(t *testing.T) {
	reg := startRegistry(t, false, nil)
	r, src := testBundle(t, "alpha", 4, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCounter()
	c.afterManifest = func(int64) { cancel() }
	if err := openStore(t, reg, c, false).Import(ctx, r, store.BundleInfo{}); err == nil {
		t.Fatal("cancelled import succeeded")
	}
	if c.manifests.Load() != 1 {
		t.Fatalf("%d manifests pushed before the cancel took effect, want 1", c.manifests.Load())
	}
	other := openStore(t, reg, nil, false)
	if l, err := other.List(context.Background()); err != nil || len(l) != 0 {
		t.Fatalf("List with the bundle manifest but no import record = %+v, %v; want nothing", l, err)
	}
	c2 := newCounter()
	if err := openStore(t, reg, c2, false).Import(context.Background(), r, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	if got := c2.uploads.Load(); got != 2 {
		t.Errorf("rerun uploaded %d blobs, want 2 (the import record's)", got)
	}
	if l, err := other.List(context.Background()); err != nil || len(l) != 1 {
		t.Fatalf("List after the rerun = %+v, %v", l, err)
	}
	checkBundle(t, other, r, src)
}

func isStatus(err error, code int) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == code
}

// staticKeychain gives one user name and password for every registry.
type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

func TestAuth(t *testing.T) {
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("ferry:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := ocitest.Start(t, ocitest.Options{TLS: true, Htpasswd: htpasswd})
	reg := &registry{srv: o.Server, host: o.Host}
	r, src := testBundle(t, "alpha", 1, 2)
	open := func(k authn.Keychain) store.Store {
		s, err := Open(ctx, reg.ref(), Options{Transport: reg.srv.Client().Transport, Auth: k})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := open(staticKeychain{"ferry", "wrong"}).Import(ctx, r, store.BundleInfo{}); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("Import with a wrong password: %v, want 401", err)
	}
	if _, err := open(authn.NewMultiKeychain()).List(ctx); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("anonymous List on a registry that requires a login: %v, want 401", err)
	}
	s := open(staticKeychain{"ferry", "s3cret"})
	if err := s.Import(ctx, r, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	checkBundle(t, s, r, src)
}

func TestStaleTempsRemoved(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, fresh, blob := filepath.Join(dir, "ab.tmp-1"), filepath.Join(dir, "ab.tmp-2"), filepath.Join(dir, "ab")
	for _, p := range []string{old, fresh, blob} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{old, blob} {
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(context.Background(), "127.0.0.1:1/ferry/store", Options{PlainHTTP: true, CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{old: false, fresh: true, blob: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
