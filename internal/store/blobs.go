package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// Stored is a bundle in a store as a bundle.BlobStore: the blobs of its
// items, read through the store (so a stored delta's come from its base).
// It is how a delta is verified against a base the store holds.
type Stored struct {
	ctx   context.Context
	st    Store
	Info  BundleInfo
	sizes map[string]int64
}

var _ bundle.BlobStore = (*Stored)(nil)

// FindByManifest returns the stored bundle whose ferry manifest has digest
// manifestDigest; the error wraps fs.ErrNotExist if there is none.
func FindByManifest(ctx context.Context, st Store, manifestDigest string) (*Stored, error) {
	infos, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range infos {
		if in.ManifestDigest != manifestDigest {
			continue
		}
		m, err := st.Manifest(ctx, in.Digest)
		if err != nil {
			return nil, err
		}
		s := &Stored{ctx: ctx, st: st, Info: in, sizes: make(map[string]int64, len(m.Items))}
		for _, it := range m.Items {
			s.sizes[it.Digest] = it.Size
		}
		return s, nil
	}
	return nil, fmt.Errorf("no stored bundle has manifest %s: %w", manifestDigest, fs.ErrNotExist)
}

// Close releases nothing: Open's readers hold no blob open.
func (s *Stored) Close() error { return nil }

// Stat reports the size the stored bundle's manifest gives the blob.
func (s *Stored) Stat(digest string) (int64, bool) {
	n, ok := s.sizes[digest]
	return n, ok
}

func (s *Stored) blob(digest string) (Blob, error) {
	if _, ok := s.sizes[digest]; !ok {
		return nil, fmt.Errorf("stored bundle %s: blob %s: %w", s.Info.Digest, digest, fs.ErrNotExist)
	}
	return s.st.Blob(s.ctx, s.Info.Digest, digest)
}

// Open returns a reader of the blob. It opens the blob for each read, so
// that verifying a delta through a big stored base holds no blob open.
func (s *Stored) Open(digest string) (*io.SectionReader, error) {
	b, err := s.blob(digest)
	if err != nil {
		return nil, err
	}
	size := b.Size()
	b.Close()
	return io.NewSectionReader(blobAt{s, digest}, 0, size), nil
}

// blobAt is an io.ReaderAt that opens a stored blob for each read.
type blobAt struct {
	s      *Stored
	digest string
}

func (a blobAt) ReadAt(p []byte, off int64) (int, error) {
	b, err := a.s.blob(a.digest)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	return b.ReadAt(p, off)
}

// VerifyBlob re-hashes the stored blob.
func (s *Stored) VerifyBlob(ctx context.Context, digest string) error {
	b, err := s.blob(digest)
	if err != nil {
		return err
	}
	defer b.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(b, 0, b.Size())); err != nil {
		return fmt.Errorf("stored bundle %s: verifying blob %s: %w", s.Info.Digest, digest, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("stored bundle %s: blob %s: digest mismatch (content hashes to %s)", s.Info.Digest, digest, got)
	}
	return nil
}
