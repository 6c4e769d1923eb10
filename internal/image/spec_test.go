package image

import (
	"archive/tar"
	"strings"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64": "linux/amd64", "linux/arm64/v8": "linux/arm64", "linux/arm": "linux/arm/v7",
		"linux/arm/v6": "linux/arm/v6", "linux/amd64/v3": "linux/amd64/v3", "linux/riscv64": "linux/riscv64",
	} {
		p, err := ParsePlatform(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePlatform(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "linux", "linux/", "/amd64", "darwin/arm64", "linux/amd64/v9", "linux/x/y/z", "linux/sparc"} {
		if p, err := ParsePlatform(in); err == nil {
			t.Errorf("ParsePlatform(%q) = %v, want an error", in, p)
		}
	}
	p, _ := ParsePlatform("linux/arm/v6")
	if env := strings.Join(p.goEnv(), " "); !strings.Contains(env, "GOARM=6") || !strings.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("linux/arm/v6 go env: %s", env)
	}
}

func TestParseTag(t *testing.T) {
	for _, in := range []string{"svc:1.0", "registry.internal:5000/team/svc:v1.2.3", "localhost/a_b:latest"} {
		tag, err := ParseTag(in)
		if err != nil || tag.String() != in {
			t.Errorf("ParseTag(%q) = %v, %v", in, tag, err)
		}
	}
	for _, in := range []string{"svc", "svc:", ":1", "host:5000/svc", "svc@sha256:00", "Svc:1", "svc:1 2"} {
		if tag, err := ParseTag(in); err == nil {
			t.Errorf("ParseTag(%q) = %v, want an error", in, tag)
		}
	}
}

func TestRootUser(t *testing.T) {
	for u, root := range map[string]bool{
		"": true, "root": true, "0": true, "000": true, "0:0": true, "root:x": true, "0:65532": true,
		"65532": false, "65532:0": false, "nonroot": false, "10": false, "rooty": false,
	} {
		if isRootUser(u) != root {
			t.Errorf("isRootUser(%q) = %v", u, !root)
		}
	}
}

// FuzzParseSpecs feeds one string to every parser of command-line specs and
// to the whiteout logic: nothing panics, what parses round-trips, and
// normalizing a user never changes whether it is root.
func FuzzParseSpecs(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "svc:1.0", "oci:/tmp/x", "tar:out.tar", "scratch",
		"oci:dir:ref", "registry.internal/a/b:1", "0:0", "65532", "etc/ssl/.wh..wh..opq", "usr/.wh.share"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePlatform(s); err == nil {
			q, err := ParsePlatform(p.String())
			if err != nil || q != p || p.OS != "linux" {
				t.Errorf("platform %q -> %v -> %v, %v", s, p, q, err)
			}
		}
		if tag, err := ParseTag(s); err == nil && tag.String() != s {
			t.Errorf("tag %q -> %q", s, tag)
		}
		if o, err := ParseOutput(s); err == nil && (o.Path == "" || (o.Kind != OutputLayout && o.Kind != OutputTar)) {
			t.Errorf("output %q -> %+v", s, o)
		}
		if b, err := ParseBase(s); err == nil && !b.Scratch && b.Layout == "" && b.Ref == "" {
			t.Errorf("base %q -> %+v", s, b)
		}
		if isRootUser(s) != isRootUser(normalizeUser(s)) {
			t.Errorf("user %q: normalized %q changes rootness", s, normalizeUser(s))
		}
		present := map[string]bool{"etc/ssl/certs/ca-certificates.crt": true, "usr/share/zoneinfo/UTC": true}
		var added []string
		applyEntry(s, tar.TypeReg, present, &added, func(string) bool { return true })
		for _, a := range added {
			if strings.HasPrefix(a, "/") || strings.Contains("/"+a+"/", "/../") {
				t.Errorf("entry %q added path %q", s, a)
			}
		}
	})
}
