package bundle

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// smallBundle returns the bytes of a small bundle, for fuzz seeds.
func smallBundle(t testing.TB, signed bool) []byte {
	src := MemSource{}
	m := &Manifest{SchemaVersion: SchemaVersion, Name: "seed"}
	for _, s := range []struct{ file, data string }{
		{"example.com/m/@v/v1.0.0.mod", "module example.com/m\n"},
		{"example.com/m/@v/v1.0.0.info", `{"Version":"v1.0.0"}`},
		{"example.com/n/@v/v1.0.0.mod", "module example.com/m\n"},
	} {
		d := Digest([]byte(s.data))
		src[d] = []byte(s.data)
		m.Items = append(m.Items, Item{File: s.file, Kind: KindMod, Size: int64(len(s.data)), Digest: d})
	}
	opt := WriteOptions{}
	if signed {
		opt.Signer, _ = testSigner(t, "seed")
	}
	path := filepath.Join(t.TempDir(), "seed.ferry")
	if _, err := Write(context.Background(), path, m, src, opt); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzOpen checks that no input makes Open panic, and that when Open accepts
// an input every blob it lists lies inside it and can be read.
func FuzzOpen(f *testing.F) {
	for _, signed := range []bool{false, true} {
		b := smallBundle(f, signed)
		f.Add(b)
		f.Add(b[:len(b)-700])
	}
	f.Add([]byte{})
	f.Add(make([]byte, 1024))
	_, v := testSigner(f, "seed")
	verifiers := note.VerifierList(v)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := openReaderAt("fuzz.ferry", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if bytes.ContainsAny([]byte(err.Error()), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			return
		}
		r.CheckSignature(verifiers)
		for _, b := range r.Blobs() {
			if b.Offset < 0 || b.Size < 0 || b.Offset+b.Size > int64(len(data)) {
				t.Fatalf("blob %+v outside the %d-byte input", b, len(data))
			}
			sr, err := r.Open(b.Digest)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(sr)
			if err != nil || int64(len(got)) != b.Size {
				t.Fatalf("reading blob %+v: %d bytes, %v", b, len(got), err)
			}
			r.VerifyBlob(context.Background(), b.Digest)
		}
		if r.Manifest() == nil || r.Manifest().Check() != nil {
			t.Fatal("Open accepted a bundle without a valid manifest")
		}
	})
}

// FuzzManifest checks that decoding and checking any JSON does not panic and
// that an accepted manifest encodes stably.
func FuzzManifest(f *testing.F) {
	m, _ := testItems(f)
	m.Sort()
	good, err := EncodeManifest(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"schemaVersion":1,"items":[]}`))
	f.Add([]byte(`{"schemaVersion":1,"items":[{"file":"a","digest":"sha256:00","size":-1}]}`))
	f.Add([]byte(`{"schemaVersion":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			return
		}
		enc, err := EncodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeManifest(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		enc2, _ := EncodeManifest(m2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// TestWriteFuzzCorpus regenerates the committed seed corpus under
// testdata/fuzz when FERRY_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("FERRY_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set FERRY_WRITE_FUZZ_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(fuzzer, name string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unsigned, signed := smallBundle(t, false), smallBundle(t, true)
	write("FuzzOpen", "unsigned", unsigned)
	write("FuzzOpen", "signed", signed)
	write("FuzzOpen", "truncated-blob", unsigned[:len(unsigned)/2])
	write("FuzzOpen", "no-trailer", unsigned[:len(unsigned)-1024])
	write("FuzzOpen", "header-only", unsigned[:512])
	write("FuzzOpen", "zeros", make([]byte, 2048))
	m, _ := testItems(t)
	m.Sort()
	good, _ := EncodeManifest(m)
	write("FuzzManifest", "good", good)
	write("FuzzManifest", "dup-file", []byte(`{"schemaVersion":1,"items":[{"file":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},{"file":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}`))
	write("FuzzManifest", "sumdb", []byte(`{"schemaVersion":1,"sumdb":{"name":"s","key":"k","head":"h","heads":["a"]},"missing":[{"module":"m","version":"v1","reason":"r","impact":"i"}],"items":[]}`))
}
