package store

import (
	"strings"
	"testing"
)

// TestFind: a stored bundle is named by either digest (8 hex digits or
// more of it), NAME@VERSION or NAME; an error says how.
func TestFind(t *testing.T) {
	infos := []BundleInfo{
		{Digest: "sha256:aaaaaaaa11111111", ManifestDigest: "sha256:bbbbbbbb22222222", Name: "app", Version: "v1.0.0"},
		{Digest: "sha256:cccccccc33333333", ManifestDigest: "sha256:dddddddd44444444", Name: "app", Version: "v1.1.0"},
	}
	for q, want := range map[string]string{
		"aaaaaaaa": "v1.0.0", "sha256:bbbbbbbb2": "v1.0.0", "cccccccc": "v1.1.0", "dddddddd": "v1.1.0",
		"app@v1.1.0": "v1.1.0",
	} {
		in, err := Find(infos, q)
		if err != nil || in.Version != want {
			t.Errorf("Find(%q) = %s, %v; want %s", q, in.Version, err, want)
		}
	}
	for q, want := range map[string]string{
		"aaaaaaa": "a digest prefix needs at least 8 hex digits",
		"zzz":     "at least 8 hex digits of its bundle or manifest digest",
		"app":     "matches 2 bundles",
	} {
		if _, err := Find(infos, q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Find(%q) = %v, want an error saying %q", q, err, want)
		}
	}
}
