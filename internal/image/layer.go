package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// file is one regular file of a layer.
type file struct {
	Path string // absolute, slash-separated, e.g. /usr/local/bin/app
	Mode int64  // 0755 or 0644
	Data []byte
}

// buildLayer writes files as a deterministic gzip-compressed tar: entries
// sorted by name, every parent directory present once (0755), uid/gid 0, no
// user or group names, all times at mtime, and a gzip header with no name
// and no time.
func buildLayer(files []file, mtime time.Time) (*memLayer, error) {
	type entry struct {
		name string
		f    *file
	}
	seen := map[string]bool{}
	var entries []entry
	for i := range files {
		f := &files[i]
		p := strings.TrimPrefix(path.Clean(f.Path), "/")
		if p == "" || p == "." || strings.HasPrefix(p, "../") || seen[p] {
			return nil, fmt.Errorf("layer file %q: empty, outside the root or repeated", f.Path)
		}
		seen[p] = true
		entries = append(entries, entry{p, f})
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if !seen[d+"/"] {
				seen[d+"/"] = true
				entries = append(entries, entry{d + "/", nil})
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, ModTime: mtime, Format: tar.FormatPAX}
		if e.f == nil {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		} else {
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, e.f.Mode, int64(len(e.f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", e.name, err)
		}
		if e.f != nil {
			if _, err := tw.Write(e.f.Data); err != nil {
				return nil, fmt.Errorf("writing layer entry %s: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return newMemLayer(gz.Bytes(), sha256.Sum256(raw.Bytes()), types.OCILayer), nil
}

// memLayer is a layer held in memory, with both digests computed once.
type memLayer struct {
	compressed []byte
	digest     v1.Hash
	diffID     v1.Hash
	mediaType  types.MediaType
}

func newMemLayer(compressed []byte, diffID [32]byte, mt types.MediaType) *memLayer {
	d := sha256.Sum256(compressed)
	return &memLayer{
		compressed: compressed,
		digest:     v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", d)},
		diffID:     v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", diffID)},
		mediaType:  mt,
	}
}

func (l *memLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(l.compressed))
}
func (l *memLayer) Size() (int64, error)                { return int64(len(l.compressed)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

var _ v1.Layer = (*memLayer)(nil)
