package image

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// emptyJSON is the OCI empty descriptor's content.
var emptyJSON = []byte("{}")

// referrer builds an OCI artifact manifest that attaches content (one blob
// of mediaType) to subject: artifactType = mediaType, the empty config, one
// layer, the subject descriptor, and annotations. It is a v1.Image so that
// layout and remote writers handle it like any image.
func referrer(subject v1.Descriptor, mediaType string, content []byte, title string, annotations map[string]string) (v1.Image, error) {
	blob := newMemLayer(content, sha256.Sum256(content), types.MediaType(mediaType))
	cfg := newMemLayer(emptyJSON, sha256.Sum256(emptyJSON), types.OCIEmptyJSON)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  mediaType,
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Digest: cfg.digest, Size: int64(len(emptyJSON)), Data: emptyJSON},
		Layers: []v1.Descriptor{{
			MediaType:   types.MediaType(mediaType),
			Digest:      blob.digest,
			Size:        int64(len(content)),
			Annotations: map[string]string{"org.opencontainers.image.title": title},
		}},
		Subject:     &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{raw: raw, blob: blob})
}

type artifact struct {
	raw  []byte
	blob *memLayer
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyJSON, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.raw, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == a.blob.digest {
		return a.blob, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}
