package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// OCI media types and annotation keys used by a bundle.
const (
	OCIIndexMediaType    = "application/vnd.oci.image.index.v1+json"
	OCIManifestMediaType = "application/vnd.oci.image.manifest.v1+json"
	OCIRefNameAnnotation = "org.opencontainers.image.ref.name"
	// DefaultRefName is the ref name of the bundle's manifest in index.json
	// when the ferry Manifest has no Name.
	DefaultRefName = "bundle"

	ociLayoutFile    = "oci-layout"
	ociLayoutVersion = "1.0.0"
	indexFile        = "index.json"
	blobsDir         = "blobs/"
	blobsSHA256Dir   = "blobs/sha256/"
)

type ociLayout struct {
	ImageLayoutVersion string `json:"imageLayoutVersion"`
}

type ociDescriptor struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type ociIndex struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Manifests     []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        ociDescriptor     `json:"config"`
	Layers        []ociDescriptor   `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// marshal encodes v as compact JSON without HTML escaping and without a
// trailing newline. Struct fields come out in declaration order and map keys
// sorted, so the result is deterministic.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EncodeManifest returns the canonical JSON encoding of m, the bytes stored as
// the config blob of a bundle. It does not sort or check m.
func EncodeManifest(m *Manifest) ([]byte, error) {
	data, err := marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return data, nil
}

// DecodeManifest parses a ferry Manifest and checks it (Manifest.Check).
func DecodeManifest(data []byte) (*Manifest, error) {
	m := new(Manifest)
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("checking manifest: %w", err)
	}
	return m, nil
}

// Digest returns the "sha256:<hex>" digest of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// FileDigest returns the "sha256:<hex>" digest and the size of the file at path.
func FileDigest(path string) (digest string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hashing file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

// blobName is the tar entry name of the blob with the given (valid) digest.
func blobName(digest string) string {
	return blobsSHA256Dir + digest[len("sha256:"):]
}

// tarHeader is the canonical header of an entry: Write writes exactly this,
// and Open accepts only exactly this (re-encoded and compared byte by byte).
func tarHeader(name string, dir bool, size int64, mtime time.Time) *tar.Header {
	h := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(mtime.Unix(), 0),
	}
	if dir {
		h.Typeflag = tar.TypeDir
		h.Mode = 0o755
	}
	return h
}

// encodeHeader returns the bytes tar.Writer produces for h.
func encodeHeader(h *tar.Header) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(h); err != nil {
		return nil, err
	}
	// The header is written by WriteHeader; the unwritten data is never flushed.
	return buf.Bytes(), nil
}
