package local_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

func open(t *testing.T, p string) *bundle.Reader {
	t.Helper()
	r, err := bundle.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestImportListBlob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := testbundle.Write(t, dir, "one.ferry", map[string][]byte{
		"example.com/a/@v/v1.0.0.mod": []byte("module example.com/a\n"),
	})
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if l, err := st.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List of a new store = %v, %v", l, err)
	}
	r := open(t, p)
	for range 2 { // the second import changes nothing
		if err := st.Import(ctx, r, store.BundleInfo{Signer: "me"}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := st.List(ctx)
	if err != nil || len(l) != 1 {
		t.Fatalf("List = %v, %v", l, err)
	}
	fi, _ := os.Stat(p)
	if in := l[0]; in.Digest != r.Digest() || in.ManifestDigest != r.ManifestDigest() || in.Signer != "me" ||
		in.Name != "one.ferry" || in.Size != fi.Size() || in.Items != 1 || in.Imported.IsZero() {
		t.Errorf("BundleInfo = %+v", in)
	}
	m, err := st.Manifest(ctx, r.Digest())
	if err != nil || len(m.Items) != 1 {
		t.Fatalf("Manifest = %v, %v", m, err)
	}
	b, err := st.Blob(ctx, r.Digest(), m.Items[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil || string(data) != "module example.com/a\n" {
		t.Errorf("Blob = %q, %v", data, err)
	}
	b.Close()
	if _, err := st.Blob(ctx, r.Digest(), "sha256:"+fmt.Sprintf("%064d", 0)); err == nil {
		t.Error("Blob of an unknown digest: no error")
	}
	if _, err := st.Manifest(ctx, "sha256:../../etc"); err == nil {
		t.Error("Manifest of a malformed digest: no error")
	}
	// The source may go away: the store has its own copy.
	os.Remove(p)
	st2, err := local.Open(st.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if _, err := st2.Manifest(ctx, r.Digest()); err != nil {
		t.Error(err)
	}
}

// TestConcurrentImporters: two handles (as two processes) import different
// bundles at once; both end up listed.
func TestConcurrentImporters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sdir := filepath.Join(dir, "store")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		p := testbundle.Write(t, dir, fmt.Sprintf("b%d.ferry", i), map[string][]byte{
			fmt.Sprintf("example.com/m%d/@v/v1.0.0.mod", i): fmt.Appendf(nil, "module example.com/m%d\n", i),
		})
		r := open(t, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := local.Open(sdir)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			errs[i] = st.Import(ctx, r, store.BundleInfo{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, _ := local.Open(sdir)
	defer st.Close()
	l, err := st.List(ctx)
	if err != nil || len(l) != 4 {
		t.Fatalf("List = %d bundles, %v", len(l), err)
	}
	left, _ := filepath.Glob(filepath.Join(sdir, "*", ".*.tmp"))
	left2, _ := filepath.Glob(filepath.Join(sdir, ".*.tmp"))
	if len(left)+len(left2) > 0 {
		t.Errorf("temporary files left: %v %v", left, left2)
	}
}

// TestImportCanceled: a canceled import leaves the store as it was.
func TestImportCanceled(t *testing.T) {
	dir := t.TempDir()
	p := testbundle.Write(t, dir, "one.ferry", map[string][]byte{
		"example.com/a/@v/v1.0.0.mod": []byte("module example.com/a\n"),
	})
	st, _ := local.Open(filepath.Join(dir, "store"))
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Import(ctx, open(t, p), store.BundleInfo{}); err == nil {
		t.Fatal("canceled import: no error")
	}
	if l, err := st.List(context.Background()); err != nil || len(l) != 0 {
		t.Errorf("List after a canceled import = %v, %v", l, err)
	}
	if err := st.Import(context.Background(), open(t, p), store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
}
