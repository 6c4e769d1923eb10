package bundle

import (
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/tlog"
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
	// SignerKeyAnnotation holds the verifier key of the signer, as the
	// signer claims it: not trusted by itself, it lets the far side show
	// the key's fingerprint and ask whether to trust it.
	SignerKeyAnnotation = "dev.ferry.signer-key"
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

// Check is the one validation of a manifest: Write runs it before writing
// and DecodeManifest after parsing, so Open and every store that reads a
// manifest run it before anything uses an item. It refuses, besides
// duplicate or empty files, bad digests and negative sizes:
//
//   - any file name that is not a clean relative slash-separated path (an
//     empty, "." or ".." element, a leading "/", a backslash, a control
//     character, invalid UTF-8, a volume name) or that has an element
//     starting with "." (ferry's own metadata: .ferry, .blobs);
//   - any item whose kind is not the one its file implies (KindOf), so
//     what verify checks an item for is what install and serve place;
//   - module files (info, mod, zip) whose file is not exactly
//     EscapePath(Module)/@v/EscapeVersion(Version).EXT of a valid module
//     version (module.Check); toolchain versions that are not
//     v0.0.1-RELEASE.GOOS-GOARCH, and toolchain zips whose Platform is not
//     GOOS/GOARCH of their version (Platform is set on nothing else);
//   - checksum database files outside sumdb/<SumDB.Name>/ or other than
//     latest, lookup/MODULE@VERSION and tile/... ; image references not at
//     images/<Module> (referrers at images/@<digest>); OCI blobs not at
//     oci/blobs/sha256/<hex of their digest>;
//   - h1: hashes that are malformed or on items other than zips and go.mod
//     files, nosumdb on other than module files;
//   - toolchain names (Toolchains) that are not Go release names (go1.N,
//     go1.N.M, go1.NrcK, go1.NbetaK) and a checksum database name that is
//     not one path element.
//
// Errors are one line, name the item and say what is wrong.
func (m *Manifest) Check() error {
	if m.SchemaVersion != 1 && m.SchemaVersion != SchemaVersion {
		return fmt.Errorf("unsupported manifest schema version %d (this ferry reads 1 and %d)", m.SchemaVersion, SchemaVersion)
	}
	if m.Base != nil && !validDigest(m.Base.ManifestDigest) {
		return fmt.Errorf("base: invalid manifest digest %q", m.Base.ManifestDigest)
	}
	for _, v := range m.Toolchains {
		if !isGoRelease(v) {
			return fmt.Errorf("toolchain %q is not a Go release name (go1.N, go1.N.M, go1.NrcK or go1.NbetaK); re-pack the bundle", v)
		}
	}
	if m.SumDB != nil {
		if err := checkPath(m.SumDB.Name); err != nil || strings.Contains(m.SumDB.Name, "/") {
			return fmt.Errorf("checksum database name %q is not one path element; re-pack the bundle", m.SumDB.Name)
		}
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
		if err := m.checkItem(&it); err != nil {
			return fmt.Errorf("item %q: %w", it.File, err)
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

// relabelled ends the errors of items whose fields disagree with their file.
const relabelled = "a relabelled or hand-made item; re-pack the bundle"

// checkItem checks that its file is a safe path and that its kind, module,
// version and platform are the ones its file implies. it.Digest is valid.
func (m *Manifest) checkItem(it *Item) error {
	if err := checkPath(it.File); err != nil {
		return fmt.Errorf("%w: an unsafe path; re-pack the bundle", err)
	}
	kind, err := KindOf(it.File)
	if err != nil {
		return err
	}
	if it.Kind != kind {
		what := "a " + path.Ext(it.File) + " file"
		if kind != KindInfo && kind != KindMod && kind != KindZip {
			first, _, _ := strings.Cut(it.File, "/")
			what = "a file under " + first + "/"
		}
		return fmt.Errorf("kind %q, but %s is a %q item: %s", it.Kind, what, kind, relabelled)
	}
	modFile := kind == KindInfo || kind == KindMod || kind == KindZip
	toolchainZip := kind == KindZip && it.Module == ToolchainModule
	switch {
	case it.Hash != "" && kind != KindZip && kind != KindMod:
		return fmt.Errorf("h1: hash on a %q item (only zips and go.mod files have one): %s", kind, relabelled)
	case it.Hash != "" && !validH1(it.Hash):
		return fmt.Errorf("invalid h1: hash %q; re-pack the bundle", it.Hash)
	case it.NoSumDB && !modFile:
		return fmt.Errorf("nosumdb on a %q item (only module files are in a checksum database): %s", kind, relabelled)
	case it.Platform != "" && !toolchainZip:
		return fmt.Errorf("platform %q on an item that is not a toolchain zip: %s", it.Platform, relabelled)
	case !modFile && (it.Version != "" || kind != KindImage && it.Module != ""):
		return fmt.Errorf("module or version on a %q item: %s", kind, relabelled)
	}

	switch kind {
	case KindInfo, KindMod, KindZip:
		return checkModuleFile(it, kind)
	case KindSumDB:
		if m.SumDB == nil {
			return fmt.Errorf("checksum database file, but the manifest has no sumdb section; re-pack the bundle")
		}
		prefix := "sumdb/" + m.SumDB.Name + "/"
		rel, ok := strings.CutPrefix(it.File, prefix)
		if !ok {
			return fmt.Errorf("checksum database file not under %s, the manifest's checksum database; re-pack the bundle", prefix)
		}
		if !isSumDBFile(rel) {
			return fmt.Errorf("not a checksum database file (latest, lookup/MODULE@VERSION or tile/H/L/N[.p/W]); re-pack the bundle")
		}
	case KindImage:
		want := "images/" + it.Module
		if it.Module == "" {
			want = "images/@" + it.Digest // a referrer, named by its digest
		}
		if it.File != want {
			if it.Module == "" {
				return fmt.Errorf("an image referrer is at %s, named by its digest: %s", want, relabelled)
			}
			return fmt.Errorf("image reference %s is at %s: %s", it.Module, want, relabelled)
		}
	case KindOCI:
		if want := "oci/blobs/sha256/" + strings.TrimPrefix(it.Digest, "sha256:"); it.File != want {
			return fmt.Errorf("an OCI blob is at %s, named by its digest: %s", want, relabelled)
		}
	}
	return nil
}

// checkModuleFile checks that a module file item is exactly at the file
// its module and version give, and a toolchain zip's platform.
func checkModuleFile(it *Item, kind Kind) error {
	if err := module.Check(it.Module, it.Version); err != nil {
		return fmt.Errorf("not a module file: %v; re-pack the bundle", err)
	}
	ep, err := module.EscapePath(it.Module)
	if err != nil {
		return fmt.Errorf("not a module file: %v; re-pack the bundle", err)
	}
	ev, err := module.EscapeVersion(it.Version)
	if err != nil {
		return fmt.Errorf("not a module file: %v; re-pack the bundle", err)
	}
	if want := ep + "/@v/" + ev + "." + string(kind); it.File != want {
		return fmt.Errorf("module %s version %s is at %s: %s", it.Module, it.Version, want, relabelled)
	}
	if it.Module != ToolchainModule {
		return nil
	}
	platform, ok := toolchainPlatform(it.Version)
	if !ok {
		return fmt.Errorf("%s is not a Go toolchain version (v0.0.1-RELEASE.GOOS-GOARCH, RELEASE as go1.26.8); re-pack the bundle", it.Version)
	}
	if kind == KindZip && it.Platform != platform {
		return fmt.Errorf("platform %q, but toolchain %s is for %s: %s", it.Platform, it.Version, platform, relabelled)
	}
	return nil
}

// toolchainPlatform returns GOOS/GOARCH of a toolchain module version
// v0.0.1-RELEASE.GOOS-GOARCH, if it is one.
func toolchainPlatform(version string) (string, bool) {
	rest, ok := strings.CutPrefix(version, "v0.0.1-")
	i := strings.LastIndexByte(rest, '.')
	if !ok || i < 0 || !isGoRelease(rest[:i]) {
		return "", false
	}
	goos, goarch, ok := strings.Cut(rest[i+1:], "-")
	if !ok || !isLowerWord(goos) || !isLowerWord(goarch) {
		return "", false
	}
	return goos + "/" + goarch, true
}

func isLowerWord(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// isGoRelease reports whether v names a Go release as the go command's
// toolchain versions do: go1.N, go1.N.M, go1.NrcK or go1.NbetaK (numbers
// without leading zeros; no "-custom" suffix).
func isGoRelease(v string) bool {
	rest, ok := strings.CutPrefix(v, "go")
	if !ok {
		return false
	}
	if _, rest, ok = cutNum(rest); !ok || !strings.HasPrefix(rest, ".") {
		return false
	}
	if _, rest, ok = cutNum(rest[1:]); !ok {
		return false
	}
	for _, sep := range []string{"", ".", "rc", "beta"} {
		if sep == "" {
			if rest == "" {
				return true
			}
			continue
		}
		if n, ok := strings.CutPrefix(rest, sep); ok {
			_, rest, ok := cutNum(n)
			return ok && rest == ""
		}
	}
	return false
}

// cutNum cuts a decimal number without leading zeros off the start of s.
func cutNum(s string) (n, rest string, ok bool) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == 0 || s[0] == '0' && i > 1 {
		return "", s, false
	}
	return s[:i], s[i:], true
}

// isSumDBFile reports whether rel (relative to sumdb/<name>/) is a file of
// a checksum database snapshot: latest, lookup/MODULE@VERSION (escaped) or
// a tile in canonical form.
func isSumDBFile(rel string) bool {
	if rel == "latest" {
		return true
	}
	if l, ok := strings.CutPrefix(rel, "lookup/"); ok {
		i := strings.LastIndexByte(l, '@')
		if i < 0 {
			return false
		}
		_, err1 := module.UnescapePath(l[:i])
		_, err2 := module.UnescapeVersion(l[i+1:])
		return err1 == nil && err2 == nil
	}
	if strings.HasPrefix(rel, "tile/") {
		t, err := tlog.ParseTilePath(rel)
		return err == nil && t.Path() == rel
	}
	return false
}

// KindOf returns the kind an item at file must have, from its path alone:
// MODULE/@v/VERSION.info, .mod and .zip are info, mod and zip items, files
// under sumdb/, images/ and oci/ are sumdb, image and oci items. Any other
// file is not one a bundle carries.
func KindOf(file string) (Kind, error) {
	first, _, _ := strings.Cut(file, "/")
	switch first {
	case "sumdb":
		return KindSumDB, nil
	case "images":
		return KindImage, nil
	case "oci":
		return KindOCI, nil
	}
	if _, name, ok := strings.Cut(file, "/@v/"); ok && !strings.Contains(name, "/") {
		switch path.Ext(name) {
		case ".info":
			return KindInfo, nil
		case ".mod":
			return KindMod, nil
		case ".zip":
			return KindZip, nil
		}
	}
	return "", fmt.Errorf("not a file ferry carries (MODULE/@v/VERSION.info, .mod or .zip, or under sumdb/, images/ or oci/); re-pack the bundle")
}

// checkPath reports whether name is a clean relative slash-separated path
// that install, import and serve may place: no empty, "." or ".." element,
// no leading "/", no backslash, control character or invalid UTF-8, no
// volume name, and no element starting with "." (ferry keeps its own
// metadata in such paths: PREFIX/.ferry, .blobs in store generations).
func checkPath(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case !utf8.ValidString(name):
		return errors.New("file name is not valid UTF-8")
	case strings.HasPrefix(name, "/"):
		return errors.New("file name is an absolute path")
	case strings.Contains(name, `\`):
		return errors.New("file name contains a backslash")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("file name contains a control character")
	}
	elems := strings.Split(name, "/")
	if strings.Contains(elems[0], ":") {
		return errors.New("file name starts with a volume name")
	}
	for _, e := range elems {
		switch {
		case e == "":
			return errors.New("file name has an empty path element")
		case e == "." || e == "..":
			return fmt.Errorf("file name has a %q path element", e)
		case e[0] == '.':
			return fmt.Errorf("file name element %q starts with a dot (as ferry's own metadata, such as .ferry and .blobs, does)", e)
		}
	}
	return nil
}

// validH1 reports whether h is an "h1:" hash: base64 of a SHA-256.
func validH1(h string) bool {
	b64, ok := strings.CutPrefix(h, "h1:")
	if !ok {
		return false
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	return err == nil && len(sum) == 32 && base64.StdEncoding.EncodeToString(sum) == b64
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
