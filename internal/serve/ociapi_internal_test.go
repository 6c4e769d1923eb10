package serve

import (
	"strings"
	"testing"
)

func TestSplitImageRef(t *testing.T) {
	for ref, want := range map[string]string{
		"web:1.0":                        "web 1.0",
		"registry.internal/team/app:1.0": "team/app 1.0",
		"localhost/x:1":                  "x 1",
		"localhost:5000/a/b:v2":          "a/b v2",
		"registry.example/library/nginx:1.25@sha256:" + strings.Repeat("a", 64): "library/nginx 1.25",
		"team/app@sha256:" + strings.Repeat("a", 64):                            "team/app ",
		"team/app":                        "team/app ",
		"Team/App:1":                      "!",
		"web:":                            "!",
		"web:-x":                          "!",
		"a//b:1":                          "!",
		"host.io/:1":                      "!",
		"web:1:2":                         "!",
		"../etc:1":                        "!",
		"":                                "!",
		"web:" + strings.Repeat("x", 129): "!",
	} {
		repo, tag, ok := splitImageRef(ref)
		got := repo + " " + tag
		if !ok {
			got = "!"
		}
		if got != want {
			t.Errorf("splitImageRef(%q) = %q, want %q", ref, got, want)
		}
	}
}

// FuzzSplitImageRef: a repository and tag splitImageRef accepts match the
// distribution grammar, and the reference ends with them.
func FuzzSplitImageRef(f *testing.F) {
	for _, s := range []string{"web:1.0", "registry.internal/team/app:1.0", "localhost:5000/a/b:v2@sha256:00", "a/b", "x.y/z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		repo, tag, ok := splitImageRef(ref)
		if !ok {
			return
		}
		if len(repo) > maxOCIName || !ociNameRE.MatchString(repo) || tag != "" && !ociTagRE.MatchString(tag) {
			t.Fatalf("splitImageRef(%q) = %q, %q", ref, repo, tag)
		}
		name, _, _ := strings.Cut(ref, "@")
		want := repo
		if tag != "" {
			want += ":" + tag
		}
		if !strings.HasSuffix(name, want) || (len(name) > len(want) && name[len(name)-len(want)-1] != '/') {
			t.Fatalf("splitImageRef(%q) = %q, %q: not the end of the reference", ref, repo, tag)
		}
	})
}

// FuzzParseOCIPath: a path parseOCIPath accepts is rebuilt from its parts.
func FuzzParseOCIPath(f *testing.F) {
	for _, s := range []string{"", "_catalog", "a/b/tags/list", "web/manifests/1.0", "web/blobs/sha256:00", "web/referrers/x", "a/manifests/manifests/b", "web/blobs/uploads/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		req, ok := parseOCIPath(p)
		if !ok {
			return
		}
		var back string
		switch req.op {
		case "base":
		case "catalog":
			back = "_catalog"
		case "tags":
			back = req.name + "/tags/list"
		case "manifests", "blobs", "referrers":
			if strings.Contains(req.arg, "/") {
				t.Fatalf("parseOCIPath(%q): argument %q has a slash", p, req.arg)
			}
			back = req.name + "/" + req.op + "/" + req.arg
		default:
			t.Fatalf("parseOCIPath(%q): op %q", p, req.op)
		}
		if back != p {
			t.Fatalf("parseOCIPath(%q) = %+v, rebuilt as %q", p, req, back)
		}
	})
}
