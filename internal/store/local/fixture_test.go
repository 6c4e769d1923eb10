package local_test

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// Helpers of the kill, mode and verify-then-use tests: a fixture of three
// bundles, what a server of a store answers, and checks of what a store
// holds.

// serveStore serves st as 'ferry serve' does (on 127.0.0.1) and returns,
// for every GOPROXY file of every listed bundle and each of extra, the
// digest of what a GET of it answers ("404" if not found). It also reads every blob of every listed bundle and every
// decoded file of an encoded item through the store, and checks them
// against the manifest, and what the gzip of each decoded file
// decompresses to.
func serveStore(ctx context.Context, st *local.Store, extra []string) (map[string]string, error) {
	infos, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	paths := extra
	for _, in := range infos {
		m, err := st.Manifest(ctx, in.Digest)
		if err != nil {
			return nil, err
		}
		for _, it := range m.Items {
			b, err := st.Blob(ctx, in.Digest, it.Digest)
			if err != nil {
				return nil, fmt.Errorf("bundle %s: %s: %w", in.Name, it.File, err)
			}
			d, err := digestOf(io.NewSectionReader(b, 0, b.Size()))
			b.Close()
			if err != nil || d != it.Digest {
				return nil, fmt.Errorf("bundle %s: %s: blob reads as %s (%v), want %s", in.Name, it.File, d, err, it.Digest)
			}
			if it.Encoded() {
				f, err := st.File(ctx, it.FileDigest)
				if err != nil {
					return nil, fmt.Errorf("bundle %s: %s: decoded file: %w", in.Name, it.File, err)
				}
				d, err := digestOf(io.NewSectionReader(f, 0, f.Size()))
				f.Close()
				if err != nil || d != it.FileDigest {
					return nil, fmt.Errorf("bundle %s: %s: decoded file reads as %s (%v), want %s", in.Name, it.File, d, err, it.FileDigest)
				}
				if d, err := gunzipDigest(ctx, st, it.FileDigest); err != nil || d != it.FileDigest {
					return nil, fmt.Errorf("bundle %s: %s: gzip of the decoded file decompresses to %s (%v), want %s", in.Name, it.File, d, err, it.FileDigest)
				}
			}
			if strings.Contains(it.File, "/@v/") {
				paths = append(paths, it.File)
			}
		}
	}
	srv, err := serve.New(st, serve.Options{})
	if err != nil {
		return nil, err
	}
	if err := srv.Refresh(ctx); err != nil {
		return nil, err
	}
	ts := httptest.NewServer(srv.Handler(serve.Routes{}))
	defer ts.Close()
	got := map[string]string{}
	for _, p := range paths {
		d, err := get(ts.URL + "/" + p)
		if err != nil {
			return nil, err
		}
		got[p] = d
	}
	return got, nil
}

// get returns the digest of the body of a 200 answer to GET url, or the
// status ("404") of another.
func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return strconv.Itoa(resp.StatusCode), nil
	}
	return digestOf(resp.Body)
}

// gunzipDigest returns the digest of what the store's gzip of the decoded
// file digest decompresses to.
func gunzipDigest(ctx context.Context, st *local.Store, digest string) (string, error) {
	b, err := st.Gzip(ctx, digest)
	if err != nil {
		return "", err
	}
	defer b.Close()
	zr, err := gzip.NewReader(io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		return "", err
	}
	return digestOf(zr)
}

func digestOf(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// want is what a server of the bundles at paths answers for the GOPROXY
// files all: each item's digest, or its decoded file's for an encoded one,
// and "404" for the files of all no bundle holds.
func want(t *testing.T, all []string, paths ...string) map[string]string {
	t.Helper()
	w := map[string]string{}
	for _, p := range all {
		w[p] = "404"
	}
	for _, p := range paths {
		for _, it := range open(t, p).Manifest().Items {
			if !strings.Contains(it.File, "/@v/") {
				continue
			}
			w[it.File] = it.Digest
			if it.Encoded() {
				w[it.File] = it.FileDigest
			}
		}
	}
	return w
}

// killFixture is a store's worth of bundles: base, a full bundle sharing a
// zip with it, and a delta of base that drops one of its modules; all
// lists the GOPROXY files of all three.
type killFixture struct {
	base, full, delta string
	all               []string
}

func newKillFixture(t *testing.T) killFixture {
	t.Helper()
	dir := t.TempDir()
	a, b, c, d := modZip(t, "a", 30_000), modZip(t, "b", 2_000), modZip(t, "c", 20_000), modZip(t, "d", 1_000)
	mod := func(name string) []byte { return []byte("module example.com/" + name + "\n") }
	var f killFixture
	f.base = testbundle.WriteEncoded(t, dir, "base.ferry", "", map[string][]byte{
		"example.com/a/@v/v1.0.0.mod":  mod("a"),
		"example.com/a/@v/v1.0.0.info": []byte(`{"Version":"v1.0.0"}`),
		"example.com/b/@v/v1.0.0.mod":  mod("b"),
	}, map[string]testbundle.Zip{zipPath("a"): a, zipPath("b"): b})
	f.full = testbundle.WriteEncoded(t, dir, "full.ferry", "", map[string][]byte{
		"example.com/c/@v/v1.0.0.mod": mod("c"),
	}, map[string]testbundle.Zip{zipPath("a"): a, zipPath("c"): c, zipPath("d"): d})
	f.delta = testbundle.WriteEncoded(t, dir, "delta.ferry", f.base, map[string][]byte{
		"example.com/a/@v/v1.0.0.mod":  mod("a"),
		"example.com/a/@v/v1.0.0.info": []byte(`{"Version":"v1.0.0"}`),
		"example.com/c/@v/v1.0.0.mod":  mod("c"),
	}, map[string]testbundle.Zip{zipPath("a"): a, zipPath("c"): c, zipPath("d"): d})
	f.all = slices.Sorted(maps.Keys(want(t, nil, f.base, f.full, f.delta)))
	return f
}

// storeState is what a reader of a store sees.
type storeState struct {
	list   []store.BundleInfo
	served map[string]string
}

func readState(t *testing.T, dir string, all []string) storeState {
	t.Helper()
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	list, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	served, err := serveStore(ctx, st, all)
	if err != nil {
		t.Fatalf("the store is not whole: %v", err)
	}
	return storeState{list, served}
}

func digests(l []store.BundleInfo) []string {
	var ds []string
	for _, in := range l {
		ds = append(ds, in.Digest)
	}
	return ds
}

func sameList(a, b []store.BundleInfo) bool {
	return slices.EqualFunc(a, b, func(x, y store.BundleInfo) bool {
		return x == y || x.Digest == y.Digest && x.Imported.Equal(y.Imported)
	})
}

// checkTidy checks that the store holds nothing a killed run left: no
// temporary file, a bundle file for each listed bundle and no other, a
// decoded file and a gzip of it for each encoded item of a listed bundle
// and no other, and kept blobs exactly for the listed deltas whose base is
// gone.
func checkTidy(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	list, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bundles, files, kept []string
	manifests := map[string]bool{}
	for _, in := range list {
		manifests[in.ManifestDigest] = true
	}
	for _, in := range list {
		bundles = append(bundles, strings.TrimPrefix(in.Digest, "sha256:")+".ferry")
		m, err := st.Manifest(ctx, in.Digest)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range m.Items {
			if it.Encoded() {
				files = append(files, strings.TrimPrefix(it.FileDigest, "sha256:"))
			}
		}
		if m.Base != nil && !manifests[m.Base.ManifestDigest] {
			r := open(t, filepath.Join(dir, "bundles", strings.TrimPrefix(in.Digest, "sha256:")+".ferry"))
			for _, b := range r.BaseBlobs() {
				kept = append(kept, strings.TrimPrefix(b.Digest, "sha256:"))
			}
		}
	}
	for _, c := range []struct {
		sub  string
		want []string
	}{{"bundles", bundles}, {"files/sha256", files}, {"gz/sha256", files}, {"blobs/sha256", kept}} {
		ents, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(c.sub)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		sort.Strings(got)
		w := slices.Compact(slices.Sorted(slices.Values(c.want)))
		if !slices.Equal(got, w) {
			t.Errorf("%s holds %v, want %v", c.sub, got, w)
		}
	}
}

// stepsReached runs f with a store whose hook records the steps, and
// returns them in order, each repeat of a step once.
func stepsReached(t *testing.T, dir string, f func(st *local.Store)) []string {
	t.Helper()
	var steps []string
	st, err := local.OpenWith(dir, local.Options{Hook: func(s string) {
		if len(steps) == 0 || steps[len(steps)-1] != s {
			steps = append(steps, s)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f(st)
	return steps
}

// TestStepsCovered: an import of a bundle with encoded zips passes every
// step of ImportSteps, in order, and no other; a prune that keeps blobs for
// a delta every step of PruneSteps. The kill tests go through these lists.
func TestStepsCovered(t *testing.T) {
	ctx := context.Background()
	f := newKillFixture(t)
	dir := filepath.Join(t.TempDir(), "store")
	var base string
	got := stepsReached(t, dir, func(st *local.Store) {
		base = testbundle.Import(t, st, f.base)
	})
	if want := local.ImportSteps(); !slices.Equal(got, want) {
		t.Errorf("import passed steps\n%v\nwant\n%v", got, want)
	}
	got = stepsReached(t, dir, func(st *local.Store) {
		testbundle.Import(t, st, f.delta)
		if _, err := st.Prune(ctx, base); err != nil {
			t.Fatal(err)
		}
	})
	if want := append(local.ImportSteps(), local.PruneSteps()...); !slices.Equal(got, want) {
		t.Errorf("import and prune passed steps\n%v\nwant\n%v", got, want)
	}
}
