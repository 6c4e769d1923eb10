package bundle

import (
	"fmt"
	"sort"
	"strings"
)

// Kind says what an item of a bundle is and where it goes.
type Kind string

const (
	KindInfo  Kind = "info"  // <module>/@v/<version>.info
	KindMod   Kind = "mod"   // <module>/@v/<version>.mod
	KindZip   Kind = "zip"   // <module>/@v/<version>.zip (module source or Go toolchain)
	KindSumDB Kind = "sumdb" // sumdb/<name>/{latest,lookup/...,tile/...}: the checksum snapshot
	// KindImage is a container image carried by reference: File is
	// "images/<reference>", Module the reference (NAME:TAG), and the blob
	// its OCI image index or manifest.
	KindImage Kind = "image"
	// KindOCI is a blob of a carried image (manifest, index, config or
	// layer): File is "oci/blobs/sha256/<hex>".
	KindOCI Kind = "oci"
)

// MediaTypes of the OCI objects a bundle is made of.
const (
	ArtifactType      = "application/vnd.ferry.bundle.v1"
	ManifestMediaType = "application/vnd.ferry.manifest.v1+json"
	ItemMediaType     = "application/vnd.ferry.item.v1"
	// SignatureAnnotation on the OCI manifest holds a golang.org/x/mod/sumdb/note
	// signed note whose text is SignedText(digest of the ferry manifest).
	SignatureAnnotation = "dev.ferry.signature"
)

// SchemaVersion is the version of the Manifest format written by this code.
// Version 2 added encoded items (Item.Encoding); a reader that only knows
// version 1 refuses a version 2 manifest instead of installing encoded
// blobs as zips. This code reads both.
const SchemaVersion = 2

// EncodingZstd is the Item.Encoding of a module zip carried as the zstd
// encoding of a Store-method zip with the same files (package zipcodec).
const EncodingZstd = "zstd"

// Manifest is the table of contents of a bundle: it is stored as the config blob
// of the bundle's OCI image manifest. It is deterministic: the same inputs give
// the same bytes (no timestamps unless SOURCE_DATE_EPOCH says so, items sorted by File).
type Manifest struct {
	SchemaVersion int    `json:"schemaVersion"`
	Name          string `json:"name,omitempty"`
	Version       string `json:"version,omitempty"`
	Created       string `json:"created,omitempty"` // RFC 3339, only from SOURCE_DATE_EPOCH

	Platforms  []string `json:"platforms,omitempty"`  // GOOS/GOARCH
	Toolchains []string `json:"toolchains,omitempty"` // goX.Y.Z
	Projects   []string `json:"projects,omitempty"`   // main module paths packed
	Tools      []string `json:"tools,omitempty"`      // --tool PKG@VERSION
	Modules    []string `json:"modules,omitempty"`    // --module MODULE@VERSION
	Images     []string `json:"images,omitempty"`     // image references carried (KindImage items)

	SumDB *SumDB `json:"sumdb,omitempty"`

	// Base, when set, makes this bundle a delta: its Items still list
	// everything a full bundle would hold, but blobs whose digest an item of
	// the base also has are left out of the file and are read from the base.
	Base *Base `json:"base,omitempty"`

	// Missing lists modules that pack could not carry and what will not work
	// offline because of them.
	Missing []Missing `json:"missing,omitempty"`

	Items []Item `json:"items"`
}

// SumDB describes the checksum database snapshot in the bundle.
type SumDB struct {
	Name string `json:"name"` // e.g. the name in `go env GOSUMDB`
	Key  string `json:"key"`  // verifier key (note format) the snapshot was checked with at pack time
	// Head is the signed tree head (a note) that every lookup in the bundle is wrapped with.
	Head string `json:"head"`
	// Heads are earlier tree heads the snapshot also carries consistency tiles for.
	Heads []string `json:"heads,omitempty"`
}

// Base names the bundle a delta was packed against, by the digest of its
// ferry manifest (stable whether or not the base was signed).
type Base struct {
	ManifestDigest string `json:"manifestDigest"`
	Name           string `json:"name,omitempty"`
	Version        string `json:"version,omitempty"`
}

// String names the base for messages: "NAME VERSION (sha256:...)".
func (b *Base) String() string {
	s := b.ManifestDigest
	if b.Name != "" || b.Version != "" {
		s = strings.TrimSpace(b.Name+" "+b.Version) + " (" + s + ")"
	}
	return s
}

// Missing is a module version pack could not carry.
type Missing struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	File    string `json:"file,omitempty"` // which file (".zip", ".mod", ".info")
	Reason  string `json:"reason"`
	Impact  string `json:"impact"`
}

// Item is one file of the bundle.
type Item struct {
	// File is the path of the item in the GOPROXY directory layout (escaped with
	// golang.org/x/mod/module), e.g. "golang.org/x/mod/@v/v0.1.0.zip" or
	// "sumdb/<name>/tile/8/0/000". It is unique in a manifest.
	File     string `json:"file"`
	Kind     Kind   `json:"kind"`
	Module   string `json:"module,omitempty"`   // unescaped module path
	Version  string `json:"version,omitempty"`  // module version
	Platform string `json:"platform,omitempty"` // GOOS/GOARCH, for toolchain zips
	Size     int64  `json:"size"`
	Digest   string `json:"digest"`            // "sha256:<hex>" of the bytes
	Hash     string `json:"h1,omitempty"`      // dirhash "h1:" of a zip, or of a go.mod for .mod items
	NoSumDB  bool   `json:"nosumdb,omitempty"` // matches GOPRIVATE/GONOSUMDB: not in the checksum database
	// MediaType is the OCI media type of image items (KindImage, KindOCI).
	MediaType string `json:"mediaType,omitempty"`

	// Encoding, when set (EncodingZstd), says the blob is an encoding of
	// the file: Size and Digest are the blob's, FileSize and FileDigest
	// those of the file it decodes to, the one that is installed and
	// served. Only zips are encoded; Hash is the decoded zip's.
	Encoding   string `json:"encoding,omitempty"`
	FileSize   int64  `json:"fileSize,omitempty"`
	FileDigest string `json:"fileDigest,omitempty"`
}

// Encoded reports whether the item's blob is an encoding of its file.
func (it *Item) Encoded() bool { return it.Encoding != "" }

// FileID returns the digest and size of the file the item installs as: the
// blob's own, or for an encoded item the decoded file's.
func (it *Item) FileID() (digest string, size int64) {
	if it.Encoded() {
		return it.FileDigest, it.FileSize
	}
	return it.Digest, it.Size
}

// Sort orders items by File, the canonical order.
func (m *Manifest) Sort() {
	sort.Slice(m.Items, func(i, j int) bool { return m.Items[i].File < m.Items[j].File })
}

// Check reports structural problems: duplicate or empty files, bad digests, negative sizes.
func (m *Manifest) Check() error {
	if m.SchemaVersion != 1 && m.SchemaVersion != SchemaVersion {
		return fmt.Errorf("unsupported manifest schema version %d (this ferry reads 1 and %d)", m.SchemaVersion, SchemaVersion)
	}
	if m.Base != nil && !validDigest(m.Base.ManifestDigest) {
		return fmt.Errorf("base: invalid manifest digest %q", m.Base.ManifestDigest)
	}
	seen := make(map[string]bool, len(m.Items))
	for i, it := range m.Items {
		if it.File == "" {
			return fmt.Errorf("item %d: empty file name", i)
		}
		if seen[it.File] {
			return fmt.Errorf("item %d: duplicate file %q", i, it.File)
		}
		seen[it.File] = true
		if !validDigest(it.Digest) {
			return fmt.Errorf("item %q: invalid digest %q", it.File, it.Digest)
		}
		if it.Size < 0 {
			return fmt.Errorf("item %q: negative size", it.File)
		}
		if it.Encoded() {
			switch {
			case m.SchemaVersion < 2:
				return fmt.Errorf("item %q: encoded item in a schema version %d manifest", it.File, m.SchemaVersion)
			case it.Encoding != EncodingZstd:
				return fmt.Errorf("item %q: unknown encoding %q", it.File, it.Encoding)
			case it.Kind != KindZip:
				return fmt.Errorf("item %q: only zips are encoded, not %s items", it.File, it.Kind)
			case !validDigest(it.FileDigest):
				return fmt.Errorf("item %q: invalid file digest %q", it.File, it.FileDigest)
			case it.FileSize < 0:
				return fmt.Errorf("item %q: negative file size", it.File)
			}
		} else if it.FileDigest != "" || it.FileSize != 0 {
			return fmt.Errorf("item %q: file digest or size without an encoding", it.File)
		}
	}
	return nil
}

func validDigest(d string) bool {
	const p = "sha256:"
	if len(d) != len(p)+64 || d[:len(p)] != p {
		return false
	}
	for _, c := range d[len(p):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SignedText is the text of the note that signs a bundle whose ferry manifest has the given digest.
func SignedText(manifestDigest string) string {
	return "ferry bundle manifest " + manifestDigest + "\n"
}
