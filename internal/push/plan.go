package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotations the plan needs to know.
const (
	dockerAttestationType   = "vnd.docker.reference.type"
	dockerAttestationDigest = "vnd.docker.reference.digest"
	dockerAttestation       = "attestation-manifest"
)

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// node is one manifest or image index to push, with what it references.
type node struct {
	desc     v1.Descriptor // digest, size and media type of raw
	raw      []byte
	children []*node         // manifests of an index
	blobs    []v1.Descriptor // config and layers of a manifest
	subject  *v1.Descriptor  // the manifest this one refers to, if any
	// artifactType is the manifest's artifactType, else its config's media
	// type: what the referrers API lists.
	artifactType string
	annotations  map[string]string
}

// imagePlan is everything one image's push does, known before it starts.
type imagePlan struct {
	src       Image
	root      *node
	referrers []*node // in an order where a subject comes before its referrers
	blobs     []v1.Descriptor
	blobBytes int64
}

// manifestDoc holds the fields of image manifests and indexes push reads.
type manifestDoc struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *v1.Descriptor    `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Subject       *v1.Descriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// readManifest reads the manifest d names from src and checks its size and digest.
func readManifest(ctx context.Context, src Source, d v1.Descriptor) ([]byte, error) {
	return readSmall(ctx, src, d, "manifest")
}

// readSmall reads a manifest or config blob (what) and checks its size and digest.
func readSmall(ctx context.Context, src Source, d v1.Descriptor, what string) ([]byte, error) {
	if d.Size > maxIndexSize {
		return nil, fmt.Errorf("%s %s in %s: %d bytes, more than registries accept (%d)", what, d.Digest, src, d.Size, maxIndexSize)
	}
	if d.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("%s %s in %s: only sha256 digests are supported", what, d.Digest, src)
	}
	rc, _, err := src.Blob(ctx, d.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, d.Digest, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s %s from %s: %w", what, d.Digest, src, err)
	}
	if int64(len(raw)) != d.Size {
		return nil, fmt.Errorf("%s %s in %s: %d bytes, its descriptor says %d", what, d.Digest, src, len(raw), d.Size)
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(raw)); got != d.Digest {
		return nil, fmt.Errorf("%s %s in %s: content has digest %s", what, d.Digest, src, got)
	}
	return raw, nil
}

// planner builds the nodes of images, sharing nodes by digest.
type planner struct {
	src       Source
	platforms []v1.Platform
}

// plan reads an image's manifests and referrers from the source.
func (pl *planner) plan(ctx context.Context, img Image) (*imagePlan, error) {
	ip := &imagePlan{src: img}
	nodes := make(map[v1.Hash]*node)
	root, err := pl.node(ctx, img.Descriptor, nodes, true)
	if err != nil {
		return nil, err
	}
	ip.root = root
	// Referrers of every manifest pushed, and of their referrers. A
	// rewritten index (see filterIndex) has a new digest that nothing
	// in the source refers to.
	var queue []v1.Hash
	var enqueue func(n *node)
	enqueue = func(n *node) {
		queue = append(queue, n.desc.Digest)
		for _, c := range n.children {
			enqueue(c)
		}
	}
	enqueue(root)
	queued := make(map[v1.Hash]bool)
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if queued[h] {
			continue
		}
		queued[h] = true
		refs, err := pl.src.Referrers(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("finding referrers of %s in %s: %w", h, pl.src, err)
		}
		for _, d := range refs {
			if _, ok := nodes[d.Digest]; ok {
				continue
			}
			n, err := pl.node(ctx, d, nodes, false)
			if err != nil {
				return nil, err
			}
			if n.subject == nil || n.subject.Digest != h {
				return nil, fmt.Errorf("%s lists %s as a referrer of %s, but its subject is not that", pl.src, d.Digest, h)
			}
			ip.referrers = append(ip.referrers, n)
			enqueue(n)
		}
	}
	seen := make(map[v1.Hash]bool)
	var walk func(n *node)
	walk = func(n *node) {
		for _, b := range n.blobs {
			if !seen[b.Digest] {
				seen[b.Digest] = true
				ip.blobs = append(ip.blobs, b)
				ip.blobBytes += b.Size
			}
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(root)
	for _, r := range ip.referrers {
		walk(r)
	}
	return ip, nil
}

// node reads the manifest d and, for an index, its children. filter applies
// the platform selection (to the image, not to its referrers).
func (pl *planner) node(ctx context.Context, d v1.Descriptor, nodes map[v1.Hash]*node, filter bool) (*node, error) {
	if n, ok := nodes[d.Digest]; ok {
		return n, nil
	}
	raw, err := readManifest(ctx, pl.src, d)
	if err != nil {
		return nil, err
	}
	var doc manifestDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("manifest %s in %s: %v", d.Digest, pl.src, err)
	}
	if doc.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest %s in %s: schemaVersion %d is not supported", d.Digest, pl.src, doc.SchemaVersion)
	}
	mt := d.MediaType
	if mt == "" {
		mt = doc.MediaType
	}
	if doc.MediaType != "" && doc.MediaType != mt {
		return nil, fmt.Errorf("manifest %s in %s: media type %s, its descriptor says %s", d.Digest, pl.src, doc.MediaType, mt)
	}
	n := &node{
		desc:         v1.Descriptor{MediaType: mt, Digest: d.Digest, Size: d.Size},
		raw:          raw,
		subject:      doc.Subject,
		artifactType: doc.ArtifactType,
		annotations:  doc.Annotations,
	}
	switch {
	case isIndex(mt):
		kids := doc.Manifests
		if filter && len(pl.platforms) > 0 {
			kids, err = pl.filterIndex(n, doc.Manifests)
			if err != nil {
				return nil, err
			}
		}
		for _, c := range kids {
			if !isIndex(c.MediaType) && !isManifest(c.MediaType) {
				return nil, fmt.Errorf("index %s in %s: entry %s has media type %q, not a manifest", d.Digest, pl.src, c.Digest, c.MediaType)
			}
			cn, err := pl.node(ctx, c, nodes, filter)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, cn)
		}
	case isManifest(mt):
		if doc.Config == nil {
			return nil, fmt.Errorf("manifest %s in %s: no config", d.Digest, pl.src)
		}
		if n.artifactType == "" {
			n.artifactType = string(doc.Config.MediaType)
		}
		if filter && len(pl.platforms) > 0 && d.Platform == nil {
			// A single-platform image: its config says which platform.
			if err := pl.checkConfigPlatform(ctx, d, *doc.Config); err != nil {
				return nil, err
			}
		}
		for _, b := range append([]v1.Descriptor{*doc.Config}, doc.Layers...) {
			if len(b.URLs) > 0 {
				continue // a foreign layer: registries fetch it from its URLs
			}
			if b.Digest.Algorithm == "" || b.Size < 0 {
				return nil, fmt.Errorf("manifest %s in %s: invalid blob descriptor", d.Digest, pl.src)
			}
			n.blobs = append(n.blobs, b)
		}
	default:
		return nil, fmt.Errorf("manifest %s in %s: unsupported media type %q", d.Digest, pl.src, mt)
	}
	nodes[d.Digest] = n
	return n, nil
}

// matches reports whether p is one of the selected platforms. A selection
// without a variant matches every variant.
func (pl *planner) matches(p *v1.Platform) bool {
	for _, s := range pl.platforms {
		if p.OS == s.OS && p.Architecture == s.Architecture && (s.Variant == "" || p.Variant == s.Variant) {
			return true
		}
	}
	return false
}

// filterIndex keeps the entries of index n for the selected platforms, and
// the entries without a platform (attestations only if what they attest is
// kept). If it drops anything, n's content is rewritten: the pushed index
// lists exactly what is pushed, and gets a new digest.
func (pl *planner) filterIndex(n *node, entries []v1.Descriptor) ([]v1.Descriptor, error) {
	kept := make(map[v1.Hash]bool)
	var out []v1.Descriptor
	var keep []int
	platformed := 0
	for i, e := range entries {
		if e.Platform != nil && e.Annotations[dockerAttestationType] != dockerAttestation && !(e.Platform.OS == "unknown" && e.Platform.Architecture == "unknown") {
			platformed++
			if pl.matches(e.Platform) {
				kept[e.Digest] = true
				keep = append(keep, i)
			}
		}
	}
	if platformed > 0 && len(keep) == 0 {
		return nil, fmt.Errorf("index %s in %s has none of the platforms %s", n.desc.Digest, pl.src, platformList(pl.platforms))
	}
	var final []int
	for i, e := range entries {
		switch {
		case slices.Contains(keep, i):
			final = append(final, i)
		case e.Annotations[dockerAttestationType] == dockerAttestation:
			if h, err := v1.NewHash(e.Annotations[dockerAttestationDigest]); err == nil && kept[h] {
				final = append(final, i)
			}
		case e.Platform == nil:
			final = append(final, i)
		}
	}
	for _, i := range final {
		out = append(out, entries[i])
	}
	if len(final) == len(entries) {
		return out, nil
	}
	// Rewrite the index with only the kept entries, each byte for byte.
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(n.raw, &doc); err != nil {
		return nil, fmt.Errorf("index %s in %s: %v", n.desc.Digest, pl.src, err)
	}
	var rawEntries []json.RawMessage
	if err := json.Unmarshal(doc["manifests"], &rawEntries); err != nil || len(rawEntries) != len(entries) {
		return nil, fmt.Errorf("index %s in %s: cannot read its manifests", n.desc.Digest, pl.src)
	}
	var keptRaw []json.RawMessage
	for _, i := range final {
		keptRaw = append(keptRaw, rawEntries[i])
	}
	b, err := json.Marshal(keptRaw)
	if err != nil {
		return nil, err
	}
	doc["manifests"] = b
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	h, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	n.raw, n.desc.Digest, n.desc.Size = raw, h, size
	return out, nil
}

func (pl *planner) checkConfigPlatform(ctx context.Context, d, cfg v1.Descriptor) error {
	raw, err := readSmall(ctx, pl.src, cfg, "config")
	if err != nil {
		return err
	}
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("config %s in %s: %v", cfg.Digest, pl.src, err)
	}
	if !pl.matches(&v1.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}) {
		return fmt.Errorf("image %s in %s is %s/%s, not one of the platforms %s", d.Digest, pl.src, c.OS, c.Architecture, platformList(pl.platforms))
	}
	return nil
}

func platformList(ps []v1.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}
