package install

import (
	"archive/zip"
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// encodedModule adds mod@version's zip as an encoded item (zipcodec) whose
// files are files, and returns the decoded zip. With wrongH1 the manifest
// claims another zip's h1:.
func (b *bundleBuilder) encodedModule(t *testing.T, mod, version string, files map[string]string, wrongH1 bool) []byte {
	t.Helper()
	var orig bytes.Buffer
	zw := zip.NewWriter(&orig)
	for _, name := range slices.Sorted(maps.Keys(files)) { // the same zip every time
		w, _ := zw.Create(mod + "@" + version + "/" + name)
		w.Write([]byte(files[name]))
	}
	zw.Close()
	zr, _ := zip.NewReader(bytes.NewReader(orig.Bytes()), int64(orig.Len()))
	var blob bytes.Buffer
	res, err := zipcodec.Encode(context.Background(), &blob, zr, zipcodec.FastLevel)
	if err != nil {
		t.Fatal(err)
	}
	var dec bytes.Buffer
	if err := zipcodec.Decode(context.Background(), &dec, bytes.NewReader(blob.Bytes()), res.FileSize, res.FileDigest); err != nil {
		t.Fatal(err)
	}
	h1 := res.H1
	if wrongH1 {
		h1 = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	}
	b.add(bundle.Item{File: mod + "/@v/" + version + ".zip", Kind: bundle.KindZip, Module: mod, Version: version,
		Hash: h1, Encoding: bundle.EncodingZstd, FileDigest: res.FileDigest, FileSize: res.FileSize}, blob.Bytes())
	return dec.Bytes()
}

func TestInstallDecodesEncodedZips(t *testing.T) {
	db := newSumDB(t)
	files := map[string]string{"go.mod": "module example.com/enc\n", "enc.go": strings.Repeat("package enc\n// text\n", 500)}
	b := newBuilder("enc")
	want := b.encodedModule(t, "example.com/enc", "v1.0.0", files, false)
	b.module(t, "example.com/enc", "v1.0.0", ".info", ".mod")
	b.toolchain(t, "go1.26.8", "linux/amd64", nil)
	b.snapshot(t, db, 10, []string{"example.com/enc@v1.0.0"}, nil)
	src := b.source()
	var blobDigest string
	for _, it := range src.m.Items {
		if it.Encoded() {
			blobDigest = it.Digest
		}
	}

	for _, check := range []bool{false, true} {
		prefix := t.TempDir()
		opt := options(t, prefix)
		opt.CheckEncoded = check
		if _, err := Install(context.Background(), src, opt); err != nil {
			t.Fatalf("CheckEncoded %v: %v", check, err)
		}
		got, err := os.ReadFile(filepath.Join(prefix, "mod", "example.com/enc/@v/v1.0.0.zip"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("CheckEncoded %v: store zip is not the decoded zip (%v)", check, err)
		}
		// The blob is kept for a delta's base, and the installed bundle reads it back.
		in, err := OpenInstalled(prefix, src.ManifestDigest())
		if err != nil {
			t.Fatal(err)
		}
		if err := in.VerifyBlob(context.Background(), blobDigest); err != nil {
			t.Fatalf("installed base cannot give the encoded blob: %v", err)
		}
	}
}

// An encoded zip that decodes to files whose h1: is not the manifest's is
// refused when install is asked to check, and a first install into a
// prefix then leaves the prefix as it found it.
func TestInstallRefusesEncodedZipWithWrongHash(t *testing.T) {
	db := newSumDB(t)
	b := newBuilder("enc")
	b.encodedModule(t, "example.com/enc", "v1.0.0", map[string]string{"go.mod": "module example.com/enc\n"}, true)
	b.toolchain(t, "go1.26.8", "linux/amd64", nil)
	b.snapshot(t, db, 10, []string{"example.com/enc@v1.0.0"}, nil)
	prefix := filepath.Join(t.TempDir(), "fresh")
	opt := options(t, prefix)
	opt.CheckEncoded = true
	_, err := Install(context.Background(), b.source(), opt)
	if err == nil || !strings.Contains(err.Error(), "h1") || !strings.Contains(err.Error(), "example.com/enc") {
		t.Fatalf("Install = %v, want an h1: mismatch naming the zip", err)
	}
	if _, err := os.Lstat(prefix); err == nil {
		ents, _ := os.ReadDir(prefix)
		t.Fatalf("refused first install left the prefix with %d entries", len(ents))
	}

	// A bundle that names ferry's own blob directory is refused outright.
	b2 := newBuilder("evil")
	b2.add(bundle.Item{File: ".blobs/sha256/" + strings.Repeat("0", 64), Kind: bundle.KindInfo}, []byte("x"))
	if _, err := Install(context.Background(), b2.source(), options(t, t.TempDir())); err == nil {
		t.Fatal("an item in .blobs/ was accepted")
	}
}

// A kept blob damaged in the store (the generations share it by hard
// link) is replaced by the next install that needs it, instead of making
// every later install fail to decode it.
func TestDamagedKeptBlobIsReplaced(t *testing.T) {
	db := newSumDB(t)
	files := map[string]string{"go.mod": "module example.com/enc\n", "enc.go": "package enc\n"}
	first := newBuilder("first")
	want := first.encodedModule(t, "example.com/enc", "v1.0.0", files, false)
	first.snapshot(t, db, 10, []string{"example.com/enc@v1.0.0"}, nil)
	prefix := t.TempDir()
	opt := options(t, prefix)
	src := first.source()
	if _, err := Install(context.Background(), src, opt); err != nil {
		t.Fatal(err)
	}
	var it bundle.Item
	for _, i := range src.m.Items {
		if i.Encoded() {
			it = i
		}
	}
	gen, err := os.Readlink(filepath.Join(prefix, "mod"))
	if err != nil {
		t.Fatal(err)
	}
	kept := blobPath(filepath.Join(prefix, gen), it.Digest)
	data, err := os.ReadFile(kept)
	if err != nil {
		t.Fatalf("blob not kept: %v", err)
	}
	data[len(data)/2] ^= 0x55
	if err := os.WriteFile(kept, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The decoded zip is gone too, so the next install must decode again.
	zipPath := filepath.Join(prefix, gen, "example.com/enc/@v/v1.0.0.zip")
	if err := os.Remove(zipPath); err != nil {
		t.Fatal(err)
	}

	second := newBuilder("second")
	second.encodedModule(t, "example.com/enc", "v1.0.0", files, false)
	second.module(t, "example.com/enc", "v1.1.0", ".info", ".mod")
	second.snapshot(t, db, 11, []string{"example.com/enc@v1.0.0"}, nil)
	if _, err := Install(context.Background(), second.source(), opt); err != nil {
		t.Fatalf("second install: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(prefix, "mod", "example.com/enc/@v/v1.0.0.zip"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("zip not restored (%v)", err)
	}
	in, err := OpenInstalled(prefix, second.source().ManifestDigest())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.VerifyBlob(context.Background(), it.Digest); err != nil {
		t.Fatalf("kept blob not repaired: %v", err)
	}
}
