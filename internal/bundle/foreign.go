package bundle

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// Limits of what foreignOCIArchive reads: an archive with more entries, or
// larger metadata, is not described.
const (
	maxForeignEntries  = 1 << 16
	maxForeignManifest = 4 << 20
)

// foreignOCIArchive reports whether ra (size bytes), which Open refused, is
// a readable tar of an OCI image layout (an oci-archive, as skopeo or
// go-containerregistry write them) none of whose manifests is a ferry
// bundle's, and if so describes what its index.json lists. A ferry bundle
// that was damaged or rewritten by another tool is not foreign: Open's own
// error says more about it.
func foreignOCIArchive(ra io.ReaderAt, size int64) (string, bool) {
	type span struct{ off, size int64 }
	files := map[string]span{}
	sr := io.NewSectionReader(ra, 0, size)
	tr := tar.NewReader(sr) // reads headers exactly: sr is then at the data
	for n := 0; n < maxForeignEntries; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", false
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil || h.Size > size-off {
			return "", false
		}
		files[path.Clean(strings.TrimPrefix(h.Name, "/"))] = span{off, h.Size}
	}
	read := func(name string) ([]byte, bool) {
		s, ok := files[name]
		if !ok || s.size > maxForeignManifest {
			return nil, false
		}
		b := make([]byte, s.size)
		if _, err := ra.ReadAt(b, s.off); err != nil {
			return nil, false
		}
		return b, true
	}
	var layout ociLayout
	if b, ok := read(ociLayoutFile); !ok || json.Unmarshal(b, &layout) != nil || layout.ImageLayoutVersion == "" {
		return "", false
	}
	var idx ociIndex
	if b, ok := read(indexFile); !ok || json.Unmarshal(b, &idx) != nil || idx.SchemaVersion != 2 {
		return "", false
	}
	var types []string
	for _, d := range idx.Manifests {
		if d.ArtifactType == ArtifactType {
			return "", false
		}
		if hex, ok := strings.CutPrefix(d.Digest, "sha256:"); ok {
			var m ociManifest
			if b, ok := read(blobsSHA256Dir + hex); ok && json.Unmarshal(b, &m) == nil &&
				(m.ArtifactType == ArtifactType || m.Config.MediaType == ManifestMediaType) {
				return "", false
			}
		}
		if !slices.Contains(types, d.MediaType) {
			types = append(types, d.MediaType)
		}
	}
	if len(idx.Manifests) == 0 {
		return "its index.json lists no manifest", true
	}
	if len(idx.Manifests) == 1 {
		return "its index.json lists 1 manifest, of type " + types[0], true
	}
	return fmt.Sprintf("its index.json lists %d manifests, of types %s", len(idx.Manifests), strings.Join(types, ", ")), true
}
