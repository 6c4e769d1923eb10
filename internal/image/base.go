package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/cache"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// baseImage is the base chosen for one platform.
type baseImage struct {
	img    v1.Image // OCI-typed view of the base (empty for scratch)
	name   string   // for the base.name annotation; "" for scratch
	digest string   // the base manifest's own digest; "" for scratch
}

// scratch is the empty OCI image.
func scratch() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// resolveBase returns the base image for every platform, in order.
func resolveBase(ctx context.Context, b Base, plats []Platform, plainHTTP bool, cacheDir string) ([]baseImage, error) {
	out := make([]baseImage, len(plats))
	switch {
	case b.Scratch:
		for i := range out {
			out[i] = baseImage{img: scratch()}
		}
		return out, nil
	case b.Layout != "":
		cands, err := layoutCandidates(b)
		if err != nil {
			return nil, err
		}
		for i, p := range plats {
			c, err := pickPlatform(b.String(), cands, p)
			if err != nil {
				return nil, err
			}
			img, err := toOCI(c.img)
			if err != nil {
				return nil, fmt.Errorf("reading base %s: %w", b, err)
			}
			out[i] = baseImage{img: img, digest: c.digest.String(), name: b.String()}
		}
		return out, nil
	}
	return remoteBase(ctx, b.Ref, plats, plainHTTP, cacheDir)
}

type candidate struct {
	img      v1.Image
	digest   v1.Hash
	platform *v1.Platform
}

func pickPlatform(what string, cands []candidate, p Platform) (candidate, error) {
	var have []string
	for _, c := range cands {
		if p.matches(c.platform) {
			return c, nil
		}
		if c.platform != nil {
			have = append(have, c.platform.String())
		}
	}
	return candidate{}, fmt.Errorf("base %s has no image for %s (it has: %s)", what, p, strings.Join(have, ", "))
}

// layoutCandidates lists the platform images of the base in an OCI layout:
// the images of the one image index (or image) index.json names, or of the
// one whose ref.name is b.RefName. Referrer artifacts are ignored.
func layoutCandidates(b Base) ([]candidate, error) {
	if _, err := os.Stat(filepath.Join(b.Layout, "index.json")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("base %s not found: %s is not an OCI image layout (no index.json)", b, b.Layout)
		}
		return nil, fmt.Errorf("reading base %s: %w", b, err)
	}
	lp := layout.Path(b.Layout)
	top, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading base %s: %w", b, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading base %s: %w", b, err)
	}
	type group struct {
		ref   string
		cands []candidate
	}
	var groups []group
	for _, d := range im.Manifests {
		ref := d.Annotations["org.opencontainers.image.ref.name"]
		if b.RefName != "" && ref != b.RefName {
			continue
		}
		cands, err := layoutImages(lp, d)
		if err != nil {
			return nil, fmt.Errorf("reading base %s: %w", b, err)
		}
		if len(cands) > 0 {
			groups = append(groups, group{ref, cands})
		}
	}
	switch {
	case len(groups) == 0 && b.RefName != "":
		return nil, fmt.Errorf("base %s not found: no image named %q in %s", b, b.RefName, b.Layout)
	case len(groups) == 0:
		return nil, fmt.Errorf("base %s not found: the layout %s holds no image", b, b.Layout)
	case len(groups) > 1:
		var refs []string
		for _, g := range groups {
			refs = append(refs, fmt.Sprintf("%q", g.ref))
		}
		return nil, fmt.Errorf("base %s holds %d images (ref.name %s): choose one with oci:%s:REF", b, len(groups), strings.Join(refs, ", "), b.Layout)
	}
	return groups[0].cands, nil
}

// layoutImages returns the runnable images d names: d itself, or the
// platform images of the index d names.
func layoutImages(lp layout.Path, d v1.Descriptor) ([]candidate, error) {
	switch {
	case d.MediaType.IsIndex():
		ii, err := lp.ImageIndex()
		if err != nil {
			return nil, err
		}
		child, err := ii.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, err
		}
		var out []candidate
		for _, cd := range cm.Manifests {
			if !cd.MediaType.IsImage() {
				continue
			}
			c, ok, err := layoutImage(child, cd)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, c)
			}
		}
		return out, nil
	case d.MediaType.IsImage():
		ii, err := lp.ImageIndex()
		if err != nil {
			return nil, err
		}
		c, ok, err := layoutImage(ii, d)
		if err != nil || !ok {
			return nil, err
		}
		return []candidate{c}, nil
	}
	return nil, nil
}

// layoutImage reads the image d that parent lists; ok is false for
// artifacts and referrers.
func layoutImage(parent v1.ImageIndex, d v1.Descriptor) (candidate, bool, error) {
	img, err := parent.Image(d.Digest)
	if err != nil {
		return candidate{}, false, err
	}
	m, err := img.Manifest()
	if err != nil {
		return candidate{}, false, err
	}
	if m.Subject != nil || !m.Config.MediaType.IsConfig() {
		return candidate{}, false, nil // a referrer or another artifact
	}
	plat := d.Platform
	if plat == nil {
		cf, err := img.ConfigFile()
		if err != nil {
			return candidate{}, false, err
		}
		plat = cf.Platform()
	}
	return candidate{img: img, digest: d.Digest, platform: plat}, true, nil
}

// remoteBase reads a base image from a registry.
func remoteBase(ctx context.Context, ref string, plats []Platform, plainHTTP bool, cacheDir string) ([]baseImage, error) {
	var nopts []name.Option
	if plainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("base %q: %v", ref, err)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("base image %s not found in its registry", ref)
		}
		return nil, fmt.Errorf("reading base image %s: %w", ref, err)
	}
	var (
		cands []candidate
		ii    v1.ImageIndex
	)
	if desc.MediaType.IsIndex() {
		if ii, err = desc.ImageIndex(); err != nil {
			return nil, fmt.Errorf("reading base image %s: %w", ref, err)
		}
		im, err := ii.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading base image %s: %w", ref, err)
		}
		for _, d := range im.Manifests {
			if d.MediaType.IsImage() && d.Platform != nil {
				cands = append(cands, candidate{digest: d.Digest, platform: d.Platform})
			}
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("reading base image %s: %w", ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading base image %s: %w", ref, err)
		}
		cands = append(cands, candidate{img: img, digest: desc.Digest, platform: cf.Platform()})
	}
	c := cache.NewFilesystemCache(cacheDir)
	out := make([]baseImage, len(plats))
	for i, p := range plats {
		cand, err := pickPlatform(ref, cands, p)
		if err != nil {
			return nil, err
		}
		if cand.img == nil {
			if cand.img, err = ii.Image(cand.digest); err != nil {
				return nil, fmt.Errorf("reading base image %s for %s: %w", ref, p, err)
			}
		}
		img, err := toOCI(cache.Image(cand.img, c))
		if err != nil {
			return nil, fmt.Errorf("reading base image %s for %s: %w", ref, p, err)
		}
		out[i] = baseImage{img: img, digest: cand.digest.String(), name: r.Name()}
	}
	return out, nil
}

// toOCI returns base as an OCI image: the same config and layer blobs under
// an OCI manifest with OCI media types, without the base's annotations and
// subject (they describe the base, not what is built on it).
func toOCI(base v1.Image) (v1.Image, error) {
	return partial.CompressedToImage(&ociImage{base: base})
}

type ociImage struct {
	base v1.Image
}

func (o *ociImage) RawConfigFile() ([]byte, error)      { return o.base.RawConfigFile() }
func (o *ociImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (o *ociImage) RawManifest() ([]byte, error) {
	m, err := o.base.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	m.MediaType = types.OCIManifestSchema1
	m.Config.MediaType = types.OCIConfigJSON
	m.Annotations, m.Subject = nil, nil
	for i := range m.Layers {
		m.Layers[i].MediaType = ociLayerType(m.Layers[i].MediaType)
	}
	return json.Marshal(m)
}

func (o *ociImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, err := o.base.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	return &typedLayer{Layer: l, mt: ociLayerType(mt)}, nil
}

func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}

type typedLayer struct {
	v1.Layer
	mt types.MediaType
}

func (l *typedLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

// baseHas reports whether the base image has a CA bundle and time-zone
// data, as crypto/x509 and time look for them on linux.
func baseHas(img v1.Image) (certs, zoneinfo bool, err error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return false, false, fmt.Errorf("reading the base config: %w", err)
	}
	for _, e := range cf.Config.Env {
		k, v, _ := strings.Cut(e, "=")
		if v != "" && (k == "SSL_CERT_FILE" || k == "SSL_CERT_DIR") {
			certs = true
		}
		if v != "" && k == "ZONEINFO" {
			zoneinfo = true
		}
	}
	present, err := scanFiles(img, func(p string) bool {
		return strings.HasPrefix(p, "etc/") || strings.HasPrefix(p, "usr/")
	})
	if err != nil {
		return false, false, err
	}
	for _, p := range present {
		switch {
		case slices.Contains(certFiles, p):
			certs = true
		case strings.HasPrefix(p, "etc/ssl/certs/") || strings.HasPrefix(p, "etc/pki/tls/certs/"):
			certs = true
		}
		for _, d := range zoneinfoDirs {
			if strings.HasPrefix(p, d) {
				zoneinfo = true
			}
		}
	}
	return certs, zoneinfo, nil
}

// certFiles and zoneinfoDirs are where crypto/x509 (root_linux.go) and time
// (zoneinfo_unix.go) look on linux, without the leading slash.
var (
	certFiles = []string{
		"etc/ssl/certs/ca-certificates.crt", "etc/pki/tls/certs/ca-bundle.crt",
		"etc/ssl/ca-bundle.pem", "etc/pki/tls/cacert.pem",
		"etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "etc/ssl/cert.pem",
	}
	zoneinfoDirs = []string{"usr/share/zoneinfo/", "usr/share/lib/zoneinfo/", "usr/lib/locale/TZ/", "etc/zoneinfo/"}
)

// scanFiles returns the sorted paths (no leading slash) of the regular files
// and symbolic links that keep(path) selects and that are present in the
// image's file system after all layers, whiteouts applied.
func scanFiles(img v1.Image, keep func(string) bool) ([]string, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing base layers: %w", err)
	}
	present := map[string]bool{}
	for i, l := range layers {
		if err := scanLayer(l, present, keep); err != nil {
			return nil, fmt.Errorf("reading base layer %d: %w", i+1, err)
		}
	}
	out := make([]string, 0, len(present))
	for p := range present {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func scanLayer(l v1.Layer, present map[string]bool, keep func(string) bool) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var added []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		applyEntry(h.Name, h.Typeflag, present, &added, keep)
	}
	for _, p := range added {
		present[p] = true
	}
	return nil
}

// applyEntry applies one tar entry of a layer to present. Whiteouts remove
// from what earlier layers added; files of this layer are collected in
// added and applied after the whole layer, so an opaque marker that comes
// after its directory's new files does not hide them.
func applyEntry(nameInTar string, typ byte, present map[string]bool, added *[]string, keep func(string) bool) {
	p := path.Clean("/" + nameInTar)[1:]
	if p == "" {
		return
	}
	dir, base := path.Split(p)
	switch {
	case base == ".wh..wh..opq":
		for q := range present {
			if strings.HasPrefix(q, dir) {
				delete(present, q)
			}
		}
	case strings.HasPrefix(base, ".wh."):
		gone := dir + strings.TrimPrefix(base, ".wh.")
		for q := range present {
			if q == gone || strings.HasPrefix(q, gone+"/") {
				delete(present, q)
			}
		}
	case typ == tar.TypeReg || typ == tar.TypeSymlink || typ == tar.TypeLink:
		if keep(p) {
			*added = append(*added, p)
		}
	}
}
