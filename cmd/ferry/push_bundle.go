package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/push"
)

// bundleImages is a push.Source over the images a bundle carries: an OCI
// layout whose index.json is made from the bundle's image items and whose
// blobs are read, by digest, from the bundle file.
func bundleImages(path string) (push.Source, func(), error) {
	r, err := bundle.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if r.NeedsBase() {
		r.Close()
		return nil, nil, fmt.Errorf("%s is a delta of %s: push from the full bundle, or from an install (oci:PREFIX/mod/oci)", path, r.Manifest().Base)
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	for _, it := range r.Manifest().Items {
		if it.Kind != bundle.KindImage {
			continue
		}
		h, err := v1.NewHash(it.Digest)
		if err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("%s: image %s: %w", path, it.File, err)
		}
		d := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: h, Size: it.Size}
		if it.MediaType != "" {
			d.MediaType = types.MediaType(it.MediaType)
		}
		if it.Module != "" {
			d.Annotations = map[string]string{push.AnnotationRefName: it.Module}
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	if len(idx.Manifests) == 0 {
		r.Close()
		return nil, nil, fmt.Errorf("%s carries no images (pack them with --image)", path)
	}
	data, err := json.Marshal(idx)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	open := func(_ context.Context, d v1.Hash) (io.ReadCloser, int64, error) {
		sr, err := r.Open(d.String())
		if err != nil {
			return nil, 0, err
		}
		return io.NopCloser(sr), sr.Size(), nil
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	src, err := push.NewLayout("bundle "+path, name, data, open)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return src, func() { r.Close() }, nil
}
