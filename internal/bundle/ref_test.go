package bundle

import (
	"strings"
	"testing"
)

func TestMatchRef(t *testing.T) {
	const (
		d  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		md = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	)
	for _, c := range []struct {
		q    string
		want bool
	}{
		{d, true}, {md, true},
		{"01234567", true}, {"fedcba98", true}, {"sha256:01234567", true}, {"FEDCBA98", true},
		{"0123456", false}, {"fedcba9", false}, // 7 digits: too short
		{"12345678", false},
		{"app", true}, {"app@v1.2.0", true}, {"app@v1.3.0", false}, {"", false},
	} {
		if got := MatchRef(c.q, d, md, "app", "v1.2.0"); got != c.want {
			t.Errorf("MatchRef(%q) = %v, want %v", c.q, got, c.want)
		}
	}
	if MatchRef("", d, md, "", "") || MatchRef("@", d, md, "", "") {
		t.Error("an empty name matches")
	}
}

// TestRefHint: a no-match error says what names a bundle, both digests
// and the 8 hex digits, and that a short digest prefix is too short.
func TestRefHint(t *testing.T) {
	for _, q := range []string{"0123456", "sha256:abc", "app", "012345678"} {
		h := RefHint(q, "NAME@VERSION, NAME")
		for _, want := range []string{"NAME@VERSION, NAME", "at least 8 hex digits", "bundle or manifest digest"} {
			if !strings.Contains(h, want) {
				t.Errorf("RefHint(%q) = %q, want it to say %q", q, h, want)
			}
		}
		short := q == "0123456" || q == "sha256:abc"
		if got := strings.Contains(h, "a digest prefix needs"); got != short {
			t.Errorf("RefHint(%q) = %q: says the prefix is too short: %v, want %v", q, h, got, short)
		}
	}
}
