// Package ocistore is a store.Store kept in one repository of an OCI
// registry, so that several stateless `ferry serve` replicas share one store
// and the registry's own storage carries the scale.
//
// Layout in the repository, for a bundle whose OCI image manifest has digest
// sha256:<hex> (H16 = the first 16 hex digits):
//
//	tag ferry-bundle-<H16>  the bundle's OCI image manifest, byte for byte as in
//	                        the bundle file (so its digest is the bundle's
//	                        identity); its config blob is the ferry Manifest and
//	                        its layers are every item blob.
//	tag ferry-import-<H16>  the import record: an OCI artifact (artifactType
//	                        ImportArtifactType) whose config blob is the
//	                        store.BundleInfo as JSON (ImportInfoMediaType), whose
//	                        one layer is the OCI empty blob and whose subject is
//	                        the bundle's manifest.
//
// Invariants:
//   - Import pushes every blob, then (once all are stored) the bundle
//     manifest, then the import record; List reads only import records, so a
//     bundle is listed only when all of it is stored. A killed import leaves List as it was; a rerun uploads only the
//     blobs the registry lacks (existence is checked with HEAD).
//   - Importing a bundle whose import record exists changes nothing, not even
//     the recorded import time.
//   - Everything read from the registry by digest is checked against that
//     digest (and size) before it is used or cached: bundle manifests, ferry
//     manifests, import records' config blobs and item blobs. An import
//     record read by tag must name, as its subject, the bundle its tag and
//     config name. A blob with the wrong digest is refused and never reaches
//     the cache.
//   - The blob cache (Options.CacheDir) holds only verified blobs, each
//     written to a temporary file and renamed to CacheDir/sha256/<hex>, so
//     several processes may share it; concurrent requests in one process for
//     the same blob fetch it once. Nothing is ever evicted; temporary files
//     older than a day (left by killed processes) are removed by Open.
//   - Without Options.PlainHTTP every request goes over https, whatever the
//     registry address (go-containerregistry would otherwise use http for
//     loopback and private addresses).
//   - A shared download of a blob for the cache outlives the callers that
//     give up waiting for it, but not fetchTimeout(size).
//   - The Store holds no state that another replica could contradict: only
//     immutable things (manifests by digest, import records by tag, which
//     are written once) are cached in memory.
//
// Limits: registries cap manifest size (distribution: 4 MiB), so a bundle
// can have about 30,000 distinct item blobs; a ferry Manifest (a blob) may
// be up to 512 MiB.
package ocistore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/store"
)

// Options configures a Store.
type Options struct {
	PlainHTTP bool           // allow http:// registries (tests, intranet); default https
	CacheDir  string         // local blob cache for serving (content-addressed, verified by digest), "" = none
	Auth      authn.Keychain // default: authn.DefaultKeychain (docker config.json)
	Log       *slog.Logger   // default: discard
	// Transport is the HTTP transport to the registry; default remote.DefaultTransport.
	Transport http.RoundTripper
	// Jobs is how many blobs are uploaded at once; default 4.
	Jobs int
}

// Store is a store.Store in an OCI registry repository. It is safe for
// concurrent use.
type Store struct {
	repo   name.Repository
	puller *remote.Puller
	pusher *remote.Pusher
	cache  string
	log    *slog.Logger

	fetches singleflight.Group

	mu        sync.Mutex
	imports   map[string]store.BundleInfo // import tag -> its record (tags are written once)
	manifests map[string]*bundleEntry     // bundle digest -> manifest
}

type bundleEntry struct {
	m     *bundle.Manifest
	sizes map[string]int64 // item digest -> size
}

var _ store.Store = (*Store)(nil)

// Open returns a Store kept in repository ref ("registry.example:5000/ferry/store",
// no scheme: the caller strips "oci://"). It does not contact the registry.
func Open(ctx context.Context, ref string, opt Options) (store.Store, error) {
	var nopts []name.Option
	if opt.PlainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(ref, append(nopts, name.StrictValidation)...)
	if err != nil {
		return nil, fmt.Errorf("opening OCI store %q: %w", ref, err)
	}
	if strings.Contains(ref, "://") {
		return nil, fmt.Errorf("opening OCI store %q: give the repository without a scheme", ref)
	}
	keys := opt.Auth
	if keys == nil {
		keys = authn.DefaultKeychain
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rt := opt.Transport
	if rt == nil {
		rt = remote.DefaultTransport
	}
	if !opt.PlainHTTP {
		rt = httpsOnly{rt}
	}
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	ropts := []remote.Option{
		remote.WithAuthFromKeychain(keys),
		remote.WithTransport(rt),
		remote.WithJobs(jobs),
		remote.WithUserAgent("ferry"),
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, fmt.Errorf("opening OCI store %s: %w", ref, err)
	}
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, fmt.Errorf("opening OCI store %s: %w", ref, err)
	}
	s := &Store{
		repo:      repo,
		puller:    puller,
		pusher:    pusher,
		log:       log.With("store", "oci://"+repo.Name()),
		imports:   make(map[string]store.BundleInfo),
		manifests: make(map[string]*bundleEntry),
	}
	if opt.CacheDir != "" {
		s.cache = filepath.Join(opt.CacheDir, "sha256")
		if err := os.MkdirAll(s.cache, 0o755); err != nil {
			return nil, fmt.Errorf("opening OCI store %s: creating blob cache: %w", ref, err)
		}
		s.removeStaleTemps()
	}
	return s, nil
}

// staleTemp is the age after which a temporary file in the cache is left
// over from a killed process: far longer than fetchTimeout of any real blob.
const staleTemp = 24 * time.Hour

// removeStaleTemps removes temporary files that killed processes left in the
// cache. Fresh ones may be another process's download in progress.
func (s *Store) removeStaleTemps() {
	ents, err := os.ReadDir(s.cache)
	if err != nil {
		s.log.Warn("reading blob cache", "dir", s.cache, "err", err)
		return
	}
	for _, e := range ents {
		if !strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
			p := filepath.Join(s.cache, e.Name())
			if err := os.Remove(p); err != nil {
				s.log.Warn("removing stale temporary file", "file", p, "err", err)
			}
		}
	}
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

// tagHex returns the tag suffix of a bundle digest, checking the digest.
func tagHex(digest string) (string, error) {
	const p = "sha256:"
	h, ok := strings.CutPrefix(digest, p)
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("invalid digest %q", digest)
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return "", fmt.Errorf("invalid digest %q", digest)
	}
	return h[:tagHexLen], nil
}

// isNotFound reports whether err is a registry's 404.
func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// List returns the imported bundles, oldest import first (ties by digest).
func (s *Store) List(ctx context.Context) ([]store.BundleInfo, error) {
	tags, err := s.puller.List(ctx, s.repo)
	if err != nil {
		if isNotFound(err) { // the repository does not exist yet: nothing imported
			return []store.BundleInfo{}, nil
		}
		return nil, fmt.Errorf("listing tags of %s: %w", s.repo, err)
	}
	var infos []store.BundleInfo
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, tag := range tags {
		if !strings.HasPrefix(tag, importTagPrefix) {
			continue
		}
		g.Go(func() error {
			info, err := s.importRecord(gctx, tag)
			if err != nil {
				return err
			}
			mu.Lock()
			infos = append(infos, info)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(infos, func(i, j int) bool {
		if !infos[i].Imported.Equal(infos[j].Imported) {
			return infos[i].Imported.Before(infos[j].Imported)
		}
		return infos[i].Digest < infos[j].Digest
	})
	if infos == nil {
		infos = []store.BundleInfo{}
	}
	return infos, nil
}

// importRecord reads and checks the import record under tag.
func (s *Store) importRecord(ctx context.Context, tag string) (store.BundleInfo, error) {
	s.mu.Lock()
	info, ok := s.imports[tag]
	s.mu.Unlock()
	if ok {
		return info, nil
	}
	info, _, err := s.fetchImportRecord(ctx, s.repo.Tag(tag))
	if err != nil {
		return store.BundleInfo{}, err
	}
	if want := importTagPrefix + info.Digest[len("sha256:"):][:tagHexLen]; want != tag {
		return store.BundleInfo{}, fmt.Errorf("import record %s: records bundle %s, whose tag would be %s", s.repo.Tag(tag), info.Digest, want)
	}
	s.mu.Lock()
	s.imports[tag] = info
	s.mu.Unlock()
	return info, nil
}

// fetchImportRecord fetches the import record ref and checks that it is one
// and that the bundle it records is its subject. It returns the record and the
// record's manifest digest.
func (s *Store) fetchImportRecord(ctx context.Context, ref name.Reference) (store.BundleInfo, string, error) {
	var info store.BundleInfo
	desc, err := s.puller.Get(ctx, ref)
	if err != nil {
		return info, "", fmt.Errorf("fetching import record %s: %w", ref, err)
	}
	if int64(len(desc.Manifest)) > maxImportManifest {
		return info, "", fmt.Errorf("import record %s: manifest of %d bytes is too large", ref, len(desc.Manifest))
	}
	var m ociManifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return info, "", fmt.Errorf("import record %s: parsing manifest: %w", ref, err)
	}
	if m.ArtifactType != ImportArtifactType || m.Config.MediaType != ImportInfoMediaType || m.Subject == nil {
		return info, "", fmt.Errorf("import record %s: not a ferry import record (artifactType %q, config %q)", ref, m.ArtifactType, m.Config.MediaType)
	}
	data, err := s.readSmallBlob(ctx, m.Config, maxImportInfo)
	if err != nil {
		return info, "", fmt.Errorf("import record %s: %w", ref, err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, "", fmt.Errorf("import record %s: parsing %s: %w", ref, m.Config.Digest, err)
	}
	if info.Digest != m.Subject.Digest {
		return info, "", fmt.Errorf("import record %s: records bundle %s but its subject is %s", ref, info.Digest, m.Subject.Digest)
	}
	if _, err := tagHex(info.Digest); err != nil {
		return info, "", fmt.Errorf("import record %s: %w", ref, err)
	}
	return info, desc.Digest.String(), nil
}

// readSmallBlob fetches a blob of at most max bytes and checks its size and digest.
func (s *Store) readSmallBlob(ctx context.Context, d descriptor, max int64) ([]byte, error) {
	if _, err := tagHex(d.Digest); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if d.Size < 0 || d.Size > max {
		return nil, fmt.Errorf("blob %s: size %d out of range (limit %d)", d.Digest, d.Size, max)
	}
	var buf bytes.Buffer
	if err := s.fetchBlob(ctx, d.Digest, d.Size, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fetchBlob copies blob digest of the given size from the registry to w,
// failing unless exactly size bytes hashing to digest arrive.
func (s *Store) fetchBlob(ctx context.Context, digest string, size int64, w io.Writer) error {
	ref := s.repo.Digest(digest)
	l, err := s.puller.Layer(ctx, ref)
	if err != nil {
		return fmt.Errorf("fetching blob %s: %w", digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("fetching blob %s: %w (%w)", digest, fs.ErrNotExist, err)
		}
		return fmt.Errorf("fetching blob %s: %w", digest, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(rc, size+1))
	if err != nil {
		return fmt.Errorf("fetching blob %s: %w", digest, err)
	}
	if n != size {
		return fmt.Errorf("fetching blob %s: registry sent %d bytes or more, want %d", digest, n, size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("fetching blob %s: digest mismatch (content hashes to %s)", digest, got)
	}
	return nil
}

// Manifest returns the ferry manifest of a bundle in the registry, verified
// against bundleDigest. Manifests are cached in memory (they are immutable).
// The error wraps fs.ErrNotExist when the registry has no such bundle.
func (s *Store) Manifest(ctx context.Context, bundleDigest string) (*bundle.Manifest, error) {
	e, err := s.bundle(ctx, bundleDigest)
	if err != nil {
		return nil, err
	}
	return e.m, nil
}

func (s *Store) bundle(ctx context.Context, bundleDigest string) (*bundleEntry, error) {
	if _, err := tagHex(bundleDigest); err != nil {
		return nil, fmt.Errorf("reading bundle manifest: %w", err)
	}
	s.mu.Lock()
	e, ok := s.manifests[bundleDigest]
	s.mu.Unlock()
	if ok {
		return e, nil
	}
	v, err, _ := s.fetches.Do("manifest:"+bundleDigest, func() (any, error) {
		return s.fetchBundle(ctx, bundleDigest)
	})
	if err != nil {
		return nil, err
	}
	e = v.(*bundleEntry)
	s.mu.Lock()
	s.manifests[bundleDigest] = e
	s.mu.Unlock()
	return e, nil
}

func (s *Store) fetchBundle(ctx context.Context, bundleDigest string) (*bundleEntry, error) {
	ref := s.repo.Digest(bundleDigest)
	desc, err := s.puller.Get(ctx, ref)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("fetching bundle %s: %w (%w)", ref, fs.ErrNotExist, err)
		}
		return nil, fmt.Errorf("fetching bundle %s: %w", ref, err)
	}
	if got := bundle.Digest(desc.Manifest); got != bundleDigest {
		return nil, fmt.Errorf("bundle %s: manifest digest mismatch (content hashes to %s)", ref, got)
	}
	var om ociManifest
	if err := json.Unmarshal(desc.Manifest, &om); err != nil {
		return nil, fmt.Errorf("bundle %s: parsing OCI manifest: %w", ref, err)
	}
	if om.MediaType != ociManifestMediaType || om.ArtifactType != bundle.ArtifactType || om.Config.MediaType != bundle.ManifestMediaType {
		return nil, fmt.Errorf("bundle %s: not a ferry bundle (mediaType %q, artifactType %q, config %q)", ref, om.MediaType, om.ArtifactType, om.Config.MediaType)
	}
	config, err := s.readSmallBlob(ctx, om.Config, maxBundleConfig)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: ferry manifest: %w", ref, err)
	}
	m, err := bundle.DecodeManifest(config)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", ref, err)
	}
	layers := make(map[string]int64, len(om.Layers))
	for _, l := range om.Layers {
		layers[l.Digest] = l.Size
	}
	sizes := make(map[string]int64, len(m.Items))
	for _, it := range m.Items {
		if _, ok := layers[it.Digest]; !ok && m.Base != nil {
			// A delta leaves this blob to its base, which is in the same
			// repository (its import record references it).
			sizes[it.Digest] = it.Size
			continue
		}
		if sz, ok := layers[it.Digest]; !ok || sz != it.Size {
			return nil, fmt.Errorf("bundle %s: item %s: blob %s is not a layer of that size", ref, it.File, it.Digest)
		}
		sizes[it.Digest] = it.Size
	}
	return &bundleEntry{m: m, sizes: sizes}, nil
}

// fileBlob is a store.Blob read from a local file.
type fileBlob struct {
	*os.File
	size int64
}

func (b *fileBlob) Size() int64 { return b.size }

// Blob opens an item blob of a bundle (one listed or not: a bundle pushed by
// an import that did not finish can be read, only List hides it). The blob is fetched from the registry
// and verified; with a cache it is kept there and later calls read the cached
// file, without one it lives in an unlinked temporary file until Close. The
// error wraps fs.ErrNotExist when the bundle has no such item.
func (s *Store) Blob(ctx context.Context, bundleDigest, digest string) (store.Blob, error) {
	e, err := s.bundle(ctx, bundleDigest)
	if err != nil {
		return nil, err
	}
	size, ok := e.sizes[digest]
	if !ok {
		return nil, fmt.Errorf("bundle %s: blob %s: %w", bundleDigest, digest, fs.ErrNotExist)
	}
	if s.cache == "" {
		return s.tempBlob(ctx, digest, size)
	}
	path := filepath.Join(s.cache, digest[len("sha256:"):])
	if b, err := openCached(path, size); err == nil {
		return b, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// One download per blob at a time; it outlives a caller that gives up so
	// that the others waiting for it still get it.
	ch := s.fetches.DoChan("blob:"+digest, func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout(size))
		defer cancel()
		return nil, s.cacheBlob(dctx, digest, size, path)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("fetching blob %s: %w", digest, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
	}
	return openCached(path, size)
}

// fetchTimeout bounds a shared blob download, which no single caller can
// cancel: a minute plus one second per MiB.
func fetchTimeout(size int64) time.Duration {
	return time.Minute + time.Duration(size>>20)*time.Second
}

func openCached(path string, size int64) (*fileBlob, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading cached blob: %w", err)
	}
	if fi.Size() != size {
		f.Close()
		return nil, fmt.Errorf("cached blob %s has %d bytes, want %d", path, fi.Size(), size)
	}
	return &fileBlob{File: f, size: size}, nil
}

// cacheBlob downloads and verifies a blob into a temporary file in the cache
// and renames it to path.
func (s *Store) cacheBlob(ctx context.Context, digest string, size int64, path string) error {
	if _, err := os.Stat(path); err == nil { // another caller just finished it
		return nil
	}
	f, err := os.CreateTemp(s.cache, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("caching blob %s: %w", digest, err)
	}
	tmp := f.Name()
	start := time.Now()
	err = s.fetchBlob(ctx, digest, size, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("caching blob %s: %w", digest, cerr)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	s.log.Debug("cached blob", "digest", digest, "size", size, "duration", time.Since(start))
	return nil
}

// tempBlob downloads and verifies a blob into an unlinked temporary file.
func (s *Store) tempBlob(ctx context.Context, digest string, size int64) (*fileBlob, error) {
	f, err := os.CreateTemp("", "ferry-blob-*")
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", digest, err)
	}
	os.Remove(f.Name())
	if err := s.fetchBlob(ctx, digest, size, f); err != nil {
		f.Close()
		return nil, err
	}
	return &fileBlob{File: f, size: size}, nil
}

// Import pushes a bundle the caller has verified and records its import. It
// is visible to List only once everything is in the registry, and does
// nothing if the bundle's import record is already there.
func (s *Store) Import(ctx context.Context, r *bundle.Reader, info store.BundleInfo) error {
	digest := r.Digest()
	h16, err := tagHex(digest)
	if err != nil {
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	bundleRef := s.repo.Tag(bundleTagPrefix + h16)
	importRef := s.repo.Tag(importTagPrefix + h16)

	// Already imported?
	old, _, err := s.fetchImportRecord(ctx, importRef)
	switch {
	case err == nil && old.Digest == digest:
		s.log.Info("bundle already imported", "bundle", digest, "file", r.Path())
		return nil
	case err == nil:
		return fmt.Errorf("importing %s: tag %s already records bundle %s", r.Path(), importRef, old.Digest)
	case !isNotFound(err):
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	if d, err := s.puller.Head(ctx, bundleRef); err == nil && d.Digest.String() != digest {
		return fmt.Errorf("importing %s: tag %s already holds bundle %s", r.Path(), bundleRef, d.Digest)
	} else if err != nil && !isNotFound(err) {
		return fmt.Errorf("importing %s: checking %s: %w", r.Path(), bundleRef, err)
	}

	if b := r.Manifest().Base; b != nil {
		infos, err := s.List(ctx)
		if err != nil {
			return fmt.Errorf("importing %s: %w", r.Path(), err)
		}
		if !slices.ContainsFunc(infos, func(in store.BundleInfo) bool { return in.ManifestDigest == b.ManifestDigest }) {
			return fmt.Errorf("importing %s: it is a delta of %s, which is not in store oci://%s: import that bundle first", r.Path(), b, s.repo.Name())
		}
	}
	info = store.Describe(r, r.Size(), info)

	start := time.Now()
	img, manifest, err := bundleImage(r)
	if err != nil {
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	if err := s.pusher.Push(ctx, bundleRef, img); err != nil {
		return fmt.Errorf("importing %s: pushing bundle to %s: %w", r.Path(), bundleRef, err)
	}
	rec, err := importImage(info, descriptor{
		MediaType:    ociManifestMediaType,
		ArtifactType: bundle.ArtifactType,
		Digest:       digest,
		Size:         int64(len(manifest)),
	}, r.BaseBlobs())
	if err != nil {
		return fmt.Errorf("importing %s: %w", r.Path(), err)
	}
	if err := s.pusher.Push(ctx, importRef, rec); err != nil {
		return fmt.Errorf("importing %s: pushing import record to %s: %w", r.Path(), importRef, err)
	}
	s.mu.Lock()
	s.imports[importTagPrefix+h16] = info
	s.mu.Unlock()
	s.log.Info("imported bundle", "bundle", digest, "file", r.Path(), "items", info.Items, "size", info.Size, "duration", time.Since(start))
	return nil
}

// bundleImage is the bundle r as an image whose blobs stream from the file.
func bundleImage(r *bundle.Reader) (v1.Image, []byte, error) {
	manifest, err := readAll(r, r.Digest(), maxBundleManifest)
	if err != nil {
		return nil, nil, err
	}
	open := func(digest string) (io.ReadCloser, error) {
		sr, err := r.Open(digest)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(sr), nil
	}
	img, err := newRawImage(manifest, open, func(d descriptor) ([]byte, error) {
		return readAll(r, d.Digest, maxBundleConfig)
	})
	return img, manifest, err
}

// readAll reads a metadata blob of the bundle and checks its digest.
func readAll(r *bundle.Reader, digest string, max int64) ([]byte, error) {
	sr, err := r.Open(digest)
	if err != nil {
		return nil, err
	}
	if sr.Size() > max {
		return nil, fmt.Errorf("%s: blob %s: %d bytes, more than %d", r.Path(), digest, sr.Size(), max)
	}
	data, err := io.ReadAll(sr)
	if err != nil {
		return nil, fmt.Errorf("%s: reading blob %s: %w", r.Path(), digest, err)
	}
	if got := bundle.Digest(data); got != digest {
		return nil, fmt.Errorf("%s: blob %s: digest mismatch (content hashes to %s)", r.Path(), digest, got)
	}
	return data, nil
}

// importImage builds the import record of info for the bundle manifest
// subject. For a delta, the record's layers also list the blobs it reads
// from its base, so that the registry keeps them (its garbage collection
// counts references by blob) after the base is pruned.
func importImage(info store.BundleInfo, subject descriptor, baseBlobs []bundle.Blob) (v1.Image, error) {
	config, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encoding import record: %w", err)
	}
	empty := []byte(emptyJSON)
	m := ociManifest{
		SchemaVersion: 2,
		MediaType:     ociManifestMediaType,
		ArtifactType:  ImportArtifactType,
		Config:        descriptor{MediaType: ImportInfoMediaType, Digest: bundle.Digest(config), Size: int64(len(config))},
		Layers:        []descriptor{{MediaType: emptyMediaType, Digest: bundle.Digest(empty), Size: int64(len(empty))}},
		Subject:       &subject,
	}
	for _, b := range baseBlobs {
		m.Layers = append(m.Layers, descriptor{MediaType: bundle.ItemMediaType, Digest: b.Digest, Size: b.Size})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding import record: %w", err)
	}
	blobs := map[string][]byte{bundle.Digest(empty): empty}
	open := func(digest string) (io.ReadCloser, error) {
		b, ok := blobs[digest]
		if !ok {
			return nil, fmt.Errorf("import record: no blob %s", digest)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return newRawImage(raw, open, func(descriptor) ([]byte, error) { return config, nil })
}

// Prune drops a bundle: its import record and bundle manifest are deleted
// from the repository. Blobs stay as long as another manifest references
// them (a delta's import record references what it reads from its base);
// the registry's garbage collection frees the rest, so FreedBytes counts
// the bytes it can free. The registry must allow deletes.
func (s *Store) Prune(ctx context.Context, bundleDigest string) (store.PruneReport, error) {
	var rep store.PruneReport
	h16, err := tagHex(bundleDigest)
	if err != nil {
		return rep, fmt.Errorf("pruning: %w", err)
	}
	importRef := s.repo.Tag(importTagPrefix + h16)
	info, recDigest, err := s.fetchImportRecord(ctx, importRef)
	if err != nil {
		if isNotFound(err) {
			return rep, fmt.Errorf("pruning: bundle %s is not in store oci://%s: %w", bundleDigest, s.repo.Name(), fs.ErrNotExist)
		}
		return rep, fmt.Errorf("pruning %s: %w", bundleDigest, err)
	}
	rep.Bundle = info
	e, err := s.bundle(ctx, bundleDigest)
	if err != nil {
		return rep, fmt.Errorf("pruning %s: %w", bundleDigest, err)
	}
	infos, err := s.List(ctx)
	if err != nil {
		return rep, err
	}
	others := map[string]bool{}
	for _, in := range infos {
		if in.Digest == bundleDigest {
			continue
		}
		o, err := s.bundle(ctx, in.Digest)
		if err != nil {
			return rep, fmt.Errorf("pruning %s: %w", bundleDigest, err)
		}
		for d := range o.sizes {
			others[d] = true
		}
	}
	for d, n := range e.sizes {
		if others[d] {
			rep.KeptBlobs++
			rep.KeptBytes += n
		} else {
			rep.FreedBytes += n
		}
	}
	// The record first: List stops showing the bundle before it goes.
	if err := s.pusher.Delete(ctx, s.repo.Digest(recDigest)); err != nil {
		return rep, fmt.Errorf("pruning %s: deleting import record %s (does the registry allow deletes?): %w", bundleDigest, importRef, err)
	}
	s.mu.Lock()
	delete(s.imports, importTagPrefix+h16)
	s.mu.Unlock()
	if err := s.pusher.Delete(ctx, s.repo.Digest(bundleDigest)); err != nil && !isNotFound(err) {
		return rep, fmt.Errorf("pruning %s: deleting bundle manifest: %w", bundleDigest, err)
	}
	return rep, nil
}
