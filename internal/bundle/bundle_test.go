package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// testItems returns a manifest and the bytes of its items. Two items share
// their content (and so their digest), as a .mod and the go.mod in a zip can.
func testItems(t testing.TB) (*Manifest, MemSource) {
	src := MemSource{}
	m := &Manifest{SchemaVersion: SchemaVersion, Name: "test", Version: "v1", Toolchains: []string{"go1.26.8"},
		SumDB: &SumDB{Name: "sum.example"}}
	add := func(file string, kind Kind, data []byte) {
		d := Digest(data)
		src[d] = data
		it := Item{File: file, Kind: kind, Size: int64(len(data)), Digest: d}
		if mod, _, ok := strings.Cut(file, "/@v/"); ok {
			it.Module, it.Version = mod, "v1.0.0"
		}
		m.Items = append(m.Items, it)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 20_000)
	for i := range big {
		big[i] = byte(rng.UintN(256))
	}
	gomod := []byte("module example.com/m\n\ngo 1.22\n")
	// Added out of order: Write sorts.
	add("example.com/m/@v/v1.0.0.zip", KindZip, big)
	add("example.com/m/@v/v1.0.0.mod", KindMod, gomod)
	add("example.com/m/@v/v1.0.0.info", KindInfo, []byte(`{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}`))
	add("example.com/other/@v/v1.0.0.mod", KindMod, gomod) // duplicate content
	add("sumdb/sum.example/latest", KindSumDB, []byte("sum.example\n3\nAAAA\n"))
	add("example.com/empty/@v/v1.0.0.info", KindInfo, []byte{}) // zero-length blob
	return m, src
}

func testSigner(t testing.TB, name string) (note.Signer, note.Verifier) {
	var seed [32]byte
	copy(seed[:], name)
	skey, vkey, err := note.GenerateKey(rand.NewChaCha8(seed), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// writeTest writes the test bundle to dir/name and returns its path.
func writeTest(t testing.TB, dir, name string, opt WriteOptions) (string, string) {
	m, src := testItems(t)
	path := filepath.Join(dir, name)
	d, err := Write(context.Background(), path, m, src, opt)
	if err != nil {
		t.Fatal(err)
	}
	return path, d
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	signer, verifier := testSigner(t, "ferry-test")
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			opt := WriteOptions{}
			if signed {
				opt.Signer = signer
			}
			var progress []int64
			opt.Progress = func(n int64) { progress = append(progress, n) }
			m, src := testItems(t)
			path := filepath.Join(dir, fmt.Sprintf("b-%v.ferry", signed))
			digest, err := Write(ctx, path, m, src, opt)
			if err != nil {
				t.Fatal(err)
			}
			var distinct int64
			for d, b := range src {
				_ = d
				distinct += int64(len(b))
			}
			if len(progress) == 0 || progress[len(progress)-1] != distinct {
				t.Errorf("progress = %v, want to end at %d", progress, distinct)
			}

			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Digest() != digest {
				t.Errorf("Digest() = %s, Write returned %s", r.Digest(), digest)
			}
			if r.Path() != path {
				t.Errorf("Path() = %s", r.Path())
			}
			if got := r.Manifest(); got.Name != "test" || len(got.Items) != len(m.Items) {
				t.Errorf("Manifest() = %+v", got)
			}
			for i := 1; i < len(r.Manifest().Items); i++ {
				if r.Manifest().Items[i-1].File >= r.Manifest().Items[i].File {
					t.Errorf("items not sorted")
				}
			}
			// manifest + config + 5 distinct items
			if n := len(r.Blobs()); n != 2+len(src) {
				t.Errorf("%d blobs, want %d", n, 2+len(src))
			}
			for _, it := range r.Manifest().Items {
				sr, err := r.Open(it.Digest)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(sr)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, src[it.Digest]) {
					t.Errorf("item %s: content differs", it.File)
				}
				if err := r.VerifyBlob(ctx, it.Digest); err != nil {
					t.Error(err)
				}
			}
			missing := Digest([]byte("missing"))
			if _, err := r.Open(missing); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open(missing) err = %v, want fs.ErrNotExist", err)
			}
			if err := r.VerifyBlob(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("VerifyBlob(missing) err = %v", err)
			}

			_, other := testSigner(t, "other-key")
			name, err := r.CheckSignature(note.VerifierList(verifier))
			if !signed {
				if !errors.Is(err, ErrNotSigned) || r.Signature() != "" {
					t.Errorf("unsigned bundle: CheckSignature err = %v", err)
				}
				return
			}
			if err != nil || name != "ferry-test" {
				t.Errorf("CheckSignature = %q, %v", name, err)
			}
			if _, err := r.CheckSignature(note.VerifierList(other)); !errors.Is(err, ErrBadSignature) {
				t.Errorf("wrong key: err = %v, want ErrBadSignature", err)
			}
			if !strings.Contains(r.Signature(), SignedText(r.ManifestDigest())) {
				t.Errorf("signature %q does not carry the signed text", r.Signature())
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	signer, _ := testSigner(t, "ferry-test")
	for _, opt := range []WriteOptions{{}, {Signer: signer}, {ModTime: time.Unix(1700000000, 5)}} {
		p1, d1 := writeTest(t, dir, "a.ferry", opt)
		p2, d2 := writeTest(t, dir, "b.ferry", opt)
		b1, _ := os.ReadFile(p1)
		b2, _ := os.ReadFile(p2)
		if d1 != d2 || !bytes.Equal(b1, b2) {
			t.Errorf("two writes with %+v differ", opt)
		}
		if _, err := Open(p1); err != nil {
			t.Error(err)
		}
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left %s", e.Name())
		}
	}
}

// TestTamperedSignature replaces the signature with a signature of other
// text (by the right key) and with a damaged one, rebuilding the bundle so it
// stays structurally valid.
func TestTamperedSignature(t *testing.T) {
	signer, verifier := testSigner(t, "ferry-test")
	m, src := testItems(t)
	m.Sort()
	cases := map[string]func(sig []byte) []byte{
		"other text": func([]byte) []byte {
			s, _ := note.Sign(&note.Note{Text: SignedText(Digest([]byte("other")))}, signer)
			return s
		},
		"flipped signature byte": func(sig []byte) []byte {
			s := bytes.Clone(sig)
			i := bytes.LastIndexByte(s, ' ') + 3
			s[i] ^= 1
			return s
		},
		"changed text": func(sig []byte) []byte {
			return bytes.Replace(sig, []byte("manifest"), []byte("manifesT"), 1)
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := planBundle(m, signer, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			var om ociManifestForTest
			om.decode(t, p.manifest)
			om.Annotations[SignatureAnnotation] = string(tamper([]byte(om.Annotations[SignatureAnnotation])))
			path := writePlanWithManifest(t, p, om.encode(t), m, src)
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.CheckSignature(note.VerifierList(verifier)); !errors.Is(err, ErrBadSignature) {
				t.Errorf("err = %v, want ErrBadSignature", err)
			} else if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
		})
	}
}

type ociManifestForTest struct{ ociManifest }

func (o *ociManifestForTest) decode(t *testing.T, b []byte) {
	if err := jsonUnmarshal(b, &o.ociManifest); err != nil {
		t.Fatal(err)
	}
}

func (o *ociManifestForTest) encode(t *testing.T) []byte {
	b, err := marshal(o.ociManifest)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writePlanWithManifest writes a bundle like Write but with the given OCI
// manifest bytes (and an index.json that matches them).
func writePlanWithManifest(t *testing.T, p *plan, manifest []byte, m *Manifest, src MemSource) string {
	p.manifest = manifest
	p.manifestDigest = Digest(manifest)
	var err error
	if p.index, err = indexJSON(p.manifestDigest, int64(len(manifest)), m.Name); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.ferry")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.writeTar(context.Background(), f, src, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWriteRejectsBadSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m, src := testItems(t)
	zip := m.Items[0]
	cases := map[string]func(MemSource){
		"digest mismatch": func(s MemSource) {
			b := bytes.Clone(s[zip.Digest])
			b[100] ^= 1
			s[zip.Digest] = b
		},
		"size mismatch": func(s MemSource) { s[zip.Digest] = s[zip.Digest][:1000] },
		"longer":        func(s MemSource) { s[zip.Digest] = append(bytes.Clone(s[zip.Digest]), 0) },
		"missing":       func(s MemSource) { delete(s, zip.Digest) },
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			m, src := testItems(t)
			breakIt(src)
			path := filepath.Join(dir, "bad.ferry")
			_, err := Write(ctx, path, m, src, WriteOptions{})
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if !strings.Contains(err.Error(), "item "+zip.File+": ") {
				t.Errorf("err = %v, want it to name item %s", err, zip.File)
			}
			if name == "digest mismatch" && !strings.Contains(err.Error(), "digest mismatch") {
				t.Errorf("err = %v", err)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 0 {
				t.Errorf("Write left files: %v", ents)
			}
		})
	}
	_ = src

	// A bad manifest is refused before anything is written.
	m.Items = append(m.Items, m.Items[0])
	if _, err := Write(ctx, filepath.Join(dir, "dup.ferry"), m, src, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "duplicate file") {
		t.Errorf("duplicate item: err = %v", err)
	}
	// A canceled context stops the copy.
	m, src = testItems(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Write(cctx, filepath.Join(dir, "c.ferry"), m, src, WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
}

func TestEmptyManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.ferry")
	m := &Manifest{SchemaVersion: SchemaVersion}
	if _, err := Write(context.Background(), path, m, MemSource{}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Blobs()) != 2 || len(r.Manifest().Items) != 0 {
		t.Errorf("blobs %v items %v", r.Blobs(), r.Manifest().Items)
	}
}

func TestFileSourceAndDigest(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("hello"), 0o644)
	d, n, err := FileDigest(p)
	if err != nil || n != 5 || d != Digest([]byte("hello")) {
		t.Fatalf("FileDigest = %s, %d, %v", d, n, err)
	}
	m := &Manifest{SchemaVersion: SchemaVersion, Items: []Item{{File: "example.com/a/@v/v1.0.0.mod", Kind: KindMod, Module: "example.com/a", Version: "v1.0.0", Size: n, Digest: d}}}
	if _, err := Write(context.Background(), filepath.Join(dir, "b.ferry"), m, FileSource{d: p}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := FileDigest(filepath.Join(dir, "missing")); err == nil {
		t.Error("FileDigest of a missing file succeeded")
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestConcurrentReads: blobs read through Open and checked with VerifyBlob
// from many goroutines at once read their own bytes.
func TestConcurrentReads(t *testing.T) {
	ctx := context.Background()
	path, _ := writeTest(t, t.TempDir(), "b.ferry", WriteOptions{})
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, src := testItems(t)
	errs := make(chan error, len(src))
	for d, want := range src {
		go func() {
			sr, err := r.Open(d)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(sr)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, want) {
				errs <- fmt.Errorf("blob %s: read differs", d)
				return
			}
			errs <- r.VerifyBlob(ctx, d)
		}()
	}
	for range src {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
