package pack

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// encoded is what the cache records beside an encoded zip.
type encoded struct {
	Digest     string `json:"digest"` // of the original zip
	H1         string `json:"h1"`
	FileDigest string `json:"fileDigest"`
	FileSize   int64  `json:"fileSize"`
}

// encodeZips replaces every module zip in list by its zipcodec encoding
// (toolchain zips stay as they are: install extracts them, and they are
// mostly compiled code). Encoded zips are kept in cacheDir, named by the
// original zip's digest and the encoding settings, so a repack (or the
// delta after it) does not encode again. Every encoded blob, new or cached,
// is decoded again and must give the original's h1: hash before it goes
// into a bundle.
func encodeZips(ctx context.Context, list []*file, cacheDir string, level zipcodec.Level, jobs int, done func(int64)) error {
	dir := filepath.Join(cacheDir, "encoded", fmt.Sprintf("%s-l%d-v%s", zipcodec.Name, level, zipcodec.EncoderVersion))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating encoding cache: %w", err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	for _, f := range list {
		if f.Kind != bundle.KindZip || f.Module == toolchainModule || f.src == "" || f.Encoded() {
			continue
		}
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			size := f.Size
			if err := encodeFile(ctx, f, dir, level); err != nil {
				return fmt.Errorf("encoding %s: %w", f.File, err)
			}
			if done != nil {
				done(size)
			}
			return nil
		})
	}
	return g.Wait()
}

func encodeFile(ctx context.Context, f *file, dir string, level zipcodec.Level) error {
	hexd := strings.TrimPrefix(f.Digest, "sha256:")
	blobPath := filepath.Join(dir, hexd+".zst")
	metaPath := filepath.Join(dir, hexd+".json")
	var meta encoded
	cached := false
	if b, err := os.ReadFile(metaPath); err == nil && json.Unmarshal(b, &meta) == nil &&
		meta.Digest == f.Digest && meta.H1 == f.Hash {
		if _, err := os.Stat(blobPath); err == nil {
			cached = true
		}
	}
	if !cached {
		var err error
		meta, err = encodeToCache(ctx, f, blobPath, level)
		if err == zipcodec.ErrTooLarge {
			return nil // carried as it is
		}
		if err != nil {
			return err
		}
		if meta.H1 != f.Hash {
			return fmt.Errorf("re-encoded zip has h1 %s, the original %s", meta.H1, f.Hash)
		}
		b, _ := json.Marshal(meta)
		if err := writeFileAtomic(metaPath, b); err != nil {
			return err
		}
	}
	// Check what goes into the bundle: its digest, and that it decodes to
	// the zip the manifest will describe, with the original's h1.
	in, err := os.Open(blobPath)
	if err != nil {
		return err
	}
	defer in.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, in)
	if err != nil {
		return err
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h1, err := zipcodec.Check(ctx, in, meta.FileSize, meta.FileDigest, dir)
	if err != nil {
		return fmt.Errorf("checking the encoded zip %s: %w", blobPath, err)
	}
	if h1 != f.Hash {
		return fmt.Errorf("encoded zip %s decodes to h1 %s, the original has %s", blobPath, h1, f.Hash)
	}
	f.src = blobPath
	f.Digest = "sha256:" + hex.EncodeToString(sum.Sum(nil))
	f.Size = n
	f.Encoding = bundle.EncodingZstd
	f.FileDigest = meta.FileDigest
	f.FileSize = meta.FileSize
	return nil
}

// encodeToCache encodes zip f.src into blobPath (through a temporary file).
func encodeToCache(ctx context.Context, f *file, blobPath string, level zipcodec.Level) (encoded, error) {
	meta := encoded{Digest: f.Digest}
	z, err := zip.OpenReader(f.src)
	if err != nil {
		return meta, fmt.Errorf("not a valid zip: %w", err)
	}
	defer z.Close()
	tmp, err := os.CreateTemp(filepath.Dir(blobPath), ".enc-*")
	if err != nil {
		return meta, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	res, err := zipcodec.Encode(ctx, tmp, &z.Reader, level)
	if err != nil {
		return meta, err
	}
	if err := tmp.Close(); err != nil {
		return meta, err
	}
	if err := os.Rename(tmp.Name(), blobPath); err != nil {
		return meta, err
	}
	meta.H1, meta.FileDigest, meta.FileSize = res.H1, res.FileDigest, res.FileSize
	return meta, nil
}

func writeFileAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".meta-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
