package local

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
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

// baseAndDelta imports into st a base bundle holding one zip and a delta of
// it that adds a go.mod (and leaves the zip to the base). It returns their
// digests and the zip's bytes.
func baseAndDelta(t *testing.T, st *Store) ([2]string, []byte) {
	t.Helper()
	work := t.TempDir()
	zipData := bytes.Repeat([]byte("base "), 500)
	baseFiles := map[string][]byte{"example.com/a/@v/v1.0.0.zip": zipData}
	all := map[string][]byte{"example.com/b/@v/v1.0.0.mod": []byte("module example.com/b\n"), "example.com/a/@v/v1.0.0.zip": zipData}
	basePath := testbundle.Write(t, work, "base.ferry", baseFiles)
	deltaPath := testbundle.WriteDelta(t, work, "delta.ferry", basePath, all)
	return [2]string{testbundle.Import(t, st, basePath), testbundle.Import(t, st, deltaPath)}, zipData
}

// TestDeltaBasePrunedByAnotherProcess: a server that has read a delta's base
// blobs through the base (and remembers where the base is) keeps reading
// them after another process prunes the base.
func TestDeltaBasePrunedByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
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
	digests, want := baseAndDelta(t, importer)
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

// TestKeptBlobsGoWithTheLastDelta: blobs Prune kept aside for a delta whose
// base it dropped are removed (and counted as freed) when that delta goes.
func TestKeptBlobsGoWithTheLastDelta(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	digests, blob := baseAndDelta(t, st)
	rep, err := st.Prune(ctx, digests[0])
	if err != nil || rep.KeptBlobs != 1 {
		t.Fatalf("prune of the base: %+v, %v; want one blob kept", rep, err)
	}
	kept := filepath.Join(dir, filepath.FromSlash(looseDir), strings.TrimPrefix(bundle.Digest(blob), "sha256:"))
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("kept blob: %v", err)
	}
	rep, err = st.Prune(ctx, digests[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kept); err == nil {
		t.Fatal("the kept blob outlived the last delta that read it")
	}
	if rep.FreedBytes < int64(len(blob)) {
		t.Errorf("FreedBytes %d does not count the kept blob", rep.FreedBytes)
	}
}
