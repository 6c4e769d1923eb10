package push

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferry-dev/ferry/internal/store/ocistore/ocitest"
)

// checkPulled pulls ref with go-containerregistry (a client independent of
// push), checks that it is the index want and downloads and verifies every
// manifest, config and layer of it.
func checkPulled(t *testing.T, ref string, want v1.Hash) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	if d, _ := idx.Digest(); d != want {
		t.Fatalf("%s is %s, want %s", ref, d, want)
	}
	verifyIndex(t, idx)
}

// verifyIndex downloads every manifest, config and layer of idx;
// go-containerregistry checks each against its digest.
func verifyIndex(t *testing.T, idx v1.ImageIndex) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := img.RawConfigFile(); err != nil {
			t.Fatalf("config of %s: %v", m.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				t.Fatalf("layer of %s: %v", m.Digest, err)
			}
		}
	}
}

// hasBlob asks the registry directly whether repo holds d.
func hasBlob(t *testing.T, host, repo string, d v1.Hash) bool {
	t.Helper()
	resp, err := http.Head("http://" + host + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func hasTag(t *testing.T, host, repo, tag string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", manifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestPushLayoutReadBySkopeo(t *testing.T) {
	skopeo := needSkopeo(t)
	o := &observer{}
	reg := startRegistry(t, o)
	f := writeLayout(t, tempLayout(t), defaultSpec())
	rep := push(t, t.Context(), f.dir, reg.Host+"/mirror", testOptions(t))

	ref := reg.Host + "/mirror/team/app:1.0"
	if len(rep.Images) != 1 {
		t.Fatalf("report has %d images, want 1", len(rep.Images))
	}
	img := rep.Images[0]
	if img.Ref != ref || img.Digest != f.index.String() || !img.Tagged || !img.Done || img.Referrers != 1 {
		t.Errorf("image report %+v; want ref %s digest %s, tagged, 1 referrer", img, ref, f.index)
	}
	total := f.totalBlobBytes()
	if img.BlobsUploaded != len(f.blobs) || img.BytesUploaded != total || img.BlobsPresent != 0 || img.BlobsMounted != 0 {
		t.Errorf("first push: %+v; want all %d blobs (%d bytes) uploaded", img.Counts, len(f.blobs), total)
	}
	if got := o.blobBytes.Load(); img.BytesSent != total || got != total {
		t.Errorf("first push sent %d blob bytes, the registry received %d; want %d", img.BytesSent, got, total)
	}
	if img.ManifestsPushed != 4 { // 2 image manifests, the index, the SBOM
		t.Errorf("pushed %d manifests, want 4", img.ManifestsPushed)
	}
	if rep.Total != img.Counts {
		t.Errorf("total %+v != the one image's %+v", rep.Total, img.Counts)
	}

	// skopeo reads the index, each platform, and copies it all back.
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(skopeo, append([]string{"--insecure-policy"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("skopeo %v: %v\n%s", args, err, ee.Stderr)
			}
			t.Fatalf("skopeo %v: %v", args, err)
		}
		return out
	}
	raw := run("inspect", "--tls-verify=false", "--raw", "docker://"+ref)
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != f.index.String() {
		t.Errorf("skopeo reads an index with digest %s, want %s", got, f.index)
	}
	var list v1.IndexManifest
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Manifests {
		plat := m.Platform.OS + "/" + m.Platform.Architecture
		if f.mans[plat] != m.Digest {
			t.Errorf("index lists %s for %s, want %s", m.Digest, plat, f.mans[plat])
		}
		b := run("inspect", "--tls-verify=false", "--raw", "docker://"+reg.Host+"/mirror/team/app@"+m.Digest.String())
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(b)); got != m.Digest.String() {
			t.Errorf("skopeo reads %s as content with digest %s", m.Digest, got)
		}
	}
	// Copy it all back. skopeo 1.9 rewrites an index whose descriptors
	// carry artifactType (it does not know the field), so the index is
	// compared by what it lists; the image manifests and blobs by digest.
	back := filepath.Join(t.TempDir(), "back")
	run("copy", "--all", "--src-tls-verify=false", "docker://"+ref, "oci:"+back+":1.0")
	var top v1.IndexManifest
	b, err := os.ReadFile(filepath.Join(back, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &top); err != nil || len(top.Manifests) != 1 {
		t.Fatalf("skopeo copied back %s (%v), want one index", b, err)
	}
	b, err = os.ReadFile(filepath.Join(back, "blobs", "sha256", top.Manifests[0].Digest.Hex))
	if err != nil {
		t.Fatal(err)
	}
	var copied v1.IndexManifest
	if err := json.Unmarshal(b, &copied); err != nil || len(copied.Manifests) != len(f.mans) {
		t.Fatalf("skopeo copied back the index %s (%v)", b, err)
	}
	for _, m := range copied.Manifests {
		if f.mans[m.Platform.OS+"/"+m.Platform.Architecture] != m.Digest {
			t.Errorf("copied index lists %s for %s", m.Digest, m.Platform)
		}
	}
	for d := range f.blobs {
		if f.art[d] { // the SBOM's blobs are not part of the image
			continue
		}
		if _, err := os.Stat(filepath.Join(back, "blobs", "sha256", d.Hex)); err != nil {
			t.Errorf("blob %s not copied back: %v", d, err)
		}
	}
	for _, d := range f.mans {
		if _, err := os.Stat(filepath.Join(back, "blobs", "sha256", d.Hex)); err != nil {
			t.Errorf("manifest %s not copied back: %v", d, err)
		}
	}
	// The SBOM is listed under the referrers tag schema (distribution has no referrers API).
	var refs v1.IndexManifest
	if err := json.Unmarshal(run("inspect", "--tls-verify=false", "--raw", "docker://"+reg.Host+"/mirror/team/app:sha256-"+f.index.Hex), &refs); err != nil {
		t.Fatal(err)
	}
	if len(refs.Manifests) != 1 || refs.Manifests[0].Digest != f.sbom || refs.Manifests[0].ArtifactType != "application/spdx+json" {
		t.Errorf("referrers of the index: %+v, want the SBOM %s", refs.Manifests, f.sbom)
	}
}

func TestPushTwiceSendsNothing(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	f := writeLayout(t, tempLayout(t), defaultSpec())
	opt := testOptions(t)
	push(t, t.Context(), f.dir, reg.Host, opt)
	bytesBefore, putsBefore := o.blobBytes.Load(), o.manifestPuts.Load()

	rep := push(t, t.Context(), f.dir, reg.Host, opt)
	if got := o.blobBytes.Load() - bytesBefore; got != 0 {
		t.Errorf("second push: the registry received %d blob bytes, want 0", got)
	}
	if got := o.manifestPuts.Load() - putsBefore; got != 0 {
		t.Errorf("second push: the registry received %d manifest PUTs, want 0", got)
	}
	c := rep.Total
	want := Counts{BlobsPresent: len(f.blobs), BytesPresent: f.totalBlobBytes(), ManifestsPresent: 4}
	if c != want {
		t.Errorf("second push counts %+v, want %+v", c, want)
	}
	if rep.Images[0].Tagged {
		t.Error("second push re-set a tag that already named the index")
	}
	checkPulled(t, reg.Host+"/team/app:1.0", f.index)
}

func TestPushChangedLayer(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	f1 := writeLayout(t, tempLayout(t), defaultSpec())
	opt := testOptions(t)
	push(t, t.Context(), f1.dir, reg.Host, opt)

	spec := defaultSpec()
	spec.appSeeds = map[string]int64{"linux/amd64": 99, "linux/arm64": 3}
	f2 := writeLayout(t, tempLayout(t), spec)
	var newBlobs, newBytes, oldBytes int64
	for d, size := range f2.blobs {
		if _, ok := f1.blobs[d]; ok {
			oldBytes += size
		} else {
			newBlobs++
			newBytes += size
		}
	}
	if newBlobs != 2 { // the amd64 app layer and the amd64 config (its diff_ids)
		t.Fatalf("fixture: %d new blobs, want 2", newBlobs)
	}
	before := o.blobBytes.Load()
	rec := &recorder{}
	opt.Progress = rec
	rep := push(t, t.Context(), f2.dir, reg.Host, opt)
	rec.check(t, rep)
	if got := o.blobBytes.Load() - before; got != newBytes {
		t.Errorf("the registry received %d blob bytes, want %d (the changed layer and config)", got, newBytes)
	}
	c := rep.Total
	if c.BlobsUploaded != 2 || c.BytesUploaded != newBytes || c.BytesSent != newBytes || c.BytesPresent != oldBytes {
		t.Errorf("counts %+v; want 2 blobs (%d bytes) uploaded, %d bytes present", c, newBytes, oldBytes)
	}
	// The amd64 manifest, the index and the SBOM (its subject changed) move; arm64 is there.
	if c.ManifestsPushed != 3 || c.ManifestsPresent != 1 {
		t.Errorf("manifests pushed %d, present %d; want 3, 1", c.ManifestsPushed, c.ManifestsPresent)
	}
	if !rep.Images[0].Tagged {
		t.Error("the tag was not moved to the new index")
	}
	checkPulled(t, reg.Host+"/team/app:1.0", f2.index)
}

func TestPushKilledMidwayResumes(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	f := writeLayout(t, tempLayout(t), defaultSpec())
	total := f.totalBlobBytes()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	o.onBytes = func(n int64) {
		if n >= total*3/4 {
			cancel()
		}
	}
	opt := testOptions(t)
	opt.Jobs = 1
	_, err := Push(ctx, mustOpen(t, f.dir), reg.Host, opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed push: %v, want context canceled", err)
	}
	o.settle()
	o.onBytes = nil
	if hasTag(t, reg.Host, "team/app", "1.0") {
		t.Fatal("a killed push set the tag")
	}
	var have int64
	for d, size := range f.blobs {
		if hasBlob(t, reg.Host, "team/app", d) {
			have += size
		}
	}
	if have == 0 || have == total {
		t.Fatalf("after the kill the registry holds %d of %d blob bytes; the test wants a push killed midway", have, total)
	}

	before := o.blobBytes.Load()
	opt.Jobs = 4
	rep := push(t, t.Context(), f.dir, reg.Host, opt)
	sent := o.blobBytes.Load() - before
	if sent != total-have {
		t.Errorf("rerun: the registry received %d blob bytes, want the %d still missing", sent, total-have)
	}
	c := rep.Total
	if c.BytesPresent != have || c.BytesUploaded != total-have || c.BytesSent != sent {
		t.Errorf("rerun counts %+v; want %d bytes present, %d uploaded and sent", c, have, total-have)
	}
	checkPulled(t, reg.Host+"/team/app:1.0", f.index)
}

// twoImages writes a layout with two images that share only their base layer.
func twoImages(t *testing.T) (app, tool *fixture) {
	dir := tempLayout(t)
	app = writeLayout(t, dir, defaultSpec())
	spec := defaultSpec()
	spec.name = "example.com/team/tool:2.0"
	spec.appSeeds = map[string]int64{"linux/amd64": 12, "linux/arm64": 13}
	tool = writeLayout(t, dir, spec)
	return app, tool
}

func sharedBytes(a, b *fixture) (n int64, shared int) {
	for d, size := range a.blobs {
		if _, ok := b.blobs[d]; ok {
			n += size
			shared++
		}
	}
	return n, shared
}

func TestPushRefusedMounts(t *testing.T) {
	o := &observer{refuseMounts: true}
	reg := startRegistry(t, o)
	app, tool := twoImages(t)
	rep := push(t, t.Context(), app.dir, reg.Host, testOptions(t))
	c := rep.Total
	if o.mountAsks.Load() == 0 {
		t.Fatal("push never asked for a mount: the test shows nothing")
	}
	if o.mounted.Load() != 0 || c.BlobsMounted != 0 {
		t.Errorf("registry mounted %d, report says %d mounted; the registry refuses mounts", o.mounted.Load(), c.BlobsMounted)
	}
	want := app.totalBlobBytes() + tool.totalBlobBytes()
	if c.BlobsUploaded != len(app.blobs)+len(tool.blobs) || c.BytesUploaded != want || o.blobBytes.Load() != want {
		t.Errorf("counts %+v, registry received %d; want every blob of both repositories uploaded (%d bytes)", c, o.blobBytes.Load(), want)
	}
	checkPulled(t, reg.Host+"/team/app:1.0", app.index)
	checkPulled(t, reg.Host+"/team/tool:2.0", tool.index)
}

func TestPushMountsAcrossRepositories(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	app, tool := twoImages(t)
	opt := testOptions(t)
	rec := &recorder{}
	opt.Progress = rec
	rep := push(t, t.Context(), app.dir, reg.Host+"/a", opt)
	rec.check(t, rep)
	shared, n := sharedBytes(app, tool)
	if n != 2 {
		t.Fatalf("fixture: %d shared blobs, want 2 (the base layer, the SBOM's empty config)", n)
	}
	c := rep.Total
	if c.BlobsMounted != n || c.BytesMounted != shared || o.mounted.Load() != int64(n) {
		t.Errorf("one run, two repositories: %d mounted (%d bytes), registry mounted %d; want the %d shared blobs (%d bytes) mounted once",
			c.BlobsMounted, c.BytesMounted, o.mounted.Load(), n, shared)
	}
	want := app.totalBlobBytes() + tool.totalBlobBytes() - shared
	if c.BytesSent != want || o.blobBytes.Load() != want {
		t.Errorf("sent %d, registry received %d, want %d (the shared layer once)", c.BytesSent, o.blobBytes.Load(), want)
	}

	// A later push to other repositories mounts everything from the first
	// ones, which the mount hints of the first push remember.
	before := o.blobBytes.Load()
	rep = push(t, t.Context(), app.dir, reg.Host+"/b", opt)
	c = rep.Total
	// Each new repository needs all its blobs: all are mounted.
	blobs, all := len(app.blobs)+len(tool.blobs), app.totalBlobBytes()+tool.totalBlobBytes()
	if got := o.blobBytes.Load() - before; got != 0 || c.BlobsMounted != blobs || c.BytesMounted != all {
		t.Errorf("push to a new prefix: registry received %d blob bytes, %d blobs (%d bytes) mounted; want 0 bytes, %d mounted (%d bytes)",
			got, c.BlobsMounted, c.BytesMounted, blobs, all)
	}
	checkPulled(t, reg.Host+"/b/team/app:1.0", app.index)
	checkPulled(t, reg.Host+"/b/team/tool:2.0", tool.index)

	// Without hints (another machine) nothing is known: everything is uploaded.
	opt.StateDir = t.TempDir()
	before = o.blobBytes.Load()
	rep = push(t, t.Context(), app.dir, reg.Host+"/c", opt)
	if got := o.blobBytes.Load() - before; got != want || rep.Total.BlobsMounted != n {
		t.Errorf("push without hints: received %d, mounted %d; want %d and the %d in-run mounts", got, rep.Total.BlobsMounted, want, n)
	}
}

// cutOnce cuts the connection of the first request matching match after
// reading after bytes of its body.
func cutOnce(o *observer, match func(r *http.Request) bool, after int64) *atomic.Bool {
	var done atomic.Bool
	o.beforeRequest = func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) || done.Swap(true) {
			return false
		}
		buf := make([]byte, after)
		n, _ := r.Body.Read(buf[:min(after, 4096)])
		for int64(n) < after {
			m, err := r.Body.Read(buf[n:])
			n += m
			if err != nil {
				break
			}
		}
		o.blobBytes.Add(int64(n))
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	return &done
}

func TestPushRetriesCutConnection(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	f := writeLayout(t, tempLayout(t), defaultSpec())
	cut := cutOnce(o, func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength > 100<<10
	}, 50<<10)
	opt := testOptions(t)
	rep := push(t, t.Context(), f.dir, reg.Host, opt)
	if !cut.Load() {
		t.Fatal("no upload was cut")
	}
	c := rep.Total
	if c.Retries < 1 || c.BytesUploaded != f.totalBlobBytes() || c.BytesSent < f.totalBlobBytes()+50<<10 {
		t.Errorf("counts %+v; want a retry, all %d bytes uploaded and the cut attempt counted as sent", c, f.totalBlobBytes())
	}
	checkPulled(t, reg.Host+"/team/app:1.0", f.index)
}

func TestPushChunkedResumes(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	f := writeLayout(t, tempLayout(t), defaultSpec())
	const chunk = 64 << 10
	var patches atomic.Int64
	cut := cutOnce(o, func(r *http.Request) bool {
		// The third chunk of some blob.
		return r.Method == http.MethodPatch && strings.HasPrefix(r.Header.Get("Content-Range"), fmt.Sprintf("%d-", 2*chunk)) && patches.Add(1) == 1
	}, 10<<10)
	opt := testOptions(t)
	opt.ChunkSize = chunk
	rep := push(t, t.Context(), f.dir, reg.Host, opt)
	if !cut.Load() {
		t.Fatal("no chunk was cut")
	}
	total := f.totalBlobBytes()
	if extra := o.blobBytes.Load() - total; extra < 0 || extra > chunk {
		t.Errorf("the registry received %d bytes more than the blobs; a resumed upload re-sends at most one chunk", extra)
	}
	if rep.Total.Retries < 1 || rep.Total.BytesUploaded != total {
		t.Errorf("counts %+v", rep.Total)
	}
	checkPulled(t, reg.Host+"/team/app:1.0", f.index)
}

func TestPushRetries5xx(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	f := writeLayout(t, tempLayout(t), defaultSpec())
	var fails atomic.Int64
	o.beforeRequest = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && fails.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	rep := push(t, t.Context(), f.dir, reg.Host, testOptions(t))
	if rep.Total.Retries != 3 {
		t.Errorf("%d retries, want 3", rep.Total.Retries)
	}
	checkPulled(t, reg.Host+"/team/app:1.0", f.index)

	// A 4xx is not retried.
	o2 := &observer{}
	reg2 := startRegistry(t, o2)
	o2.beforeRequest = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			return true
		}
		return false
	}
	rep, err := Push(t.Context(), mustOpen(t, f.dir), reg2.Host, testOptions(t))
	if err == nil || rep.Total.Retries != 0 {
		t.Fatalf("push to a registry answering 400: %v, %d retries; want an error and no retry", err, rep.Total.Retries)
	}
}

func TestPushPlatformSubset(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	f := writeLayout(t, tempLayout(t), defaultSpec())
	opt := testOptions(t)
	opt.Platforms = []string{"linux/arm64"}
	rep := push(t, t.Context(), f.dir, reg.Host, opt)
	img := rep.Images[0]
	if img.Digest == f.index.String() {
		t.Fatal("the index was pushed whole")
	}
	r, _ := name.ParseReference(reg.Host+"/team/app:1.0", name.Insecure)
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != f.mans["linux/arm64"] {
		t.Fatalf("pushed index lists %+v, want only the arm64 manifest", im.Manifests)
	}
	verifyIndex(t, idx)
	if d, _ := idx.Digest(); d.String() != img.Digest {
		t.Errorf("report says %s, registry has %s", img.Digest, d)
	}
	if img.Referrers != 0 {
		t.Errorf("%d referrers pushed; the SBOM's subject (the whole index) is not pushed", img.Referrers)
	}
	if img.Blobs != 3 { // base layer, arm64 layer, arm64 config
		t.Errorf("%d blobs pushed, want 3", img.Blobs)
	}
	if _, err := Push(t.Context(), mustOpen(t, f.dir), reg.Host, Options{PlainHTTP: true, Platforms: []string{"windows/amd64"}}); err == nil || !strings.Contains(err.Error(), "none of the platforms") {
		t.Errorf("push of a platform the index lacks: %v", err)
	}
}

func TestPushDamagedSource(t *testing.T) {
	o := &observer{}
	reg := startRegistry(t, o)
	f := writeLayout(t, tempLayout(t), defaultSpec())
	// Damage the largest blob (the base layer), keeping its size.
	var big v1.Hash
	for d, size := range f.blobs {
		if size == maxSize(f.blobs) {
			big = d
		}
	}
	p := filepath.Join(f.dir, "blobs", "sha256", big.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Push(t.Context(), mustOpen(t, f.dir), reg.Host, testOptions(t))
	if err == nil || !strings.Contains(err.Error(), "damaged") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("push of a damaged layout: %v; want one line saying the source is damaged", err)
	}
	if rep.Total.Retries != 0 {
		t.Errorf("a damaged source was retried %d times", rep.Total.Retries)
	}
	o.settle()
	if hasBlob(t, reg.Host, "team/app", big) || hasTag(t, reg.Host, "team/app", "1.0") {
		t.Error("the damaged blob or the tag is in the registry")
	}
}

func maxSize(m map[v1.Hash]int64) int64 {
	var n int64
	for _, s := range m {
		n = max(n, s)
	}
	return n
}

// staticKeychain gives one user name and password for every registry.
type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

func TestPushErrors(t *testing.T) {
	f := writeLayout(t, tempLayout(t), defaultSpec())
	o := &observer{}
	reg := startRegistry(t, o)
	oneLine := func(t *testing.T, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v; want one line with %q", err, want)
		}
	}
	t.Run("bad name", func(t *testing.T) {
		spec := defaultSpec()
		spec.name = "example.com/Team/App:1.0"
		g := writeLayout(t, tempLayout(t), spec)
		_, err := Push(t.Context(), mustOpen(t, g.dir), reg.Host, testOptions(t))
		oneLine(t, err, `image "example.com/Team/App:1.0"`)
	})
	t.Run("bad target", func(t *testing.T) {
		for _, target := range []string{"http://" + reg.Host, reg.Host + "/Upper", reg.Host + "/a:b", "/x", ""} {
			_, err := Push(t.Context(), mustOpen(t, f.dir), target, testOptions(t))
			oneLine(t, err, "registry")
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		_, err := Push(t.Context(), mustOpen(t, f.dir), "127.0.0.1:1", testOptions(t))
		oneLine(t, err, "registry 127.0.0.1:1 unreachable")
	})
	t.Run("plain http not allowed", func(t *testing.T) {
		opt := testOptions(t)
		opt.PlainHTTP = false
		_, err := Push(t.Context(), mustOpen(t, f.dir), reg.Host, opt)
		oneLine(t, err, "--plain-http")
	})
	t.Run("not a layout", func(t *testing.T) {
		if _, err := OpenLayout(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
			t.Errorf("OpenLayout of an empty directory: %v", err)
		}
	})
	t.Run("auth", func(t *testing.T) {
		hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(htpasswd, []byte("ferry:"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		sec := ocitest.Start(t, ocitest.Options{TLS: true, Htpasswd: htpasswd})
		opt := testOptions(t)
		opt.PlainHTTP = false
		opt.Transport = sec.Client().Transport
		_, err = Push(t.Context(), mustOpen(t, f.dir), sec.Host, opt)
		oneLine(t, err, "registry "+sec.Host+" wants credentials")
		opt.Auth = staticKeychain{"ferry", "wrong"}
		_, err = Push(t.Context(), mustOpen(t, f.dir), sec.Host, opt)
		oneLine(t, err, "authentication to registry "+sec.Host+" failed")
		opt.Auth = staticKeychain{"ferry", "s3cret"}
		rep, err := Push(t.Context(), mustOpen(t, f.dir), sec.Host, opt)
		if err != nil || rep.Total.BytesUploaded != f.totalBlobBytes() {
			t.Fatalf("push with the right password: %v", err)
		}
	})
}

// TestLayoutNames checks how index.json entries are named.
func TestLayoutNames(t *testing.T) {
	d := func(ann map[string]string) v1.Descriptor {
		h, _, _ := v1.SHA256(strings.NewReader(fmt.Sprint(ann)))
		return v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: h, Size: 1, Annotations: ann}
	}
	idx := v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{
		d(map[string]string{AnnotationRefName: "1.0"}),
		d(map[string]string{AnnotationRefName: "team/app:2.0"}),
		d(map[string]string{AnnotationRefName: "3.0", annotationContainerdName: "mirror.example/library/alpine:3.0"}),
		d(nil),
	}}
	b, _ := json.Marshal(idx)
	l, err := NewLayout("oci:x", "mydir", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	imgs, _ := l.Images(t.Context())
	var got []string
	for _, i := range imgs {
		got = append(got, i.Name)
	}
	want := []string{"mydir:1.0", "team/app:2.0", "mirror.example/library/alpine:3.0"}
	if !equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
	tgt, err := ParseTarget("reg.example:5000/mirror", false)
	if err != nil {
		t.Fatal(err)
	}
	for in, out := range map[string]string{
		"mydir:1.0":                         "reg.example:5000/mirror/mydir:1.0",
		"mirror.example/library/alpine:3.0": "reg.example:5000/mirror/library/alpine:3.0",
		"localhost/x/y":                     "reg.example:5000/mirror/x/y:latest",
		"localhost:5000/x/y:v1":             "reg.example:5000/mirror/x/y:v1",
		"team/app":                          "reg.example:5000/mirror/team/app:latest",
	} {
		ref, err := tgt.Ref(in)
		if err != nil || ref.String() != out {
			t.Errorf("Ref(%q) = %v, %v; want %s", in, ref, err, out)
		}
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}
