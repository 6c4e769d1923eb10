package pack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// Image items of a bundle: every blob of a carried image (manifests,
// indexes, configs, layers) is a KindOCI item at OCIBlobFile(digest), and
// each image reference is a KindImage item at "images/<reference>" whose
// blob is its top manifest or index. Referrers (SBOMs) whose subject is a
// carried manifest are KindImage items without a reference, at
// "images/@<digest>".
const (
	annRefName       = "org.opencontainers.image.ref.name"
	annContainerName = "io.containerd.image.name"
	maxManifest      = 4 << 20
)

// OCIBlobFile is the item file of an image blob.
func OCIBlobFile(digest string) string {
	return "oci/blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// imageSource reads manifests and blobs of one --image argument.
type imageSource interface {
	// manifest returns the raw manifest or index with digest d.
	manifest(ctx context.Context, d v1.Hash) ([]byte, error)
	// blob makes the blob d (of size bytes) available as a file and
	// returns its path.
	blob(ctx context.Context, d v1.Hash, size int64) (string, error)
}

// imagePacker collects the items of the images given to pack.
type imagePacker struct {
	platforms map[string]bool // nil: every platform
	cacheDir  string
	plainHTTP bool
	files     map[string]*file
	refs      []string
}

// addImages carries each spec: "oci:DIR" (every named image in the layout,
// and the referrers of what it carries) or a registry reference.
func (p *imagePacker) add(ctx context.Context, spec string) error {
	if dir, ok := strings.CutPrefix(spec, "oci:"); ok {
		return p.addLayout(ctx, dir)
	}
	var opts []name.Option
	if p.plainHTTP {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(spec, opts...)
	if err != nil {
		return fmt.Errorf("--image %s: %w", spec, err)
	}
	desc, err := ggcr.Head(ref, ggcr.WithContext(ctx), ggcr.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return fmt.Errorf("--image %s: %w", spec, err)
	}
	src := &remoteImages{repo: ref.Context(), cacheDir: filepath.Join(p.cacheDir, "oci")}
	top, err := p.walk(ctx, src, desc.Digest, desc.Size, desc.MediaType)
	if err != nil {
		return fmt.Errorf("--image %s: %w", spec, err)
	}
	p.addRef(ref.Name(), top)
	return nil
}

func (p *imagePacker) addRef(ref string, top v1.Descriptor) {
	f := &file{Item: bundle.Item{File: "images/" + ref, Kind: bundle.KindImage, Module: ref,
		MediaType: string(top.MediaType), Digest: top.Digest.String(), Size: top.Size}, want: top.Size}
	f.src = p.files[OCIBlobFile(top.Digest.String())].src
	f.data = p.files[OCIBlobFile(top.Digest.String())].data
	p.files[f.File] = f
	if ref != "" {
		p.refs = append(p.refs, ref)
	}
}

func (p *imagePacker) addLayout(ctx context.Context, dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return fmt.Errorf("--image oci:%s: %w", dir, err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		return fmt.Errorf("--image oci:%s: index.json: %w", dir, err)
	}
	src := layoutImages{dir: dir}
	carried := map[v1.Hash]bool{}
	named := 0
	for _, d := range idx.Manifests {
		ref := d.Annotations[annContainerName]
		if ref == "" {
			ref = d.Annotations[annRefName]
		}
		if ref == "" {
			continue
		}
		if !strings.ContainsAny(ref, "/:") { // only a tag: name it after the directory
			ref = filepath.Base(filepath.Clean(dir)) + ":" + ref
		}
		top, err := p.walk(ctx, src, d.Digest, d.Size, d.MediaType)
		if err != nil {
			return fmt.Errorf("--image oci:%s (%s): %w", dir, ref, err)
		}
		carried[d.Digest], carried[top.Digest] = true, true
		p.addRef(ref, top)
		named++
	}
	if named == 0 {
		return fmt.Errorf("--image oci:%s: index.json names no image (no %s annotation)", dir, annRefName)
	}
	// Referrers: unnamed manifests whose subject is carried (SBOMs).
	for _, d := range idx.Manifests {
		if d.Annotations[annRefName] != "" || d.Annotations[annContainerName] != "" {
			continue
		}
		raw, err := src.manifest(ctx, d.Digest)
		if err != nil {
			return fmt.Errorf("--image oci:%s: %w", dir, err)
		}
		var m struct {
			Subject *v1.Descriptor `json:"subject"`
		}
		if json.Unmarshal(raw, &m) != nil || m.Subject == nil || !p.carries(m.Subject.Digest) {
			continue
		}
		top, err := p.walk(ctx, src, d.Digest, d.Size, d.MediaType)
		if err != nil {
			return fmt.Errorf("--image oci:%s: referrer %s: %w", dir, d.Digest, err)
		}
		p.files["images/@"+top.Digest.String()] = &file{Item: bundle.Item{File: "images/@" + top.Digest.String(), Kind: bundle.KindImage,
			MediaType: string(top.MediaType), Digest: top.Digest.String(), Size: top.Size}, data: raw, want: top.Size}
	}
	return nil
}

func (p *imagePacker) carries(d v1.Hash) bool {
	_, ok := p.files[OCIBlobFile(d.String())]
	return ok
}

// walk carries the manifest or index d and everything it references, and
// returns its descriptor: for an index filtered to the listed platforms, a
// new index listing only those.
func (p *imagePacker) walk(ctx context.Context, src imageSource, d v1.Hash, size int64, mt types.MediaType) (v1.Descriptor, error) {
	raw, err := src.manifest(ctx, d)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if got := sha256Hex(raw); "sha256:"+got != d.String() {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: content hashes to sha256:%s", d, got)
	}
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	if mt == "" {
		mt = probe.MediaType
	}
	if mt.IsIndex() || (mt == "" && probe.Manifests != nil) {
		var idx v1.IndexManifest
		if err := json.Unmarshal(raw, &idx); err != nil {
			return v1.Descriptor{}, fmt.Errorf("index %s: %w", d, err)
		}
		var kept []v1.Descriptor
		for _, c := range idx.Manifests {
			if p.platforms != nil && (c.Platform == nil || !p.platforms[c.Platform.OS+"/"+c.Platform.Architecture]) {
				continue
			}
			if _, err := p.walk(ctx, src, c.Digest, c.Size, c.MediaType); err != nil {
				return v1.Descriptor{}, err
			}
			kept = append(kept, c)
		}
		if len(kept) == 0 {
			return v1.Descriptor{}, fmt.Errorf("index %s has no image for the listed platforms", d)
		}
		if len(kept) != len(idx.Manifests) {
			idx.Manifests = kept
			if raw, err = json.Marshal(idx); err != nil {
				return v1.Descriptor{}, err
			}
		}
	} else {
		var m v1.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
		}
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if b.Digest.Algorithm != "sha256" {
				return v1.Descriptor{}, fmt.Errorf("manifest %s: blob %s: only sha256 digests are carried", d, b.Digest)
			}
			if _, ok := p.files[OCIBlobFile(b.Digest.String())]; ok {
				continue
			}
			path, err := src.blob(ctx, b.Digest, b.Size)
			if err != nil {
				return v1.Descriptor{}, err
			}
			p.files[OCIBlobFile(b.Digest.String())] = &file{Item: bundle.Item{File: OCIBlobFile(b.Digest.String()),
				Kind: bundle.KindOCI, MediaType: string(b.MediaType), Digest: b.Digest.String(), Size: b.Size}, src: path, want: b.Size}
		}
	}
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: v1.Hash{Algorithm: "sha256", Hex: sha256Hex(raw)}}
	p.files[OCIBlobFile(desc.Digest.String())] = &file{Item: bundle.Item{File: OCIBlobFile(desc.Digest.String()),
		Kind: bundle.KindOCI, MediaType: string(mt), Digest: desc.Digest.String(), Size: desc.Size}, data: raw, want: desc.Size}
	return desc, nil
}

// list returns the collected items, sorted, and the references carried.
func (p *imagePacker) list() ([]*file, []string) {
	out := make([]*file, 0, len(p.files))
	for _, f := range p.files {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	sort.Strings(p.refs)
	return out, p.refs
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// layoutImages reads an OCI image layout directory.
type layoutImages struct{ dir string }

func (l layoutImages) path(d v1.Hash) string {
	return filepath.Join(l.dir, "blobs", d.Algorithm, d.Hex)
}

func (l layoutImages) manifest(_ context.Context, d v1.Hash) ([]byte, error) {
	f, err := os.Open(l.path(d))
	if err != nil {
		return nil, fmt.Errorf("manifest %s is not in oci:%s: %w", d, l.dir, err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifest))
}

func (l layoutImages) blob(_ context.Context, d v1.Hash, size int64) (string, error) {
	p := l.path(d)
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("blob %s is not in oci:%s: %w", d, l.dir, err)
	}
	if fi.Size() != size {
		return "", fmt.Errorf("blob %s in oci:%s has %d bytes, the manifest says %d", d, l.dir, fi.Size(), size)
	}
	return p, nil // its digest is checked when pack hashes it
}

// remoteImages reads a registry repository; blobs are downloaded, checked,
// into the cache.
type remoteImages struct {
	repo     name.Repository
	cacheDir string
}

func (r *remoteImages) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	desc, err := ggcr.Get(r.repo.Digest(d.String()), ggcr.WithContext(ctx), ggcr.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}

func (r *remoteImages) blob(ctx context.Context, d v1.Hash, size int64) (string, error) {
	dst := filepath.Join(r.cacheDir, d.Hex)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == size {
		return dst, nil // checked when it was written, and again when pack hashes it
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(r.cacheDir, 0o755); err != nil {
		return "", err
	}
	l, err := ggcr.Layer(r.repo.Digest(d.String()), ggcr.WithContext(ctx), ggcr.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", d, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return "", fmt.Errorf("blob %s: %w", d, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(r.cacheDir, d.Hex+".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("downloading blob %s: %w", d, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Hex || n != size {
		return "", fmt.Errorf("blob %s: downloaded %d bytes hashing to sha256:%s", d, n, got)
	}
	return dst, os.Rename(tmp.Name(), dst)
}
