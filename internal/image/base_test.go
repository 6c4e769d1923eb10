package image

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-dev/ferry/internal/store/ocistore/ocitest"
)

func mustLayer(t *testing.T, files ...file) *memLayer {
	t.Helper()
	l, err := buildLayer(files, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t *testing.T, env []string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(scratch(), layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Env = "linux", "amd64", env
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestBaseHas: CA certificates and zoneinfo are found where crypto/x509 and
// time look, and whiteouts in later layers remove them.
func TestBaseHas(t *testing.T) {
	certs := file{"/etc/ssl/certs/ca-certificates.crt", 0o644, []byte("pem")}
	zone := file{"/usr/share/zoneinfo/UTC", 0o644, []byte("TZif")}
	for _, c := range []struct {
		name         string
		img          v1.Image
		certs, zones bool
	}{
		{"scratch", scratch(), false, false},
		{"both", imageOf(t, nil, mustLayer(t, certs, zone)), true, true},
		{"cert dir file", imageOf(t, nil, mustLayer(t, file{"/etc/pki/tls/certs/x.pem", 0o644, nil})), true, false},
		{"fedora bundle", imageOf(t, nil, mustLayer(t, file{"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", 0o644, nil})), true, false},
		{"env", imageOf(t, []string{"SSL_CERT_FILE=/x.pem", "ZONEINFO=/z.zip"}), true, true},
		{"whiteout", imageOf(t, nil, mustLayer(t, certs, zone),
			mustLayer(t, file{"/etc/ssl/certs/.wh.ca-certificates.crt", 0o644, nil}, file{"/usr/share/.wh.zoneinfo", 0o644, nil})), false, false},
		{"opaque dir", imageOf(t, nil, mustLayer(t, certs, zone),
			mustLayer(t, file{"/etc/ssl/certs/.wh..wh..opq", 0o644, nil})), false, true},
		{"opaque dir refilled in the same layer", imageOf(t, nil, mustLayer(t, zone),
			mustLayer(t, file{"/usr/share/zoneinfo/.wh..wh..opq", 0o644, nil}, file{"/usr/share/zoneinfo/Europe/Paris", 0o644, nil})), false, true},
		{"other files", imageOf(t, nil, mustLayer(t, file{"/etc/ssl/openssl.cnf", 0o644, nil}, file{"/usr/share/zoneinfo.txt", 0o644, nil})), false, false},
	} {
		gotCerts, gotZones, err := baseHas(c.img)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if gotCerts != c.certs || gotZones != c.zones {
			t.Errorf("%s: certs %v zoneinfo %v, want %v %v", c.name, gotCerts, gotZones, c.certs, c.zones)
		}
	}
}

// TestBuildLayer: layers are byte-identical for the same files in any
// order, with parents, and refuse paths outside the root.
func TestBuildLayer(t *testing.T) {
	a := mustLayer(t, file{"/b/x", 0o644, []byte("x")}, file{"/a/y", 0o755, []byte("y")})
	b := mustLayer(t, file{"/a/y", 0o755, []byte("y")}, file{"/b/x", 0o644, []byte("x")})
	if a.digest != b.digest || a.diffID != b.diffID {
		t.Errorf("same files, different layers: %s %s", a.digest, b.digest)
	}
	for _, bad := range []string{"/", "../x", ""} {
		if _, err := buildLayer([]file{{bad, 0o644, nil}}, time.Unix(0, 0)); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
	if _, err := buildLayer([]file{{"/x", 0o644, nil}, {"x", 0o644, nil}}, time.Unix(0, 0)); err == nil {
		t.Error("a repeated path was accepted")
	}
}

// TestBaseLayout builds on bases in OCI layouts: a ferry-built
// two-platform base (which has certificates and zoneinfo, so nothing is
// added), a layout with two images (a ref must be chosen), a base without
// the platform, and a Docker-typed base (converted to OCI types).
func TestBaseLayout(t *testing.T) {
	fx := newFixture(t)
	work := t.TempDir()
	baseDir := filepath.Join(work, "base")
	bopt := fx.options("base:1", "oci:"+baseDir)
	bopt.Platforms = []string{"linux/amd64", "linux/arm64"}
	base := fx.build(t, bopt)

	out := filepath.Join(work, "app")
	opt := fx.options("app:1", "oci:"+out)
	opt.Platforms = []string{"linux/arm64", "linux/amd64"}
	opt.Base = "oci:" + baseDir
	res := fx.build(t, opt)
	idx, _ := readLayout(t, out, "app:1")
	for i, ir := range res.Images {
		if ir.AddedCACerts || ir.AddedZoneinfo {
			t.Errorf("%s: added certificates/zoneinfo although the base has them", ir.Platform)
		}
		want := base.Images[1-i] // the platforms are in the other order
		if ir.Layers != want.Layers+1 {
			t.Errorf("%s: %d layers, want the base's %d + 1", ir.Platform, ir.Layers, want.Layers)
		}
		img := platformImage(t, idx, ir.Platform)
		m, _ := img.Manifest()
		if m.Annotations[AnnBaseDigest] != want.Digest || m.Annotations[AnnBaseName] != "oci:"+baseDir {
			t.Errorf("%s: base annotations %v, want digest %s", ir.Platform, m.Annotations, want.Digest)
		}
		cf, _ := img.ConfigFile()
		if !contains(cf.Config.Env, "ZONEINFO="+ZoneinfoPath) || len(cf.History) != len(m.Layers) {
			t.Errorf("%s: env %q, %d history entries for %d layers", ir.Platform, cf.Config.Env, len(cf.History), len(m.Layers))
		}
	}

	// Two images in the base layout: a ref must be chosen.
	bopt = fx.options("base:2", "oci:"+baseDir)
	fx.build(t, bopt)
	opt.Outputs = []string{"oci:" + filepath.Join(work, "app2")}
	if _, err := Build(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "oci:"+baseDir+":REF") {
		t.Errorf("two images in the base: err = %v", err)
	}
	opt.Base = "oci:" + baseDir + ":base:2"
	opt.Platforms = []string{"linux/amd64"}
	fx.build(t, opt)
	opt.Platforms = []string{"linux/arm64"}
	opt.Outputs = []string{"oci:" + filepath.Join(work, "app3")}
	if _, err := Build(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "has no image for linux/arm64") {
		t.Errorf("base without the platform: err = %v", err)
	}
	opt.Base = "oci:" + baseDir + ":base:9"
	if _, err := Build(context.Background(), opt); err == nil || !strings.Contains(err.Error(), `no image named "base:9"`) {
		t.Errorf("base ref not in the layout: err = %v", err)
	}

	// A Docker-typed base: empty.Image is a Docker schema 2 image.
	dockerLayer := mustLayer(t, file{"/etc/motd", 0o644, []byte("hi\n")})
	dimg, err := mutate.Append(empty.Image, mutate.Addendum{Layer: dockerLayer, MediaType: types.DockerLayer})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := dimg.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	dimg, _ = mutate.ConfigFile(dimg, cf)
	if mt, _ := dimg.MediaType(); mt != types.DockerManifestSchema2 {
		t.Fatalf("test base is %s", mt)
	}
	dockerDir := filepath.Join(work, "dockerbase")
	lp, err := layout.Write(dockerDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(dimg); err != nil {
		t.Fatal(err)
	}
	opt = fx.options("app:d", "oci:"+filepath.Join(work, "appd"))
	opt.Base = "oci:" + dockerDir
	res = fx.build(t, opt)
	idx, _ = readLayout(t, filepath.Join(work, "appd"), "app:d")
	img := platformImage(t, idx, "linux/amd64")
	m, _ := img.Manifest()
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("on a Docker base: manifest %s config %s", m.MediaType, m.Config.MediaType)
	}
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("on a Docker base: layer %s is %s", l.Digest, l.MediaType)
		}
	}
	if m.Layers[0].Digest != dockerLayer.digest || !res.Images[0].AddedCACerts {
		t.Errorf("on a Docker base: first layer %s, want the base's %s; added certs %v", m.Layers[0].Digest, dockerLayer.digest, res.Images[0].AddedCACerts)
	}
	files := imageFiles(t, img)
	if files["etc/motd"] == nil || files["usr/local/bin/svc"] == nil {
		t.Errorf("on a Docker base: files %v", keys(files))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestPush pushes to a real registry (distribution, embedded), uses it as
// a base by reference, and reads it back with ggcr and with skopeo.
func TestPush(t *testing.T) {
	fx := newFixture(t)
	reg := ocitest.Start(t, ocitest.Options{})
	repo := reg.Host + "/team/svc"
	opt := fx.options("svc:1.0")
	opt.Platforms = []string{"linux/amd64", "linux/arm64"}
	opt.Push, opt.PlainHTTP = repo, true
	res := fx.build(t, opt)
	if res.Pushed != repo+":1.0@"+res.Index.Digest {
		t.Errorf("pushed %q", res.Pushed)
	}
	ref, _ := name.ParseReference(repo+":1.0", name.Insecure)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d.String() != res.Index.Digest {
		t.Errorf("registry has %s, built %s", d, res.Index.Digest)
	}
	// The SBOM is a referrer of each platform image.
	for _, ir := range res.Images {
		rr, err := remote.Referrers(ref.Context().Digest(ir.Digest))
		if err != nil {
			t.Fatal(err)
		}
		rm, _ := rr.IndexManifest()
		found := false
		for _, d := range rm.Manifests {
			found = found || (d.Digest.String() == ir.SBOM.Digest && d.ArtifactType == SBOMMediaType)
		}
		if !found {
			t.Errorf("%s: SBOM %s not among the referrers %+v", ir.Platform, ir.SBOM.Digest, rm.Manifests)
		}
	}
	// skopeo, an independent client, sees the same index.
	if _, err := exec.LookPath("skopeo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but skopeo is not installed")
		}
		t.Log("skopeo not installed; skipping its check")
	} else {
		out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+repo+":1.0").Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v", err)
		}
		var im v1.IndexManifest
		if err := json.Unmarshal(out, &im); err != nil || len(im.Manifests) != 2 {
			t.Errorf("skopeo saw %s (%v)", out, err)
		}
	}
	// The pushed image as a base, by registry reference.
	opt = fx.options("svc2:1.0", "oci:"+filepath.Join(t.TempDir(), "l"))
	opt.Base, opt.PlainHTTP = repo+":1.0", true
	res2 := fx.build(t, opt)
	if res2.Images[0].AddedCACerts || res2.Images[0].Layers != res.Images[0].Layers+1 {
		t.Errorf("on the pushed base: %+v", res2.Images[0])
	}
	opt.Base = repo + ":nope"
	if _, err := Build(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing base tag: err = %v", err)
	}
}
