package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// modZip encodes a module zip of name@v1.0.0 with a go.mod and size bytes
// of source.
func modZip(t *testing.T, name string, size int) testbundle.Zip {
	t.Helper()
	mod := "example.com/" + name
	line := fmt.Appendf(nil, "package %s // some text of %s\n", name, name)
	src := bytes.Repeat(line, size/len(line)+1)[:size]
	return testbundle.EncodeZip(t, mod, "v1.0.0", map[string][]byte{
		"go.mod":     []byte("module " + mod + "\n"),
		name + ".go": src,
	})
}

func zipPath(name string) string { return "example.com/" + name + "/@v/v1.0.0.zip" }

func filePath(st *local.Store, digest string) string {
	return filepath.Join(st.Dir(), "files", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// decodedFiles lists DIR/files/sha256.
func decodedFiles(t *testing.T, st *local.Store) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(st.Dir(), "files", "sha256"))
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

func hexes(zs ...testbundle.Zip) []string {
	var hs []string
	for _, z := range zs {
		hs = append(hs, strings.TrimPrefix(z.FileDigest, "sha256:"))
	}
	sort.Strings(hs)
	return hs
}

// checkFile checks that File gives z's decoded zip, as a file a server can
// send with sendfile.
func checkFile(t *testing.T, st *local.Store, z testbundle.Zip) {
	t.Helper()
	b, err := st.File(context.Background(), z.FileDigest)
	if err != nil {
		t.Fatalf("File(%s): %v", z.FileDigest, err)
	}
	defer b.Close()
	got, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil || !bytes.Equal(got, z.Decoded) || bundle.Digest(got) != z.FileDigest {
		t.Fatalf("File(%s) = %d bytes (%v), want the %d decoded bytes", z.FileDigest, len(got), err, len(z.Decoded))
	}
	fr, ok := b.(interface{ FileRange() (string, int64) })
	if !ok {
		t.Fatalf("File(%s) cannot be sent with sendfile (no FileRange)", z.FileDigest)
	}
	if p, off := fr.FileRange(); p != filePath(st, z.FileDigest) || off != 0 {
		t.Errorf("FileRange = %s, %d", p, off)
	}
}

func TestImportDecodesEncodedZips(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := modZip(t, "a", 200_000), modZip(t, "b", 100)
	p := testbundle.WriteEncoded(t, dir, "enc.ferry", "", map[string][]byte{
		"example.com/a/@v/v1.0.0.mod": []byte("module example.com/a\n"),
		"example.com/c/@v/v1.0.0.zip": []byte("a zip carried as it is"),
	}, map[string]testbundle.Zip{zipPath("a"): a, zipPath("b"): b})
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testbundle.Import(t, st, p)
	if got, want := decodedFiles(t, st), hexes(a, b); !equal(got, want) {
		t.Fatalf("decoded files = %v, want %v", got, want)
	}
	checkFile(t, st, a)
	checkFile(t, st, b)
	if _, err := st.File(ctx, bundle.Digest([]byte("a zip carried as it is"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("File of a plain zip: err = %v, want not exist", err)
	}
	if _, err := st.File(ctx, "sha256:../../index.json"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("File of a malformed digest: err = %v", err)
	}

	// Importing it again changes nothing; it writes back a decoded file
	// that is missing (a store written by a ferry that kept none).
	fa := filePath(st, a.FileDigest)
	fi0, _ := os.Stat(filePath(st, b.FileDigest))
	if err := os.Remove(fa); err != nil {
		t.Fatal(err)
	}
	testbundle.Import(t, st, p)
	checkFile(t, st, a)
	if fi1, _ := os.Stat(filePath(st, b.FileDigest)); !os.SameFile(fi0, fi1) {
		t.Error("a second import rewrote a decoded file that was there")
	}
	if l, err := st.List(ctx); err != nil || len(l) != 1 {
		t.Errorf("List after a second import = %v, %v", l, err)
	}
	if got, want := decodedFiles(t, st), hexes(a, b); !equal(got, want) {
		t.Errorf("decoded files after a second import = %v, want %v", got, want)
	}
}

// A delta's encoded items whose blobs are in the base are decoded from the
// base, when the base's import did not leave their files.
func TestImportDeltaDecodesFromBase(t *testing.T) {
	dir := t.TempDir()
	a, b := modZip(t, "a", 70_000), modZip(t, "b", 5_000)
	mods := map[string][]byte{"example.com/a/@v/v1.0.0.mod": []byte("module example.com/a\n")}
	basePath := testbundle.WriteEncoded(t, dir, "base.ferry", "", mods, map[string]testbundle.Zip{zipPath("a"): a})
	deltaPath := testbundle.WriteEncoded(t, dir, "delta.ferry", basePath, mods, map[string]testbundle.Zip{zipPath("a"): a, zipPath("b"): b})
	if r := open(t, deltaPath); !r.InBase(bundle.Digest(a.Blob)) {
		t.Fatal("the delta carries a's blob itself")
	}
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testbundle.Import(t, st, basePath)
	if err := os.Remove(filePath(st, a.FileDigest)); err != nil {
		t.Fatal(err)
	}
	testbundle.Import(t, st, deltaPath)
	checkFile(t, st, a)
	checkFile(t, st, b)
}

// Prune keeps a decoded file while a remaining bundle names it and removes
// it with the last one, counting it as freed.
func TestPruneDecodedFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	shared, only1, only2 := modZip(t, "shared", 80_000), modZip(t, "one", 1_000), modZip(t, "two", 2_000)
	p1 := testbundle.WriteEncoded(t, dir, "one.ferry", "", nil, map[string]testbundle.Zip{zipPath("shared"): shared, zipPath("one"): only1})
	p2 := testbundle.WriteEncoded(t, dir, "two.ferry", "", nil, map[string]testbundle.Zip{zipPath("shared"): shared, zipPath("two"): only2})
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d1, d2 := testbundle.Import(t, st, p1), testbundle.Import(t, st, p2)
	if got, want := decodedFiles(t, st), hexes(shared, only1, only2); !equal(got, want) {
		t.Fatalf("decoded files = %v, want %v", got, want)
	}
	fi, _ := os.Stat(filepath.Join(st.Dir(), "bundles", strings.TrimPrefix(d1, "sha256:")+".ferry"))
	gz, err := os.Stat(gzipPath(st, only1.FileDigest))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := st.Prune(ctx, d1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decodedFiles(t, st), hexes(shared, only2); !equal(got, want) {
		t.Fatalf("after pruning one: decoded files = %v, want %v", got, want)
	}
	if want := fi.Size() + int64(len(only1.Decoded)) + gz.Size(); rep.FreedBytes != want {
		t.Errorf("pruning one freed %d bytes, want %d (bundle file, its decoded file and that file's gzip)", rep.FreedBytes, want)
	}
	checkFile(t, st, shared)
	if _, err := st.Prune(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if got := decodedFiles(t, st); len(got) != 0 {
		t.Fatalf("after pruning both: decoded files = %v", got)
	}
	if _, err := st.File(ctx, shared.FileDigest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("File after pruning both: err = %v, want not exist", err)
	}
}

// What an import killed midway leaves (temporary files, a decoded file cut
// short, files of a bundle it never listed) is cleaned up or harmless.
func TestImportAfterInterruptedImport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := modZip(t, "a", 90_000), modZip(t, "b", 3_000)
	p := testbundle.WriteEncoded(t, dir, "enc.ferry", "", nil, map[string]testbundle.Zip{zipPath("a"): a, zipPath("b"): b})
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fdir := filepath.Join(st.Dir(), "files", "sha256")
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		t.Fatal(err)
	}
	orphan := modZip(t, "orphan", 500)
	for name, data := range map[string][]byte{
		".decode-123.tmp": a.Decoded[:1000], // killed while decoding
		strings.TrimPrefix(a.FileDigest, "sha256:"):      a.Decoded[:5000], // cut short (no such rename is possible, but harmless)
		strings.TrimPrefix(orphan.FileDigest, "sha256:"): orphan.Decoded,   // renamed, never listed
		"../../bundles/.import-1.tmp":                    []byte("part of a bundle"),
	} {
		if err := os.WriteFile(filepath.Join(fdir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := testbundle.Import(t, st, p)
	checkFile(t, st, a)
	checkFile(t, st, b)
	left, _ := filepath.Glob(filepath.Join(st.Dir(), "*", ".*.tmp"))
	left2, _ := filepath.Glob(filepath.Join(fdir, ".*.tmp"))
	if len(left)+len(left2) > 0 {
		t.Errorf("temporary files left: %v %v", left, left2)
	}
	// The orphan goes with the next prune.
	if _, err := st.Prune(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := decodedFiles(t, st); len(got) != 0 {
		t.Errorf("after the prune: decoded files = %v", got)
	}
}

// A canceled import that had started decoding lists nothing and leaves no
// temporary file.
func TestImportCanceledWhileDecoding(t *testing.T) {
	dir := t.TempDir()
	zips := map[string]testbundle.Zip{}
	for i := range 8 {
		name := fmt.Sprintf("m%d", i)
		zips[zipPath(name)] = modZip(t, name, 2_000_000)
	}
	p := testbundle.WriteEncoded(t, dir, "enc.ferry", "", nil, zips)
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r := open(t, p)
	done := make(chan error)
	go func() { done <- st.Import(ctx, r, store.BundleInfo{}) }()
	// Cancel once the first decoded file is being written.
	for {
		if ms, _ := filepath.Glob(filepath.Join(st.Dir(), "files", "sha256", ".*.tmp")); len(ms) > 0 {
			break
		}
		select {
		case err := <-done:
			t.Skipf("the import finished (%v) before it could be canceled", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Skip("the import finished before it was canceled")
	}
	if l, err := st.List(context.Background()); err != nil || len(l) != 0 {
		t.Errorf("List after a canceled import = %v, %v", l, err)
	}
	if ms, _ := filepath.Glob(filepath.Join(st.Dir(), "files", "sha256", "*")); len(ms) > 0 {
		t.Errorf("a canceled import left %v", ms)
	}
	testbundle.Import(t, st, p)
	for _, z := range zips {
		checkFile(t, st, z)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, " ") == strings.Join(b, " ")
}

// ImportChecked recomputes the h1: hash of every encoded zip, decoded now
// or already in the store, and refuses a bundle whose manifest claims
// another, leaving the store as it was.
func TestImportCheckedRefusesWrongHash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := modZip(t, "a", 200_000), modZip(t, "b", 100)
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storeFiles := func() []string {
		t.Helper()
		var names []string
		err := filepath.WalkDir(st.Dir(), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && d.Name() != "lock" {
				names = append(names, strings.TrimPrefix(p, st.Dir()))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(names)
		return names
	}
	refused := func(p, what string) {
		t.Helper()
		before, list0 := storeFiles(), len(mustList(t, st))
		err := st.ImportChecked(ctx, open(t, p), store.BundleInfo{})
		if err == nil || !strings.Contains(err.Error(), "content hash") || !strings.Contains(err.Error(), what) || !strings.HasPrefix(err.Error(), "importing "+p+": ") {
			t.Fatalf("ImportChecked = %v, want \"importing %s: \" and a content hash mismatch naming %s", err, p, what)
		}
		if after := storeFiles(); !equal(after, before) {
			t.Errorf("refused import changed the store's files:\nbefore %v\nafter  %v", before, after)
		}
		if n := len(mustList(t, st)); n != list0 {
			t.Errorf("refused import: %d bundles listed, want %d", n, list0)
		}
	}

	// b's zip, with a manifest that claims a's h1:, decoded now.
	lie := b
	lie.H1 = a.H1
	bad := testbundle.WriteEncoded(t, dir, "bad.ferry", "", nil, map[string]testbundle.Zip{zipPath("a"): a, zipPath("b"): lie})
	refused(bad, zipPath("b"))

	// The truth is accepted, checked.
	good := testbundle.WriteEncoded(t, dir, "good.ferry", "", nil, map[string]testbundle.Zip{zipPath("a"): a})
	if err := st.ImportChecked(ctx, open(t, good), store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, st, a)

	// A zip the store already holds, claimed by another item with another
	// h1:: checked from the stored file.
	lie = a
	lie.H1 = b.H1
	again := testbundle.WriteEncoded(t, dir, "again.ferry", "", nil, map[string]testbundle.Zip{zipPath("a"): a, zipPath("x"): lie})
	refused(again, zipPath("x"))

	// Import trusts its caller (a trusted signature vouched for the
	// hashes): it is ImportChecked that refused.
	if err := st.Import(ctx, open(t, again), store.BundleInfo{}); err != nil {
		t.Errorf("Import of a bundle the caller vouches for: %v", err)
	}
}

func mustList(t *testing.T, st store.Store) []store.BundleInfo {
	t.Helper()
	l, err := st.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}
