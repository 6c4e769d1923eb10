package bundle

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"

	"golang.org/x/mod/sumdb/note"
)

// BlobStore is random access to blobs by digest. A bundle file (*Reader) is
// one; the base of a delta may be another bundle, a delta with its own base
// (*Layered), or what an install or a store already holds.
type BlobStore interface {
	// Stat reports whether the store has the blob and its size.
	Stat(digest string) (size int64, ok bool)
	// Open returns a reader of the blob; the error wraps fs.ErrNotExist
	// if the store has no such blob.
	Open(digest string) (*io.SectionReader, error)
	// VerifyBlob re-hashes the blob and compares the result with digest.
	VerifyBlob(ctx context.Context, digest string) error
}

// Source is a bundle as verify, install and import read it: a bundle file
// (*Reader) or a delta read through its base (*Layered).
type Source interface {
	BlobStore
	Path() string
	Digest() string
	Manifest() *Manifest
	ManifestDigest() string
	Signature() string
	CheckSignature(v note.Verifiers) (string, error)
	// Blobs lists every blob the manifest's items need (and, for a bundle
	// file, its metadata blobs); blobs read from a base have Offset -1.
	Blobs() []Blob
	// NeedsBase reports whether items lack their blobs because this is a
	// delta read without its base.
	NeedsBase() bool
}

var (
	_ Source = (*Reader)(nil)
	_ Source = (*Layered)(nil)
)

// Stat reports whether the bundle file holds the blob and its size. A delta
// file does not hold the blobs it leaves to its base.
func (r *Reader) Stat(digest string) (int64, bool) {
	b, ok := r.blob(digest)
	return b.Size, ok
}

// NeedsBase reports whether r is a delta (its manifest names a Base), whose
// items' blobs are not all in the file.
func (r *Reader) NeedsBase() bool { return r.m != nil && r.m.Base != nil && len(r.external) > 0 }

// InBase reports whether digest is the blob of an item that this delta
// file leaves to its base.
func (r *Reader) InBase(digest string) bool {
	_, ok := r.external[digest]
	return ok
}

// BaseBlobs lists, sorted by digest and with Offset -1, the blobs of items
// that this delta file leaves to its base (none for a full bundle).
func (r *Reader) BaseBlobs() []Blob {
	ext := make([]Blob, 0, len(r.external))
	for d, size := range r.external {
		ext = append(ext, Blob{Digest: d, Offset: -1, Size: size})
	}
	sort.Slice(ext, func(i, j int) bool { return ext[i].Digest < ext[j].Digest })
	return ext
}

// Layered reads a delta bundle through its base: a blob the delta file does
// not hold is read from the base. Everything else (manifest, identity,
// signature) is the delta's.
//
// Invariant: WithBase succeeds only if the base holds, with the recorded
// size, every blob the delta's items leave out; blob contents are checked
// by VerifyBlob, as for a bundle file.
type Layered struct {
	*Reader
	base BlobStore
}

// WithBase reads the delta top through base, which must be the bundle the
// delta names: baseManifestDigest is the digest of base's ferry manifest
// (Reader.ManifestDigest, or the digest an install recorded) and baseName
// names it in errors (a file name or a prefix).
func WithBase(top *Reader, base BlobStore, baseManifestDigest, baseName string) (*Layered, error) {
	m := top.Manifest()
	if m.Base == nil {
		return nil, fmt.Errorf("%s: not a delta bundle: it names no base", top.path)
	}
	if baseManifestDigest != m.Base.ManifestDigest {
		return nil, fmt.Errorf("%s: is a delta of %s, but %s is %s", top.path, m.Base, baseName, baseManifestDigest)
	}
	var missing []string
	for _, it := range m.Items {
		size, ok := top.external[it.Digest]
		if !ok {
			continue
		}
		if got, ok := base.Stat(it.Digest); !ok {
			missing = append(missing, it.File)
		} else if got != size {
			return nil, fmt.Errorf("%s: base %s: blob %s of %s has %d bytes, the delta says %d", top.path, baseName, it.Digest, it.File, got, size)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: base %s lacks %d blob(s) the delta needs, e.g. %s", top.path, baseName, len(missing), missing[0])
	}
	return &Layered{Reader: top, base: base}, nil
}

// NeedsBase is false: the base is there.
func (l *Layered) NeedsBase() bool { return false }

// Stat reports the blob from the delta file or else its base.
func (l *Layered) Stat(digest string) (int64, bool) {
	if s, ok := l.Reader.Stat(digest); ok {
		return s, true
	}
	if _, ok := l.external[digest]; !ok {
		return 0, false
	}
	return l.base.Stat(digest)
}

// from picks where a blob of the delta's items lives.
func (l *Layered) from(digest string) (BlobStore, error) {
	if _, ok := l.Reader.blob(digest); ok {
		return l.Reader, nil
	}
	if _, ok := l.external[digest]; ok {
		return l.base, nil
	}
	return nil, fmt.Errorf("%s: blob %s: %w", l.path, digest, fs.ErrNotExist)
}

// Open returns a reader of the blob from the delta or its base.
func (l *Layered) Open(digest string) (*io.SectionReader, error) {
	s, err := l.from(digest)
	if err != nil {
		return nil, err
	}
	return s.Open(digest)
}

// VerifyBlob re-hashes the blob where it lives.
func (l *Layered) VerifyBlob(ctx context.Context, digest string) error {
	s, err := l.from(digest)
	if err != nil {
		return err
	}
	return s.VerifyBlob(ctx, digest)
}

// Blobs lists the delta file's blobs and then the blobs read from the
// base (BaseBlobs).
func (l *Layered) Blobs() []Blob {
	return append(l.Reader.Blobs(), l.Reader.BaseBlobs()...)
}
