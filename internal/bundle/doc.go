// Package bundle reads and writes ferry bundles.
//
// A bundle is one uncompressed tar file holding an OCI image layout, so
// standard OCI tools (skopeo "oci-archive:", oras, crane) can inspect and copy
// it. Its entries, in this order, are:
//
//	oci-layout                 {"imageLayoutVersion":"1.0.0"}
//	index.json                 OCI image index with exactly one manifest descriptor
//	blobs/, blobs/sha256/      directories (mode 0755)
//	blobs/sha256/<hex>         the OCI image manifest
//	blobs/sha256/<hex>         its config: the ferry Manifest as JSON (ManifestMediaType)
//	blobs/sha256/<hex>...      one blob per distinct item digest (ItemMediaType), sorted by digest
//
// The OCI image manifest has artifactType ArtifactType and one layer per
// distinct item digest, sorted by digest. A signed bundle carries, in the
// SignatureAnnotation of the OCI manifest, a golang.org/x/mod/sumdb/note signed
// note whose text is SignedText(digest of the ferry Manifest blob). Because
// that blob lists the digest and size of every item, the signature covers
// every byte that gets installed.
//
// A module zip item may be encoded (Item.Encoding, EncodingZstd; see
// package zipcodec): its blob is then the zstd encoding of a Store-method
// zip with the zip's files, Item.Size and Item.Digest are the blob's, and
// Item.FileSize and Item.FileDigest the decoded zip's, which is what gets
// installed and served. Item.Hash (h1:) is the same for both, as the go
// command and the checksum database hash file names and contents, not zip
// bytes. Manifests with encoded items have SchemaVersion 2, which older
// readers refuse.
//
// A delta bundle (Manifest.Base set) lists every item a full bundle would,
// but its file holds only the blobs its base lacks; it is read through its
// base with WithBase. A split bundle (Split) is a small JSON index at the
// bundle's path plus parts NAME.001, NAME.002, ...; Open takes the index or
// any part, checks every part against the index, and reads across them.
//
// Invariants:
//
//   - Write is deterministic: the same Manifest, item bytes and WriteOptions
//     give a byte-identical file. Tar headers are USTAR (PAX only for blobs of
//     8 GiB or more), uid/gid 0, empty user and group names, mode 0644 (0755
//     for directories), one ModTime for every entry (Unix 0 by default).
//   - Write never leaves a partial file at its destination: it writes a
//     temporary file in the same directory, syncs it and renames it. It
//     re-hashes every item while copying and fails on any digest or size
//     mismatch.
//   - Open reads only tar headers, padding and the small metadata blobs
//     (oci-layout, index.json, OCI manifest, config); it verifies the digests
//     of the metadata blobs, accepts tar headers, padding, oci-layout and
//     index.json only exactly as Write produces them, and refuses truncated
//     files, data after the end-of-archive marker, duplicate or unexpected
//     entries, unreferenced blobs and items without a blob. So any changed
//     byte of a bundle makes either Open or VerifyBlob of the blob holding
//     it fail. Item data is checked only by VerifyBlob. Open never panics,
//     whatever the input. A refused file that is a readable tar of an OCI
//     image layout none of whose manifests is a ferry bundle's (an
//     oci-archive of skopeo or go-containerregistry) is said to be "not a
//     ferry bundle (an OCI archive without a ferry manifest ...)", with what
//     to do; a damaged or re-tarred ferry bundle keeps the precise error.
//   - Open, OpenSplit and Split read bundles, parts and split indexes only
//     from regular files: a named pipe, device, socket or directory is refused
//     before it is opened (opening a named pipe blocks until a writer comes).
//   - Every error from a Reader is one line and starts with the bundle's file
//     name.
//   - A manifest is validated by one function, Manifest.Check, which Write
//     runs before writing and DecodeManifest (so Open, and every store that
//     reads a manifest) after parsing, before anything uses an item. An
//     item's kind is the one its file implies (KindOf): what verify checks
//     an item for is what install and serve place at its file. Module files
//     are exactly at the escaped path of their Module and Version, toolchain
//     zips are for the Platform their version names, and every file is a
//     clean relative path outside ferry's own metadata (no element starting
//     with "."). Toolchain names are Go release names.
package bundle
