package push

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func FuzzSplitName(f *testing.F) {
	for _, s := range []string{"app", "app:1.0", "team/app:1.0", "example.com/team/app:1.0", "localhost:5000/a/b", "a@sha256:00", "a:", ":b", "a//b", "UPPER/x:y"} {
		f.Add(s)
	}
	tgt, err := ParseTarget("reg.example:5000/pre", false)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		repo, tag, err := SplitName(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Fatalf("error on more than one line: %q", err)
			}
			return
		}
		if repo == "" || tag == "" || strings.Contains(tag, "/") {
			t.Fatalf("SplitName(%q) = %q, %q", s, repo, tag)
		}
		ref, err := tgt.Ref(s)
		if err != nil {
			return // characters a registry does not accept
		}
		if ref.RepositoryStr() != "pre/"+repo || ref.TagStr() != tag || ref.RegistryStr() != "reg.example:5000" {
			t.Fatalf("Ref(%q) = %s, want reg.example:5000/pre/%s:%s", s, ref, repo, tag)
		}
	})
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"reg.example", "reg.example:5000/a/b", "localhost/x/", "http://x", "x/Y", "/a", "a//b", "reg/a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tgt, err := ParseTarget(s, false)
		if err != nil {
			return
		}
		again, err := ParseTarget(tgt.String(), false)
		if err != nil || again.String() != tgt.String() {
			t.Fatalf("ParseTarget(%q).String() = %q does not parse back the same: %v", s, tgt, err)
		}
		if ref, err := tgt.Ref("app:1"); err == nil && ref.String() != tgt.String()+"/app:1" {
			t.Fatalf("%q: app:1 goes to %s", s, ref)
		}
	})
}

// FuzzLayoutIndex feeds arbitrary index.json contents to a Layout: errors,
// never panics.
func FuzzLayoutIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10,"annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("b", 64) + `","size":10}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + strings.Repeat("c", 64) + `","size":10,"annotations":{"org.opencontainers.image.ref.name":"x/y:sha256-` + strings.Repeat("d", 64) + `"}}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		open := func(context.Context, v1.Hash) (io.ReadCloser, int64, error) {
			return nil, 0, errors.New("no blobs")
		}
		l, err := NewLayout("oci:fuzz", "fuzz", data, open)
		if err != nil {
			return
		}
		imgs, err := l.Images(context.Background())
		if err != nil {
			return
		}
		for _, img := range imgs {
			if img.Name == "" {
				t.Fatal("an image without a name")
			}
			_, _ = l.Referrers(context.Background(), img.Descriptor.Digest)
		}
	})
}
