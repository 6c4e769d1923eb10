// Package testbundle writes small ferry bundles for tests of the store and
// the server: any set of GOPROXY files (module zips as they are, or encoded
// as pack carries them), with checksum database answers signed by a
// throwaway key. It is for tests only.
//
// Invariant: the bundles it writes pass bundle.Open and Manifest.Check; their
// checksum database answers are well-formed but prove nothing.
package testbundle

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// DB is the name of the checksum database of the test bundles.
const DB = "sum.test"

// Write writes a bundle with the given files (GOPROXY layout paths, escaped)
// to dir/name and returns its path.
func Write(t testing.TB, dir, name string, files map[string][]byte) string {
	t.Helper()
	return write(t, dir, name, files, "")
}

// WriteDelta writes a delta of the bundle at basePath: its manifest lists
// all of files (which should include what the base has), its file holds
// only the blobs the base lacks.
func WriteDelta(t testing.TB, dir, name, basePath string, files map[string][]byte) string {
	t.Helper()
	return write(t, dir, name, files, basePath)
}

// Zip is a module zip as a bundle carries it encoded (package zipcodec),
// as pack writes it.
type Zip struct {
	Blob       []byte // the encoded blob: what the bundle file holds
	Decoded    []byte // the zip it decodes to: what a server sends
	FileDigest string // the digest of Decoded
	H1         string // the h1: hash of its files
}

// EncodeZip builds the module zip of mod@version with files (names inside
// the module, e.g. "go.mod") and encodes it.
func EncodeZip(t testing.TB, mod, version string, files map[string][]byte) Zip {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var orig bytes.Buffer
	zw := zip.NewWriter(&orig)
	for _, n := range names {
		w, err := zw.Create(mod + "@" + version + "/" + n)
		if err == nil {
			_, err = w.Write(files[n])
		}
		if err != nil {
			t.Fatalf("testbundle: %v", err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("testbundle: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(orig.Bytes()), int64(orig.Len()))
	if err != nil {
		t.Fatalf("testbundle: %v", err)
	}
	var blob, dec bytes.Buffer
	res, err := zipcodec.Encode(context.Background(), &blob, zr, zipcodec.FastLevel)
	if err != nil {
		t.Fatalf("testbundle: %v", err)
	}
	if err := zipcodec.Decode(context.Background(), &dec, bytes.NewReader(blob.Bytes()), res.FileSize, res.FileDigest); err != nil {
		t.Fatalf("testbundle: %v", err)
	}
	return Zip{Blob: blob.Bytes(), Decoded: dec.Bytes(), FileDigest: res.FileDigest, H1: res.H1}
}

// WriteEncoded is Write (WriteDelta if basePath is not "") with zips
// (GOPROXY .zip paths) carried as encoded items.
func WriteEncoded(t testing.TB, dir, name, basePath string, files map[string][]byte, zips map[string]Zip) string {
	t.Helper()
	return writeZips(t, dir, name, files, zips, basePath)
}

func write(t testing.TB, dir, name string, files map[string][]byte, basePath string) string {
	t.Helper()
	return writeZips(t, dir, name, files, nil, basePath)
}

func writeZips(t testing.TB, dir, name string, files map[string][]byte, zips map[string]Zip, basePath string) string {
	t.Helper()
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: name}
	src := bundle.MemSource{}
	for f, z := range zips {
		escMod, file, ok := strings.Cut(f, "/@v/")
		mod, err1 := module.UnescapePath(escMod)
		v, err2 := module.UnescapeVersion(strings.TrimSuffix(file, ".zip"))
		if !ok || !strings.HasSuffix(file, ".zip") || err1 != nil || err2 != nil {
			t.Fatalf("testbundle: %s is not a module zip path", f)
		}
		d := bundle.Digest(z.Blob)
		src[d] = z.Blob
		m.Items = append(m.Items, bundle.Item{File: f, Kind: bundle.KindZip, Module: mod, Version: v,
			Size: int64(len(z.Blob)), Digest: d, Hash: z.H1,
			Encoding: bundle.EncodingZstd, FileSize: int64(len(z.Decoded)), FileDigest: z.FileDigest})
	}
	for f, data := range files {
		d := bundle.Digest(data)
		src[d] = data
		it := bundle.Item{File: f, Size: int64(len(data)), Digest: d}
		if strings.HasPrefix(f, "sumdb/") {
			it.Kind = bundle.KindSumDB
			if m.SumDB == nil {
				m.SumDB = &bundle.SumDB{Name: DB}
			}
		} else {
			escMod, file, ok := strings.Cut(f, "/@v/")
			if !ok {
				t.Fatalf("testbundle: %s is not a GOPROXY file", f)
			}
			ext := path.Ext(file)
			it.Kind = bundle.Kind(strings.TrimPrefix(ext, "."))
			mod, err1 := module.UnescapePath(escMod)
			v, err2 := module.UnescapeVersion(strings.TrimSuffix(file, ext))
			if err1 != nil || err2 != nil {
				t.Fatalf("testbundle: bad file %s", f)
			}
			it.Module, it.Version = mod, v
			if mod == "golang.org/toolchain" {
				// v0.0.1-goX.Y.Z.GOOS-GOARCH
				tc := strings.TrimPrefix(v, "v0.0.1-")
				if i := strings.LastIndex(tc, "."); i > 0 {
					m.Toolchains = appendNew(m.Toolchains, tc[:i])
					if it.Kind == bundle.KindZip {
						it.Platform = strings.Replace(tc[i+1:], "-", "/", 1)
					}
				}
			}
		}
		m.Items = append(m.Items, it)
	}
	var opt bundle.WriteOptions
	if basePath != "" {
		base, err := bundle.Open(basePath)
		if err != nil {
			t.Fatalf("testbundle: %v", err)
		}
		defer base.Close()
		m.Base = &bundle.Base{ManifestDigest: base.ManifestDigest(), Name: base.Manifest().Name}
		in := map[string]bool{}
		for _, it := range base.Manifest().Items {
			in[it.Digest] = true
		}
		opt.Omit = func(d string) bool { return in[d] }
	}
	p := filepath.Join(dir, name)
	if _, err := bundle.Write(context.Background(), p, m, src, opt); err != nil {
		t.Fatalf("testbundle: %v", err)
	}
	return p
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Head returns a tree head of size n signed by the test database's key.
func Head(t testing.TB, n int64) []byte {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.NewChaCha8([32]byte{1}), DB)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	var h tlog.Hash
	copy(h[:], fmt.Sprintf("tree %d", n))
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: h}))}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// Lookup returns a lookup answer for record id with text, wrapped with a
// head of tree size n.
func Lookup(t testing.TB, id int64, text string, n int64) []byte {
	t.Helper()
	rec, err := tlog.FormatRecord(id, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return append(rec, Head(t, n)...)
}

// Import imports the bundle file at p into st and returns its digest.
func Import(t testing.TB, st store.Store, p string) string {
	t.Helper()
	r, err := bundle.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := st.Import(context.Background(), r, store.BundleInfo{}); err != nil {
		t.Fatal(err)
	}
	return r.Digest()
}
