package serve_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve"
	"github.com/ferry-dev/ferry/internal/serve/auth"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// imageBundle collects the image items of a bundle as pack --image makes
// them: KindOCI blobs at oci/blobs/sha256/HEX, KindImage references at
// images/REF, referrers at images/@DIGEST.
type imageBundle struct {
	items map[string]bundle.Item
	src   bundle.MemSource
	refs  []string
}

func newImageBundle() *imageBundle {
	return &imageBundle{items: map[string]bundle.Item{}, src: bundle.MemSource{}}
}

func (b *imageBundle) blob(mt string, data []byte) v1.Descriptor {
	d := bundle.Digest(data)
	b.src[d] = data
	f := "oci/blobs/sha256/" + strings.TrimPrefix(d, "sha256:")
	b.items[f] = bundle.Item{File: f, Kind: bundle.KindOCI, MediaType: mt, Digest: d, Size: int64(len(data))}
	h, _ := v1.NewHash(d)
	return v1.Descriptor{MediaType: "application/octet-stream", Digest: h, Size: int64(len(data))}
}

func (b *imageBundle) image(t testing.TB, img v1.Image) v1.Descriptor {
	t.Helper()
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	b.blob(string(m.Config.MediaType), cfg)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		mt, _ := l.MediaType()
		b.blob(string(mt), data)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	d := b.blob(string(mt), raw)
	d.MediaType = mt
	return d
}

func (b *imageBundle) index(t testing.TB, idx v1.ImageIndex) v1.Descriptor {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range im.Manifests {
		img, err := idx.Image(c.Digest)
		if err != nil {
			t.Fatal(err)
		}
		b.image(t, img)
	}
	// Without the artifactType ggcr sets on each entry, as ferry image
	// build and buildx write an index (and skopeo 1.9 keeps it as it is).
	for i := range im.Manifests {
		im.Manifests[i].ArtifactType = ""
	}
	raw, err := json.Marshal(im)
	if err != nil {
		t.Fatal(err)
	}
	d := b.blob(string(im.MediaType), raw)
	d.MediaType = im.MediaType
	return d
}

// ref names top (a manifest or index already added) as ref.
func (b *imageBundle) ref(ref string, top v1.Descriptor) {
	f := "images/" + ref
	b.items[f] = bundle.Item{File: f, Kind: bundle.KindImage, Module: ref, MediaType: string(top.MediaType), Digest: top.Digest.String(), Size: top.Size}
	b.refs = append(b.refs, ref)
}

// referrer adds an SBOM-like artifact manifest whose subject is subject.
func (b *imageBundle) referrer(t testing.TB, subject v1.Descriptor, artifactType, content string) v1.Descriptor {
	t.Helper()
	cfg := b.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
	cfg.MediaType = "application/vnd.oci.empty.v1+json"
	layer := b.blob(artifactType, []byte(content))
	layer.MediaType = "application/spdx+json"
	subject.Platform, subject.ArtifactType = nil, ""
	m := map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": artifactType,
		"config": cfg, "layers": []v1.Descriptor{layer}, "subject": subject,
		"annotations": map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := b.blob("application/vnd.oci.image.manifest.v1+json", raw)
	d.MediaType = "application/vnd.oci.image.manifest.v1+json"
	f := "images/@" + d.Digest.String()
	b.items[f] = bundle.Item{File: f, Kind: bundle.KindImage, MediaType: string(d.MediaType), Digest: d.Digest.String(), Size: d.Size}
	return d
}

func (b *imageBundle) write(t testing.TB, dir, file string) string {
	t.Helper()
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: file, Images: b.refs}
	for _, it := range b.items {
		m.Items = append(m.Items, it)
	}
	m.Sort()
	p := filepath.Join(dir, file)
	if _, err := bundle.Write(context.Background(), p, m, b.src, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// twoPlatformIndex returns an OCI index of two random OCI images,
// linux/amd64 and linux/arm64, whose layers are larger than what the server
// reads into memory.
func twoPlatformIndex(t testing.TB) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		base, err := mutate.ConfigFile(base, &v1.ConfigFile{OS: "linux", Architecture: arch, RootFS: v1.RootFS{Type: "layers"}})
		if err != nil {
			t.Fatal(err)
		}
		var layers []v1.Layer
		for range 2 {
			l, err := random.Layer(70_000, types.OCILayer)
			if err != nil {
				t.Fatal(err)
			}
			layers = append(layers, l)
		}
		img, err := mutate.AppendLayers(base, layers...)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

// ociFixture is a store of two image bundles served over HTTP.
type ociFixture struct {
	*env
	idx     v1.ImageIndex // its images are those of web:1.0 and registry.internal/team/app:1.0 (first bundle)
	idxRaw  []byte        // the index carried
	idxD    v1.Hash
	amd64   v1.Descriptor // first image of idx
	sbom    v1.Descriptor // referrer of amd64
	web2    v1.Hash       // web:1.0 as imported by the second bundle
	single  v1.Descriptor // team/app:2.0, a single manifest
	logs    *bytes.Buffer
	logsMu  *sync.Mutex
	plainTS *httptest.Server
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func newOCIFixture(t testing.TB, rt serve.Routes) *ociFixture {
	t.Helper()
	fx := &ociFixture{env: &env{dir: t.TempDir()}, logs: &bytes.Buffer{}, logsMu: &sync.Mutex{}}
	e := fx.env
	st, err := local.Open(filepath.Join(e.dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st

	b1 := newImageBundle()
	fx.idx = twoPlatformIndex(t)
	top := b1.index(t, fx.idx)
	fx.idxD = top.Digest
	fx.idxRaw = b1.src[top.Digest.String()]
	b1.ref("web:1.0", top)
	b1.ref("registry.internal/team/app:1.0", top)
	b1.ref("localhost:5000/local/img:v1", top)
	im, _ := fx.idx.IndexManifest()
	fx.amd64 = im.Manifests[0]
	fx.sbom = b1.referrer(t, fx.amd64, "application/spdx+json", `{"spdxVersion":"SPDX-2.3"}`)
	b1.referrer(t, fx.amd64, "application/vnd.example.sig", "signature")
	testbundle.Import(t, st, b1.write(t, e.dir, "one.ferry"))

	b2 := newImageBundle()
	img, err := random.Image(1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	fx.single = b2.image(t, img)
	b2.ref("registry.internal/team/app:2.0", fx.single)
	idx2 := twoPlatformIndex(t)
	top2 := b2.index(t, idx2)
	fx.web2 = top2.Digest
	b2.ref("web:1.0", top2) // imported again: the newest import wins
	testbundle.Import(t, st, b2.write(t, e.dir, "two.ferry"))

	log := slog.New(slog.NewTextHandler(lockedBuffer{fx.logsMu, fx.logs}, nil))
	srv, err := serve.New(st, serve.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler(rt))
	t.Cleanup(e.ts.Close)
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return fx
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

// ociErrorCode returns the code of an OCI error body.
func ociErrorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || len(e.Errors) != 1 {
		t.Errorf("not an OCI error body: %q (%v)", body, err)
		return ""
	}
	return e.Errors[0].Code
}

func TestOCIBase(t *testing.T) {
	fx := newOCIFixture(t, serve.Routes{})
	for _, p := range []string{"/v2/", "/v2"} {
		for _, m := range []string{"GET", "HEAD"} {
			resp, body := fx.do(t, m, p)
			if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
				t.Errorf("%s %s: %d %q", m, p, resp.StatusCode, resp.Header)
			}
			if m == "GET" && body != "{}" {
				t.Errorf("GET %s = %q", p, body)
			}
		}
	}
}

func TestOCIManifests(t *testing.T) {
	fx := newOCIFixture(t, serve.Routes{})
	idxRaw := fx.idxRaw
	for _, p := range []string{"/v2/team/app/manifests/1.0", "/v2/local/img/manifests/v1", "/v2/web/manifests/" + fx.idxD.String()} {
		resp, body := fx.do(t, "GET", p)
		if resp.StatusCode != 200 || body != string(idxRaw) {
			t.Fatalf("GET %s: %d\n%s", p, resp.StatusCode, body)
		}
		h := resp.Header
		if h.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" || h.Get("Docker-Content-Digest") != fx.idxD.String() ||
			h.Get("ETag") != `"`+fx.idxD.String()+`"` || h.Get("Content-Length") != fmt.Sprint(len(idxRaw)) {
			t.Errorf("GET %s headers: %v", p, h)
		}
		tagged := !strings.Contains(p, "sha256:")
		if immutable := strings.Contains(h.Get("Cache-Control"), "immutable"); immutable == tagged {
			t.Errorf("GET %s: Cache-Control %q (a tag moves, a digest does not)", p, h.Get("Cache-Control"))
		}
		resp, body = fx.do(t, "HEAD", p)
		if resp.StatusCode != 200 || body != "" || resp.Header.Get("Docker-Content-Digest") != fx.idxD.String() || resp.ContentLength != int64(len(idxRaw)) {
			t.Errorf("HEAD %s: %d %v", p, resp.StatusCode, resp.Header)
		}
		resp, _ = fx.do(t, "GET", p, "If-None-Match", `"`+fx.idxD.String()+`"`)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d", p, resp.StatusCode)
		}
	}
	// A platform manifest by digest, its own media type.
	resp, body := fx.do(t, "GET", "/v2/web/manifests/"+fx.amd64.Digest.String())
	if resp.StatusCode != 200 || sha(body) != fx.amd64.Digest.String() || resp.Header.Get("Content-Type") != string(fx.amd64.MediaType) {
		t.Errorf("platform manifest: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// A single-manifest image by tag.
	resp, body = fx.do(t, "GET", "/v2/team/app/manifests/2.0")
	if resp.StatusCode != 200 || sha(body) != fx.single.Digest.String() || resp.Header.Get("Content-Type") != string(fx.single.MediaType) {
		t.Errorf("team/app:2.0: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// web:1.0 was imported again by the second bundle: the newest wins, and
	// the re-import is not reported as a disagreement.
	resp, body = fx.do(t, "GET", "/v2/web/manifests/1.0")
	if resp.StatusCode != 200 || sha(body) != fx.web2.String() {
		t.Errorf("web:1.0 = %s, want the second import's %s", sha(body), fx.web2)
	}
	fx.logsMu.Lock()
	if strings.Contains(fx.logs.String(), "disagree") {
		t.Errorf("log warns about a re-imported tag:\n%s", fx.logs)
	}
	fx.logsMu.Unlock()
	// The first import's index stays reachable by digest.
	if resp, _ := fx.do(t, "HEAD", "/v2/web/manifests/"+fx.idxD.String()); resp.StatusCode != 200 {
		t.Errorf("first import's index by digest: %d", resp.StatusCode)
	}

	img, _ := fx.idx.Image(fx.amd64.Digest)
	cfgName, _ := img.ConfigName()
	for _, c := range []struct{ path, code string }{
		{"/v2/web/manifests/2.0", "MANIFEST_UNKNOWN"},
		{"/v2/web/manifests/" + cfgName.String(), "MANIFEST_UNKNOWN"}, // a config is no manifest
		{"/v2/web/manifests/sha256:" + strings.Repeat("0", 64), "MANIFEST_UNKNOWN"},
		{"/v2/nope/manifests/1.0", "NAME_UNKNOWN"},
		{"/v2/registry.internal/team/app/manifests/1.0", "NAME_UNKNOWN"}, // the host is not part of the name
	} {
		resp, body := fx.do(t, "GET", c.path)
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || ociErrorCode(t, body) != c.code {
			t.Errorf("GET %s: %d %s, want 404 %s", c.path, resp.StatusCode, body, c.code)
		}
	}
}

func TestOCIBlobs(t *testing.T) {
	fx := newOCIFixture(t, serve.Routes{})
	img, _ := fx.idx.Image(fx.amd64.Digest)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	rc, _ := layers[0].Compressed()
	data, _ := io.ReadAll(rc)
	rc.Close()
	p := "/v2/web/blobs/" + ld.String()
	resp, body := fx.do(t, "GET", p)
	if resp.StatusCode != 200 || body != string(data) || resp.Header.Get("Docker-Content-Digest") != ld.String() ||
		resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET %s: %d %v", p, resp.StatusCode, resp.Header)
	}
	resp, body = fx.do(t, "GET", p, "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || body != string(data[10:20]) {
		t.Errorf("GET %s with Range: %d %q", p, resp.StatusCode, body)
	}
	resp, body = fx.do(t, "HEAD", p)
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(data)) {
		t.Errorf("HEAD %s: %d %d", p, resp.StatusCode, resp.ContentLength)
	}
	cfgName, _ := img.ConfigName()
	cfg, _ := img.RawConfigFile()
	// Any blob of the store, under any repository the store carries.
	if resp, body := fx.do(t, "GET", "/v2/team/app/blobs/"+cfgName.String()); resp.StatusCode != 200 || body != string(cfg) {
		t.Errorf("config blob: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v2/web/blobs/sha256:" + strings.Repeat("1", 64), 404, "BLOB_UNKNOWN"},
		{"/v2/web/blobs/sha256:abc", 400, "DIGEST_INVALID"},
		{"/v2/web/blobs/sha512:" + strings.Repeat("1", 128), 400, "DIGEST_INVALID"},
		{"/v2/nope/blobs/" + ld.String(), 404, "NAME_UNKNOWN"},
	} {
		resp, body := fx.do(t, "GET", c.path)
		if resp.StatusCode != c.status || ociErrorCode(t, body) != c.code {
			t.Errorf("GET %s: %d %s, want %d %s", c.path, resp.StatusCode, body, c.status, c.code)
		}
	}
}

func TestOCITagsAndCatalog(t *testing.T) {
	fx := newOCIFixture(t, serve.Routes{})
	get := func(p string, v any) *http.Response {
		t.Helper()
		resp, body := fx.do(t, "GET", p)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("GET %s: %v\n%s", p, err, body)
		}
		return resp
	}
	var tags struct {
		Name string
		Tags []string
	}
	get("/v2/team/app/tags/list", &tags)
	if tags.Name != "team/app" || strings.Join(tags.Tags, " ") != "1.0 2.0" {
		t.Errorf("tags = %+v", tags)
	}
	resp := get("/v2/team/app/tags/list?n=1", &tags)
	if strings.Join(tags.Tags, " ") != "1.0" || !strings.Contains(resp.Header.Get("Link"), "last=1.0") {
		t.Errorf("n=1: %+v, Link %q", tags, resp.Header.Get("Link"))
	}
	resp = get("/v2/team/app/tags/list?n=1&last=1.0", &tags)
	if strings.Join(tags.Tags, " ") != "2.0" || resp.Header.Get("Link") != "" {
		t.Errorf("n=1&last=1.0: %+v, Link %q", tags, resp.Header.Get("Link"))
	}
	var cat struct{ Repositories []string }
	get("/v2/_catalog", &cat)
	if strings.Join(cat.Repositories, " ") != "local/img team/app web" {
		t.Errorf("catalog = %q", cat.Repositories)
	}
	get("/v2/_catalog?n=2", &cat)
	if strings.Join(cat.Repositories, " ") != "local/img team/app" {
		t.Errorf("catalog n=2 = %q", cat.Repositories)
	}
	if resp, body := fx.do(t, "GET", "/v2/nope/tags/list"); resp.StatusCode != 404 || ociErrorCode(t, body) != "NAME_UNKNOWN" {
		t.Errorf("tags of an unknown repository: %d %s", resp.StatusCode, body)
	}
}

func TestOCIReferrers(t *testing.T) {
	fx := newOCIFixture(t, serve.Routes{})
	var idx v1.IndexManifest
	resp, body := fx.do(t, "GET", "/v2/web/referrers/"+fx.amd64.Digest.String())
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("referrers: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	if err := json.Unmarshal([]byte(body), &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("referrers: %v\n%s", err, body)
	}
	var found bool
	for _, d := range idx.Manifests {
		if d.Digest == fx.sbom.Digest {
			found = d.ArtifactType == "application/spdx+json" && d.Size == fx.sbom.Size && d.Annotations["org.opencontainers.image.created"] != ""
		}
	}
	if !found {
		t.Errorf("the SBOM is not listed as it should be:\n%s", body)
	}
	resp, body = fx.do(t, "GET", "/v2/web/referrers/"+fx.amd64.Digest.String()+"?artifactType=application/spdx%2Bjson")
	if err := json.Unmarshal([]byte(body), &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != fx.sbom.Digest ||
		resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered referrers: %v %v\n%s", err, resp.Header, body)
	}
	// No referrers: an empty index, never 404.
	resp, body = fx.do(t, "GET", "/v2/web/referrers/"+fx.idxD.String())
	if err := json.Unmarshal([]byte(body), &idx); resp.StatusCode != 200 || err != nil || len(idx.Manifests) != 0 || !strings.Contains(body, `"manifests":[]`) {
		t.Errorf("referrers of a subject without any: %d %s", resp.StatusCode, body)
	}
	if resp, body := fx.do(t, "GET", "/v2/web/referrers/latest"); resp.StatusCode != 400 || ociErrorCode(t, body) != "DIGEST_INVALID" {
		t.Errorf("referrers of a tag: %d %s", resp.StatusCode, body)
	}
}

// TestOCIReadOnly: every write of the API is refused, and malformed paths
// get 400 or 404 without touching the store.
func TestOCIReadOnly(t *testing.T) {
	fx := newOCIFixture(t, serve.Routes{})
	for _, c := range []struct{ method, path string }{
		{"PUT", "/v2/web/manifests/1.0"},
		{"DELETE", "/v2/web/manifests/" + fx.idxD.String()},
		{"POST", "/v2/web/blobs/uploads/"},
		{"PATCH", "/v2/web/blobs/uploads/x"},
		{"PUT", "/v2/web/blobs/uploads/x?digest=sha256:" + strings.Repeat("0", 64)},
		{"DELETE", "/v2/web/blobs/" + fx.amd64.Digest.String()},
		{"POST", "/v2/"},
	} {
		resp, body := fx.do(t, c.method, c.path)
		if resp.StatusCode != 405 || ociErrorCode(t, body) != "UNSUPPORTED" || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/v2/web/blobs/uploads/", 404},
		{"/v2/web", 404},
		{"/v2/web/tags", 404},
		{"/v2/Web/manifests/1.0", 400},
		{"/v2/we%2Fb/manifests/1.0", 400},
		{"/v2/web/manifests/1.0%00", 400},
		{"/v2/web/manifests/..", 404},
		{"/v2/./web/manifests/1.0", 400},
		{"/v2/web//manifests/1.0", 400},
		{"/v2/" + strings.Repeat("a/", 200) + "manifests/1.0", 400},
		{"/v2/web/manifests/sha256:../../../etc/passwd", 404},
		{"/v2/web/manifests/sha256:..", 400},
		{"/v2/web/blobs/sha256:" + strings.Repeat("A", 64), 400},
	} {
		resp, body := fx.do(t, "GET", c.path)
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d %s, want %d", c.path, resp.StatusCode, body, c.status)
		}
	}
}

func TestOCIAuth(t *testing.T) {
	dir := t.TempDir()
	authFile := filepath.Join(dir, "auth")
	if err := os.WriteFile(authFile, []byte("token ci "+auth.HashToken("s3cret")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := auth.Load(authFile)
	if err != nil {
		t.Fatal(err)
	}
	fx := newOCIFixture(t, serve.Routes{Auth: c.Middleware})
	for _, p := range []string{"/v2/", "/v2/web/manifests/1.0", "/v2/web/blobs/" + fx.amd64.Digest.String()} {
		if resp, _ := fx.do(t, "GET", p); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without credentials: %d", p, resp.StatusCode)
		}
		if resp, _ := fx.do(t, "GET", p, "Authorization", "Bearer s3cret"); resp.StatusCode != 200 {
			t.Errorf("GET %s with a token: %d", p, resp.StatusCode)
		}
	}
	// ggcr reads through basic auth (the token's name as user).
	ref, err := name.ParseReference(strings.TrimPrefix(fx.ts.URL, "http://") + "/web:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Index(ref, remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"})); err != nil {
		t.Errorf("ggcr with basic auth: %v", err)
	}
}

func TestOCIKind(t *testing.T) {
	for p, want := range map[string]string{
		"/v2/web/manifests/1.0":             "oci-manifest",
		"/v2/team/app/blobs/sha256:00":      "oci-blob",
		"/v2/_catalog":                      "other",
		"/v2/":                              "other",
		"/example.com/a/@v/v1.0.0.zip":      "zip",
		"/v2/web/referrers/sha256:00":       "other",
		"/example.com/v2/@v/v2.0.0.mod":     "mod",
		"/example.com/x/manifests/@v/list":  "list",
		"/sumdb/sum.test/lookup/x@v1.0.0":   "sumdb",
		"/mod/example.com/a":                "page",
		"/v2/web/blobs/uploads/":            "oci-blob",
		"/v2/web/manifests/sha256:" + "abc": "oci-manifest",
	} {
		r := httptest.NewRequest("GET", p, nil)
		if got := serve.Kind(r); got != want {
			t.Errorf("Kind(%s) = %s, want %s", p, got, want)
		}
	}
}

// readImage reads every blob of img through ggcr, which checks each
// against its digest, and compares the digest of its manifest.
func readImage(t *testing.T, img v1.Image) {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); sha(string(raw)) != d.String() {
		t.Errorf("manifest %s hashes to %s", d, sha(string(raw)))
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := img.RawConfigFile(); err != nil || sha(string(cfg)) != cfgName.String() {
		t.Errorf("config %s: %v", cfgName, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed() // verified against the digest as it is read
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Errorf("reading a layer: %v", err)
		}
	}
}

// TestOCIClients: go-containerregistry reads every image of the store and
// checks every blob against its digest; skopeo, an independent client,
// inspects and copies an image out (digests equal).
func TestOCIClients(t *testing.T) {
	fx := newOCIFixture(t, serve.Routes{})
	host := strings.TrimPrefix(fx.ts.URL, "http://")
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	idx, err := remote.Index(ref("team/app:1.0"))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d != fx.idxD {
		t.Errorf("ggcr index digest %s, want %s", d, fx.idxD)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		readImage(t, img)
	}
	img, err := remote.Image(ref("team/app:2.0"))
	if err != nil {
		t.Fatal(err)
	}
	readImage(t, img)
	// ggcr picks the platform image from the index.
	img, err = remote.Image(ref("web@"+fx.idxD.String()), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != fx.amd64.Digest {
		t.Errorf("ggcr linux/amd64 image %s, want %s", d, fx.amd64.Digest)
	}
	refs, err := remote.Referrers(ref("web:1.0").Context().Digest(fx.amd64.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	if rm, _ := refs.IndexManifest(); len(rm.Manifests) != 2 {
		t.Errorf("ggcr referrers: %+v", rm)
	}
	tags, err := remote.List(ref("team/app:1.0").Context())
	if err != nil || strings.Join(tags, " ") != "1.0 2.0" {
		t.Errorf("ggcr list: %q %v", tags, err)
	}
	cat, err := remote.Catalog(context.Background(), ref("web:1.0").Context().Registry)
	if err != nil || len(cat) != 3 {
		t.Errorf("ggcr catalog: %q %v", cat, err)
	}

	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but skopeo is not installed")
		}
		t.Skip("skopeo is not installed")
	}
	out, err := exec.Command(skopeo, "inspect", "--raw", "--tls-verify=false", "docker://"+host+"/team/app:1.0").CombinedOutput()
	if err != nil || sha(string(out)) != fx.idxD.String() {
		t.Errorf("skopeo inspect --raw: %v\n%s", err, out)
	}
	out, err = exec.Command(skopeo, "inspect", "--tls-verify=false", "--override-arch", "arm64", "docker://"+host+"/team/app:1.0").CombinedOutput()
	var info struct{ Digest, Architecture string }
	if err != nil || json.Unmarshal(out, &info) != nil || info.Digest != fx.idxD.String() || info.Architecture != "arm64" {
		t.Errorf("skopeo inspect: %v %+v\n%s", err, info, out)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command(skopeo, "copy", "--all", "--src-tls-verify=false", "docker://"+host+"/team/app:1.0", "oci:"+dst+":app").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy --all: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dst, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var copied v1.IndexManifest
	if err := json.Unmarshal(data, &copied); err != nil || len(copied.Manifests) != 1 || copied.Manifests[0].Digest != fx.idxD {
		t.Errorf("skopeo copy wrote %s, want the index %s", data, fx.idxD)
	}
	// Every blob skopeo copied hashes to its name.
	blobs, _ := filepath.Glob(filepath.Join(dst, "blobs", "sha256", "*"))
	if len(blobs) != 9 { // the index, 2 manifests, 2 configs, 4 layers
		t.Errorf("skopeo copied %d blobs, want 9", len(blobs))
	}
	for _, b := range blobs {
		data, _ := os.ReadFile(b)
		if sha(string(data)) != "sha256:"+filepath.Base(b) {
			t.Errorf("copied blob %s hashes to %s", b, sha(string(data)))
		}
	}
}
