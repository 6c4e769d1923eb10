package install

import (
	"strings"
	"testing"
)

// TestFindRecord: an install is named by either digest (8 hex digits or
// more), NAME@VERSION, a version, a name or a generation; an error says
// how, and that a shorter digest prefix is too short.
func TestFindRecord(t *testing.T) {
	st := &State{Bundles: []BundleRecord{
		{ManifestDigest: "sha256:aaaaaaaa11111111", Digest: "sha256:bbbbbbbb22222222", Name: "app", Version: "v1.0.0", Generation: "1"},
		{ManifestDigest: "sha256:cccccccc33333333", Digest: "sha256:dddddddd44444444", Name: "app", Version: "v1.1.0", Generation: "2"},
	}}
	for q, want := range map[string]int{"aaaaaaaa": 0, "bbbbbbbb": 0, "sha256:dddddddd4": 1, "app@v1.0.0": 0, "v1.1.0": 1, "app": 1, "2": 1} {
		if i, err := st.FindRecord(q); err != nil || i != want {
			t.Errorf("FindRecord(%q) = %d, %v; want %d", q, i, err, want)
		}
	}
	for q, want := range map[string]string{
		"aaaaaaa": "a digest prefix needs at least 8 hex digits",
		"zzz":     "at least 8 hex digits of its bundle or manifest digest",
	} {
		if _, err := st.FindRecord(q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FindRecord(%q) = %v, want an error saying %q", q, err, want)
		}
	}
}
