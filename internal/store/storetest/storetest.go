// Package storetest holds conformance tests that every store.Store must
// pass. It is for tests only.
//
// Invariant: each test uses only the store.Store (and store.Pruner)
// interface, so the local and the OCI store are held to the same behaviour.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
)

// Delta checks deltas and pruning: a delta is refused until its base is
// imported; then it reads the blobs it left out through its base; pruning the
// base keeps those blobs readable (gc, if not nil, runs the store's garbage
// collection first); pruning a bundle not in the store says so.
func Delta(t *testing.T, st store.Store, gc func() error) {
	ctx := context.Background()
	dir := t.TempDir()
	baseFiles := map[string][]byte{
		"example.com/a/@v/v1.0.0.mod":  []byte("module example.com/a\n"),
		"example.com/a/@v/v1.0.0.info": []byte(`{"Version":"v1.0.0"}`),
		"example.com/a/@v/v1.0.0.zip":  bytes.Repeat([]byte("base zip "), 1000),
	}
	all := map[string][]byte{
		"example.com/b/@v/v1.0.0.mod": []byte("module example.com/b\n"),
		"example.com/b/@v/v1.0.0.zip": bytes.Repeat([]byte("new zip "), 500),
	}
	for f, d := range baseFiles {
		all[f] = d
	}
	basePath := testbundle.Write(t, dir, "base.ferry", baseFiles)
	deltaPath := testbundle.WriteDelta(t, dir, "delta.ferry", basePath, all)
	open := func(p string) *bundle.Reader {
		r, err := bundle.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	base, delta := open(basePath), open(deltaPath)

	err := st.Import(ctx, delta, store.BundleInfo{})
	if err == nil || !strings.Contains(err.Error(), "is a delta of base.ferry") || !strings.Contains(err.Error(), "import that bundle first") {
		t.Fatalf("importing a delta without its base: err = %v", err)
	}
	if infos, _ := st.List(ctx); len(infos) != 0 {
		t.Fatalf("refused import listed %d bundles", len(infos))
	}
	if err := st.Import(ctx, base, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Import(ctx, delta, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	readAll := func(what string) {
		t.Helper()
		for f, data := range all {
			b, err := st.Blob(ctx, delta.Digest(), bundle.Digest(data))
			if err != nil {
				t.Fatalf("%s: reading %s through the delta: %v", what, f, err)
			}
			got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
			b.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: %s through the delta: %v, %d bytes, want %d", what, f, err, len(got), len(data))
			}
		}
	}
	readAll("with the base")

	p, ok := st.(store.Pruner)
	if !ok {
		t.Fatal("store cannot prune")
	}
	rep, err := p.Prune(ctx, base.Digest())
	if err != nil {
		t.Fatalf("pruning the base: %v", err)
	}
	if rep.KeptBlobs != len(baseFiles) {
		t.Errorf("pruning the base kept %d blobs, want the %d the delta reads", rep.KeptBlobs, len(baseFiles))
	}
	if gc != nil {
		if err := gc(); err != nil {
			t.Fatalf("garbage collection: %v", err)
		}
	}
	infos, err := st.List(ctx)
	if err != nil || len(infos) != 1 || infos[0].Digest != delta.Digest() {
		t.Fatalf("after pruning the base: list = %v, %v", infos, err)
	}
	readAll("after pruning the base")

	if _, err := p.Prune(ctx, base.Digest()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pruning it again: err = %v, want not exist", err)
	}
	if _, err := p.Prune(ctx, delta.Digest()); err != nil {
		t.Fatalf("pruning the delta: %v", err)
	}
	if infos, err := st.List(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("after pruning both: list = %v, %v", infos, err)
	}
}
