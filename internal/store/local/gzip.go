package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/ferry-dev/ferry/internal/ctxio"
	"github.com/ferry-dev/ferry/internal/durable"
	"github.com/ferry-dev/ferry/internal/store"
)

// gzDir holds the gzip of each decoded file: DIR/gz/sha256/<hex of
// Item.FileDigest>, the same name as the decoded file in filesDir.
const gzDir = "gz/sha256"

// GzipLevel is the compression level of the gzips the store writes
// (klauspost/compress/gzip). Measured on the 418 decoded zips (1,616 MB)
// of a real project (bench/gziplevel; README, "Measured"): level 1 gives
// 20.6% of the decoded bytes for 5.6 CPU-seconds, level 6 17.3% for 9.0,
// level 7 17.0% for 16.8, level 9 16.5% for 47.5. A zip is compressed once
// at import and sent many times, so 6: 16% fewer bytes on the wire than
// level 1 for about 3 more CPU-seconds an import of that size.
const GzipLevel = 6

var _ store.GzipStore = (*Store)(nil)

// Gzip opens the gzip of the decoded file with the given digest
// (Item.FileDigest), which Import wrote. The error wraps fs.ErrNotExist if
// the store has none (a bundle imported by a ferry that did not write them).
func (s *Store) Gzip(ctx context.Context, digest string) (store.Blob, error) {
	h, err := digestHex(digest)
	if err != nil {
		return nil, err
	}
	return openFile(filepath.Join(s.dir, filepath.FromSlash(gzDir), h), "gzip of "+digest)
}

// gzipWriters reuses gzip writers (and their compressor state) within one
// Import.
type gzipWriters struct{ pool sync.Pool }

func (p *gzipWriters) get(w io.Writer) *gzip.Writer {
	z, ok := p.pool.Get().(*gzip.Writer)
	if ok {
		z.Reset(w)
	} else {
		z, _ = gzip.NewWriterLevel(w, GzipLevel) // a valid constant level: no error
	}
	// No time in the header: 0, where a zero time.Time would be written as
	// its Unix time cut to 32 bits.
	z.ModTime = time.Unix(0, 0)
	return z
}

func (p *gzipWriters) put(z *gzip.Writer) { p.pool.Put(z) }

// gzipTo writes to dst the gzip of the size bytes of src, a decoded file
// with digest digest, checking that src holds exactly those bytes (a
// stored decoded file, or one just decoded and checked), and syncs dst
// where durable.PerFile says so. The gzip header has no name and no time,
// so the same file always gives the same gzip.
func gzipTo(ctx context.Context, zw *gzipWriters, dst *os.File, src io.ReaderAt, size int64, digest string) error {
	z := zw.get(dst)
	defer zw.put(z)
	h := sha256.New()
	n, err := io.Copy(z, io.TeeReader(ctxio.Reader(ctx, io.NewSectionReader(src, 0, size+1)), h))
	if err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); n != size || got != digest {
		return fmt.Errorf("compressing: the decoded file holds %d bytes with digest %s, want %d bytes with %s", n, got, size, digest)
	}
	if err := z.Close(); err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	if durable.PerFile {
		if err := dst.Sync(); err != nil {
			return fmt.Errorf("compressing: %w", err)
		}
	}
	return nil
}
