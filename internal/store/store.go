// Package store keeps the bundles that `ferry import` adds and `ferry serve`
// answers from.
//
// A store holds whole bundles, never unpacked: the unit of import is one
// bundle, identified by the digest of its OCI image manifest. What a server
// answers for a path is decided by merging the manifests of every bundle in
// the store (package serve does that), so importing is only "make one more
// bundle visible".
//
// Invariants every implementation keeps:
//   - Import makes a bundle visible to List only when all of it is stored;
//     a failed or killed import leaves List as it was, and a rerun completes.
//   - Importing a bundle that is already there changes nothing.
//   - Blobs are immutable and addressed by digest: the same digest always
//     reads the same bytes, whichever bundle or replica serves it.
//   - Several processes (ferry serve replicas, a ferry import) may use one
//     store at the same time.
package store

import (
	"context"
	"io"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// BundleInfo describes one imported bundle.
type BundleInfo struct {
	Digest         string    `json:"digest"`         // OCI manifest digest: the bundle's identity
	ManifestDigest string    `json:"manifestDigest"` // digest of its ferry manifest
	Name           string    `json:"name,omitempty"`
	Version        string    `json:"version,omitempty"`
	Created        string    `json:"created,omitempty"` // from the manifest (SOURCE_DATE_EPOCH), may be empty
	Imported       time.Time `json:"imported"`
	Signer         string    `json:"signer,omitempty"` // key name that signed it, "" if unsigned or not checked
	Size           int64     `json:"size"`             // bundle file size in bytes
	Items          int       `json:"items"`
}

// Blob is random access to one stored blob.
type Blob interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store is where imported bundles live: a local directory or an OCI registry.
type Store interface {
	// List returns the imported bundles, oldest import first.
	List(ctx context.Context) ([]BundleInfo, error)
	// Manifest returns the ferry manifest of an imported bundle.
	Manifest(ctx context.Context, bundleDigest string) (*bundle.Manifest, error)
	// Blob opens a blob (by digest) of an imported bundle.
	Blob(ctx context.Context, bundleDigest, digest string) (Blob, error)
	// Import stores a bundle the caller has verified, described by info
	// (Digest, ManifestDigest, Size and Items are taken from r).
	Import(ctx context.Context, r *bundle.Reader, info BundleInfo) error
}

// FileStore is a Store that keeps the decoded file of encoded items
// (bundle.Item.Encoded), so that a server sends it as it is instead of
// decoding the item's blob for every request. It is optional: a server
// decodes the blob when the store does not implement it or has no file.
type FileStore interface {
	// File opens the decoded file (Item.FileDigest) of an encoded item of
	// an imported bundle, if the store keeps one; the error wraps
	// fs.ErrNotExist otherwise. The file has the digest and size the
	// item's manifest records, checked when the store wrote it.
	File(ctx context.Context, digest string) (Blob, error)
}

// GzipStore is a FileStore that also keeps the gzip (RFC 1952) of each
// decoded file, compressed once at import, so that a server answers a
// client that accepts gzip (the go command does) with a third of the bytes
// and no compression per request. It is optional: a server sends the
// decoded file when the store does not implement it or has no gzip.
type GzipStore interface {
	// Gzip opens the gzip of the decoded file with digest digest
	// (Item.FileDigest), if the store keeps one; the error wraps
	// fs.ErrNotExist otherwise. It decompresses to exactly that file:
	// the store checked the bytes it compressed against the digest and
	// size when it wrote it.
	Gzip(ctx context.Context, digest string) (Blob, error)
}

// HashChecker is a Store that decodes every encoded zip as it imports a
// bundle (a FileStore), and so can recompute each one's h1: hash on the
// way: a caller that must check those hashes (no trusted signature) leaves
// them to ImportChecked instead of decoding every zip twice
// (verify.Options.LeaveEncoded).
type HashChecker interface {
	// ImportChecked is Import, and also recomputes the h1: hash of the zip
	// every encoded item decodes to, including zips the store already
	// holds. On the first that differs from its item's Hash it fails,
	// naming the item, and leaves the store as it was.
	ImportChecked(ctx context.Context, r *bundle.Reader, info BundleInfo) error
}

// Pruner is a Store that can drop bundles.
type Pruner interface {
	// Prune drops the bundle from the store. What other stored bundles
	// still need (a delta reads blobs through its base) stays readable:
	// stores count references by blob. The error wraps fs.ErrNotExist if
	// the bundle is not in the store.
	Prune(ctx context.Context, bundleDigest string) (PruneReport, error)
}

// PruneReport says what Prune did.
type PruneReport struct {
	Bundle     BundleInfo `json:"bundle"`
	FreedBytes int64      `json:"freedBytes"` // bytes no longer stored
	KeptBlobs  int        `json:"keptBlobs"`  // blobs kept because other bundles need them
	KeptBytes  int64      `json:"keptBytes"`
}

// Describe completes info for bundle r of size bytes, as every Store's
// Import records it: identity and counts from r, name, version and creation
// date from its manifest unless info sets them, and the import time now
// unless info sets it.
func Describe(r *bundle.Reader, size int64, info BundleInfo) BundleInfo {
	m := r.Manifest()
	info.Digest = r.Digest()
	info.ManifestDigest = r.ManifestDigest()
	info.Size = size
	info.Items = len(m.Items)
	if info.Name == "" {
		info.Name = m.Name
	}
	if info.Version == "" {
		info.Version = m.Version
	}
	if info.Created == "" {
		info.Created = m.Created
	}
	if info.Imported.IsZero() {
		info.Imported = time.Now().UTC().Truncate(time.Millisecond)
	}
	return info
}
