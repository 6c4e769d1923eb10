package local

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

func TestDeltaAndPrune(t *testing.T) {
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.Delta(t, st, nil)
}

// TestDeltaBasePrunedByAnotherProcess: a server that has read a delta's base
// blobs through the base (and remembers where the base is) keeps reading
// them after another process prunes the base.
func TestDeltaBasePrunedByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	dir, work := t.TempDir(), t.TempDir()
	baseFiles := map[string][]byte{"example.com/a/@v/v1.0.0.zip": bytes.Repeat([]byte("base "), 500)}
	all := map[string][]byte{"example.com/b/@v/v1.0.0.mod": []byte("module example.com/b\n")}
	for f, d := range baseFiles {
		all[f] = d
	}
	basePath := testbundle.Write(t, work, "base.ferry", baseFiles)
	deltaPath := testbundle.WriteDelta(t, work, "delta.ferry", basePath, all)
	server, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	importer, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer importer.Close()
	var digests [2]string
	for i, p := range []string{basePath, deltaPath} {
		r, err := bundle.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := importer.Import(ctx, r, store.BundleInfo{}); err != nil {
			t.Fatal(err)
		}
		digests[i] = r.Digest()
		r.Close()
	}
	want := baseFiles["example.com/a/@v/v1.0.0.zip"]
	read := func(what string) {
		t.Helper()
		b, err := server.Blob(ctx, digests[1], bundle.Digest(want))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer b.Close()
		if got, _ := io.ReadAll(io.NewSectionReader(b, 0, b.Size())); !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes, want %d", what, len(got), len(want))
		}
	}
	read("before the prune")
	if _, err := importer.Prune(ctx, digests[0]); err != nil {
		t.Fatal(err)
	}
	read("after another process pruned the base")
}
