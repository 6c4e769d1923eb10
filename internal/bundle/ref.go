package bundle

import (
	"fmt"
	"strings"
)

// A bundle has two digests, and commands name it by either:
//   - its bundle digest (Reader.Digest): the digest of its OCI image
//     manifest, the identity of the bundle file (a store keeps the file under
//     it);
//   - its manifest digest (Reader.ManifestDigest): the digest of its ferry
//     manifest, what it carries (a delta names its base by it, and an
//     install prefix records it).
//
// Signing the same content again changes the first, not the second.

// MinDigestPrefix is the least number of hex digits of a digest that name a
// bundle.
const MinDigestPrefix = 8

// MatchDigest reports whether q names digest d: d's hex, or at least
// MinDigestPrefix digits of its start, with or without "sha256:".
func MatchDigest(q, d string) bool {
	h := strings.ToLower(strings.TrimPrefix(q, "sha256:"))
	return d != "" && len(h) >= MinDigestPrefix && strings.HasPrefix(strings.TrimPrefix(d, "sha256:"), h)
}

// MatchRef reports whether q names a bundle with these digests, name and
// version: a prefix of either digest (MatchDigest), NAME@VERSION or NAME.
func MatchRef(q, digest, manifestDigest, name, version string) bool {
	return MatchDigest(q, digest) || MatchDigest(q, manifestDigest) ||
		(name != "" && (q == name+"@"+version || q == name))
}

// RefHint completes an error saying that q names no bundle: what does name
// one (kinds, such as "NAME@VERSION, NAME" and then either digest), and
// first, for q that looks like a digest prefix, that it is too short.
func RefHint(q, kinds string) string {
	s := fmt.Sprintf("give %s or at least %d hex digits of its bundle or manifest digest", kinds, MinDigestPrefix)
	if h := strings.TrimPrefix(q, "sha256:"); h != "" && len(h) < MinDigestPrefix && isHex(h) {
		s = fmt.Sprintf("a digest prefix needs at least %d hex digits, %q has %d; ", MinDigestPrefix, q, len(h)) + s
	}
	return s
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
