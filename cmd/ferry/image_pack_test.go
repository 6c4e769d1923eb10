package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/ferry-dev/ferry/internal/modtest"
	"github.com/ferry-dev/ferry/internal/push"
	"github.com/ferry-dev/ferry/internal/store/ocistore/ocitest"
)

// writeTestLayout writes an OCI layout holding one two-platform image,
// named by the tag-only ref.name "1.0" (as skopeo and buildx write it).
func writeTestLayout(t *testing.T, dir string) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(4096, 2)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1.0"})); err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestPackImage: pack --image oci:DIR carries a multi-platform image
// (--platform keeps one, the index rewritten to list it); verify checks its
// blobs like any other; install makes PREFIX/mod/oci an OCI layout that
// skopeo, an independent reader, copies the image out of.
func TestPackImage(t *testing.T) {
	ferry := ferryBin(t)
	local := modtest.LocalToolchain(t)
	goVer := strings.TrimPrefix(local.Version, "v0.0.1-")
	goVer = goVer[:strings.LastIndexByte(goVer, '.')]
	srv := modtest.NewServer(t, local)
	env := modtest.GoEnv(t, srv)
	work := t.TempDir()
	proj := filepath.Join(work, "svc")
	os.MkdirAll(proj, 0o755)
	os.WriteFile(filepath.Join(proj, "go.mod"), []byte("module example.com/svc\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(proj, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	imgDir := filepath.Join(work, "web")
	idx := writeTestLayout(t, imgDir)

	b := filepath.Join(work, "svc.ferry")
	mustRun(t, proj, env, ferry, "pack", ".", "-q", "-o", b, "--toolchain", goVer, "--platform", "linux/arm64",
		"--image", "oci:"+imgDir, "--cache", filepath.Join(work, "cache"))
	out := mustRun(t, work, env, ferry, "ls", "--json", b)
	var m struct {
		Images []string `json:"images"`
		Items  []struct {
			Kind, File, Digest, MediaType string
		} `json:"items"`
	}
	decodeJSON(t, out, &m)
	if len(m.Images) != 1 || m.Images[0] != "web:1.0" {
		t.Fatalf("images = %q, want [web:1.0]", m.Images)
	}
	orig, _ := idx.Digest()
	var top string
	oci := 0
	for _, it := range m.Items {
		switch it.Kind {
		case "image":
			top = it.Digest
		case "oci":
			oci++
		}
	}
	// One platform: a new index, one manifest, its config and two layers.
	if top == orig.String() || oci != 5 {
		t.Errorf("carried index %s (original %s) and %d image blobs, want a rewritten index and 5 blobs", top, orig, oci)
	}
	mustRun(t, work, env, ferry, "verify", b)
	if out := mustRun(t, work, env, ferry, "ls", b); !strings.Contains(out, "images") || !strings.Contains(out, "web:1.0") || strings.Contains(out, "web:1.0@") {
		t.Errorf("ls lists the image as a module version, or not at all:\n%s", out)
	}

	// Push the carried image straight from the bundle into a registry.
	reg := ocitest.Start(t, ocitest.Options{})
	out = mustRun(t, work, env, ferry, "push", b, reg.Host+"/mirror", "--plain-http", "--json")
	var rep push.Report
	decodeJSON(t, out, &rep)
	if len(rep.Images) != 1 || rep.Images[0].Ref != reg.Host+"/mirror/web:1.0" || rep.Images[0].Digest != top {
		t.Errorf("push from the bundle: %+v, want %s/mirror/web:1.0 at %s", rep.Images, reg.Host, top)
	}

	prefix := filepath.Join(work, "far")
	mustRun(t, work, env, ferry, "install", b, "--prefix", prefix, "--goenv", "-")
	ociDir := filepath.Join(prefix, "mod", "oci")
	if _, err := exec.LookPath("skopeo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("skopeo is not installed (required in CI)")
		}
		t.Skip("skopeo is not installed")
	}
	raw := mustRun(t, work, nil, "skopeo", "inspect", "--raw", "oci:"+ociDir+":web:1.0")
	var got v1.IndexManifest
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, raw)
	}
	if len(got.Manifests) != 1 || got.Manifests[0].Platform.Architecture != "arm64" {
		t.Errorf("installed index lists %+v, want only linux/arm64", got.Manifests)
	}
	mustRun(t, work, nil, "skopeo", "copy", "--all", "oci:"+ociDir+":web:1.0", "oci:"+filepath.Join(work, "copy")+":web")

	// The installed image is a base for ferry image build.
	out = mustRun(t, proj, env, ferry, "image", "build", ".", "--tag", "svc:1.0", "--platform", "linux/arm64",
		"--base", "oci:"+ociDir+":web:1.0", "-o", "oci:"+filepath.Join(work, "built"), "--json")
	if !strings.Contains(out, "sha256:") {
		t.Errorf("image build on the installed base:\n%s", out)
	}
}
