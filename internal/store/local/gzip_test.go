package local_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

func gzipPath(st *local.Store, digest string) string {
	return filepath.Join(st.Dir(), "gz", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// gzips lists DIR/gz/sha256.
func gzips(t *testing.T, st *local.Store) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(st.Dir(), "gz", "sha256"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// checkGzip checks that Gzip gives a gzip of z's decoded zip, smaller than
// it, as a file a server can send with sendfile, and returns its bytes.
func checkGzip(t *testing.T, st *local.Store, z testbundle.Zip) []byte {
	t.Helper()
	b, err := st.Gzip(context.Background(), z.FileDigest)
	if err != nil {
		t.Fatalf("Gzip(%s): %v", z.FileDigest, err)
	}
	defer b.Close()
	gz, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("Gzip(%s): %v", z.FileDigest, err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, z.Decoded) {
		t.Fatalf("Gzip(%s) decompresses to %d bytes (%v), want the %d decoded bytes", z.FileDigest, len(got), err, len(z.Decoded))
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() {
		t.Errorf("Gzip(%s): header names %q, time %v; want neither", z.FileDigest, zr.Header.Name, zr.Header.ModTime)
	}
	if len(gz) >= len(z.Decoded) {
		t.Errorf("Gzip(%s): %d bytes for %d decoded ones", z.FileDigest, len(gz), len(z.Decoded))
	}
	fr, ok := b.(interface{ FileRange() (string, int64) })
	if !ok {
		t.Fatalf("Gzip(%s) cannot be sent with sendfile (no FileRange)", z.FileDigest)
	}
	if p, off := fr.FileRange(); p != gzipPath(st, z.FileDigest) || off != 0 {
		t.Errorf("FileRange = %s, %d", p, off)
	}
	return gz
}

// Import writes, beside each decoded zip, its gzip; Prune removes it with
// the zip; a store an older ferry wrote (decoded zips, no gzips) gets them
// when a bundle is imported again; nothing is compressed twice.
func TestImportWritesGzips(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b, c := modZip(t, "a", 300_000), modZip(t, "b", 100), modZip(t, "c", 20_000)
	p := testbundle.WriteEncoded(t, dir, "enc.ferry", "", map[string][]byte{
		"example.com/a/@v/v1.0.0.mod": []byte("module example.com/a\n"),
		"example.com/p/@v/v1.0.0.zip": []byte("a zip carried as it is"),
	}, map[string]testbundle.Zip{zipPath("a"): a, zipPath("b"): b})
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := testbundle.Import(t, st, p)
	if got, want := gzips(t, st), hexes(a, b); !equal(got, want) {
		t.Fatalf("gzips = %v, want %v", got, want)
	}
	gzA := checkGzip(t, st, a)
	checkGzip(t, st, b)
	if _, err := st.Gzip(ctx, bundle.Digest([]byte("a zip carried as it is"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Gzip of a plain zip: err = %v, want not exist", err)
	}
	if _, err := st.Gzip(ctx, "sha256:../../index.json"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Gzip of a malformed digest: err = %v", err)
	}

	// Deterministic: the same zip compresses to the same bytes in another
	// store.
	other, err := local.Open(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	testbundle.Import(t, other, p)
	if again := checkGzip(t, other, a); !bytes.Equal(again, gzA) {
		t.Error("the same zip gave another gzip in another store")
	}

	// A store written before gzips were kept: importing the bundle again
	// writes them, and rewrites neither them nor a decoded file that is there.
	if err := os.RemoveAll(filepath.Join(st.Dir(), "gz")); err != nil {
		t.Fatal(err)
	}
	fi0, _ := os.Stat(filePath(st, a.FileDigest))
	testbundle.Import(t, st, p)
	checkGzip(t, st, a)
	checkGzip(t, st, b)
	if fi1, _ := os.Stat(filePath(st, a.FileDigest)); !os.SameFile(fi0, fi1) {
		t.Error("writing the missing gzips rewrote a decoded file that was there")
	}
	gz0, _ := os.Stat(gzipPath(st, a.FileDigest))
	testbundle.Import(t, st, p)
	if gz1, _ := os.Stat(gzipPath(st, a.FileDigest)); !os.SameFile(gz0, gz1) {
		t.Error("a third import rewrote a gzip that was there")
	}

	// A second bundle sharing a's zip: a's gzip stays with it when the
	// first is pruned, and goes with the last.
	p2 := testbundle.WriteEncoded(t, dir, "two.ferry", "", nil, map[string]testbundle.Zip{zipPath("a"): a, zipPath("c"): c})
	d2 := testbundle.Import(t, st, p2)
	if _, err := st.Prune(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got, want := gzips(t, st), hexes(a, c); !equal(got, want) {
		t.Fatalf("after pruning the first: gzips = %v, want %v", got, want)
	}
	checkGzip(t, st, a)
	if _, err := st.Prune(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if got := gzips(t, st); len(got) != 0 {
		t.Fatalf("after pruning both: gzips = %v", got)
	}
	if _, err := st.Gzip(ctx, a.FileDigest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Gzip after pruning both: err = %v, want not exist", err)
	}
}

// The bytes compressed are checked: a decoded file the store has whose
// bytes changed is not compressed into a gzip (the import fails, naming
// it), and a temporary gzip a killed import left is removed.
func TestGzipChecksWhatItCompresses(t *testing.T) {
	dir := t.TempDir()
	a := modZip(t, "a", 100_000)
	p := testbundle.WriteEncoded(t, dir, "enc.ferry", "", nil, map[string]testbundle.Zip{zipPath("a"): a})
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testbundle.Import(t, st, p)
	gdir := filepath.Join(st.Dir(), "gz", "sha256")
	if err := os.RemoveAll(gdir); err != nil {
		t.Fatal(err)
	}
	fp := filePath(st, a.FileDigest)
	bad := bytes.Clone(a.Decoded)
	copy(bad[50_000:], "changed on disk")
	if err := os.Chmod(fp, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fp, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	err = st.Import(context.Background(), open(t, p), store.BundleInfo{})
	if err == nil || !strings.Contains(err.Error(), zipPath("a")) || !strings.Contains(err.Error(), a.FileDigest) {
		t.Fatalf("import over a changed decoded file = %v, want an error naming %s and %s", err, zipPath("a"), a.FileDigest)
	}
	if got := gzips(t, st); len(got) != 0 {
		t.Errorf("gzips of a changed decoded file: %v", got)
	}
	if left, _ := filepath.Glob(filepath.Join(gdir, ".*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// The decoded file put back, with the temporary file of a killed
	// import: the import writes the gzip and removes the leftover.
	if err := os.WriteFile(fp, a.Decoded, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gdir, ".gzip-123.tmp"), []byte("cut"), 0o644); err != nil {
		t.Fatal(err)
	}
	testbundle.Import(t, st, p)
	checkGzip(t, st, a)
	if left, _ := filepath.Glob(filepath.Join(gdir, ".*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
