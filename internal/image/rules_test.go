package image

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestUsers: the default user is 65532:65532, a bare UID gets its own
// group, and every spelling of root is refused without AllowRoot, before
// anything is compiled or written.
func TestUsers(t *testing.T) {
	fx := newFixture(t)
	out := t.TempDir()
	for _, u := range []string{"root", "0", "0:0", "root:staff", "00", "0:65532"} {
		dst := filepath.Join(out, "refused")
		opt := fx.options("svc:1.0", "oci:"+dst)
		opt.User = u
		_, err := Build(context.Background(), opt)
		if err == nil || !strings.Contains(err.Error(), "--allow-root") {
			t.Errorf("user %q: err = %v, want a refusal naming --allow-root", u, err)
		}
		if _, err := os.Stat(dst); err == nil {
			t.Errorf("user %q: output written although refused", u)
		}
	}
	check := func(user string, allowRoot bool, want string) {
		t.Helper()
		dst := filepath.Join(t.TempDir(), "l")
		opt := fx.options("svc:1.0", "oci:"+dst)
		opt.User, opt.AllowRoot = user, allowRoot
		res := fx.build(t, opt)
		idx, _ := readLayout(t, dst, "svc:1.0")
		cf, err := platformImage(t, idx, "linux/amd64").ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != want || res.Images[0].User != want {
			t.Errorf("user %q (allow root %v): config %q, result %q, want %q", user, allowRoot, cf.Config.User, res.Images[0].User, want)
		}
	}
	check("", false, "65532:65532")
	check("1000", false, "1000:1000")
	check("0", true, "0:0")
}

// TestBadInput: each mistake gives one clear line, and nothing is left in
// the output's directory.
func TestBadInput(t *testing.T) {
	fx := newFixture(t)
	if err := os.MkdirAll(filepath.Join(fx.dir, "broken"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.dir, "broken", "main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notLayout := t.TempDir()
	os.WriteFile(filepath.Join(notLayout, "x"), []byte("x"), 0o644)
	emptyDir := t.TempDir()
	for _, c := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"library package", func(o *Options) { o.Packages = []string{"./lib"} }, "no main package: ./lib is package lib"},
		{"pattern without commands", func(o *Options) { o.Packages = []string{"./lib/..."} }, "no main package"},
		{"missing package", func(o *Options) { o.Packages = []string{"./nope"} }, "package ./nope"},
		{"compile error", func(o *Options) { o.Packages = []string{"./broken"} }, "compiling example.com/svc/broken for linux/amd64"},
		{"unknown arch", func(o *Options) { o.Platforms = []string{"linux/nope"} }, "unknown platform"},
		{"not linux", func(o *Options) { o.Platforms = []string{"windows/amd64"} }, "only linux images"},
		{"bad variant", func(o *Options) { o.Platforms = []string{"linux/arm/v9"} }, "unknown variant"},
		{"base layout missing", func(o *Options) { o.Base = "oci:" + filepath.Join(emptyDir, "nope") }, "not found"},
		{"base not a layout", func(o *Options) { o.Base = "oci:" + emptyDir }, "not found"},
		{"tag without version", func(o *Options) { o.Tag = "svc" }, "NAME:VERSION"},
		{"bad output", func(o *Options) { o.Outputs = []string{"zip:x"} }, "want oci:DIR or tar:FILE"},
		{"no output", func(o *Options) { o.Outputs = nil }, "nowhere to put the image"},
		{"output dir not a layout", func(o *Options) { o.Outputs = []string{"oci:" + notLayout} }, "not an OCI image layout"},
		{"push to a bad name", func(o *Options) { o.Push = "Bad Name" }, "--push"},
		{"relative workdir", func(o *Options) { o.Workdir = "app" }, "absolute"},
		{"CA file without certificates", func(o *Options) { o.CACertFile = filepath.Join(fx.dir, "go.mod") }, "hold no PEM certificate"},
		{"CA file missing", func(o *Options) { o.CACertFile = filepath.Join(fx.dir, "nope.pem") }, "reading the host's CA certificates"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			opt := fx.options("svc:1.0", "oci:"+filepath.Join(out, "layout"), "tar:"+filepath.Join(out, "img.tar"))
			c.mod(&opt)
			_, err := Build(context.Background(), opt)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q, want one line containing %q", err, c.want)
			}
			left, _ := os.ReadDir(out)
			if len(left) != 0 {
				t.Errorf("left behind in the output directory: %v", left)
			}
			if entries, _ := os.ReadDir(notLayout); len(entries) != 1 {
				t.Errorf("wrote into a directory that is not a layout: %v", entries)
			}
		})
	}
}

// TestLayoutMerge: a second tag is added to an existing layout; rebuilding
// a tag replaces its index and drops the old index's referrers.
func TestLayoutMerge(t *testing.T) {
	fx := newFixture(t)
	dir := filepath.Join(t.TempDir(), "layout")
	r1 := fx.build(t, fx.options("svc:1.0", "oci:"+dir))
	r2 := fx.build(t, fx.options("svc:2.0", "oci:"+dir))
	_, roots := readLayout(t, dir, "svc:2.0")
	names := func(roots []refDesc) []string {
		var out []string
		for _, r := range roots {
			out = append(out, r.name+"="+r.digest)
		}
		slices.Sort(out)
		return out
	}
	got := names(describe(roots))
	want := names([]refDesc{
		{"svc:1.0", r1.Index.Digest}, {"svc:2.0", r2.Index.Digest},
		{"sbom", r1.Images[0].SBOM.Digest}, {"sbom", r2.Images[0].SBOM.Digest},
	})
	if !slices.Equal(got, want) {
		t.Errorf("index.json after two tags:\n got %q\nwant %q", got, want)
	}
	opt := fx.options("svc:1.0", "oci:"+dir)
	opt.Created = opt.Created.Add(1)
	r3 := fx.build(t, opt)
	if r3.Index.Digest == r1.Index.Digest {
		t.Fatal("rebuild at another time has the same digest")
	}
	_, roots = readLayout(t, dir, "svc:1.0")
	got = names(describe(roots))
	want = names([]refDesc{
		{"svc:1.0", r3.Index.Digest}, {"svc:2.0", r2.Index.Digest},
		{"sbom", r3.Images[0].SBOM.Digest}, {"sbom", r2.Images[0].SBOM.Digest},
	})
	if !slices.Equal(got, want) {
		t.Errorf("index.json after rebuilding svc:1.0:\n got %q\nwant %q", got, want)
	}
	// The rebuild wrote only what was new, and left no temporary files.
	if r3.Outputs[0].Size == 0 {
		t.Errorf("rebuild reports no new blobs")
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if strings.Contains(filepath.Base(p), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

type refDesc struct{ name, digest string }

// describe names index.json's descriptors: ref.name, or "sbom" for SBOM referrers.
func describe(roots []v1.Descriptor) []refDesc {
	var out []refDesc
	for _, d := range roots {
		n := d.Annotations[AnnRefName]
		if d.ArtifactType == SBOMMediaType {
			n = "sbom"
		}
		out = append(out, refDesc{n, d.Digest.String()})
	}
	return out
}
