package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
)

// FuzzOpen checks that no input makes Open panic or fail with a
// multi-line error, and that when Open accepts an input every blob it lists
// lies inside it and can be read, and its manifest passes Check.
//
// Its input is a bundle in the compact form of expandBundle, plus a cut and
// a byte flip of the expanded file. A bundle file is kilobytes of tar
// framing and digests that random mutation cannot keep consistent, and the
// fuzzer spends its time minimizing every new input of that size (the cost
// grows with the square of each argument's length). In the compact form a
// seed is a few small JSON texts; the harness writes the framing, the
// digests and sizes, and cut and flip still reach every byte of the file.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzOpenSeeds(f) {
		f.Add(s.index, s.manifest, s.config, s.blobs, s.cut, s.at, s.xor)
	}
	_, v := testSigner(f, "seed")
	verifiers := note.VerifierList(v)
	f.Fuzz(func(t *testing.T, index, manifest, config, blobs []byte, cut, at uint16, xor byte) {
		data := expandBundle(index, manifest, config, blobs)
		if int(cut) < len(data) {
			data = data[:len(data)-int(cut)]
		}
		if xor != 0 && len(data) > 0 {
			data[int(at)%len(data)] ^= xor
		}
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

// fuzzOpenSeed is a FuzzOpen input.
type fuzzOpenSeed struct {
	name                           string
	index, manifest, config, blobs []byte
	cut, at                        uint16
	xor                            byte
}

// fuzzOpenSeeds returns FuzzOpen's seeds: small bundles of every kind
// (unsigned, signed, a delta, one with a toolchain, a checksum database
// file and an image) in compact form, and damaged copies.
func fuzzOpenSeeds(t testing.TB) []fuzzOpenSeed {
	seed := func(name string, bundle []byte) fuzzOpenSeed {
		s := fuzzOpenSeed{name: name}
		s.index, s.manifest, s.config, s.blobs = compactBundle(t, bundle)
		return s
	}
	damaged := func(name string, s fuzzOpenSeed, cut, at uint16, xor byte) fuzzOpenSeed {
		s.name, s.cut, s.at, s.xor = name, cut, at, xor
		return s
	}
	unsigned := seed("unsigned", smallBundle(t, false))
	signed := seed("signed", smallBundle(t, true))
	return []fuzzOpenSeed{
		unsigned,
		signed,
		seed("delta", smallDelta(t)),
		seed("kinds", kindsBundle(t)),
		damaged("truncated", unsigned, 700, 0, 0),
		damaged("no-trailer", unsigned, 1024, 0, 0),
		damaged("header-flip", unsigned, 0, 600, 0x40),
		damaged("size-flip", unsigned, 0, 124, 0x01),
		damaged("trailer-flip", signed, 0, 0xffff, 0x01),
		{name: "empty"},
	}
}

// smallBundle returns the bytes of a small bundle, for fuzz seeds.
func smallBundle(t testing.TB, signed bool) []byte {
	src := MemSource{}
	m := &Manifest{SchemaVersion: SchemaVersion, Name: "seed"}
	for _, s := range []struct {
		file, mod string
		kind      Kind
		data      string
	}{
		{"example.com/m/@v/v1.0.0.mod", "example.com/m", KindMod, "module example.com/m\n"},
		{"example.com/m/@v/v1.0.0.info", "example.com/m", KindInfo, `{"Version":"v1.0.0"}`},
	} {
		d := Digest([]byte(s.data))
		src[d] = []byte(s.data)
		m.Items = append(m.Items, Item{File: s.file, Kind: s.kind, Module: s.mod, Version: "v1.0.0", Size: int64(len(s.data)), Digest: d})
	}
	opt := WriteOptions{}
	if signed {
		opt.Signer, _ = testSigner(t, "seed")
	}
	return writeBytes(t, m, src, opt)
}

// smallDelta returns a delta of smallBundle that leaves its go.mod to the base.
func smallDelta(t testing.TB) []byte {
	src := MemSource{}
	m := &Manifest{SchemaVersion: SchemaVersion, Name: "d", Base: &Base{ManifestDigest: "sha256:" + strings.Repeat("0", 64)}}
	for _, s := range []struct{ file, data string }{
		{"example.com/m/@v/v1.0.0.mod", "module example.com/m\n"},
		{"example.com/m/@v/v1.1.0.mod", "module example.com/m // 1.1\n"},
	} {
		d := Digest([]byte(s.data))
		src[d] = []byte(s.data)
		mod, v, _ := strings.Cut(strings.TrimSuffix(s.file, ".mod"), "/@v/")
		m.Items = append(m.Items, Item{File: s.file, Kind: KindMod, Module: mod, Version: v, Size: int64(len(s.data)), Digest: d})
	}
	base := m.Items[0].Digest
	return writeBytes(t, m, src, WriteOptions{Omit: func(d string) bool { return d == base }})
}

// kindsBundle returns a bundle with a toolchain zip, a checksum database
// file, an image reference and its OCI blob.
func kindsBundle(t testing.TB) []byte {
	src := MemSource{}
	m := &Manifest{SchemaVersion: SchemaVersion, Toolchains: []string{"go1.26.8"}, SumDB: &SumDB{Name: "s"}}
	add := func(it Item, data string) {
		it.Digest, it.Size = Digest([]byte(data)), int64(len(data))
		src[it.Digest] = []byte(data)
		m.Items = append(m.Items, it)
	}
	add(Item{File: "golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip", Kind: KindZip, Module: ToolchainModule,
		Version: "v0.0.1-go1.26.8.linux-amd64", Platform: "linux/amd64"}, "PK")
	add(Item{File: "sumdb/s/latest", Kind: KindSumDB}, "s\n1\n")
	add(Item{File: "images/a:1", Kind: KindImage, Module: "a:1"}, "{}")
	add(Item{File: "oci/blobs/sha256/" + strings.TrimPrefix(Digest([]byte("{}")), "sha256:"), Kind: KindOCI}, "{}")
	return writeBytes(t, m, src, WriteOptions{})
}

func writeBytes(t testing.TB, m *Manifest, src MemSource, opt WriteOptions) []byte {
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

// compactMacros are the letters of the macros of the compact form (see
// expandBundle); macroText gives what each stands for.
const compactMacros = "IMACLR"

func macroText(c byte) string {
	switch c {
	case 'I':
		return OCIIndexMediaType
	case 'M':
		return OCIManifestMediaType
	case 'A':
		return ArtifactType
	case 'C':
		return ManifestMediaType
	case 'L':
		return ItemMediaType
	case 'R':
		return OCIRefNameAnnotation
	}
	return ""
}

// expandBundle returns the bundle file that a compact bundle stands for:
// oci-layout as Write writes it, index.json (index), the blobs/ and
// blobs/sha256/ directories, then the blobs: the OCI manifest (manifest),
// the ferry manifest (config) and the item blobs (blobs, separated by NUL
// bytes), each named by its digest, with the tar framing Write writes. In
// index, manifest and config, "$m", "$c" and "$0"..."$9" stand for the hex
// SHA-256 of the OCI manifest, the ferry manifest and the item blobs, "#m",
// "#c" and "#0"..."#9" for their sizes, and %I, %M, %A, %C, %L and %R for
// the media types and annotation of macroText. So the fuzzer needs not
// forge digests, and a seed is a few hundred bytes.
func expandBundle(index, manifest, config, blobs []byte) []byte {
	var items [][]byte
	if len(blobs) > 0 {
		items = bytes.Split(blobs, []byte{0})
	}
	var (
		cfg, man []byte
		hexes    = map[byte]string{}
		sizes    = map[byte]int{}
	)
	name := func(key byte, data []byte) {
		sum := sha256.Sum256(data)
		hexes[key], sizes[key] = hex.EncodeToString(sum[:]), len(data)
	}
	for i, b := range items {
		if i < 10 {
			name(byte('0'+i), b)
		}
	}
	subst := func(b []byte) []byte {
		var out []byte
		for k := 0; k < len(b); k++ {
			c := b[k]
			if k+1 < len(b) {
				if h, ok := hexes[b[k+1]]; ok && (c == '$' || c == '#') {
					if c == '$' {
						out = append(out, h...)
					} else {
						out = strconv.AppendInt(out, int64(sizes[b[k+1]]), 10)
					}
					k++
					continue
				}
				if t := macroText(b[k+1]); c == '%' && t != "" {
					out = append(out, t...)
					k++
					continue
				}
			}
			out = append(out, c)
		}
		return out
	}
	cfg = subst(config)
	name('c', cfg)
	man = subst(manifest)
	name('m', man)
	idx := subst(index)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entry := func(name string, dir bool, data []byte) {
		if tw.WriteHeader(tarHeader(name, dir, int64(len(data)), time.Unix(0, 0))) == nil {
			tw.Write(data)
		}
	}
	entry(ociLayoutFile, false, []byte(`{"imageLayoutVersion":"1.0.0"}`))
	entry(indexFile, false, idx)
	entry(blobsDir, true, nil)
	entry(blobsSHA256Dir, true, nil)
	entry(blobsSHA256Dir+hexes['m'], false, man)
	entry(blobsSHA256Dir+hexes['c'], false, cfg)
	for _, b := range items {
		sum := sha256.Sum256(b)
		entry(blobsSHA256Dir+hex.EncodeToString(sum[:]), false, b)
	}
	tw.Close()
	return buf.Bytes()
}

// compactBundle returns the compact form (see expandBundle) of the bundle
// file data, which must have at most ten item blobs.
func compactBundle(t testing.TB, data []byte) (index, manifest, config, blobs []byte) {
	r, err := openReaderAt("seed", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	read := func(d string) []byte {
		sr, err := r.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(sr)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type ref struct {
		key    string
		digest string
		size   int
	}
	refs := []ref{{"m", r.Digest(), 0}, {"c", r.ManifestDigest(), 0}}
	for _, b := range r.Blobs() {
		if b.Digest == r.Digest() || b.Digest == r.ManifestDigest() {
			continue
		}
		if len(blobs) > 0 {
			blobs = append(blobs, 0)
		}
		blobs = append(blobs, read(b.Digest)...)
		refs = append(refs, ref{strconv.Itoa(len(refs) - 2), b.Digest, int(b.Size)})
	}
	if len(refs) > 12 {
		t.Fatalf("compact form of a bundle of %d item blobs: at most 10", len(refs)-2)
	}
	manifest, config = read(r.Digest()), read(r.ManifestDigest())
	refs[0].size, refs[1].size = len(manifest), len(config)
	compact := func(b []byte) []byte {
		for _, rf := range refs {
			h := strings.TrimPrefix(rf.digest, "sha256:")
			b = bytes.ReplaceAll(b, fmt.Appendf(nil, `%s","size":%d`, h, rf.size), fmt.Appendf(nil, `$%s","size":#%s`, rf.key, rf.key))
			b = bytes.ReplaceAll(b, []byte(h), []byte("$"+rf.key))
		}
		for _, c := range []byte(compactMacros) {
			b = bytes.ReplaceAll(b, []byte(macroText(c)), []byte{'%', c})
		}
		return b
	}
	var idx []byte
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == indexFile {
			if idx, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	index, manifest, config = compact(idx), compact(manifest), compact(config)
	if got := expandBundle(index, manifest, config, blobs); !bytes.Equal(got, data) {
		t.Fatalf("compact form does not expand to the bundle:\n%q\n%q\n%q", index, manifest, config)
	}
	return index, manifest, config, blobs
}

// FuzzManifest checks that decoding and checking any JSON does not panic,
// that errors are one line, that an accepted manifest encodes stably, and
// that Check lets no item through whose kind is not the one its file
// implies or whose file is not a clean relative path outside ferry's own
// metadata.
func FuzzManifest(f *testing.F) {
	for _, seed := range fuzzManifestSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			return
		}
		for _, it := range m.Items {
			if k, err := KindOf(it.File); err != nil || k != it.Kind {
				t.Fatalf("accepted item %q of kind %q, KindOf says %q, %v", it.File, it.Kind, k, err)
			}
			if it.File != path.Clean(it.File) || path.IsAbs(it.File) || strings.ContainsAny(it.File, "\\\x00") ||
				strings.HasPrefix(it.File, ".") || strings.Contains(it.File, "/.") {
				t.Fatalf("accepted unsafe file %q", it.File)
			}
			if (it.Kind == KindZip || it.Kind == KindMod || it.Kind == KindInfo) && !strings.HasPrefix(it.File, mustEscape(t, it.Module)+"/@v/") {
				t.Fatalf("accepted item %q of module %q", it.File, it.Module)
			}
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

func mustEscape(t *testing.T, mod string) string {
	ep, err := module.EscapePath(mod)
	if err != nil {
		t.Fatalf("accepted module path %q: %v", mod, err)
	}
	return ep
}

// fuzzManifestSeeds returns FuzzManifest's seeds: manifests with items of
// every kind, and a few that Check refuses.
func fuzzManifestSeeds(t testing.TB) map[string][]byte {
	enc := func(m *Manifest) []byte {
		data, err := EncodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	m, _ := testItems(t)
	m.Sort()
	// One item of each kind (validManifest has them all, and is large).
	kinds := validManifest()
	kinds.Toolchains = kinds.Toolchains[:1]
	kinds.Items = []Item{kinds.Items[1], kinds.Items[6], kinds.Items[9], kinds.Items[13], kinds.Items[15]}
	relabelled := &Manifest{SchemaVersion: kinds.SchemaVersion, Items: []Item{kinds.Items[1]}}
	relabelled.Items[0].Kind = KindInfo
	return map[string][]byte{
		"good":       enc(m),
		"kinds":      enc(kinds),
		"relabelled": enc(relabelled),
		"dup-file":   []byte(`{"schemaVersion":1,"items":[{"file":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},{"file":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}`),
		"sumdb":      []byte(`{"schemaVersion":1,"sumdb":{"name":"s","key":"k","head":"h","heads":["a"]},"missing":[{"module":"m","version":"v1","reason":"r","impact":"i"}],"items":[]}`),
		"dotdot":     []byte(`{"schemaVersion":2,"toolchains":["go1.26.8"],"items":[{"file":"../@v/v1.0.0.mod","kind":"mod","module":"..","version":"v1.0.0","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}`),
		"negative":   []byte(`{"schemaVersion":1,"items":[{"file":"a","digest":"sha256:00","size":-1}]}`),
		"empty":      []byte(`{"schemaVersion":2}`),
		"null":       []byte(`null`),
	}
}

// TestWriteFuzzCorpus regenerates the committed seed corpus under
// testdata/fuzz when FERRY_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("FERRY_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set FERRY_WRITE_FUZZ_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(fuzzer, name string, values ...any) {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := "go test fuzz v1\n"
		for _, v := range values {
			switch v := v.(type) {
			case []byte:
				content += fmt.Sprintf("[]byte(%q)\n", v)
			case uint16:
				content += fmt.Sprintf("uint16(%d)\n", v)
			case byte:
				content += fmt.Sprintf("byte(%q)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, fuzzer := range []string{"FuzzOpen", "FuzzManifest"} {
		if err := os.RemoveAll(filepath.Join("testdata", "fuzz", fuzzer)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range fuzzOpenSeeds(t) {
		write("FuzzOpen", s.name, s.index, s.manifest, s.config, s.blobs, s.cut, s.at, s.xor)
	}
	for name, data := range fuzzManifestSeeds(t) {
		write("FuzzManifest", name, data)
	}
}
