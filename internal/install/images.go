package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// ociDir is where carried container images are installed: an OCI image
// layout (PREFIX/mod/oci), usable as 'ferry image build --base oci:DIR:REF'
// and 'ferry push oci:DIR'. Its blobs are the bundle's KindOCI items;
// index.json names every carried image by reference.
const ociDir = "oci"

type layoutIndex struct {
	SchemaVersion int              `json:"schemaVersion"`
	MediaType     string           `json:"mediaType"`
	Manifests     []layoutManifest `json:"manifests"`
}

type layoutManifest struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// writeImageIndex merges the images of m into the layout's index.json in
// the staging generation (a reference carried again points to its new
// manifest) and writes oci-layout. It reports whether anything changed.
func writeImageIndex(staging string, m *bundle.Manifest) (bool, error) {
	var add []bundle.Item
	for _, it := range m.Items {
		if it.Kind == bundle.KindImage {
			add = append(add, it)
		}
	}
	if len(add) == 0 {
		return false, nil
	}
	dir := filepath.Join(staging, ociDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("installing images: %w", err)
	}
	p := filepath.Join(dir, "index.json")
	idx := layoutIndex{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	old, err := os.ReadFile(p)
	if err == nil {
		if err := json.Unmarshal(old, &idx); err != nil {
			return false, fmt.Errorf("installing images: %s: %w", p, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("installing images: %w", err)
	}
	key := func(d layoutManifest) string {
		if r := d.Annotations["org.opencontainers.image.ref.name"]; r != "" {
			return "ref:" + r
		}
		return "digest:" + d.Digest
	}
	byKey := map[string]int{}
	for i, d := range idx.Manifests {
		byKey[key(d)] = i
	}
	for _, it := range add {
		d := layoutManifest{MediaType: it.MediaType, Digest: it.Digest, Size: it.Size}
		if it.Module != "" {
			d.Annotations = map[string]string{"org.opencontainers.image.ref.name": it.Module}
		}
		if i, ok := byKey[key(d)]; ok {
			idx.Manifests[i] = d
		} else {
			byKey[key(d)] = len(idx.Manifests)
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	sort.SliceStable(idx.Manifests, func(i, j int) bool { return key(idx.Manifests[i]) < key(idx.Manifests[j]) })
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return false, err
	}
	data = append(data, '\n')
	if bytes.Equal(data, old) {
		return false, nil
	}
	// Replaced, never modified in place: the file may be a hard link shared
	// with an earlier generation.
	if err := writeBytes(p, data); err != nil {
		return false, err
	}
	if _, err := ensureFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n")); err != nil {
		return false, err
	}
	return true, nil
}
