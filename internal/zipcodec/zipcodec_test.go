package zipcodec

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// moduleZip builds a module zip with x/mod/zip, as a proxy serves it
// (deflated), and returns its bytes.
func moduleZip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := modzip.CreateFromDir(&buf, module.Version{Path: "example.com/m", Version: "v1.0.0"}, dir); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sampleFiles() map[string]string {
	var big strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&big, "func f%d() int { return %d } // some repeated Go-like text\n", i, i*7)
	}
	return map[string]string{
		"go.mod":      "module example.com/m\n\ngo 1.22\n",
		"m.go":        "package m\n\nfunc M() int { return 1 }\n",
		"big/big.go":  "package big\n\n" + big.String(),
		"LICENSE":     strings.Repeat("Permission is hereby granted, free of charge. ", 200),
		"empty/e.txt": "",
	}
}

func zipReader(t testing.TB, b []byte) *zip.Reader {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func h1Of(t testing.TB, zipBytes []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(p, zipBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(p, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func encode(t testing.TB, orig []byte, level Level) ([]byte, Result) {
	t.Helper()
	var enc bytes.Buffer
	res, err := Encode(context.Background(), &enc, zipReader(t, orig), level)
	if err != nil {
		t.Fatal(err)
	}
	return enc.Bytes(), res
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	orig := moduleZip(t, sampleFiles())
	want := h1Of(t, orig)
	for _, level := range []Level{FastLevel, DefaultLevel, BestLevel} {
		t.Run(level.String(), func(t *testing.T) {
			blob, res := encode(t, orig, level)
			if res.H1 != want {
				t.Fatalf("Encode reports h1 %s, want %s", res.H1, want)
			}
			if len(blob) >= len(orig) {
				t.Errorf("encoded %d bytes, original zip %d: no smaller", len(blob), len(orig))
			}
			var dec bytes.Buffer
			if err := Decode(ctx, &dec, bytes.NewReader(blob), res.FileSize, res.FileDigest); err != nil {
				t.Fatal(err)
			}
			if got := digestOf(dec.Bytes()); got != res.FileDigest || int64(dec.Len()) != res.FileSize {
				t.Fatalf("decoded %d bytes %s, Encode said %d bytes %s", dec.Len(), got, res.FileSize, res.FileDigest)
			}
			// The decoded zip is a valid module zip (as the go command checks
			// it) with the original's h1:, every file stored.
			if got := h1Of(t, dec.Bytes()); got != want {
				t.Fatalf("decoded zip h1 %s, want %s", got, want)
			}
			p := filepath.Join(t.TempDir(), "d.zip")
			os.WriteFile(p, dec.Bytes(), 0o644)
			if _, err := modzip.CheckZip(module.Version{Path: "example.com/m", Version: "v1.0.0"}, p); err != nil {
				t.Fatalf("decoded zip is not a valid module zip: %v", err)
			}
			for _, f := range zipReader(t, dec.Bytes()).File {
				if f.Method != zip.Store {
					t.Errorf("%s: method %d, want Store", f.Name, f.Method)
				}
			}
			for _, c := range []*Checker{{}, {MemMax: 1024, TempDir: t.TempDir()}} {
				h, err := c.Check(ctx, bytes.NewReader(blob), res.FileSize, res.FileDigest)
				if err != nil || h != want {
					t.Fatalf("Check (MemMax %d) = %s, %v; want %s", c.MemMax, h, err, want)
				}
				// DecodeTo a file, after a few bytes already there.
				for _, hash := range []bool{true, false} {
					f, err := os.Create(filepath.Join(t.TempDir(), "out"))
					if err != nil {
						t.Fatal(err)
					}
					f.WriteString("head")
					h, err := c.DecodeTo(ctx, f, bytes.NewReader(blob), res.FileSize, res.FileDigest, hash)
					f.Close()
					if err != nil || hash && h != want || !hash && h != "" {
						t.Fatalf("DecodeTo (MemMax %d, hash %v) = %q, %v", c.MemMax, hash, h, err)
					}
					got, _ := os.ReadFile(f.Name())
					if !bytes.Equal(got, append([]byte("head"), dec.Bytes()...)) {
						t.Fatalf("DecodeTo (MemMax %d, hash %v) wrote %d bytes, want %d", c.MemMax, hash, len(got), 4+dec.Len())
					}
				}
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	orig := moduleZip(t, sampleFiles())
	a, _ := encode(t, orig, DefaultLevel)
	b, _ := encode(t, orig, DefaultLevel)
	if !bytes.Equal(a, b) {
		t.Fatal("two encodings of the same zip differ")
	}
}

func TestCheckRefuses(t *testing.T) {
	ctx := context.Background()
	orig := moduleZip(t, sampleFiles())
	blob, res := encode(t, orig, DefaultLevel)
	other, ores := encode(t, moduleZip(t, map[string]string{"go.mod": "module example.com/m\n"}), DefaultLevel)

	flipped := bytes.Clone(blob)
	flipped[len(flipped)/2] ^= 0x40
	cases := []struct {
		name   string
		blob   []byte
		size   int64
		digest string
		want   string
	}{
		{"flipped byte", flipped, res.FileSize, res.FileDigest, ""},
		{"truncated", blob[:len(blob)-10], res.FileSize, res.FileDigest, ""},
		{"wrong digest", blob, res.FileSize, ores.FileDigest, "manifest says"},
		{"size too small", blob, res.FileSize - 1, res.FileDigest, "manifest says"},
		{"size too large", blob, res.FileSize + 1, res.FileDigest, "manifest says"},
		{"another zip", other, res.FileSize, res.FileDigest, "manifest says"},
		{"not zstd", orig, res.FileSize, res.FileDigest, ""},
		{"empty", nil, res.FileSize, res.FileDigest, ""},
		{"size out of range", blob, MaxFileSize + 1, res.FileDigest, "out of range"},
	}
	var c Checker
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Check(ctx, bytes.NewReader(tc.blob), tc.size, tc.digest)
			if err == nil {
				t.Fatal("Check accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	// The pooled decoders still work after those failures.
	if h, err := c.Check(ctx, bytes.NewReader(blob), res.FileSize, res.FileDigest); err != nil || h != res.H1 {
		t.Fatalf("Check after failures = %s, %v", h, err)
	}
}

// A frame that asks for a window beyond MaxWindow is refused before any
// memory is set aside for it.
func TestHugeWindowRefused(t *testing.T) {
	// magic, frame header descriptor 0 (no single segment, no content
	// size), window descriptor exponent 20 (1 GiB), one empty last raw block.
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00}
	err := Decode(context.Background(), io.Discard, bytes.NewReader(frame), 0, digestOf(nil))
	if err == nil {
		t.Fatal("a 1 GiB window was accepted")
	}
	var d Decoders
	if err := d.Decode(context.Background(), io.Discard, bytes.NewReader(frame), 0, digestOf(nil)); err == nil {
		t.Fatal("a 1 GiB window was accepted by a pooled decoder")
	}
}

func TestDecodersReuse(t *testing.T) {
	ctx := context.Background()
	var d Decoders
	for i := range 5 {
		files := sampleFiles()
		files["n.txt"] = strings.Repeat(fmt.Sprint(i), 1000*i)
		blob, res := encode(t, moduleZip(t, files), FastLevel)
		var out bytes.Buffer
		if err := d.Decode(ctx, &out, bytes.NewReader(blob), res.FileSize, res.FileDigest); err != nil {
			t.Fatalf("decode %d: %v", i, err)
		}
		if i == 2 { // a failure in between
			if err := d.Decode(ctx, io.Discard, bytes.NewReader(blob[:len(blob)/2]), res.FileSize, res.FileDigest); err == nil {
				t.Fatal("truncated blob decoded")
			}
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	// A zip with two files of one name is not a module zip.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for range 2 {
		w, _ := zw.Create("a.go")
		w.Write([]byte("package a\n"))
	}
	zw.Close()
	_, err := Encode(context.Background(), io.Discard, zipReader(t, buf.Bytes()), FastLevel)
	if err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("Encode of a zip with a duplicate file: %v", err)
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"", "better", "best", "default", "fast"} {
		if _, err := ParseLevel(s); err != nil {
			t.Errorf("ParseLevel(%q): %v", s, err)
		}
	}
	if _, err := ParseLevel("max"); err == nil {
		t.Error("ParseLevel(max) accepted")
	}
}

// FuzzCheck feeds arbitrary blobs to the decoder and the zip checks: they
// must never panic; a blob passes against a fixed digest only if it decodes
// to the zip that digest names; and a blob checked against the digest of what
// it decodes to (so that mutations reach the zip layer) passes only if that
// zip passes CheckZip within its own size. The seeds are small (a fuzzer
// spends its time minimizing large ones): an encoded two-file module zip
// here, and in testdata/fuzz/FuzzCheck zips in raw zstd blocks (bytes a
// mutation changes as they are), zip bombs among them, and a run-length bomb.
func FuzzCheck(f *testing.F) {
	ctx := context.Background()
	small := moduleZip(f, map[string]string{"go.mod": "module example.com/m\n", "m.go": "package m\n"})
	blob, res := encode(f, small, FastLevel)
	var decoded bytes.Buffer
	if err := Decode(ctx, &decoded, bytes.NewReader(blob), res.FileSize, res.FileDigest); err != nil {
		f.Fatal(err)
	}
	f.Add(blob, res.FileSize)
	f.Add(blob[:len(blob)/2], res.FileSize)
	f.Add(rawFrame(decoded.Bytes()), res.FileSize)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00}, int64(0))
	c := Checker{MemMax: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		h, err := c.Check(ctx, bytes.NewReader(b), size, res.FileDigest)
		if err == nil && h != res.H1 {
			t.Fatalf("accepted a blob that decodes to h1 %s", h)
		}
		d, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		dec, err := io.ReadAll(io.LimitReader(d, 1<<20))
		d.Close()
		if err != nil {
			return
		}
		if _, err := c.Check(ctx, bytes.NewReader(b), int64(len(dec)), digestOf(dec)); err != nil {
			return
		}
		z, err := zip.NewReader(bytes.NewReader(dec), int64(len(dec)))
		if err != nil {
			t.Fatalf("Check accepted a zip archive/zip refuses: %v", err)
		}
		if err := CheckZip(z, int64(len(dec)), uint64(len(dec))); err != nil {
			t.Fatalf("Check accepted a zip CheckZip refuses: %v", err)
		}
	})
}
