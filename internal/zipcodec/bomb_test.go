package zipcodec

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	modzip "golang.org/x/mod/zip"
)

// Zip bombs, built by hand: a central directory can point any number of
// entries at one local header, declare any sizes, and place one entry's
// header inside another's data. None of them may cost more than reading the
// central directory and the local headers.

const modPrefix = "example.com/m@v1.0.0/"

// rawEntry is one central directory record.
type rawEntry struct {
	name         string
	method       uint16
	crc          uint32
	csize, usize uint32
	offset       uint32 // of its local header
}

// localHeader returns a local file header for e (no data descriptor).
func localHeader(e rawEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0x04034b50)
	b = binary.LittleEndian.AppendUint16(b, 20) // version needed
	b = binary.LittleEndian.AppendUint16(b, 0)  // flags
	b = binary.LittleEndian.AppendUint16(b, e.method)
	b = binary.LittleEndian.AppendUint32(b, 0) // time, date
	b = binary.LittleEndian.AppendUint32(b, e.crc)
	b = binary.LittleEndian.AppendUint32(b, e.csize)
	b = binary.LittleEndian.AppendUint32(b, e.usize)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(e.name)))
	b = binary.LittleEndian.AppendUint16(b, 0) // extra
	return append(b, e.name...)
}

// withDirectory appends a central directory of entries, and its end
// record, to body.
func withDirectory(body []byte, entries []rawEntry) []byte {
	out := bytes.Clone(body)
	start := len(out)
	for _, e := range entries {
		b := binary.LittleEndian.AppendUint32(nil, 0x02014b50)
		b = binary.LittleEndian.AppendUint16(b, 20) // made by
		b = binary.LittleEndian.AppendUint16(b, 20) // needed
		b = binary.LittleEndian.AppendUint16(b, 0)  // flags
		b = binary.LittleEndian.AppendUint16(b, e.method)
		b = binary.LittleEndian.AppendUint32(b, 0) // time, date
		b = binary.LittleEndian.AppendUint32(b, e.crc)
		b = binary.LittleEndian.AppendUint32(b, e.csize)
		b = binary.LittleEndian.AppendUint32(b, e.usize)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(e.name)))
		b = binary.LittleEndian.AppendUint16(b, 0)         // extra
		b = binary.LittleEndian.AppendUint16(b, 0)         // comment
		b = binary.LittleEndian.AppendUint16(b, 0)         // disk
		b = binary.LittleEndian.AppendUint16(b, 0)         // internal attributes
		b = binary.LittleEndian.AppendUint32(b, 0o644<<16) // external attributes
		b = binary.LittleEndian.AppendUint32(b, e.offset)
		out = append(append(out, b...), e.name...)
	}
	end := binary.LittleEndian.AppendUint32(nil, 0x06054b50)
	end = binary.LittleEndian.AppendUint32(end, 0) // disks
	end = binary.LittleEndian.AppendUint16(end, uint16(len(entries)))
	end = binary.LittleEndian.AppendUint16(end, uint16(len(entries)))
	end = binary.LittleEndian.AppendUint32(end, uint32(len(out)-start))
	end = binary.LittleEndian.AppendUint32(end, uint32(start))
	end = binary.LittleEndian.AppendUint16(end, 0) // comment
	return append(out, end...)
}

// zeros returns the raw deflate stream of n zero bytes and their CRC-32.
func zeros(t testing.TB, n int) ([]byte, uint32) {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	chunk := make([]byte, 1<<20)
	var crc uint32
	for left := n; left > 0; left -= len(chunk) {
		c := chunk[:min(left, len(chunk))]
		fw.Write(c)
		crc = crc32.Update(crc, crc32.IEEETable, c)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), crc
}

// sharedStream returns a zip of n entries whose central records all point
// at one local header holding a deflate stream of usize zeros.
func sharedStream(t testing.TB, n, usize int) []byte {
	stream, crc := zeros(t, usize)
	first := rawEntry{name: modPrefix + "f00.go", method: zip.Deflate, crc: crc, csize: uint32(len(stream)), usize: uint32(usize)}
	body := append(localHeader(first), stream...)
	var entries []rawEntry
	for i := range n {
		e := first
		e.name = fmt.Sprintf("%sf%02d.go", modPrefix, i)
		entries = append(entries, e)
	}
	return withDirectory(body, entries)
}

// storedZip returns a zip of the given entries, each stored whole after
// its own local header, and lets edit change the central records.
func storedZip(files []struct{ name, data string }, edit func([]rawEntry)) []byte {
	var body []byte
	var entries []rawEntry
	for _, f := range files {
		e := rawEntry{name: f.name, method: zip.Store, crc: crc32.ChecksumIEEE([]byte(f.data)),
			csize: uint32(len(f.data)), usize: uint32(len(f.data)), offset: uint32(len(body))}
		body = append(append(body, localHeader(e)...), f.data...)
		entries = append(entries, e)
	}
	if edit != nil {
		edit(entries)
	}
	return withDirectory(body, entries)
}

type file = struct{ name, data string }

// budgetReaderAt fails once more than its budget has been read: a check
// that decompresses anything runs out.
type budgetReaderAt struct {
	r    io.ReaderAt
	left atomic.Int64
}

var errBudget = errors.New("read budget exceeded: the zip's entries are being read")

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if b.left.Add(-int64(len(p))) < 0 {
		return 0, errBudget
	}
	return b.r.ReadAt(p, off)
}

// bombs are zips HashZip must refuse by reading little more than their
// headers, with an error containing want.
func bombs(t *testing.T) []struct {
	name string
	zip  []byte
	want string
} {
	stream17, crc17 := zeros(t, 17<<20)
	big := func(name string) []byte {
		e := rawEntry{name: name, method: zip.Deflate, crc: crc17, csize: uint32(len(stream17)), usize: 17 << 20}
		return withDirectory(append(localHeader(e), stream17...), []rawEntry{e})
	}
	lying, _ := zeros(t, 100<<20)
	liar := rawEntry{name: modPrefix + "a.go", method: zip.Deflate, crc: 0, csize: uint32(len(lying)), usize: 10}
	return []struct {
		name string
		zip  []byte
		want string
	}{
		{"50 entries share one 100 MiB stream", sharedStream(t, 50, 100<<20), "uncompressed"},
		{"8 entries share one 1 MiB stream", sharedStream(t, 8, 1<<20), `"example.com/m@v1.0.0/f00.go" and "example.com/m@v1.0.0/f01.go" overlap`},
		{"header inside another entry's data", func() []byte {
			inner := rawEntry{name: modPrefix + "b.go", method: zip.Store, crc: crc32.ChecksumIEEE([]byte("package m\n")), csize: 10, usize: 10}
			innerBytes := append(localHeader(inner), "package m\n"...)
			outer := rawEntry{name: modPrefix + "a.go", method: zip.Store, crc: crc32.ChecksumIEEE(innerBytes), csize: uint32(len(innerBytes)), usize: uint32(len(innerBytes))}
			body := append(localHeader(outer), innerBytes...)
			inner.offset = uint32(len(localHeader(outer)))
			return withDirectory(body, []rawEntry{outer, inner})
		}(), "overlap"},
		{"two entries at one header", storedZip([]file{{modPrefix + "a.go", "package m\n"}, {modPrefix + "b.go", "package m\n"}},
			func(e []rawEntry) { e[1].offset = 0 }), "overlap"},
		{"duplicate name", storedZip([]file{{modPrefix + "a.go", "package m\n"}, {modPrefix + "a.go", "package m\n"}}, nil), "duplicate"},
		{"names equal under case folding", storedZip([]file{{modPrefix + "a.go", "package m\n"}, {modPrefix + "A.go", "package m\n"}}, nil), "case-insensitive"},
		{"a file and a directory", storedZip([]file{{modPrefix + "a", "x"}, {modPrefix + "a/b.go", "package b\n"}}, nil), "both a file and a directory"},
		{"declared total over 500 MiB", storedZip([]file{{modPrefix + "a.go", "a"}, {modPrefix + "b.go", "b"}},
			func(e []rawEntry) { e[0].usize = 300 << 20; e[1].usize = 300 << 20 }), "uncompressed"},
		{"declared size that lies", withDirectory(append(localHeader(liar), lying...), []rawEntry{liar}), modPrefix + "a.go"},
		{"go.mod over MaxGoMod", big(modPrefix + "go.mod"), "go.mod"},
		{"LICENSE over MaxLICENSE", big(modPrefix + "LICENSE"), "LICENSE"},
		{"entry past the end", storedZip([]file{{modPrefix + "a.go", "package m\n"}},
			func(e []rawEntry) { e[0].csize = 1 << 20; e[0].usize = 1 << 20 }), ""},
	}
}

func TestHashZipRefusesBombs(t *testing.T) {
	for _, tc := range bombs(t) {
		t.Run(tc.name, func(t *testing.T) {
			br := &budgetReaderAt{r: bytes.NewReader(tc.zip)}
			br.left.Store(64 << 10)
			z, err := zip.NewReader(br, int64(len(tc.zip)))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			h, err := HashZip(z)
			if err == nil {
				t.Fatalf("HashZip accepted it: %s", h)
			}
			if errors.Is(err, errBudget) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one containing %q before the entries are read", err, tc.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refused after %v", d)
			}
			t.Log(err)

			p := filepath.Join(t.TempDir(), "bomb.zip")
			if err := os.WriteFile(p, tc.zip, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := HashZipFile(p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("HashZipFile: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// Module zips written by the go command, by zip.Writer with extended
// timestamps and data descriptors, and with directory entries, pass.
func TestHashZipAcceptsZips(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{modPrefix + "dir/", modPrefix + "dir/a.go", modPrefix + "dir/", modPrefix + "go.mod", modPrefix + "LICENSE", modPrefix + "e"} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Unix(1e9, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(name, "/") && name != modPrefix+"e" {
			w.Write([]byte(strings.Repeat("package a\n", 100)))
		}
	}
	zw.Close()
	for _, b := range [][]byte{buf.Bytes(), moduleZip(t, sampleFiles())} {
		z := zipReader(t, b)
		if _, err := HashZip(z); err != nil {
			t.Fatal(err)
		}
		if err := CheckZip(z, int64(len(b)), MaxFileSize); err != nil {
			t.Fatal(err)
		}
	}
}

// CheckZip, for install's toolchain extraction: the same refusals, with the
// caller's limit on the declared total.
func TestCheckZip(t *testing.T) {
	for _, tc := range bombs(t) {
		if strings.Contains(tc.name, "lies") || strings.Contains(tc.name, "Max") {
			continue // found only by reading, or module zip rules
		}
		t.Run(tc.name, func(t *testing.T) {
			br := &budgetReaderAt{r: bytes.NewReader(tc.zip)}
			br.left.Store(64 << 10)
			z, err := zip.NewReader(br, int64(len(tc.zip)))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckZip(z, int64(len(tc.zip)), MaxFileSize)
			if err == nil || errors.Is(err, errBudget) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckZip: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	b := storedZip([]file{{"go/bin/", ""}, {"go/bin/go", "1234567890"}, {"go/VERSION", "go1.26"}}, nil)
	z := zipReader(t, b)
	if err := CheckZip(z, int64(len(b)), 16); err != nil {
		t.Fatalf("CheckZip with the limit at the declared total: %v", err)
	}
	if err := CheckZip(z, int64(len(b)), 15); err == nil || !strings.Contains(err.Error(), "uncompressed") {
		t.Fatalf("CheckZip with the limit one below the declared total: %v", err)
	}
	if err := CheckZip(z, 50, 16); err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Fatalf("CheckZip with a size that ends inside an entry: %v", err)
	}
}

// Constants are the go command's.
func TestLimits(t *testing.T) {
	if MaxFileSize != modzip.MaxZipFile {
		t.Errorf("MaxFileSize %d, x/mod/zip's MaxZipFile %d", MaxFileSize, modzip.MaxZipFile)
	}
}

// rawFrame returns a zstd frame holding data in raw blocks, with no
// checksum: the bytes a fuzzer mutates are the zip's own.
func rawFrame(data []byte) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 10 << 3} // 1 MiB window
	for {
		n := min(len(data), 128<<10)
		last := 0
		if n == len(data) {
			last = 1
		}
		h := uint32(n)<<3 | uint32(last)
		b = append(b, byte(h), byte(h>>8), byte(h>>16))
		b = append(b, data[:n]...)
		data = data[n:]
		if last == 1 {
			return b
		}
	}
}

// rleBomb returns a zstd frame that decodes to n blocks of 128 KiB of
// zeros, in 4 bytes each.
func rleBomb(n int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 10 << 3}
	for i := range n {
		h := uint32(128<<10)<<3 | 1<<1
		if i == n-1 {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

// An encoded zip decodes to at most the FileSize the manifest gives, and
// hashing it reads at most that many bytes uncompressed.
func TestCheckBounded(t *testing.T) {
	ctx := context.Background()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	deflated := func() []byte {
		stream, crc := zeros(t, 100<<20)
		e := rawEntry{name: modPrefix + "a.go", method: zip.Deflate, crc: crc, csize: uint32(len(stream)), usize: 100 << 20}
		return withDirectory(append(localHeader(e), stream...), []rawEntry{e})
	}()
	for _, tc := range []struct {
		name    string
		blob    []byte
		decoded []byte // nil: blob decodes to more than size
		size    int64
		want    string
	}{
		{"1 GiB of zstd run-length blocks", rleBomb(8192), nil, 1000, "manifest says 1000"},
		{"decoded zip with overlapping entries", nil, storedZip([]file{{modPrefix + "a.go", "package m\n"}, {modPrefix + "b.go", "package m\n"}},
			func(e []rawEntry) { e[1].offset = 0 }), 0, "overlap"},
		{"decoded zip inflating past FileSize", nil, deflated, 0, "uncompressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob, size, digest := tc.blob, tc.size, digestOf(nil)
			if tc.decoded != nil {
				blob, size, digest = enc.EncodeAll(tc.decoded, nil), int64(len(tc.decoded)), digestOf(tc.decoded)
			}
			for _, c := range []*Checker{{}, {MemMax: 1024, TempDir: t.TempDir()}} {
				start := time.Now()
				h, err := c.Check(ctx, bytes.NewReader(blob), size, digest)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Check (MemMax %d) = %s, %v; want an error containing %q", c.MemMax, h, err, tc.want)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("refused after %v", d)
				}
			}
		})
	}
}
