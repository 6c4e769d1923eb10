package push

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Options configures a push.
type Options struct {
	// Jobs is how many registry operations (a blob's check and transfer, a
	// manifest's) run at once; default 4.
	Jobs int
	// PlainHTTP allows the registry to be reached over http; without it
	// every request goes over https, loopback included.
	PlainHTTP bool
	// Platforms ("os/arch[/variant]") selects the platforms of image
	// indexes to push; empty means all. An index that loses entries is
	// pushed rewritten, with a new digest.
	Platforms []string
	// Auth gives credentials; default authn.DefaultKeychain (docker config.json).
	Auth authn.Keychain
	// Transport is the HTTP transport; default remote.DefaultTransport.
	Transport http.RoundTripper
	// StateDir keeps, per registry, which repositories hold which blobs,
	// so that later pushes to other repositories mount them; "" = remember
	// only during this push.
	StateDir string
	// ChunkSize: blobs larger than this are sent in PATCH chunks of this
	// size, and an interrupted chunk resumes where the registry says it
	// stopped; default 64 MiB; negative = always one PUT.
	ChunkSize int64
	// Retries is how many more times a retryable failure (5xx, timeout,
	// connection reset) is tried; default 4. RetryDelay is the first wait,
	// doubled each time up to 30 s, with jitter; default 500 ms.
	Retries    int
	RetryDelay time.Duration
	// Progress, if set, is told about each image and the bytes done.
	Progress Progress
	Log      *slog.Logger // default: discard
}

// Progress receives live progress of a push.
type Progress interface {
	// Image is called once per image, before any transfer, with the total
	// size of its blobs.
	Image(ref string, blobBytes int64) ImageProgress
}

// ImageProgress receives the progress of one image. Present and Sent
// together add up to the image's blob bytes once it is pushed.
type ImageProgress interface {
	// Present reports n bytes of blobs the registry already had (or
	// mounted from another repository).
	Present(n int64)
	// Sent reports n more bytes of blobs sent (a retry's repeated bytes
	// are not reported again).
	Sent(n int64)
	// Done reports the image pushed (or given up).
	Done()
}

// Counts says what a push did. Blob byte counts are the blobs' sizes,
// except BytesSent: the blob bytes handed to the network, retried and
// interrupted attempts included.
type Counts struct {
	BlobsPresent  int   `json:"blobsPresent"`
	BlobsMounted  int   `json:"blobsMounted"`
	BlobsUploaded int   `json:"blobsUploaded"`
	BytesPresent  int64 `json:"bytesPresent"`
	BytesMounted  int64 `json:"bytesMounted"`
	BytesUploaded int64 `json:"bytesUploaded"`
	BytesSent     int64 `json:"bytesSent"`
	// Manifests (and indexes) found in the registry or pushed, by digest;
	// ManifestBytesSent also counts tags and referrers-tag indexes.
	ManifestsPresent  int   `json:"manifestsPresent"`
	ManifestsPushed   int   `json:"manifestsPushed"`
	ManifestBytesSent int64 `json:"manifestBytesSent"`
	Retries           int   `json:"retries"`
}

func (c *Counts) add(o Counts) {
	c.BlobsPresent += o.BlobsPresent
	c.BlobsMounted += o.BlobsMounted
	c.BlobsUploaded += o.BlobsUploaded
	c.BytesPresent += o.BytesPresent
	c.BytesMounted += o.BytesMounted
	c.BytesUploaded += o.BytesUploaded
	c.BytesSent += o.BytesSent
	c.ManifestsPresent += o.ManifestsPresent
	c.ManifestsPushed += o.ManifestsPushed
	c.ManifestBytesSent += o.ManifestBytesSent
	c.Retries += o.Retries
}

// ImageReport is what the push did for one image.
type ImageReport struct {
	Source    string `json:"source"` // the image's name in the source
	Ref       string `json:"ref"`    // where it went: REGISTRY/PREFIX/NAME:TAG
	Digest    string `json:"digest"` // of the manifest or index the tag names
	MediaType string `json:"mediaType"`
	Blobs     int    `json:"blobs"`     // distinct blobs of the image and its referrers
	BlobBytes int64  `json:"blobBytes"` // their total size
	Referrers int    `json:"referrers"`
	Tagged    bool   `json:"tagged"` // false: the tag already named this digest
	Done      bool   `json:"done"`
	Counts
}

// Report is what a push did, per image and in total.
type Report struct {
	Source string        `json:"source"`
	Target string        `json:"target"`
	Images []ImageReport `json:"images"`
	Total  Counts        `json:"total"`
}

// Push pushes every image of src to target (REGISTRY[/PREFIX]). It returns
// the report of what was done, also when it fails part way.
func Push(ctx context.Context, src Source, target string, opt Options) (*Report, error) {
	tgt, err := ParseTarget(target, opt.PlainHTTP)
	if err != nil {
		return nil, err
	}
	pl := &planner{src: src}
	for _, s := range opt.Platforms {
		p, err := v1.ParsePlatform(s)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want os/arch[/variant]", s)
		}
		pl.platforms = append(pl.platforms, *p)
	}
	imgs, err := src.Images(ctx)
	if err != nil {
		return nil, err
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("%s holds no named images", src)
	}
	rep := &Report{Source: src.String(), Target: tgt.String()}
	p := &pusher{
		opt:     opt,
		src:     src,
		blobOps: map[string]*op{},
		mfOps:   map[string]*op{},
		flights: map[string]*op{},
		locks:   map[string]*sync.Mutex{},
		log:     opt.Log,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	byRef := map[string]string{}
	var digests []string
	for _, img := range imgs {
		ref, err := tgt.Ref(img.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if other, dup := byRef[ref.String()]; dup {
			return nil, fmt.Errorf("%s: images %q and %q would both be pushed to %s", src, other, img.Name, ref)
		}
		byRef[ref.String()] = img.Name
		ip, err := pl.plan(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		p.images = append(p.images, &imageState{plan: ip, ref: ref})
		rep.Images = append(rep.Images, ImageReport{
			Source: img.Name, Ref: ref.String(), Digest: ip.root.desc.Digest.String(),
			MediaType: string(ip.root.desc.MediaType), Blobs: len(ip.blobs), BlobBytes: ip.blobBytes,
			Referrers: len(ip.referrers),
		})
		for _, b := range ip.blobs {
			digests = append(digests, b.Digest.String())
		}
	}
	file := ""
	if opt.StateDir != "" {
		file = hintFile(opt.StateDir, tgt.Registry.RegistryStr())
	}
	p.hints = loadHints(file)
	if err := p.connect(ctx, tgt, digests); err != nil {
		return rep, err
	}
	for _, st := range p.images {
		if opt.Progress != nil {
			st.prog = opt.Progress.Image(st.ref.String(), st.plan.blobBytes)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, st := range p.images {
		g.Go(func() error {
			err := p.pushImage(gctx, st)
			if st.prog != nil {
				st.prog.Done()
			}
			return err
		})
	}
	err = g.Wait()
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() == nil {
		// An operation others waited for failed; they report its
		// cancellation, the cause is what failed first.
		p.mu.Lock()
		if p.cause != nil {
			err = p.cause
		}
		p.mu.Unlock()
	}
	if serr := p.hints.save(); serr != nil {
		p.log.Warn("mount hints not saved", "err", serr)
	}
	for i, st := range p.images {
		st.mu.Lock()
		rep.Images[i].Counts = st.c
		rep.Images[i].Tagged = st.tagged
		rep.Images[i].Done = st.done
		st.mu.Unlock()
		rep.Total.add(rep.Images[i].Counts)
	}
	if err != nil {
		return rep, p.explain(err)
	}
	return rep, nil
}

// pusher is one run of Push.
type pusher struct {
	opt    Options
	src    Source
	reg    *registry
	sem    *semaphore.Weighted
	hints  *hints
	log    *slog.Logger
	auth   authn.Authenticator
	images []*imageState

	mu      sync.Mutex
	blobOps map[string]*op // repo@digest -> the operation storing it there
	mfOps   map[string]*op // repo@digest -> the operation storing the manifest
	flights map[string]*op // digest -> the first operation on it, in any repository
	locks   map[string]*sync.Mutex

	cause error // the first failure other than a cancellation

	refAPIOnce sync.Once
	refAPI     bool // the registry has the referrers API
}

// imageState is one image's progress and counts.
type imageState struct {
	plan *imagePlan
	ref  name.Tag
	prog ImageProgress

	mu     sync.Mutex
	c      Counts
	tagged bool
	done   bool
	met    map[string]bool // blobs already counted for this image
}

// meet reports whether blob d is met for the first time in this image.
func (s *imageState) meet(d string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.met[d] {
		return false
	}
	if s.met == nil {
		s.met = map[string]bool{}
	}
	s.met[d] = true
	return true
}

func (s *imageState) count(f func(c *Counts)) {
	s.mu.Lock()
	f(&s.c)
	s.mu.Unlock()
}

// op is one operation others may wait for.
type op struct {
	done chan struct{}
	err  error
	repo string
}

// claim returns the operation for key in m, and whether the caller
// created it (and must run it and close done).
func (p *pusher) claim(m map[string]*op, key, repo string) (*op, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o, ok := m[key]; ok {
		return o, false
	}
	o := &op{done: make(chan struct{}), repo: repo}
	m[key] = o
	return o, true
}

func (p *pusher) lock(key string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.locks[key]
	if !ok {
		l = &sync.Mutex{}
		p.locks[key] = l
	}
	return l
}

// wait waits for o, or for ctx.
func wait(ctx context.Context, o *op) error {
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connect builds the authenticated transport: it pings the registry and,
// for token auth, fetches a token for pushing to every target repository
// and pulling from every repository a blob may be mounted from.
func (p *pusher) connect(ctx context.Context, tgt Target, digests []string) error {
	jobs := p.opt.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	p.sem = semaphore.NewWeighted(int64(jobs))
	keys := p.opt.Auth
	if keys == nil {
		keys = authn.DefaultKeychain
	}
	auth, err := authn.Resolve(ctx, keys, tgt.Registry)
	if err != nil {
		return fmt.Errorf("reading credentials for registry %s: %w", tgt.Registry.RegistryStr(), err)
	}
	p.auth = auth
	var scopes []string
	seen := map[string]bool{}
	for _, st := range p.images {
		repo := st.ref.Context().RepositoryStr()
		if !seen[repo] {
			seen[repo] = true
			scopes = append(scopes, st.ref.Context().Scope(transport.PushScope))
		}
	}
	for _, r := range p.hints.all(digests) {
		if !seen[r] && len(scopes) < 64 {
			seen[r] = true
			scopes = append(scopes, tgt.Registry.Repo(r).Scope(transport.PullScope))
		}
	}
	rt := p.opt.Transport
	if rt == nil {
		rt = remote.DefaultTransport
		if t, ok := rt.(*http.Transport); ok {
			t = t.Clone()
			t.ResponseHeaderTimeout = 10 * time.Minute
			rt = t
		}
	}
	if !p.opt.PlainHTTP {
		rt = httpsOnly{rt}
	}
	rt = transport.NewUserAgent(rt, "ferry")
	tr, err := transport.NewWithContext(ctx, tgt.Registry, auth, rt, scopes)
	if err != nil {
		return p.connectError(tgt, err)
	}
	p.reg = &registry{client: &http.Client{Transport: tr}, host: tgt.Registry.RegistryStr()}
	return nil
}

func (p *pusher) connectError(tgt Target, err error) error {
	host := tgt.Registry.RegistryStr()
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden {
			return p.authError(host, err)
		}
		return fmt.Errorf("registry %s: %v", host, err)
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("registry %s answers only plain HTTP: give --plain-http to push to it", host)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("registry %s unreachable: %v", host, err)
}

func (p *pusher) authError(host string, err error) error {
	if p.auth == authn.Anonymous {
		return fmt.Errorf("registry %s wants credentials and none are configured for it (docker login %s, or an entry in docker's config.json): %v", host, host, err)
	}
	return fmt.Errorf("authentication to registry %s failed (credentials from docker's config.json): %v", host, err)
}

// explain turns a registry's refusal of the credentials into one clear line.
func (p *pusher) explain(err error) error {
	switch httpStatus(err) {
	case http.StatusUnauthorized:
		return p.authError(p.reg.host, err)
	case http.StatusForbidden:
		return fmt.Errorf("registry %s denied the push (are the credentials allowed to push there?): %v", p.reg.host, err)
	}
	return err
}

// httpsOnly sends every request over https.
type httpsOnly struct{ rt http.RoundTripper }

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	return t.rt.RoundTrip(req)
}

// pushImage pushes one image: its manifests after their blobs, indexes
// after their manifests, referrers after their subjects, the tag last.
func (p *pusher) pushImage(ctx context.Context, st *imageState) error {
	repo := st.ref.Context().RepositoryStr()
	fail := func(err error) error {
		return fmt.Errorf("pushing %s to %s: %w", st.plan.src.Name, st.ref, err)
	}
	if err := p.pushNode(ctx, st, repo, st.plan.root); err != nil {
		return fail(err)
	}
	for _, r := range st.plan.referrers {
		if err := p.pushNode(ctx, st, repo, r); err != nil {
			return fail(err)
		}
	}
	root := st.plan.root
	err := p.withRetry(ctx, st, func() error {
		if err := p.sem.Acquire(ctx, 1); err != nil {
			return err
		}
		defer p.sem.Release(1)
		cur, err := p.reg.headManifest(ctx, repo, st.ref.TagStr())
		if err != nil {
			return err
		}
		if cur == root.desc.Digest.String() {
			return nil
		}
		if _, err := p.reg.putManifest(ctx, repo, st.ref.TagStr(), root.desc.MediaType, root.raw); err != nil {
			return err
		}
		st.count(func(c *Counts) { c.ManifestBytesSent += int64(len(root.raw)) })
		st.mu.Lock()
		st.tagged = true
		st.mu.Unlock()
		return nil
	})
	if err != nil {
		return fail(err)
	}
	st.mu.Lock()
	st.done = true
	st.mu.Unlock()
	p.log.Info("pushed", "ref", st.ref.String(), "digest", root.desc.Digest.String())
	return nil
}

// pushNode pushes n's blobs and child manifests, then n itself by digest.
func (p *pusher) pushNode(ctx context.Context, st *imageState, repo string, n *node) error {
	o, first := p.claim(p.mfOps, repo+"@"+n.desc.Digest.String(), repo)
	if !first {
		if err := wait(ctx, o); err != nil {
			return err
		}
		st.count(func(c *Counts) { c.ManifestsPresent++ })
		return nil
	}
	o.err = p.pushNodeOnce(ctx, st, repo, n)
	close(o.done)
	return o.err
}

func (p *pusher) pushNodeOnce(ctx context.Context, st *imageState, repo string, n *node) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range n.children {
		g.Go(func() error { return p.pushNode(gctx, st, repo, c) })
	}
	for _, b := range n.blobs {
		g.Go(func() error { return p.pushBlob(gctx, st, repo, b) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	err := p.withRetry(ctx, st, func() error {
		if err := p.sem.Acquire(ctx, 1); err != nil {
			return err
		}
		defer p.sem.Release(1)
		cur, err := p.reg.headManifest(ctx, repo, n.desc.Digest.String())
		if err != nil {
			return err
		}
		if cur != "" {
			st.count(func(c *Counts) { c.ManifestsPresent++ })
			return nil
		}
		subjectOK, err := p.reg.putManifest(ctx, repo, n.desc.Digest.String(), n.desc.MediaType, n.raw)
		if err != nil {
			return err
		}
		if subjectOK {
			p.refAPIOnce.Do(func() { p.refAPI = true })
		}
		st.count(func(c *Counts) {
			c.ManifestsPushed++
			c.ManifestBytesSent += int64(len(n.raw))
		})
		return nil
	})
	if err != nil {
		return err
	}
	if n.subject != nil {
		return p.linkReferrer(ctx, st, repo, n)
	}
	return nil
}

// linkReferrer makes referrer n findable from its subject on a registry
// without the referrers API: it adds n to the index tagged
// <alg>-<hex of subject> (the OCI referrers tag schema).
func (p *pusher) linkReferrer(ctx context.Context, st *imageState, repo string, n *node) error {
	p.refAPIOnce.Do(func() {
		if err := p.sem.Acquire(ctx, 1); err != nil {
			return
		}
		defer p.sem.Release(1)
		p.refAPI = p.reg.hasReferrersAPI(ctx, repo, n.subject.Digest)
	})
	if p.refAPI {
		return nil
	}
	tag := n.subject.Digest.Algorithm + "-" + n.subject.Digest.Hex
	l := p.lock(repo + ":" + tag)
	l.Lock()
	defer l.Unlock()
	return p.withRetry(ctx, st, func() error {
		if err := p.sem.Acquire(ctx, 1); err != nil {
			return err
		}
		defer p.sem.Release(1)
		raw, err := p.reg.getManifest(ctx, repo, tag)
		if err != nil {
			return err
		}
		idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
		if raw != nil {
			if err := json.Unmarshal(raw, &idx); err != nil {
				return fmt.Errorf("reading referrers index %s:%s: %v", repo, tag, err)
			}
		}
		for _, d := range idx.Manifests {
			if d.Digest == n.desc.Digest {
				return nil
			}
		}
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: n.desc.MediaType, Digest: n.desc.Digest, Size: n.desc.Size,
			ArtifactType: n.artifactType, Annotations: n.annotations,
		})
		out, err := json.Marshal(idx)
		if err != nil {
			return err
		}
		if _, err := p.reg.putManifest(ctx, repo, tag, types.OCIImageIndex, out); err != nil {
			return err
		}
		st.count(func(c *Counts) { c.ManifestBytesSent += int64(len(out)) })
		return nil
	})
}

// withRetry runs f, and again after a backoff while it fails with a
// retryable error, up to Options.Retries more times.
func (p *pusher) withRetry(ctx context.Context, st *imageState, f func() error) error {
	for attempt := 0; ; attempt++ {
		err := f()
		if err != nil && !errors.Is(err, context.Canceled) && (ctx.Err() != nil || !retryable(err) || attempt >= p.retries()) {
			p.mu.Lock()
			if p.cause == nil {
				p.cause = fmt.Errorf("pushing %s to %s: %w", st.plan.src.Name, st.ref, err)
			}
			p.mu.Unlock()
		}
		if err == nil || ctx.Err() != nil || !retryable(err) || attempt >= p.retries() {
			return err
		}
		st.count(func(c *Counts) { c.Retries++ })
		p.log.Info("retrying", "err", err, "attempt", attempt+2)
		if err := p.sleep(ctx, attempt); err != nil {
			return err
		}
	}
}

func (p *pusher) retries() int {
	if p.opt.Retries == 0 {
		return 4
	}
	return max(p.opt.Retries, 0)
}

// sleep waits before retry number attempt+1: the delay doubles with each
// attempt, up to 30 s, and is spread over its upper half by jitter.
func (p *pusher) sleep(ctx context.Context, attempt int) error {
	d := p.opt.RetryDelay
	if d <= 0 {
		d = 500 * time.Millisecond
	}
	for range attempt {
		if d >= 15*time.Second {
			d = 30 * time.Second
			break
		}
		d *= 2
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Blob outcomes.
type outcome int

const (
	present outcome = iota
	mounted
	uploaded
)

// pushBlob makes repo hold blob b: present already, mounted from another
// repository, or uploaded.
func (p *pusher) pushBlob(ctx context.Context, st *imageState, repo string, b v1.Descriptor) error {
	d := b.Digest.String()
	mine := st.meet(d)
	o, first := p.claim(p.blobOps, repo+"@"+d, repo)
	if !first {
		// Another manifest of this image, or another image of this push,
		// stores it in the same repository.
		if err := wait(ctx, o); err != nil {
			return err
		}
		if mine {
			st.count(func(c *Counts) { c.BlobsPresent++; c.BytesPresent += b.Size })
			if st.prog != nil {
				st.prog.Present(b.Size)
			}
		}
		return nil
	}
	defer close(o.done)
	// The first operation on this digest in any repository goes ahead; the
	// others wait for it, so that they can mount from where it put the blob.
	f, firstAny := p.claim(p.flights, d, repo)
	if firstAny {
		defer close(f.done)
	} else if err := wait(ctx, f); err != nil && ctx.Err() != nil {
		o.err = err
		return err
	}
	tr := &tracker{st: st}
	var out outcome
	o.err = p.withRetry(ctx, st, func() error {
		if err := p.sem.Acquire(ctx, 1); err != nil {
			return err
		}
		defer p.sem.Release(1)
		var err error
		out, err = p.blobAttempt(ctx, repo, b, tr)
		return err
	})
	if o.err != nil {
		if firstAny {
			f.err = o.err
		}
		return o.err
	}
	p.hints.add(d, repo)
	st.count(func(c *Counts) {
		switch out {
		case present:
			c.BlobsPresent++
			c.BytesPresent += b.Size
		case mounted:
			c.BlobsMounted++
			c.BytesMounted += b.Size
		case uploaded:
			c.BlobsUploaded++
			c.BytesUploaded += b.Size
		}
	})
	if out == uploaded {
		tr.credit(b.Size)
	} else {
		tr.present(b.Size)
	}
	p.log.Info("blob", "repo", repo, "digest", d, "size", b.Size, "outcome", [...]string{"present", "mounted", "uploaded"}[out])
	return nil
}

// blobAttempt is one try at making repo hold b.
func (p *pusher) blobAttempt(ctx context.Context, repo string, b v1.Descriptor, tr *tracker) (outcome, error) {
	ok, err := p.reg.headBlob(ctx, repo, b.Digest)
	if err != nil {
		return 0, err
	}
	if ok {
		return present, nil
	}
	from := p.hints.from(b.Digest.String(), repo)
	isMounted, loc, err := p.reg.startUpload(ctx, repo, b.Digest, from)
	if err != nil {
		return 0, err
	}
	if isMounted {
		return mounted, nil
	}
	if from != "" {
		p.log.Info("mount refused, uploading", "repo", repo, "digest", b.Digest.String(), "from", from)
	}
	return uploaded, p.upload(ctx, loc, b, tr)
}

// upload sends blob b to the upload session at loc: in one PUT, or in
// chunks for blobs over ChunkSize.
func (p *pusher) upload(ctx context.Context, loc *url.URL, b v1.Descriptor, tr *tracker) error {
	chunk := p.opt.ChunkSize
	if chunk == 0 {
		chunk = 64 << 20
	}
	r, err := p.openBlob(ctx, b, 0, tr)
	if err != nil {
		return err
	}
	defer func() { r.Close() }()
	if chunk < 0 || b.Size <= chunk {
		return p.reg.putBlob(ctx, loc, b.Digest, r, b.Size)
	}
	resumes := 0
	for off := int64(0); off < b.Size; {
		n := min(chunk, b.Size-off)
		next, err := p.reg.patchChunk(ctx, loc, b.Digest, off, n, io.LimitReader(r, n))
		if err == nil {
			loc, off = next, off+n
			continue
		}
		if ctx.Err() != nil || !retryable(err) || resumes >= p.retries() {
			return err
		}
		// Resume where the registry says the upload stands.
		if serr := p.sleep(ctx, resumes); serr != nil {
			return serr
		}
		resumes++
		tr.st.count(func(c *Counts) { c.Retries++ })
		at, next, serr := p.reg.uploadStatus(ctx, loc, b.Digest)
		if serr != nil || at > b.Size {
			return err
		}
		p.log.Info("resuming chunked upload", "digest", b.Digest.String(), "at", at, "err", err)
		r.Close()
		if r, err = p.openBlob(ctx, b, at, tr); err != nil {
			return err
		}
		loc, off = next, at
	}
	if err := r.end(); err != nil {
		return err
	}
	return p.reg.putBlob(ctx, loc, b.Digest, nil, 0)
}

// openBlob opens b in the source, positioned at offset (the bytes before
// it are read and hashed, not sent).
func (p *pusher) openBlob(ctx context.Context, b v1.Descriptor, offset int64, tr *tracker) (*blobReader, error) {
	rc, size, err := p.src.Blob(ctx, b.Digest)
	if err != nil {
		return nil, &sourceError{fmt.Errorf("reading blob %s from %s: %w", short(b.Digest), p.src, err)}
	}
	if size != b.Size {
		rc.Close()
		return nil, &sourceError{fmt.Errorf("blob %s in %s has %d bytes, its descriptor says %d", short(b.Digest), p.src, size, b.Size)}
	}
	if b.Digest.Algorithm != "sha256" {
		rc.Close()
		return nil, &sourceError{fmt.Errorf("blob %s in %s: only sha256 digests are supported", b.Digest, p.src)}
	}
	r := &blobReader{rc: rc, h: sha256.New(), desc: b, where: p.src.String()}
	if offset > 0 {
		if _, err := io.CopyN(io.Discard, r, offset); err != nil {
			r.Close()
			return nil, err
		}
	}
	r.tr = tr
	return r, nil
}

// blobReader reads a blob from the source, counts what is sent, and checks
// at its end that the content has the expected size and digest.
type blobReader struct {
	rc    io.ReadCloser
	h     hash.Hash
	desc  v1.Descriptor
	where string
	n     int64
	tr    *tracker // nil while skipping to a resume offset
}

func (r *blobReader) Read(b []byte) (int, error) {
	n, err := r.rc.Read(b)
	r.h.Write(b[:n])
	r.n += int64(n)
	if r.n > r.desc.Size {
		return 0, r.fail("has more bytes than its descriptor says (%d)", r.desc.Size)
	}
	if r.tr != nil {
		r.tr.sent(int64(n), r.n)
	}
	if err == io.EOF {
		if r.n != r.desc.Size {
			return n, r.fail("has %d bytes, its descriptor says %d", r.n, r.desc.Size)
		}
		if got := fmt.Sprintf("sha256:%x", r.h.Sum(nil)); got != r.desc.Digest.String() {
			return n, r.fail("has digest %s: the source is damaged", got)
		}
		return n, io.EOF
	}
	if err != nil {
		return n, &sourceError{fmt.Errorf("reading blob %s from %s: %w", short(r.desc.Digest), r.where, err)}
	}
	return n, nil
}

// end reads to the end of the blob (which must be there) to check it.
func (r *blobReader) end() error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return r.fail("has more bytes than its descriptor says (%d)", r.desc.Size)
		}
	}
}

func (r *blobReader) fail(format string, args ...any) error {
	return &sourceError{fmt.Errorf("blob %s in %s %s", r.desc.Digest, r.where, fmt.Sprintf(format, args...))}
}

func (r *blobReader) Close() error { return r.rc.Close() }

// tracker counts one blob's bytes sent and its progress (the furthest
// position sent, so that a retry does not count twice in progress).
type tracker struct {
	st   *imageState
	mu   sync.Mutex
	done int64
}

func (t *tracker) sent(n, pos int64) {
	if n > 0 {
		t.st.count(func(c *Counts) { c.BytesSent += n })
	}
	t.credit(pos)
}

// credit reports the blob sent up to pos.
func (t *tracker) credit(pos int64) {
	t.mu.Lock()
	d := pos - t.done
	if d > 0 {
		t.done = pos
	}
	t.mu.Unlock()
	if d > 0 && t.st.prog != nil {
		t.st.prog.Sent(d)
	}
}

// present reports the rest of a blob of size bytes as found present.
func (t *tracker) present(size int64) {
	t.mu.Lock()
	d := size - t.done
	t.done = size
	t.mu.Unlock()
	if d > 0 && t.st.prog != nil {
		t.st.prog.Present(d)
	}
}
