package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Source is where the images to push come from: an OCI image layout
// directory (Layout), or anything else that holds manifests and blobs by
// digest (a ferry bundle).
type Source interface {
	// String names the source in messages ("oci:DIR").
	String() string
	// Images returns the named images to push, in a stable order.
	Images(ctx context.Context) ([]Image, error)
	// Referrers returns the manifests in the source (SBOMs, signatures,
	// attestations) whose subject is the manifest with the given digest.
	Referrers(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, error)
	// Blob opens a blob or manifest by digest and returns its size. Push
	// checks what it reads against the digest and the size it expects.
	Blob(ctx context.Context, digest v1.Hash) (io.ReadCloser, int64, error)
}

// Image is one named image of a Source.
type Image struct {
	// Name is "NAME[:TAG]", possibly with a registry host in front (which
	// is dropped on push: see Target.Ref).
	Name string
	// Descriptor is the image's manifest or image index.
	Descriptor v1.Descriptor
}

// Annotations naming an image in an OCI layout's index.json.
const (
	// AnnotationRefName is the OCI annotation: a full reference
	// ("registry.example/team/app:1.0") or only a tag ("1.0").
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// annotationContainerdName is the full name containerd and buildx
	// record next to a tag-only ref.name.
	annotationContainerdName = "io.containerd.image.name"
)

// referrersTag matches the tags of the OCI referrers tag schema
// ("sha256-<hex>"): indexes of the referrers of a manifest, not images.
var referrersTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// Layout is a Source over an OCI image layout: its index.json names the
// images and every manifest and blob is found by digest.
//
// An index.json entry is named by the io.containerd.image.name annotation
// if present, else by org.opencontainers.image.ref.name: a full reference if
// it has a "/" or ":", else only a tag of the layout's default name (the
// convention of skopeo's oci:DIR:TAG). Entries without a name are not
// pushed as images; those whose manifest has a subject are its referrers,
// and so are the manifests listed by a referrers-tag-schema index
// (tag sha256-<hex>).
type Layout struct {
	where       string
	defaultName string
	index       v1.IndexManifest
	open        func(ctx context.Context, digest v1.Hash) (io.ReadCloser, int64, error)

	once      sync.Once
	referrers map[v1.Hash][]v1.Descriptor
	refErr    error
}

// maxIndexSize bounds index.json and every manifest read from a source
// (registries refuse manifests over 4 MiB).
const maxIndexSize = 4 << 20

// NewLayout returns a Source over an OCI layout whose index.json is
// indexJSON and whose blobs open opens. where names it in messages;
// defaultName names images whose annotation is only a tag.
func NewLayout(where, defaultName string, indexJSON []byte, open func(ctx context.Context, digest v1.Hash) (io.ReadCloser, int64, error)) (*Layout, error) {
	l := &Layout{where: where, defaultName: defaultName, open: open}
	if err := json.Unmarshal(indexJSON, &l.index); err != nil {
		return nil, fmt.Errorf("reading %s: index.json: %v", where, err)
	}
	if l.index.SchemaVersion != 2 {
		return nil, fmt.Errorf("reading %s: index.json: schemaVersion %d, want 2", where, l.index.SchemaVersion)
	}
	return l, nil
}

// OpenLayout opens the OCI image layout in directory dir.
func OpenLayout(dir string) (*Layout, error) {
	where := "oci:" + dir
	lay, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: not an OCI image layout (no oci-layout file)", where)
		}
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	var ver struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(lay, &ver); err != nil || !strings.HasPrefix(ver.Version, "1.") {
		return nil, fmt.Errorf("reading %s: oci-layout: unsupported imageLayoutVersion %q", where, ver.Version)
	}
	f, err := os.Open(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	defer f.Close()
	idx, err := io.ReadAll(io.LimitReader(f, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: index.json: %w", where, err)
	}
	if len(idx) > maxIndexSize {
		return nil, fmt.Errorf("reading %s: index.json is larger than %d bytes", where, maxIndexSize)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	open := func(_ context.Context, d v1.Hash) (io.ReadCloser, int64, error) {
		// d is a parsed v1.Hash: its algorithm and hex hold no path separators.
		f, err := os.Open(filepath.Join(dir, "blobs", d.Algorithm, d.Hex))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, 0, fmt.Errorf("blob %s is not in %s", d, where)
			}
			return nil, 0, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return nil, 0, fmt.Errorf("blob %s in %s is not a regular file", d, where)
		}
		return f, fi.Size(), nil
	}
	return NewLayout(where, strings.ToLower(filepath.Base(abs)), idx, open)
}

func (l *Layout) String() string { return l.where }

// Images returns the named entries of index.json, in its order.
func (l *Layout) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	for _, d := range l.index.Manifests {
		n := l.imageName(d)
		if n == "" {
			continue
		}
		if _, tag, err := SplitName(n); err == nil && referrersTag.MatchString(tag) && isIndex(d.MediaType) {
			continue
		}
		out = append(out, Image{Name: n, Descriptor: d})
	}
	return out, nil
}

func (l *Layout) imageName(d v1.Descriptor) string {
	if n := d.Annotations[annotationContainerdName]; n != "" {
		return n
	}
	n := d.Annotations[AnnotationRefName]
	if n == "" || strings.ContainsAny(n, "/:@") {
		return n
	}
	return l.defaultName + ":" + n
}

// Referrers returns the manifests of index.json (unnamed entries, and the
// entries of referrers-tag-schema indexes) whose subject is subject.
func (l *Layout) Referrers(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, error) {
	l.once.Do(func() { l.referrers, l.refErr = l.findReferrers(ctx) })
	if l.refErr != nil {
		return nil, l.refErr
	}
	return l.referrers[subject], nil
}

func (l *Layout) findReferrers(ctx context.Context) (map[v1.Hash][]v1.Descriptor, error) {
	var cands []v1.Descriptor
	for _, d := range l.index.Manifests {
		n := l.imageName(d)
		if n == "" {
			cands = append(cands, d)
			continue
		}
		if _, tag, err := SplitName(n); err == nil && referrersTag.MatchString(tag) && isIndex(d.MediaType) {
			raw, err := readManifest(ctx, l, d)
			if err != nil {
				return nil, err
			}
			var idx v1.IndexManifest
			if err := json.Unmarshal(raw, &idx); err != nil {
				return nil, fmt.Errorf("reading %s: referrers index %s: %v", l.where, d.Digest, err)
			}
			cands = append(cands, idx.Manifests...)
		}
	}
	out := make(map[v1.Hash][]v1.Descriptor)
	seen := make(map[v1.Hash]bool)
	for _, d := range cands {
		if seen[d.Digest] || !(isIndex(d.MediaType) || isManifest(d.MediaType)) {
			continue
		}
		seen[d.Digest] = true
		raw, err := readManifest(ctx, l, d)
		if err != nil {
			return nil, err
		}
		var m struct {
			Subject *v1.Descriptor `json:"subject"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("reading %s: manifest %s: %v", l.where, d.Digest, err)
		}
		if m.Subject != nil {
			out[m.Subject.Digest] = append(out[m.Subject.Digest], d)
		}
	}
	return out, nil
}

// Blob opens the blob with digest d.
func (l *Layout) Blob(ctx context.Context, d v1.Hash) (io.ReadCloser, int64, error) {
	return l.open(ctx, d)
}
