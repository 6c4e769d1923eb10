package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// BlobSource gives the bytes of a blob by digest ("sha256:<hex>").
type BlobSource interface {
	OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error)
}

// FileSource is a BlobSource of files on disk: it maps a digest to the path of
// a file with that content (see FileDigest).
type FileSource map[string]string

// OpenBlob opens the file recorded for digest.
func (s FileSource) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	p, ok := s[digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", digest, os.ErrNotExist)
	}
	return os.Open(p)
}

// WriteOptions controls Write.
type WriteOptions struct {
	Signer note.Signer // nil: unsigned
	// SignerKey is the verifier key of Signer, recorded beside the
	// signature (SignerKeyAnnotation); "" records none.
	SignerKey string
	ModTime   time.Time // of every tar entry, truncated to seconds; zero: Unix 0
	// Progress, if not nil, is called as item blobs are copied with the running
	// total of item bytes written so far (it ends at the sum of the sizes of the
	// distinct item blobs).
	Progress func(n int64)
	// Omit, if not nil, leaves out of the file each item blob it reports
	// (the base of a delta has it). Only for a manifest that names a Base.
	Omit func(digest string) bool
}

// Write writes the bundle for m to path atomically: it sorts and checks m,
// writes path+".tmp-<random>" in the same directory, syncs it and renames it
// to path. While copying each item blob from src it re-hashes it and fails
// (removing the temporary file) if its digest or size differ from the
// manifest item. It returns the digest of the OCI image manifest.
func Write(ctx context.Context, path string, m *Manifest, src BlobSource, opt WriteOptions) (string, error) {
	m.Sort()
	if err := m.Check(); err != nil {
		return "", fmt.Errorf("writing bundle %s: %w", path, err)
	}
	if opt.Omit != nil && m.Base == nil {
		return "", fmt.Errorf("writing bundle %s: blobs left out of a bundle that names no base", path)
	}
	plan, err := planBundle(m, opt.Signer, opt.SignerKey, opt.Omit)
	if err != nil {
		return "", fmt.Errorf("writing bundle %s: %w", path, err)
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("writing bundle: %w", err)
	}
	tmp := f.Name()
	err = plan.writeTar(ctx, f, src, opt)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing bundle %s: %w", path, err)
	}
	syncDir(dir)
	return plan.manifestDigest, nil
}

// syncDir makes a rename in dir durable, where the system supports it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// plan is everything about a bundle but the item bytes.
type plan struct {
	layout, index    []byte
	manifest, config []byte
	manifestDigest   string
	configDigest     string
	items            []ociDescriptor // distinct item blobs, sorted by digest
	itemFile         map[string]string
}

func planBundle(m *Manifest, signer note.Signer, signerKey string, omit func(string) bool) (*plan, error) {
	p := &plan{itemFile: make(map[string]string)}
	var err error
	if p.config, err = EncodeManifest(m); err != nil {
		return nil, err
	}
	p.configDigest = Digest(p.config)

	sizes := make(map[string]int64)
	for _, it := range m.Items {
		if s, ok := sizes[it.Digest]; ok {
			if s != it.Size {
				return nil, fmt.Errorf("items %q and %q have digest %s but sizes %d and %d", p.itemFile[it.Digest], it.File, it.Digest, s, it.Size)
			}
			continue
		}
		sizes[it.Digest] = it.Size
		if omit != nil && omit(it.Digest) {
			continue
		}
		p.itemFile[it.Digest] = it.File
		p.items = append(p.items, ociDescriptor{MediaType: ItemMediaType, Digest: it.Digest, Size: it.Size})
	}
	sort.Slice(p.items, func(i, j int) bool { return p.items[i].Digest < p.items[j].Digest })

	om := ociManifest{
		SchemaVersion: 2,
		MediaType:     OCIManifestMediaType,
		ArtifactType:  ArtifactType,
		Config:        ociDescriptor{MediaType: ManifestMediaType, Digest: p.configDigest, Size: int64(len(p.config))},
		Layers:        p.items,
	}
	if om.Layers == nil {
		om.Layers = []ociDescriptor{}
	}
	if signer != nil {
		sig, err := note.Sign(&note.Note{Text: SignedText(p.configDigest)}, signer)
		if err != nil {
			return nil, fmt.Errorf("signing manifest: %w", err)
		}
		om.Annotations = map[string]string{SignatureAnnotation: string(sig)}
		if signerKey != "" {
			om.Annotations[SignerKeyAnnotation] = signerKey
		}
	}
	if p.manifest, err = marshal(om); err != nil {
		return nil, fmt.Errorf("encoding OCI manifest: %w", err)
	}
	p.manifestDigest = Digest(p.manifest)

	if p.index, err = indexJSON(p.manifestDigest, int64(len(p.manifest)), m.Name); err != nil {
		return nil, err
	}
	if p.layout, err = marshal(ociLayout{ImageLayoutVersion: ociLayoutVersion}); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *plan) writeTar(ctx context.Context, f *os.File, src BlobSource, opt WriteOptions) error {
	mtime := opt.ModTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	small := func(name string, data []byte) error {
		if err := tw.WriteHeader(tarHeader(name, false, int64(len(data)), mtime)); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		return nil
	}
	if err := small(ociLayoutFile, p.layout); err != nil {
		return err
	}
	if err := small(indexFile, p.index); err != nil {
		return err
	}
	for _, d := range []string{blobsDir, blobsSHA256Dir} {
		if err := tw.WriteHeader(tarHeader(d, true, 0, mtime)); err != nil {
			return fmt.Errorf("writing %s: %w", d, err)
		}
	}
	if err := small(blobName(p.manifestDigest), p.manifest); err != nil {
		return err
	}
	written := map[string]bool{p.manifestDigest: true}
	if !written[p.configDigest] {
		if err := small(blobName(p.configDigest), p.config); err != nil {
			return err
		}
		written[p.configDigest] = true
	}

	var total int64
	for _, d := range p.items {
		if written[d.Digest] {
			// An item with the same bytes as a metadata blob (absurd but legal).
			continue
		}
		written[d.Digest] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tw.WriteHeader(tarHeader(blobName(d.Digest), false, d.Size, mtime)); err != nil {
			return fmt.Errorf("item %s: %w", p.itemFile[d.Digest], err)
		}
		n, err := copyItem(ctx, tw, src, d, func(n int64) {
			if opt.Progress != nil {
				opt.Progress(total + n)
			}
		})
		if err != nil {
			return fmt.Errorf("item %s: %w", p.itemFile[d.Digest], err)
		}
		total += n
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// indexJSON returns the index.json of a bundle whose OCI manifest has the
// given digest and size and whose ferry Manifest has the given name.
func indexJSON(manifestDigest string, size int64, name string) ([]byte, error) {
	ref := name
	if ref == "" {
		ref = DefaultRefName
	}
	idx := ociIndex{
		SchemaVersion: 2,
		MediaType:     OCIIndexMediaType,
		Manifests: []ociDescriptor{{
			MediaType:    OCIManifestMediaType,
			ArtifactType: ArtifactType,
			Digest:       manifestDigest,
			Size:         size,
			Annotations:  map[string]string{OCIRefNameAnnotation: ref},
		}},
	}
	data, err := marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("encoding OCI index: %w", err)
	}
	return data, nil
}

// errSize is returned by copyItem when the source has a different size.
var errSize = errors.New("size mismatch")

// copyItem copies exactly d.Size bytes of d from src to w and checks the digest.
func copyItem(ctx context.Context, w io.Writer, src BlobSource, d ociDescriptor, progress func(int64)) (int64, error) {
	rc, err := src.OpenBlob(ctx, d.Digest)
	if err != nil {
		return 0, fmt.Errorf("opening blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	buf := make([]byte, 256<<10)
	var n int64
	for n < d.Size {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		chunk := buf
		if rest := d.Size - n; rest < int64(len(chunk)) {
			chunk = chunk[:rest]
		}
		k, rerr := io.ReadFull(rc, chunk)
		if k > 0 {
			if _, err := mw.Write(chunk[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			progress(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return n, fmt.Errorf("%w: manifest says %d bytes, source has %d", errSize, d.Size, n)
		}
		if rerr != nil {
			return n, fmt.Errorf("reading blob %s: %w", d.Digest, rerr)
		}
	}
	var one [1]byte
	if k, _ := io.ReadFull(rc, one[:]); k > 0 {
		return n, fmt.Errorf("%w: manifest says %d bytes, source has more", errSize, d.Size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.Digest {
		return n, fmt.Errorf("digest mismatch: manifest says %s, source has %s", d.Digest, got)
	}
	return n, nil
}

// MemSource is a BlobSource of in-memory blobs, keyed by digest.
type MemSource map[string][]byte

// OpenBlob returns a reader of the blob with the given digest.
func (s MemSource) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	b, ok := s[digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", digest, os.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
