package install

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// overlappingZip writes a zip with the given small files and one entry of
// size bytes of zeros, then adds n more central directory entries that all
// point at that entry's bytes: n+1 entries sharing one deflate stream.
func overlappingZip(t *testing.T, prefix string, files map[string]string, size, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(prefix + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	w, err := zw.Create(prefix + "pkg/big")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, size))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	eocd := bytes.LastIndex(data, []byte{0x50, 0x4b, 0x05, 0x06})
	cdSize := binary.LittleEndian.Uint32(data[eocd+12:])
	cdOff := binary.LittleEndian.Uint32(data[eocd+16:])
	cd := data[cdOff : cdOff+cdSize]
	// The last central directory record is pkg/big's.
	last := bytes.LastIndex(cd, []byte{0x50, 0x4b, 0x01, 0x02})
	rec := cd[last:]
	nameLen := int(binary.LittleEndian.Uint16(rec[28:]))
	var extra bytes.Buffer
	for i := range n {
		name := []byte(fmt.Sprintf("%spkg/b%03d", prefix, i))
		r := append([]byte(nil), rec[:46]...)
		binary.LittleEndian.PutUint16(r[28:], uint16(len(name)))
		r = append(r, name...)
		r = append(r, rec[46+nameLen:]...)
		extra.Write(r)
	}
	var out bytes.Buffer
	out.Write(data[:cdOff+cdSize])
	out.Write(extra.Bytes())
	end := append([]byte(nil), data[eocd:]...)
	entries := binary.LittleEndian.Uint16(end[10:]) + uint16(n)
	binary.LittleEndian.PutUint16(end[8:], entries)
	binary.LittleEndian.PutUint16(end[10:], entries)
	binary.LittleEndian.PutUint32(end[12:], cdSize+uint32(extra.Len()))
	out.Write(end)
	return out.Bytes()
}

// TestToolchainZipBombRefused: a toolchain zip of entries that share one
// stream (50 x 100 MiB from 100 KB; before, install extracted 5 GB), or
// that declares more than the go command's 500 MiB, is refused before
// anything is extracted.
func TestToolchainZipBombRefused(t *testing.T) {
	version := "v0.0.1-go1.26.8.linux-amd64"
	prefix := toolchainModule + "@" + version + "/"
	files := map[string]string{"VERSION": "go1.26.8\n", "bin/go": "go"}
	for _, tc := range []struct {
		name string
		zip  []byte
		want string
	}{
		{"50 entries sharing a stream", overlappingZip(t, prefix, files, 100<<20, 50), "uncompressed"},
		{"overlapping under the size bound", overlappingZip(t, prefix, files, 10<<20, 3), "overlap"},
		{"declared size", overlappingZip(t, prefix, files, 600<<20, 0), "uncompressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.zip) > 2<<20 {
				t.Fatalf("the bomb is %d bytes", len(tc.zip))
			}
			if zr, err := zip.NewReader(bytes.NewReader(tc.zip), int64(len(tc.zip))); err != nil {
				t.Fatalf("the bomb is not a zip archive/zip reads: %v", err)
			} else if len(zr.File) < 3 {
				t.Fatalf("the bomb has %d entries", len(zr.File))
			}
			b := newBuilder("bomb")
			b.module(t, "example.com/a", "v1.0.0", ".mod")
			b.add(bundle.Item{File: toolchainModule + "/@v/" + version + ".zip", Kind: bundle.KindZip,
				Module: toolchainModule, Version: version, Platform: "linux/amd64"}, tc.zip)
			b.m.Toolchains = []string{"go1.26.8"}
			pre := filepath.Join(t.TempDir(), "prefix")
			_, err := Install(context.Background(), b.source(), options(t, pre))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Install = %v, want an error about %q", err, tc.want)
			}
			if _, err := os.Lstat(pre); err == nil {
				t.Errorf("the refused first install left %s", pre)
			}
		})
	}
}
