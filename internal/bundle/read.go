package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Errors of Reader.CheckSignature, for errors.Is.
var (
	ErrNotSigned    = errors.New("bundle is not signed")
	ErrBadSignature = errors.New("bundle signature: verification failed (unknown key or tampered)")
)

// Size limits of the metadata entries Open reads into memory.
const (
	maxLayoutSize   = 1 << 10
	maxIndexSize    = 1 << 20
	maxMetadataSize = 512 << 20 // OCI manifest and ferry Manifest
	blockSize       = 512
	trailerSize     = 2 * blockSize
)

// Blob is one blob entry of a bundle file.
type Blob struct {
	Digest string // "sha256:<hex>"
	Offset int64  // position of the data in the file
	Size   int64
}

// Reader gives access to a bundle file checked by Open. It is safe for
// concurrent use; the Manifest it returns must not be modified.
type Reader struct {
	path string
	f    *os.File // nil when opened from memory
	fi   os.FileInfo
	ra   io.ReaderAt

	m              *Manifest
	manifestDigest string // ferry Manifest (config) blob
	digest         string // OCI image manifest
	signature      string
	signerKey      string

	blobs    []Blob
	byDigest map[string]int
	external map[string]int64 // delta: item digest -> size of blobs left to the base
	size     int64
	parts    io.Closer // a split bundle's parts, nil otherwise
}

// Open opens the bundle at path and checks its structure. It reads tar
// headers, padding and the metadata blobs only, never item data: item blobs
// are checked by VerifyBlob. Errors are one line and start with path.
//
// path may also be the index of a split bundle or one of its parts
// (see Split): every part is checked first, and the Reader reads the
// bundle across them.
func Open(path string) (*Reader, error) {
	if ra, size, parts, ok, err := OpenSplit(context.Background(), path); err != nil {
		return nil, err
	} else if ok {
		r, err := openReaderAt(path, ra, size)
		if err != nil {
			parts.Close()
			return nil, err
		}
		r.parts = parts
		return r, nil
	}
	f, fi, err := openRegular(path) // a named pipe would block os.Open
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r, err := openReaderAt(path, f, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	r.f, r.fi = f, fi
	return r, nil
}

// entry is a tar entry as found by openReaderAt.
type entry struct {
	hdr       *tar.Header
	dataStart int64
}

func (e *entry) dataEnd() int64 { return e.dataStart + e.hdr.Size }

// openReaderAt parses and checks the bundle in ra (size bytes); name is used
// in errors. An OCI archive another tool wrote is said to be one.
func openReaderAt(name string, ra io.ReaderAt, size int64) (*Reader, error) {
	r, err := parseBundle(name, ra, size)
	if err != nil {
		if what, ok := foreignOCIArchive(ra, size); ok {
			return nil, fmt.Errorf("%s: not a ferry bundle (an OCI archive without a ferry manifest: %s): to carry its images in a bundle, unpack it (mkdir DIR && tar -xf %s -C DIR) and pack with ferry pack --image oci:DIR", name, what, name)
		}
	}
	return r, err
}

// parseBundle is openReaderAt without the diagnosis of foreign archives.
func parseBundle(name string, ra io.ReaderAt, size int64) (*Reader, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{name}, args...)...)
	}
	if size <= 0 {
		return nil, fail("not a ferry bundle: empty file")
	}
	sr := io.NewSectionReader(ra, 0, size)
	tr := tar.NewReader(sr)
	var entries []entry
	seen := make(map[string]bool)
	var next int64 // where the next header starts
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				if next == 0 && !startsLikeBundle(ra, size) {
					return nil, fail("not a tar file")
				}
				return nil, fail("truncated: tar header at offset %d needs %d bytes, file ends at %d", next, blockSize, size)
			}
			if next == 0 {
				return nil, fail("not a tar file: %v", err)
			}
			return nil, fail("corrupt tar header at offset %d: %v", next, err)
		}
		pos, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, fail("reading tar: %v", err)
		}
		if hdr.Size < 0 || hdr.Size > size-pos {
			return nil, fail("truncated: entry %s needs %d bytes at offset %d, file ends at %d", hdr.Name, hdr.Size, pos, size)
		}
		if seen[hdr.Name] {
			return nil, fail("duplicate entry %q", hdr.Name)
		}
		seen[hdr.Name] = true
		entries = append(entries, entry{hdr: hdr, dataStart: pos})
		next = pos + roundUp(hdr.Size)
	}
	var lastEnd int64 // end of the data of the last entry
	if len(entries) > 0 {
		lastEnd = entries[len(entries)-1].dataEnd()
	}
	if end := roundUp(lastEnd); size-end < trailerSize {
		return nil, fail("truncated: end-of-archive marker at offset %d needs %d bytes, file ends at %d", end, trailerSize, size)
	}
	if !seen[ociLayoutFile] {
		return nil, fail("not a ferry bundle: no %s entry", ociLayoutFile)
	}
	if !seen[indexFile] {
		return nil, fail("not a ferry bundle: no %s entry", indexFile)
	}

	r := &Reader{path: name, ra: ra, size: size, byDigest: make(map[string]int)}
	data := make(map[string]*entry)
	for i := range entries {
		e := &entries[i]
		h := e.hdr
		switch {
		case h.Name == ociLayoutFile || h.Name == indexFile:
			if h.Typeflag != tar.TypeReg {
				return nil, fail("entry %q is not a regular file", h.Name)
			}
			data[h.Name] = e
		case h.Name == blobsDir || h.Name == blobsSHA256Dir:
			if h.Typeflag != tar.TypeDir || h.Size != 0 {
				return nil, fail("entry %q is not a directory", h.Name)
			}
		case strings.HasPrefix(h.Name, blobsSHA256Dir) && validDigest("sha256:"+h.Name[len(blobsSHA256Dir):]):
			if h.Typeflag != tar.TypeReg {
				return nil, fail("entry %q is not a regular file", h.Name)
			}
			d := "sha256:" + h.Name[len(blobsSHA256Dir):]
			r.byDigest[d] = len(r.blobs)
			r.blobs = append(r.blobs, Blob{Digest: d, Offset: e.dataStart, Size: h.Size})
		default:
			return nil, fail("unexpected entry %q", h.Name)
		}
	}

	// Every byte outside entry data must be exactly as Write produces it:
	// canonical headers, zero padding and a two-block end-of-archive marker.
	var prevEnd int64
	for i := range entries {
		e := &entries[i]
		pad := roundUp(prevEnd) - prevEnd
		want, err := encodeHeader(tarHeader(e.hdr.Name, e.hdr.Typeflag == tar.TypeDir, e.hdr.Size, e.hdr.ModTime))
		if err != nil {
			return nil, fail("entry %q: tar header not as ferry writes it: %v", e.hdr.Name, err)
		}
		got := make([]byte, e.dataStart-prevEnd)
		if _, err := ra.ReadAt(got, prevEnd); err != nil {
			return nil, fail("reading tar header of %q at offset %d: %v", e.hdr.Name, prevEnd, err)
		}
		if int64(len(got)) != pad+int64(len(want)) || !allZero(got[:pad]) {
			return nil, fail("corrupt tar padding or header before entry %q at offset %d", e.hdr.Name, prevEnd)
		}
		if !bytes.Equal(got[pad:], want) {
			return nil, fail("entry %q: tar header at offset %d is not as ferry writes it", e.hdr.Name, prevEnd+pad)
		}
		prevEnd = e.dataEnd()
	}
	if end := roundUp(prevEnd); size-end > trailerSize {
		return nil, fail("unexpected data after the end-of-archive marker at offset %d", end+trailerSize)
	}
	rest := make([]byte, size-prevEnd)
	if _, err := ra.ReadAt(rest, prevEnd); err != nil {
		return nil, fail("reading end of archive at offset %d: %v", prevEnd, err)
	}
	if !allZero(rest) {
		return nil, fail("corrupt padding or end-of-archive marker after offset %d", prevEnd)
	}

	if err := r.checkMetadata(data); err != nil {
		return nil, fail("%v", err)
	}
	return r, nil
}

// checkMetadata checks oci-layout, index.json, the OCI manifest and the ferry
// Manifest, and that the blobs are exactly the ones they reference.
func (r *Reader) checkMetadata(data map[string]*entry) error {
	var layout ociLayout
	layoutBytes, err := r.readJSON(data[ociLayoutFile], maxLayoutSize, &layout)
	if err != nil {
		return err
	}
	if layout.ImageLayoutVersion != ociLayoutVersion {
		return fmt.Errorf("not a ferry bundle: %s: imageLayoutVersion %q, want %q", ociLayoutFile, layout.ImageLayoutVersion, ociLayoutVersion)
	}
	if want, _ := marshal(layout); !bytes.Equal(layoutBytes, want) {
		return fmt.Errorf("%s is not as ferry writes it", ociLayoutFile)
	}
	var idx ociIndex
	indexBytes, err := r.readJSON(data[indexFile], maxIndexSize, &idx)
	if err != nil {
		return err
	}
	if idx.SchemaVersion != 2 || idx.MediaType != OCIIndexMediaType {
		return fmt.Errorf("not a ferry bundle: %s: not an OCI image index (schemaVersion %d, mediaType %q)", indexFile, idx.SchemaVersion, idx.MediaType)
	}
	if len(idx.Manifests) != 1 {
		return fmt.Errorf("not a ferry bundle: %s lists %d manifests, want 1", indexFile, len(idx.Manifests))
	}
	md := idx.Manifests[0]
	if md.MediaType != OCIManifestMediaType || md.ArtifactType != ArtifactType {
		return fmt.Errorf("not a ferry bundle: %s: manifest has mediaType %q and artifactType %q, want %q and %q", indexFile, md.MediaType, md.ArtifactType, OCIManifestMediaType, ArtifactType)
	}
	manifest, err := r.readBlob("OCI manifest", md, maxMetadataSize)
	if err != nil {
		return err
	}
	var om ociManifest
	if err := json.Unmarshal(manifest, &om); err != nil {
		return fmt.Errorf("OCI manifest %s: %v", md.Digest, err)
	}
	if om.SchemaVersion != 2 || om.MediaType != OCIManifestMediaType || om.ArtifactType != ArtifactType {
		return fmt.Errorf("not a ferry bundle: OCI manifest %s: schemaVersion %d, mediaType %q, artifactType %q", md.Digest, om.SchemaVersion, om.MediaType, om.ArtifactType)
	}
	if om.Config.MediaType != ManifestMediaType {
		return fmt.Errorf("not a ferry bundle: OCI manifest %s: config mediaType %q, want %q", md.Digest, om.Config.MediaType, ManifestMediaType)
	}
	config, err := r.readBlob("ferry manifest", om.Config, maxMetadataSize)
	if err != nil {
		return err
	}
	m, err := DecodeManifest(config)
	if err != nil {
		return fmt.Errorf("ferry manifest %s: %v", om.Config.Digest, err)
	}
	// index.json is covered by no digest: it must be exactly what Write
	// produces for this manifest, so that no byte of the file goes unchecked.
	if want, err := indexJSON(md.Digest, md.Size, m.Name); err != nil || !bytes.Equal(indexBytes, want) {
		return fmt.Errorf("%s is not as ferry writes it for this manifest", indexFile)
	}

	referenced := map[string]bool{md.Digest: true, om.Config.Digest: true}
	for i, l := range om.Layers {
		if l.MediaType != ItemMediaType {
			return fmt.Errorf("OCI manifest: layer %d has mediaType %q, want %q", i, l.MediaType, ItemMediaType)
		}
		if !validDigest(l.Digest) {
			return fmt.Errorf("OCI manifest: layer %d has invalid digest %q", i, l.Digest)
		}
		if i > 0 && l.Digest <= om.Layers[i-1].Digest {
			return fmt.Errorf("OCI manifest: layers not sorted by digest or duplicated at %s", l.Digest)
		}
		b, ok := r.blob(l.Digest)
		if !ok {
			return fmt.Errorf("OCI manifest: layer %s: no blob", l.Digest)
		}
		if b.Size != l.Size {
			return fmt.Errorf("OCI manifest: layer %s: size %d, blob has %d bytes", l.Digest, l.Size, b.Size)
		}
		referenced[l.Digest] = true
	}
	layers := make(map[string]bool, len(om.Layers))
	for _, l := range om.Layers {
		layers[l.Digest] = true
	}
	items := make(map[string]bool)
	external := make(map[string]int64)
	for _, it := range m.Items {
		b, ok := r.blob(it.Digest)
		if !ok && m.Base != nil {
			// A delta leaves out what its base has; WithBase finds it there.
			if s, seen := external[it.Digest]; seen && s != it.Size {
				return fmt.Errorf("item %s: size %d, another item with blob %s has %d", it.File, it.Size, it.Digest, s)
			}
			external[it.Digest] = it.Size
			continue
		}
		if !ok {
			return fmt.Errorf("item %s: no blob %s", it.File, it.Digest)
		}
		if b.Size != it.Size {
			return fmt.Errorf("item %s: size %d, blob %s has %d bytes", it.File, it.Size, it.Digest, b.Size)
		}
		if !layers[it.Digest] {
			return fmt.Errorf("item %s: blob %s is not a layer of the OCI manifest", it.File, it.Digest)
		}
		items[it.Digest] = true
	}
	if len(items) != len(layers) {
		for _, l := range om.Layers {
			if !items[l.Digest] {
				return fmt.Errorf("OCI manifest: layer %s is not an item of the ferry manifest", l.Digest)
			}
		}
	}
	for _, b := range r.blobs {
		if !referenced[b.Digest] {
			return fmt.Errorf("unexpected entry %q: blob not referenced by the manifest", blobName(b.Digest))
		}
	}

	r.m = m
	r.external = external
	r.manifestDigest = om.Config.Digest
	r.digest = md.Digest
	r.signature = om.Annotations[SignatureAnnotation]
	r.signerKey = om.Annotations[SignerKeyAnnotation]
	return nil
}

// readJSON reads the small entry e, decodes it into v and returns its bytes.
func (r *Reader) readJSON(e *entry, max int64, v any) ([]byte, error) {
	if e.hdr.Size > max {
		return nil, fmt.Errorf("%s: %d bytes, more than the limit of %d", e.hdr.Name, e.hdr.Size, max)
	}
	buf := make([]byte, e.hdr.Size)
	if _, err := r.ra.ReadAt(buf, e.dataStart); err != nil {
		return nil, fmt.Errorf("reading %s: %v", e.hdr.Name, err)
	}
	if err := json.Unmarshal(buf, v); err != nil {
		return nil, fmt.Errorf("not a ferry bundle: %s: %v", e.hdr.Name, err)
	}
	return buf, nil
}

// readBlob reads the metadata blob d and verifies its size and digest.
func (r *Reader) readBlob(what string, d ociDescriptor, max int64) ([]byte, error) {
	if !validDigest(d.Digest) {
		return nil, fmt.Errorf("%s: invalid digest %q", what, d.Digest)
	}
	b, ok := r.blob(d.Digest)
	if !ok {
		return nil, fmt.Errorf("%s %s: no blob", what, d.Digest)
	}
	if b.Size != d.Size {
		return nil, fmt.Errorf("%s %s: size %d, blob has %d bytes", what, d.Digest, d.Size, b.Size)
	}
	if b.Size > max {
		return nil, fmt.Errorf("%s %s: %d bytes, more than the limit of %d", what, d.Digest, b.Size, max)
	}
	buf := make([]byte, b.Size)
	if _, err := r.ra.ReadAt(buf, b.Offset); err != nil {
		return nil, fmt.Errorf("reading %s %s: %v", what, d.Digest, err)
	}
	if got := Digest(buf); got != d.Digest {
		return nil, fmt.Errorf("%s %s: digest mismatch (content hashes to %s)", what, d.Digest, got)
	}
	return buf, nil
}

func (r *Reader) blob(digest string) (Blob, bool) {
	i, ok := r.byDigest[digest]
	if !ok {
		return Blob{}, false
	}
	return r.blobs[i], true
}

// startsLikeBundle reports whether a file too short for a tar header is a
// prefix of one written by Write (whose first entry is oci-layout).
func startsLikeBundle(ra io.ReaderAt, size int64) bool {
	want := []byte(ociLayoutFile + "\x00")
	n := min(size, int64(len(want)))
	got := make([]byte, n)
	if _, err := ra.ReadAt(got, 0); err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	return bytes.Equal(got, want[:n])
}

func roundUp(n int64) int64 { return (n + blockSize - 1) &^ (blockSize - 1) }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Close closes the bundle file.
func (r *Reader) Close() error {
	if r.parts != nil {
		return r.parts.Close()
	}
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// Size returns the size of the bundle in bytes (of all its parts, for a
// split bundle).
func (r *Reader) Size() int64 { return r.size }

// Content returns a reader of the whole bundle file (across its parts, for
// a split bundle), as Open checked it.
func (r *Reader) Content() *io.SectionReader { return io.NewSectionReader(r.ra, 0, r.size) }

// Split reports whether the bundle was opened from the parts of a split bundle.
func (r *Reader) Split() bool { return r.parts != nil }

// Path returns the path the bundle was opened from.
func (r *Reader) Path() string { return r.path }

// Manifest returns the ferry Manifest of the bundle. Callers must not modify it.
func (r *Reader) Manifest() *Manifest { return r.m }

// ManifestDigest returns the digest of the ferry Manifest (config) blob: the
// digest the signature covers.
func (r *Reader) ManifestDigest() string { return r.manifestDigest }

// Digest returns the digest of the OCI image manifest.
func (r *Reader) Digest() string { return r.digest }

// Signature returns the signed note text, "" if the bundle is unsigned.
func (r *Reader) Signature() string { return r.signature }

// SignerKey returns the verifier key the signer recorded beside the
// signature ("" if none): a claim, trusted only once the user trusts the
// key (its fingerprint confirmed, or given as --key).
func (r *Reader) SignerKey() string { return r.signerKey }

// CheckSignature verifies the bundle's signature with the verifiers and checks
// that it signs this bundle's ferry Manifest. It returns the signer's name.
// Errors wrap ErrNotSigned or ErrBadSignature.
func (r *Reader) CheckSignature(v note.Verifiers) (string, error) {
	if r.signature == "" {
		return "", fmt.Errorf("%s: %w", r.path, ErrNotSigned)
	}
	if v == nil {
		return "", fmt.Errorf("%s: %w: no verifier keys given", r.path, ErrBadSignature)
	}
	n, err := note.Open([]byte(r.signature), v)
	if err != nil || len(n.Sigs) == 0 {
		return "", fmt.Errorf("%s: %w", r.path, ErrBadSignature)
	}
	if n.Text != SignedText(r.manifestDigest) {
		return "", fmt.Errorf("%s: %w: the signed text %q does not name this bundle's manifest %s", r.path, ErrBadSignature, strings.TrimSpace(n.Text), r.manifestDigest)
	}
	return n.Sigs[0].Name, nil
}

// Blobs returns all blobs of the bundle (metadata and items) in file order.
func (r *Reader) Blobs() []Blob { return append([]Blob(nil), r.blobs...) }

// Open returns a reader of the blob with the given digest. The error wraps
// fs.ErrNotExist if the bundle has no such blob.
func (r *Reader) Open(digest string) (*io.SectionReader, error) {
	b, ok := r.blob(digest)
	if !ok {
		return nil, fmt.Errorf("%s: blob %s: %w", r.path, digest, fs.ErrNotExist)
	}
	return io.NewSectionReader(r.ra, b.Offset, b.Size), nil
}

// VerifyBlob re-hashes one blob and compares the result with its digest.
func (r *Reader) VerifyBlob(ctx context.Context, digest string) error {
	sr, err := r.Open(digest)
	if err != nil {
		return err
	}
	h := sha256.New()
	// Most blobs are small (.info, .mod, tiles): a buffer no bigger than the
	// blob keeps thousands of calls from churning the heap.
	buf := make([]byte, max(min(sr.Size(), 1<<20), 512))
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: verifying blob %s: %w", r.path, digest, err)
		}
		n, err := sr.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: verifying blob %s: %w", r.path, digest, err)
		}
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("%s: blob %s: digest mismatch (content hashes to %s)", r.path, digest, got)
	}
	return nil
}
