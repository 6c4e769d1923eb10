// Package zipcodec is the transport encoding of module zips in a bundle.
//
// A module zip as a proxy serves it is deflated file by file, which leaves
// most of a module's redundancy (across files, and beyond deflate's 32 KiB
// window) on the table. Encode rewrites it as a Store-method zip holding the
// same files, with the same names, in the same order, and compresses that
// zip as one zstd frame. Decoding gives back the Store-method zip: a valid
// module zip whose h1: hash (golang.org/x/mod/sumdb/dirhash, a hash of the
// file names and contents) is the original's, which is all the go command
// and the checksum database check. So the encoded form is what a bundle
// carries, and the decoded zip is what an install writes and a server sends.
//
// Invariants:
//
//   - Encode is deterministic: the same zip and Level give the same bytes
//     (one encoder goroutine; the zstd library's version is pinned in go.mod).
//   - Encode never changes a zip's contents: it reports the h1: hash of the
//     zip it read and of the zip it wrote and fails if they differ, and it
//     refuses a zip whose Store-method form would exceed MaxFileSize (the
//     go command's limit on a downloaded module zip).
//   - Decoding refuses frames whose window exceeds MaxWindow, so a hostile
//     blob cannot make a reader allocate more than that per stream; Check
//     and Decode fail unless the decoded bytes have exactly the size and
//     sha256 digest the bundle's manifest records.
//   - Hashing a zip (HashZip, HashZipFile, Check, DecodeTo) reads no entry
//     before CheckZip's checks pass: no two names equal, also under case
//     folding; no entry's bytes overlapping another's; declared sizes within
//     the go command's limits (MaxFileSize in all, MaxGoMod, MaxLICENSE) and,
//     for a decoded zip, within its own size. archive/zip fails a read past an
//     entry's declared size, so hashing a zip inflates at most MaxFileSize
//     bytes, and a decoded one at most the FileSize its manifest gives, each
//     compressed byte read once.
package zipcodec

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	kflate "github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/ferry-dev/ferry/internal/ctxio"
)

// Name is the value of bundle.Item.Encoding for this encoding.
const Name = "zstd"

// MaxFileSize is the largest decoded zip: the go command refuses a module
// zip larger than 500 MiB from a proxy, and one whose files add up to more
// (golang.org/x/mod/zip's MaxZipFile).
const MaxFileSize = modzip.MaxZipFile

// Window is the zstd window Encode uses, and MaxWindow the largest one a
// decoder accepts. A window covers most modules whole; beyond it, matches
// only reach back this far. It bounds the memory of each decoding stream.
const (
	Window    = 8 << 20
	MaxWindow = 64 << 20
)

// EncoderVersion names what Encode writes for a given zip and Level: bump it
// whenever that changes (settings, or the zstd library's output), so that
// caches of encoded zips keyed by it are not mixed up.
const EncoderVersion = "2-klauspost1.20.1"

// Level is how hard Encode compresses.
type Level = zstd.EncoderLevel

// Levels: DefaultLevel is what pack uses.
const (
	FastLevel    = zstd.SpeedDefault
	DefaultLevel = zstd.SpeedBetterCompression
	BestLevel    = zstd.SpeedBestCompression
)

// ParseLevel reads a level name: "default", "better" or "best".
func ParseLevel(s string) (Level, error) {
	switch s {
	case "default", "fast":
		return FastLevel, nil
	case "better", "":
		return DefaultLevel, nil
	case "best":
		return BestLevel, nil
	}
	return 0, fmt.Errorf("unknown compression level %q (want default, better or best)", s)
}

// Result describes what Encode wrote.
type Result struct {
	H1         string // h1: hash of the zip's contents (read and written alike)
	FileDigest string // "sha256:<hex>" of the decoded (Store-method) zip
	FileSize   int64  // its size in bytes
}

// Encode reads module zip zr and writes to w the zstd encoding of a
// Store-method zip with the same files.
func Encode(ctx context.Context, w io.Writer, zr *zip.Reader, level Level) (Result, error) {
	var res Result
	h1, err := HashZip(zr)
	if err != nil {
		return res, err
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(windowFor(zr)), zstd.WithEncoderCRC(true))
	if err != nil {
		return res, fmt.Errorf("zstd encoder: %w", err)
	}
	defer enc.Close()
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(enc, sum)}
	zw := zip.NewWriter(cw)
	buf := make([]byte, 256<<10)
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if f.FileInfo().IsDir() {
			return res, fmt.Errorf("zip has a directory entry %q", f.Name)
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			return res, fmt.Errorf("writing %s: %w", f.Name, err)
		}
		rc, err := f.Open()
		if err != nil {
			return res, fmt.Errorf("reading %s: %w", f.Name, err)
		}
		_, err = io.CopyBuffer(fw, rc, buf)
		rc.Close()
		if err != nil {
			return res, fmt.Errorf("reading %s: %w", f.Name, err)
		}
		if cw.n > MaxFileSize {
			return res, ErrTooLarge
		}
	}
	if err := zw.Close(); err != nil {
		return res, err
	}
	if cw.n > MaxFileSize {
		return res, ErrTooLarge
	}
	if err := enc.Close(); err != nil {
		return res, fmt.Errorf("zstd encoder: %w", err)
	}
	res = Result{H1: h1, FileDigest: "sha256:" + hex.EncodeToString(sum.Sum(nil)), FileSize: cw.n}
	return res, nil
}

// windowFor returns the window for zr: Window, or for a smaller module the
// smallest power of two that holds its Store-method zip, so that a decoder
// of a small module needs little memory.
func windowFor(zr *zip.Reader) int {
	var n uint64 = 22 // end of central directory
	for _, f := range zr.File {
		// local header, data, data descriptor, central directory entry
		n += 30 + f.UncompressedSize64 + 24 + 46 + 2*uint64(len(f.Name)) + 32
	}
	w := zstd.MinWindowSize
	for uint64(w) < n && w < Window {
		w *= 2
	}
	return w
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewReader returns a reader of the zip that blob r encodes. Close it to
// release the decoder. It does not check the result: Decode and Check do.
func NewReader(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxWindow),
		zstd.WithDecoderMaxMemory(MaxFileSize))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return d.IOReadCloser(), nil
}

// Decode writes the zip that blob r encodes to w and checks that it has
// size bytes and the given digest.
func Decode(ctx context.Context, w io.Writer, r io.Reader, size int64, digest string) error {
	d, err := NewReader(r)
	if err != nil {
		return err
	}
	defer d.Close()
	sum := sha256.New()
	return copyChecked(ctx, io.MultiWriter(w, sum), d, sum, size, digest)
}

// Decoders is a pool of decoders, for a server that decodes many blobs.
// The zero value is ready to use.
type Decoders struct{ pool sync.Pool }

// Decode is the package's Decode with a pooled decoder.
func (p *Decoders) Decode(ctx context.Context, w io.Writer, r io.Reader, size int64, digest string) error {
	d, _ := p.pool.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxWindow),
			zstd.WithDecoderMaxMemory(MaxFileSize))
		if err != nil {
			return fmt.Errorf("zstd decoder: %w", err)
		}
	}
	if err := d.Reset(r); err != nil {
		return fmt.Errorf("zstd decoder: %w", err)
	}
	sum := sha256.New()
	err := copyChecked(ctx, io.MultiWriter(w, sum), d, sum, size, digest)
	if err == nil {
		// A decoder that failed may hold a half-read stream: drop it.
		d.Reset(nil)
		p.pool.Put(d)
	} else {
		d.Close()
	}
	return err
}

// copyChecked copies r to w (which feeds sum), then checks size and digest.
func copyChecked(ctx context.Context, w io.Writer, r io.Reader, sum hash.Hash, size int64, digest string) error {
	n, err := io.Copy(w, ctxio.Reader(ctx, io.LimitReader(r, size+1)))
	if err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	if n != size {
		return fmt.Errorf("decodes to %d bytes or more, manifest says %d", n, size)
	}
	if got := "sha256:" + hex.EncodeToString(sum.Sum(nil)); got != digest {
		return fmt.Errorf("decodes to %s, manifest says %s", got, digest)
	}
	return nil
}

// memMax is the largest decoded zip a Checker holds in memory; larger ones
// go to a temporary file.
const memMax = 64 << 20

// Checker decodes blobs and hashes the zips they encode, reusing its
// buffers (fresh memory for every zip costs more than the decoding). The
// zero value is ready; TempDir is where large zips are decoded ("" for the
// system's temporary directory).
type Checker struct {
	TempDir string
	// MemMax is the largest zip decoded into memory (0: 64 MiB); larger
	// ones are decoded into a temporary file.
	MemMax int64
	once   sync.Once
	free   chan *[]byte // buffers not in use (a sync.Pool drops them at every GC)
	dec    Decoders
}

// Check decodes blob r, checks the decoded zip's size and digest, and
// returns its h1: hash.
func (c *Checker) Check(ctx context.Context, r io.Reader, size int64, digest string) (string, error) {
	return c.DecodeTo(ctx, nil, r, size, digest, true)
}

// DecodeTo decodes blob r, checks the decoded zip's size and digest, and
// writes it to dst (if not nil) at its current offset. With hash it
// returns the zip's h1: hash, computed from memory for a zip of up to
// MemMax bytes (so the zip is not read back) and from dst or a temporary
// file for a larger one.
func (c *Checker) DecodeTo(ctx context.Context, dst *os.File, r io.Reader, size int64, digest string, hash bool) (string, error) {
	if size < 0 || size > MaxFileSize {
		return "", fmt.Errorf("decoded size %d is out of range", size)
	}
	memLimit := c.MemMax
	if memLimit <= 0 {
		memLimit = memMax
	}
	if size > memLimit || !hash {
		f := dst
		if f == nil {
			tmp, err := os.CreateTemp(c.TempDir, "ferry-zip-*")
			if err != nil {
				return "", fmt.Errorf("decoding: %w", err)
			}
			defer os.Remove(tmp.Name())
			defer tmp.Close()
			f = tmp
		}
		start, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return "", err
		}
		if err := c.dec.Decode(ctx, f, r, size, digest); err != nil {
			return "", err
		}
		if !hash {
			return "", nil
		}
		return hashZipAt(io.NewSectionReader(f, start, size), size)
	}
	c.once.Do(func() { c.free = make(chan *[]byte, 16) })
	var buf *[]byte
	select {
	case buf = <-c.free:
	default:
		b := make([]byte, 0, memLimit) // reused whole: growing buffers costs more than filling them
		buf = &b
	}
	defer func() {
		select {
		case c.free <- buf:
		default:
		}
	}()
	w := &sliceWriter{b: (*buf)[:0]}
	if err := c.dec.Decode(ctx, w, r, size, digest); err != nil {
		return "", err
	}
	h1, err := hashZipAt(bytes.NewReader(w.b), size)
	if err != nil {
		return "", err
	}
	if dst != nil {
		if _, err := dst.Write(w.b); err != nil {
			return "", err
		}
	}
	return h1, nil
}

// sliceWriter appends to b, which has room for what is written (Decode
// writes at most the size it is given).
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Check is Checker.Check without reuse, with large zips decoded in tmpDir.
func Check(ctx context.Context, r io.Reader, size int64, digest, tmpDir string) (string, error) {
	c := Checker{TempDir: tmpDir}
	return c.Check(ctx, r, size, digest)
}

// hashZipAt hashes the decoded zip in ra, of size bytes: a Store-method zip
// holds its files' bytes, so they may not declare more than size in all.
func hashZipAt(ra io.ReaderAt, size int64) (string, error) {
	z, err := zip.NewReader(ra, size)
	if err != nil {
		return "", fmt.Errorf("decoded zip: %w", err)
	}
	return hashZip(z, size, uint64(min(size, MaxFileSize)))
}

// HashZip returns the h1: hash of the files in module zip z. Before it reads
// any entry it refuses what CheckZip refuses, with the go command's limits:
// MaxFileSize bytes uncompressed in all, MaxGoMod and MaxLICENSE.
func HashZip(z *zip.Reader) (string, error) {
	return hashZip(z, -1, MaxFileSize)
}

// hashZip is HashZip for a zip of size bytes (-1: unknown) whose entries
// declare at most maxUncompressed bytes.
func hashZip(z *zip.Reader, size int64, maxUncompressed uint64) (string, error) {
	if err := checkZip(z, size, maxUncompressed); err != nil {
		return "", err
	}
	if err := checkModule(z); err != nil {
		return "", err
	}
	// klauspost's inflater is a drop-in that is markedly faster than
	// compress/flate; inflating is most of the cost for deflated zips.
	z.RegisterDecompressor(zip.Deflate, kflate.NewReader)
	names := make([]string, 0, len(z.File))
	byName := make(map[string]*zip.File, len(z.File))
	for _, f := range z.File {
		names = append(names, f.Name)
		byName[f.Name] = f
	}
	h, err := dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		f := byName[name]
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return entryReader{rc, f}, nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing zip: %w", err)
	}
	return h, nil
}

// entryReader names its entry in read errors.
type entryReader struct {
	io.ReadCloser
	f *zip.File
}

func (r entryReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		if errors.Is(err, zip.ErrFormat) { // what archive/zip says of a read past the declared size
			err = fmt.Errorf("inflates to more than the %d bytes it declares, or is damaged: %w", r.f.UncompressedSize64, err)
		}
		err = fmt.Errorf("%s: %w", r.f.Name, err)
	}
	return n, err
}

// HashZipFile returns the h1: hash of the module zip file at path, as
// HashZip does.
func HashZipFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	z, err := zip.NewReader(f, fi.Size())
	if err != nil {
		return "", fmt.Errorf("%s: not a valid zip: %w", path, err)
	}
	return hashZip(z, fi.Size(), MaxFileSize)
}

// ErrTooLarge is returned by Encode for a zip whose Store-method form would
// exceed MaxFileSize: carry such a zip as it is.
var ErrTooLarge = errors.New("uncompressed zip is larger than the go command accepts from a proxy")
