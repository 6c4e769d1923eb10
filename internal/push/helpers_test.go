package push

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-dev/ferry/internal/store/ocistore/ocitest"
)

// fixture describes an OCI layout written by writeLayout.
type fixture struct {
	dir   string
	index v1.Hash            // the image index
	mans  map[string]v1.Hash // platform -> image manifest
	sbom  v1.Hash            // the SBOM referrer of the index
	art   map[v1.Hash]bool   // the SBOM's blobs
	blobs map[v1.Hash]int64  // every blob (config, layer, SBOM) -> size
	name  string
}

// fixtureSpec says what writeLayout builds: one image per platform, each
// with the shared base layer (seed baseSeed) and its own app layer (seed
// appSeeds[platform]), under name, in an index; plus an SPDX SBOM whose
// subject is the index.
type fixtureSpec struct {
	name      string
	platforms []string
	baseSeed  int64
	appSeeds  map[string]int64
	baseSize  int64
	appSize   int64
}

func defaultSpec() fixtureSpec {
	return fixtureSpec{
		name:      "example.com/team/app:1.0",
		platforms: []string{"linux/amd64", "linux/arm64"},
		baseSeed:  1,
		appSeeds:  map[string]int64{"linux/amd64": 2, "linux/arm64": 3},
		baseSize:  300 << 10,
		appSize:   200 << 10,
	}
}

func layer(t *testing.T, seed, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, types.OCILayer, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// writeLayout writes the layout of spec into dir (appending to a layout
// already there) and describes it.
func writeLayout(t *testing.T, dir string, spec fixtureSpec) *fixture {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{dir: dir, mans: map[string]v1.Hash{}, blobs: map[v1.Hash]int64{}, art: map[v1.Hash]bool{}, name: spec.name}
	base := layer(t, spec.baseSeed, spec.baseSize)
	var adds []mutate.IndexAddendum
	for _, plat := range spec.platforms {
		pl, _ := v1.ParsePlatform(plat)
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: pl.OS, Architecture: pl.Architecture, RootFS: v1.RootFS{Type: "layers"}})
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.AppendLayers(img, base, layer(t, spec.appSeeds[plat], spec.appSize))
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		f.mans[plat] = d
		m, _ := img.Manifest()
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			f.blobs[b.Digest] = b.Size
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: pl}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{AnnotationRefName: spec.name})); err != nil {
		t.Fatal(err)
	}
	f.index, _ = idx.Digest()
	size, _ := idx.Size()

	// The SBOM: an artifact manifest whose subject is the index.
	sbom := []byte(`{"spdxVersion":"SPDX-2.3","name":"` + spec.name + `"}`)
	emptyCfg := []byte("{}")
	writeBlob := func(b []byte) v1.Descriptor {
		h, n, _ := v1.SHA256(bytes.NewReader(b))
		if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(b))); err != nil {
			t.Fatal(err)
		}
		return v1.Descriptor{Digest: h, Size: n}
	}
	sd, cd := writeBlob(sbom), writeBlob(emptyCfg)
	f.blobs[sd.Digest], f.blobs[cd.Digest] = sd.Size, cd.Size
	f.art[sd.Digest], f.art[cd.Digest] = true, true
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: "application/spdx+json",
		Config:  v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: cd.Digest, Size: cd.Size},
		Layers:  []v1.Descriptor{{MediaType: "application/spdx+json", Digest: sd.Digest, Size: sd.Size}},
		Subject: &v1.Descriptor{MediaType: types.OCIImageIndex, Digest: f.index, Size: size},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	md := writeBlob(raw)
	f.sbom = md.Digest
	if err := p.AppendDescriptor(v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: md.Digest, Size: md.Size, ArtifactType: "application/spdx+json"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) totalBlobBytes() int64 {
	var n int64
	for _, s := range f.blobs {
		n += s
	}
	return n
}

// observer counts what a registry receives and can misbehave on purpose.
type observer struct {
	blobBytes     atomic.Int64 // body bytes of blob uploads (PATCH and PUT)
	manifestPuts  atomic.Int64
	mountAsks     atomic.Int64 // POSTs asking for a mount
	mounted       atomic.Int64 // mounts the registry did (201)
	uploadsDone   atomic.Int64 // blob uploads the registry completed (PUT 201)
	refuseMounts  bool
	inflight      sync.WaitGroup
	onBytes       func(total int64) // called after body bytes arrive
	beforeRequest func(w http.ResponseWriter, r *http.Request) bool

	mu   sync.Mutex
	reqs []string
}

func (o *observer) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.inflight.Add(1)
		defer o.inflight.Done()
		o.mu.Lock()
		o.reqs = append(o.reqs, r.Method+" "+r.URL.Path)
		o.mu.Unlock()
		if o.beforeRequest != nil && o.beforeRequest(w, r) {
			return
		}
		upload := strings.Contains(r.URL.Path, "/blobs/uploads/")
		if upload && (r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			r.Body = &countBody{rc: r.Body, o: o}
		}
		if strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodPut {
			o.manifestPuts.Add(1)
		}
		if upload && r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
			o.mountAsks.Add(1)
			if o.refuseMounts {
				// What a registry that refuses mounts does: open an upload
				// session (202) instead.
				q := r.URL.Query()
				q.Del("mount")
				q.Del("from")
				r.URL.RawQuery = q.Encode()
			}
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if upload && r.Method == http.MethodPost && rec.status == http.StatusCreated {
			o.mounted.Add(1)
		}
		if upload && r.Method == http.MethodPut && rec.status == http.StatusCreated {
			o.uploadsDone.Add(1)
		}
	})
}

// settle waits until the registry has finished every request it received.
func (o *observer) settle() { o.inflight.Wait() }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

type countBody struct {
	rc io.ReadCloser
	o  *observer
}

func (c *countBody) Read(b []byte) (int, error) {
	n, err := c.rc.Read(b)
	if n > 0 {
		total := c.o.blobBytes.Add(int64(n))
		if c.o.onBytes != nil {
			c.o.onBytes(total)
		}
	}
	return n, err
}

func (c *countBody) Close() error { return c.rc.Close() }

// startRegistry starts a plain-HTTP registry observed by o.
func startRegistry(t *testing.T, o *observer) *ocitest.Registry {
	t.Helper()
	return ocitest.Start(t, ocitest.Options{Wrap: o.wrap})
}

// opts returns push options for a plain-HTTP test registry with no
// credentials, fast retries and its own mount-hint directory.
func testOptions(t *testing.T) Options {
	return Options{PlainHTTP: true, Auth: authn.NewMultiKeychain(), RetryDelay: 1, StateDir: t.TempDir()}
}

// needSkopeo returns skopeo's path, skipping outside CI and failing in CI
// (CI=true) when it is missing.
func needSkopeo(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("skopeo is not installed (CI installs it: .ci/run)")
		}
		t.Skip("skopeo is not installed")
	}
	return p
}

func mustOpen(t *testing.T, dir string) *Layout {
	t.Helper()
	l, err := OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func push(t *testing.T, ctx context.Context, dir, target string, opt Options) *Report {
	t.Helper()
	rep, err := Push(ctx, mustOpen(t, dir), target, opt)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func tempLayout(t *testing.T) string { return filepath.Join(t.TempDir(), "layout") }

// recorder is a Progress that adds up what it is told.
type recorder struct {
	mu     sync.Mutex
	images map[string]*imageRec
}

type imageRec struct {
	total, present, sent atomic.Int64
	done                 atomic.Bool
}

func (r *recorder) Image(ref string, blobBytes int64) ImageProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.images == nil {
		r.images = map[string]*imageRec{}
	}
	rec := &imageRec{}
	rec.total.Store(blobBytes)
	r.images[ref] = rec
	return rec
}

func (i *imageRec) Present(n int64) { i.present.Add(n) }
func (i *imageRec) Sent(n int64)    { i.sent.Add(n) }
func (i *imageRec) Done()           { i.done.Store(true) }

// check compares what progress was told with the report.
func (r *recorder) check(t *testing.T, rep *Report) {
	t.Helper()
	for _, img := range rep.Images {
		rec := r.images[img.Ref]
		if rec == nil || !rec.done.Load() {
			t.Errorf("progress of %s: not told or not done", img.Ref)
			continue
		}
		if rec.total.Load() != img.BlobBytes || rec.present.Load() != img.BytesPresent+img.BytesMounted || rec.sent.Load() != img.BytesUploaded {
			t.Errorf("progress of %s: total %d, present %d, sent %d; report %+v", img.Ref, rec.total.Load(), rec.present.Load(), rec.sent.Load(), img)
		}
	}
}
