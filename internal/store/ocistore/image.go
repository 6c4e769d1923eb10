package ocistore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// Media types of the import record: a small OCI artifact whose config blob is
// the store.BundleInfo of one import and whose subject is the bundle's OCI
// image manifest.
const (
	ImportArtifactType   = "application/vnd.ferry.import.v1"
	ImportInfoMediaType  = "application/vnd.ferry.import.v1+json"
	emptyMediaType       = "application/vnd.oci.empty.v1+json"
	emptyJSON            = "{}"
	maxImportManifest    = 4 << 20
	maxImportInfo        = 64 << 10
	maxBundleManifest    = 64 << 20
	maxBundleConfig      = 512 << 20
	tagHexLen            = 16
	bundleTagPrefix      = "ferry-bundle-"
	importTagPrefix      = "ferry-import-"
	ociManifestMediaType = bundle.OCIManifestMediaType
)

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType,omitempty"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
}

// ociManifest is the part of an OCI image manifest this package reads and writes.
type ociManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	ArtifactType  string       `json:"artifactType,omitempty"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
	Subject       *descriptor  `json:"subject,omitempty"`
}

// blobOpener opens a blob of an image being pushed by digest.
type blobOpener func(digest string) (io.ReadCloser, error)

// rawImage is an image being pushed: exact manifest bytes (so its digest is
// the one already known) and blobs streamed from their source. It implements
// partial.CompressedImageCore; layers are pushed as they are, never
// recompressed.
type rawImage struct {
	manifest []byte
	config   []byte
	layers   map[string]descriptor
	open     blobOpener
}

func newRawImage(manifest []byte, open blobOpener, readConfig func(d descriptor) ([]byte, error)) (v1.Image, error) {
	var m ociManifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("parsing OCI manifest: %w", err)
	}
	config, err := readConfig(m.Config)
	if err != nil {
		return nil, err
	}
	img := &rawImage{manifest: manifest, config: config, layers: make(map[string]descriptor), open: open}
	for _, l := range m.Layers {
		img.layers[l.Digest] = l
	}
	return partial.CompressedToImage(img)
}

func (i *rawImage) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *rawImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *rawImage) RawManifest() ([]byte, error)        { return i.manifest, nil }

func (i *rawImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := i.layers[h.String()]
	if !ok {
		if cd := bundle.Digest(i.config); cd == h.String() {
			return &rawLayer{d: descriptor{Digest: cd, Size: int64(len(i.config))}, open: func(string) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(i.config)), nil
			}}, nil
		}
		return nil, fmt.Errorf("image has no layer %s", h)
	}
	return &rawLayer{d: d, open: i.open}, nil
}

// rawLayer is one blob streamed from its source as it is.
type rawLayer struct {
	d    descriptor
	open blobOpener
}

func (l *rawLayer) Digest() (v1.Hash, error)            { return v1.NewHash(l.d.Digest) }
func (l *rawLayer) Compressed() (io.ReadCloser, error)  { return l.open(l.d.Digest) }
func (l *rawLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *rawLayer) MediaType() (types.MediaType, error) { return types.MediaType(l.d.MediaType), nil }
