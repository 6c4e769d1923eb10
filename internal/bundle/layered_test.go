package bundle

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// writeDelta writes the test bundle as base and a second bundle that adds
// one item, as a delta of the base.
func writeDelta(t *testing.T) (basePath, deltaPath string, newData []byte) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	basePath, _ = writeTest(t, dir, "base.ferry", WriteOptions{})
	base, err := Open(basePath)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()

	m, src := testItems(t)
	newData = []byte("module example.com/new\n")
	d := Digest(newData)
	src[d] = newData
	m.Items = append(m.Items, Item{File: "example.com/new/@v/v1.0.0.mod", Kind: KindMod, Module: "example.com/new", Version: "v1.0.0", Size: int64(len(newData)), Digest: d})
	m.Base = &Base{ManifestDigest: base.ManifestDigest(), Name: "test", Version: "v1"}
	inBase := map[string]bool{}
	for _, it := range base.Manifest().Items {
		inBase[it.Digest] = true
	}
	deltaPath = filepath.Join(dir, "delta.ferry")
	if _, err := Write(ctx, deltaPath, m, src, WriteOptions{Omit: func(d string) bool { return inBase[d] }}); err != nil {
		t.Fatal(err)
	}
	return basePath, deltaPath, newData
}

func TestDeltaThroughBase(t *testing.T) {
	ctx := context.Background()
	basePath, deltaPath, newData := writeDelta(t)
	base, err := Open(basePath)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	delta, err := Open(deltaPath)
	if err != nil {
		t.Fatalf("opening delta: %v", err)
	}
	defer delta.Close()
	if !delta.NeedsBase() {
		t.Fatal("delta read alone: NeedsBase = false")
	}
	// The delta file holds only the new blob (plus metadata).
	if n := len(delta.Blobs()); n != 3 {
		t.Errorf("delta file has %d blobs, want 3 (manifest, config, one item)", n)
	}
	l, err := WithBase(delta, base, base.ManifestDigest(), basePath)
	if err != nil {
		t.Fatal(err)
	}
	if l.NeedsBase() {
		t.Error("layered: NeedsBase = true")
	}
	for _, it := range delta.Manifest().Items {
		if err := l.VerifyBlob(ctx, it.Digest); err != nil {
			t.Errorf("%s: %v", it.File, err)
		}
		sr, err := l.Open(it.Digest)
		if err != nil {
			t.Fatalf("%s: %v", it.File, err)
		}
		if sr.Size() != it.Size {
			t.Errorf("%s: size %d, want %d", it.File, sr.Size(), it.Size)
		}
	}
	sr, err := l.Open(Digest(newData))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(sr); !bytes.Equal(got, newData) {
		t.Errorf("new item reads %q", got)
	}
	if got, want := len(l.Blobs()), 3+len(distinct(base.Manifest())); got != want {
		t.Errorf("layered lists %d blobs, want %d", got, want)
	}
}

func distinct(m *Manifest) map[string]bool {
	d := map[string]bool{}
	for _, it := range m.Items {
		d[it.Digest] = true
	}
	return d
}

func TestDeltaWrongBase(t *testing.T) {
	_, deltaPath, _ := writeDelta(t)
	delta, err := Open(deltaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer delta.Close()
	// Another bundle (the delta itself) is not the base.
	_, err = WithBase(delta, delta, delta.ManifestDigest(), "other.ferry")
	if err == nil || !strings.Contains(err.Error(), "is a delta of test v1 (sha256:") {
		t.Fatalf("wrong base: err = %v", err)
	}
	// The right digest, but a store lacking the blobs.
	_, err = WithBase(delta, emptyStore{}, delta.Manifest().Base.ManifestDigest, "empty")
	if err == nil || !strings.Contains(err.Error(), "base empty lacks") {
		t.Fatalf("empty base: err = %v", err)
	}
}

// emptyStore is a BlobStore with no blobs.
type emptyStore struct{}

func (emptyStore) Stat(string) (int64, bool) { return 0, false }
func (emptyStore) Open(d string) (*io.SectionReader, error) {
	return nil, fs.ErrNotExist
}
func (emptyStore) VerifyBlob(context.Context, string) error { return fs.ErrNotExist }
