package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-dev/ferry/internal/image/imagetest"
	"github.com/ferry-dev/ferry/internal/modtest"
)

// sharedGoCache is one go build cache for all tests of this package, so that
// the standard library is compiled once per platform, not once per test.
var sharedGoCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-image-gocache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sharedGoCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is the test service with its module proxy and checksum database,
// in a clean go environment.
type fixture struct {
	dir    string
	env    []string
	goroot string
	caFile string
	ca     []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := modtest.NewServer(t, imagetest.GreetModule())
	env := append(modtest.GoEnv(t, srv), "GOCACHE="+sharedGoCache)
	dir := filepath.Join(t.TempDir(), "svc")
	if err := imagetest.Write(dir); err != nil {
		t.Fatal(err)
	}
	goCmd(t, dir, env, "mod", "tidy")
	fx := &fixture{dir: dir, env: env, goroot: strings.TrimSpace(goCmd(t, dir, env, "env", "GOROOT"))}
	fx.ca = testCA(t)
	fx.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(fx.caFile, fx.ca, 0o644); err != nil {
		t.Fatal(err)
	}
	return fx
}

func goCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testCA returns a PEM self-signed CA certificate.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry image test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func (fx *fixture) options(tag string, outputs ...string) Options {
	return Options{
		Dir: fx.dir, Tag: tag, Outputs: outputs, Env: fx.env, CACertFile: fx.caFile,
		Platforms: []string{"linux/amd64"}, Created: time.Unix(1700000000, 0),
	}
}

func (fx *fixture) build(t *testing.T, opt Options) *Result {
	t.Helper()
	res, err := Build(context.Background(), opt)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return res
}

// readLayout returns the index named tag in the layout at dir, and the
// root descriptors.
func readLayout(t *testing.T, dir, tag string) (v1.ImageIndex, []v1.Descriptor) {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[AnnRefName] == tag {
			idx, err := root.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return idx, im.Manifests
		}
	}
	t.Fatalf("no index named %s in %s: %+v", tag, dir, im.Manifests)
	return nil, nil
}

// imageFiles returns the regular files of img's flattened file system.
func imageFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	files, _ := imageContents(t, img)
	return files
}

func imageContents(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			data[h.Name] = b
		}
	}
	return hdrs, data
}

func platformImage(t *testing.T, idx v1.ImageIndex, plat string) v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.String() == plat {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no %s image in the index", plat)
	return nil
}

// TestReproducible builds the service twice for two platforms into an OCI
// layout and a tar: every digest and every byte must be the same. A third
// build at another SOURCE_DATE_EPOCH must differ.
func TestReproducible(t *testing.T) {
	fx := newFixture(t)
	out := t.TempDir()
	build := func(name string, created time.Time) *Result {
		opt := fx.options("svc:1.0", "oci:"+filepath.Join(out, name), "tar:"+filepath.Join(out, name+".tar"))
		opt.Platforms = []string{"linux/amd64", "linux/arm64"}
		opt.Created = created
		return fx.build(t, opt)
	}
	epoch := time.Unix(1700000000, 0)
	a := build("a", epoch)
	b := build("b", epoch)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	ja = bytes.ReplaceAll(ja, []byte(filepath.Join(out, "a")), []byte("X"))
	jb = bytes.ReplaceAll(jb, []byte(filepath.Join(out, "b")), []byte("X"))
	if !bytes.Equal(ja, jb) {
		t.Errorf("two builds differ:\n%s\n%s", ja, jb)
	}
	if len(a.Images) != 2 || a.Images[0].Platform != "linux/amd64" || a.Images[1].Platform != "linux/arm64" {
		t.Fatalf("images: %+v", a.Images)
	}
	ta, _ := os.ReadFile(filepath.Join(out, "a.tar"))
	tb, _ := os.ReadFile(filepath.Join(out, "b.tar"))
	if len(ta) == 0 || !bytes.Equal(ta, tb) {
		t.Errorf("the two tars differ (%d and %d bytes)", len(ta), len(tb))
	}
	for _, f := range []string{"index.json", "oci-layout"} {
		fa, _ := os.ReadFile(filepath.Join(out, "a", f))
		fb, _ := os.ReadFile(filepath.Join(out, "b", f))
		if !bytes.Equal(fa, fb) {
			t.Errorf("%s differs:\n%s\n%s", f, fa, fb)
		}
	}
	// The arm64 binary is an arm64 program.
	idx, _ := readLayout(t, filepath.Join(out, "a"), "svc:1.0")
	arm := platformImage(t, idx, "linux/arm64")
	_, data := imageContents(t, arm)
	if bin := data["usr/local/bin/svc"]; len(bin) < 20 || bin[18] != 0xb7 { // e_machine EM_AARCH64
		t.Errorf("linux/arm64 image: /usr/local/bin/svc is not an arm64 ELF")
	}
	c := build("c", epoch.Add(time.Second))
	if c.Index.Digest == a.Index.Digest {
		t.Errorf("another SOURCE_DATE_EPOCH gave the same index digest")
	}
	// The certificates and zoneinfo layer is shared by the platforms.
	if a.Images[0].AddedCACerts != true || a.Images[1].AddedZoneinfo != true {
		t.Errorf("scratch images should get CA certificates and zoneinfo: %+v", a.Images)
	}
}

// TestScratchImage checks one scratch image inside out: user, entrypoint,
// environment, files, annotations, the SBOM referrer, and then runs it from
// its own root file system (chroot, as its user) and probes it.
func TestScratchImage(t *testing.T) {
	fx := newFixture(t)
	dir := filepath.Join(t.TempDir(), "layout")
	opt := fx.options("svc:2.3.4", "oci:"+dir)
	opt.Revision = "0123abcd"
	res := fx.build(t, opt)

	idx, roots := readLayout(t, dir, "svc:2.3.4")
	img := platformImage(t, idx, "linux/amd64")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || c.WorkingDir != "/" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/svc" || len(c.Cmd) != 0 {
		t.Errorf("config: user %q workdir %q entrypoint %q cmd %q", c.User, c.WorkingDir, c.Entrypoint, c.Cmd)
	}
	if !contains(c.Env, "ZONEINFO="+ZoneinfoPath) || !contains(c.Env, defaultPATH) {
		t.Errorf("env %q", c.Env)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("config platform/created: %s/%s %v", cf.OS, cf.Architecture, cf.Created)
	}

	hdrs, data := imageContents(t, img)
	if !bytes.Equal(data["etc/ssl/certs/ca-certificates.crt"], fx.ca) {
		t.Errorf("CA certificates in the image are not the host's file")
	}
	zi, err := os.ReadFile(filepath.Join(fx.goroot, "lib", "time", "zoneinfo.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data[strings.TrimPrefix(ZoneinfoPath, "/")], zi) {
		t.Errorf("zoneinfo in the image is not GOROOT/lib/time/zoneinfo.zip")
	}
	for name, h := range hdrs {
		want := int64(0o644)
		if h.Typeflag == tar.TypeDir || name == "usr/local/bin/svc" {
			want = 0o755
		}
		if h.Uid != 0 || h.Gid != 0 || h.Mode != want || !h.ModTime.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("%s: uid %d gid %d mode %o mtime %v", name, h.Uid, h.Gid, h.Mode, h.ModTime)
		}
	}

	// Annotations on the image manifest and the index.
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		AnnVersion: "2.3.4", AnnRevision: "0123abcd", AnnSource: "https://example.com/svc",
		AnnCreated: "2023-11-14T22:13:20Z",
	}
	im, _ := idx.IndexManifest()
	for k, v := range want {
		if m.Annotations[k] != v || im.Annotations[k] != v || res.Annotations[k] != v {
			t.Errorf("annotation %s: manifest %q index %q result %q, want %q", k, m.Annotations[k], im.Annotations[k], res.Annotations[k], v)
		}
	}
	if _, ok := m.Annotations[AnnBaseName]; ok {
		t.Errorf("scratch image names a base: %v", m.Annotations)
	}
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer media type %s", l.MediaType)
		}
	}

	// The SBOM referrer.
	sbom := findSBOM(t, dir, roots, img)
	mods, err := SBOMModules(sbom)
	if err != nil {
		t.Fatal(err)
	}
	goVersion := strings.TrimSpace(goCmd(t, fx.dir, fx.env, "env", "GOVERSION"))
	for _, w := range []string{"example.com/greet@v1.0.0", "example.com/svc@(devel)", "stdlib@" + goVersion} {
		if !contains(mods, w) {
			t.Errorf("SBOM modules %q lack %s", mods, w)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(sbom, &doc); err != nil || doc["spdxVersion"] != "SPDX-2.3" {
		t.Errorf("SBOM is not SPDX 2.3 JSON: %v %v", err, doc["spdxVersion"])
	}
	if res.Images[0].Modules != 3 {
		t.Errorf("result says %d modules, want 3", res.Images[0].Modules)
	}

	runFromRootfs(t, img, cf)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// findSBOM finds the referrer of img among the layout's root descriptors
// and returns its SPDX document.
func findSBOM(t *testing.T, dir string, roots []v1.Descriptor, img v1.Image) []byte {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	lp := layout.Path(dir)
	for _, r := range roots {
		if r.ArtifactType != SBOMMediaType {
			continue
		}
		raw, err := lp.Bytes(r.Digest)
		if err != nil {
			t.Fatal(err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m.Subject == nil || m.Subject.Digest != d {
			continue
		}
		if m.ArtifactType != SBOMMediaType || m.Config.MediaType != types.OCIEmptyJSON || len(m.Layers) != 1 || string(m.Layers[0].MediaType) != SBOMMediaType {
			t.Fatalf("SBOM referrer manifest: %s", raw)
		}
		doc, err := lp.Bytes(m.Layers[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	t.Fatalf("no SBOM referrer for %s in %s", d, dir)
	return nil
}

// runFromRootfs unpacks img into a directory and runs its entrypoint there
// with chroot as the image's user, then probes it: the scratch image alone
// must be enough for the service, time zones and CA certificates included.
func runFromRootfs(t *testing.T, img v1.Image, cf *v1.ConfigFile) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Log("not running the linux/amd64 image on this machine")
		return
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but not root: cannot chroot into the image")
		}
		t.Skip("running the image needs root (chroot)")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	_, data := imageContents(t, img)
	for name, b := range data {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "usr/local/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := append(append([]string(nil), cf.Config.Env...), "SVC_ADDR="+addr)
	srv := exec.Command("chroot", "--userspec="+cf.Config.User, root, cf.Config.Entrypoint[0])
	srv.Env = env
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	probe := exec.Command("chroot", "--userspec="+cf.Config.User, root, cf.Config.Entrypoint[0], "probe")
	probe.Env = env
	out, err := probe.CombinedOutput()
	if err != nil {
		t.Fatalf("probe in the image's root: %v\n%s\nserver: %s", err, out, srvOut.String())
	}
	if got := strings.TrimSpace(string(out)); got != imagetest.WantAnswer+" uid:65532" {
		t.Errorf("probe answered %q", got)
	}
}
