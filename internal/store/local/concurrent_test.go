package local

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/store"
)

// Many requests read blobs at once, the first ones racing to open the
// bundle (run with -race): each gets its bytes, and the bundle is opened once.
func TestConcurrentBlob(t *testing.T) {
	ctx := context.Background()
	data := map[string][]byte{}
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: "concurrent"}
	src := bundle.MemSource{}
	for _, f := range []string{"a", "b", "c", "d"} {
		b := []byte("content of " + f)
		d := bundle.Digest(b)
		src[d], data[d] = b, b
		m.Items = append(m.Items, bundle.Item{File: "example.com/" + f + "/@v/v1.0.0.mod", Kind: bundle.KindMod,
			Module: "example.com/" + f, Version: "v1.0.0", Size: int64(len(b)), Digest: d})
	}
	p := filepath.Join(t.TempDir(), "c.ferry")
	if _, err := bundle.Write(ctx, p, m, src, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Import(ctx, r, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	st.Close() // forget the reader Import left open
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				for d, want := range data {
					b, err := st.Blob(ctx, r.Digest(), d)
					if err != nil {
						t.Error(err)
						return
					}
					got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
					b.Close()
					if err != nil || string(got) != string(want) {
						t.Errorf("blob %s: %q, %v; want %q", d, got, err, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	st.mu.RLock()
	n := len(st.readers)
	st.mu.RUnlock()
	if n != 1 {
		t.Fatalf("%d open readers, want 1", n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
