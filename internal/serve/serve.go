// Package serve answers the Go module proxy protocol and the checksum
// database protocol from the bundles of a store: an intranet GOPROXY fed by
// ferry bundles.
//
// Invariants:
//   - Every answer comes from the store: a blob of an imported bundle, or
//     bytes generated from the manifests (@v/list, @latest, supported). The
//     server never makes a network call and never builds a file-system path
//     from a request: the index is a map from proxy path to blob.
//   - The index is rebuilt as a whole by Refresh and swapped atomically, so a
//     request sees either the state before an import or the state after it,
//     never a half-imported one.
//   - Under /v2 the server answers the OCI distribution API, read-only,
//     for the container images the bundles carry (invariants in ociapi.go).
//   - For module files the first imported bundle wins; for checksum database
//     lookups and tree heads the copy signed with the larger tree wins; tiles
//     are a union (a tile path names the same bytes in every snapshot of one
//     database).
//   - @v/list lists every version with a .mod file (for golang.org/toolchain:
//     with a .zip), semver-sorted, pseudo-versions excluded except for the
//     toolchain module, exactly like the directory install writes.
//   - A blob of more than 64 KiB (a zip) is never held in memory: it is sent
//     from the bundle file with sendfile (local store), else streamed
//     through the copy buffer of net/http. Smaller blobs (.info, .mod,
//     tiles, small zips) are read whole into a pooled buffer with one read.
//   - An encoded zip (bundle.Item.Encoded) is answered with the zip it
//     decodes to, under that zip's digest (ETag) and size: from the decoded
//     file the store keeps (store.FileStore: the local store, which checked
//     it at import), exactly as a blob, else decoded as it is sent (pooled
//     decoders, checked against the manifest's size and digest; the
//     connection is cut short if they differ), without Range support.
//   - Compressed on the wire, never per request: a plain request (below)
//     for an encoded zip whose Accept-Encoding accepts gzip (the go
//     command's net/http client sends "gzip" and decompresses) is answered
//     with the gzip the store wrote at import (store.GzipStore: the local
//     store), as a blob (sendfile), with Content-Encoding: gzip, the
//     gzip's Content-Length, ETag "<zip digest>+gzip" (another
//     representation, another tag) and no Accept-Ranges. Every other
//     request for it (no gzip accepted, or Range, If-Range, If-Match,
//     If-Unmodified-Since; no gzip kept) gets the decoded zip as above, so
//     a Range is always of the decoded zip's bytes (206, identity). HEAD
//     gives the headers GET would. Answers for an encoded zip carry
//     Vary: Accept-Encoding when the store keeps gzips. The go command
//     checks the h1: hash of the zip it decompressed, as of any zip.
//   - A request with Range, If-Match, If-Unmodified-Since or If-Range is
//     answered by http.ServeContent; the others (the go command's) get the
//     same answer (200, 304 for a matching If-None-Match, headers for HEAD)
//     from a shorter path.
package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-dev/ferry/internal/fetch"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// DefaultRefresh is how often a server rereads the store by default.
const DefaultRefresh = 10 * time.Second

// maxPath is the longest request path the server accepts.
const maxPath = 4096

// Cache-Control values.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheShort     = "public, max-age=60"
)

// Options configure a Server.
type Options struct {
	// Log receives refresh and error messages; nil discards them.
	Log *slog.Logger
}

// Server answers GOPROXY and checksum database requests from a store. It is
// an http.Handler for the protocol paths; Handler adds the other routes.
type Server struct {
	st    store.Store
	files store.FileStore // st, if it keeps decoded files; else nil
	gz    store.GzipStore // st, if it keeps their gzips; else nil
	log   *slog.Logger

	ix        atomic.Pointer[index]
	refreshMu sync.Mutex // one Refresh at a time
	bufs      sync.Pool  // *[]byte of smallMax bytes, for sendSmall
	decoders  zipcodec.Decoders
}

// New returns a server over st. It serves nothing (404, and Ready is false)
// until the first Refresh.
func New(st store.Store, opt Options) (*Server, error) {
	if st == nil {
		return nil, errors.New("serve: no store")
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := &Server{st: st, log: log}
	srv.files, _ = st.(store.FileStore)
	srv.gz, _ = st.(store.GzipStore)
	srv.bufs.New = func() any { b := make([]byte, smallMax); return &b }
	return srv, nil
}

// Refresh rebuilds the index from the store and swaps it in, unless the
// store lists the same bundles as at the last Refresh. On error the previous
// index stays.
func (s *Server) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	infos, err := s.st.List(ctx)
	if err != nil {
		return fmt.Errorf("refreshing the index: listing the store: %w", err)
	}
	if cur := s.ix.Load(); cur != nil && sameBundles(cur.bundles, infos) {
		return nil
	}
	ix, err := buildIndex(ctx, s.st, infos, s.log)
	if err != nil {
		return fmt.Errorf("refreshing the index: %w", err)
	}
	old := s.ix.Swap(ix)
	if old == nil || len(old.bundles) != len(ix.bundles) {
		s.log.Info("index refreshed", "bundles", len(ix.bundles), "files", len(ix.files), "modules", len(ix.modules))
	}
	return nil
}

// sameBundles reports whether a and b list the same bundles in the same order.
func sameBundles(a, b []store.BundleInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Digest != b[i].Digest {
			return false
		}
	}
	return true
}

// RefreshEvery calls Refresh every d until ctx is done, logging failures.
func (s *Server) RefreshEvery(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("refresh failed; still serving the previous index", "err", err)
			}
		}
	}
}

// Ready reports whether a Refresh has succeeded.
func (s *Server) Ready() bool { return s.ix.Load() != nil }

// Modules returns the modules the server lists (not the toolchain module), sorted by path.
func (s *Server) Modules() []Module {
	if ix := s.ix.Load(); ix != nil {
		return ix.modules
	}
	return nil
}

// Toolchains returns the Go versions (goX.Y.Z) of the toolchains carried.
func (s *Server) Toolchains() []string {
	if ix := s.ix.Load(); ix != nil {
		return ix.toolchains
	}
	return nil
}

// Bundles returns the bundles of the store at the last Refresh.
func (s *Server) Bundles() []store.BundleInfo {
	if ix := s.ix.Load(); ix != nil {
		return ix.bundles
	}
	return nil
}

// StoreSize returns the bytes the store held at the last Refresh: its
// bundle files, and the decoded zips it keeps (store.FileStore) and their
// gzips (store.GzipStore), each once.
func (s *Server) StoreSize() int64 {
	if ix := s.ix.Load(); ix != nil {
		return ix.storeSize
	}
	return 0
}

// Kind classifies a request for metrics and logs, with the kinds of package
// metrics: info, mod, zip, list, latest (@latest), sumdb (any checksum
// database path), page (the browse pages), oci-manifest and oci-blob (OCI
// distribution API), or other.
func Kind(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/" || strings.HasPrefix(p, "/mod/"):
		return "page"
	case strings.HasPrefix(p, "/v2/"):
		switch {
		case strings.Contains(p, "/manifests/"):
			return "oci-manifest"
		case strings.Contains(p, "/blobs/"):
			return "oci-blob"
		}
		return "other"
	case strings.HasPrefix(p, "/sumdb/"):
		return "sumdb"
	case strings.HasSuffix(p, "/@v/list"):
		return "list"
	case strings.HasSuffix(p, "/@latest"):
		return "latest"
	case strings.Contains(p, "/@v/"):
		switch {
		case strings.HasSuffix(p, ".info"):
			return "info"
		case strings.HasSuffix(p, ".mod"):
			return "mod"
		case strings.HasSuffix(p, ".zip"):
			return "zip"
		}
	}
	return "other"
}

// ServeHTTP answers a GOPROXY or checksum database request (GET or HEAD).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p, status, msg := checkRequest(r)
	if status != 0 {
		http.Error(w, msg, status)
		return
	}
	ix := s.ix.Load()
	if ix == nil {
		http.Error(w, "not ready: the store has not been read yet", http.StatusServiceUnavailable)
		return
	}
	t, ok := ix.files[p]
	if !ok {
		w.Header().Set("Cache-Control", cacheShort)
		http.Error(w, "not found: "+p, http.StatusNotFound)
		return
	}
	s.serveTarget(w, r, p, t)
}

// serveTarget answers r (GET or HEAD) with t; p names it in logs. The
// Content-Type is t.mediaType, else the one of its kind.
func (s *Server) serveTarget(w http.ResponseWriter, r *http.Request, p string, t *target) {
	// Slow clients: a deadline that suits the size (ignored where the
	// writer does not support it; the server's WriteTimeout is the backstop).
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeDeadline(t.size)))
	h := w.Header()
	h.Set("ETag", `"`+t.digest+`"`)
	if t.mediaType != "" {
		h.Set("Content-Type", t.mediaType)
	} else {
		h.Set("Content-Type", contentType(t.kind))
	}
	if t.immutable {
		h.Set("Cache-Control", cacheImmutable)
	} else {
		h.Set("Cache-Control", cacheShort)
	}
	if t.data != nil {
		if plain(r) {
			if !answered(w, r, t.size, true) {
				w.WriteHeader(http.StatusOK)
				w.Write(t.data)
			}
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(t.data))
		return
	}
	var b store.Blob
	if t.enc != nil {
		// An encoded zip: to a plain request that accepts gzip, the gzip
		// the store keeps of it; else the decoded file the store keeps,
		// sent as any other blob; without one, the zip is decoded as it
		// is sent.
		if s.gz != nil {
			h.Set("Vary", "Accept-Encoding")
			if plain(r) && acceptsGzip(r.Header) {
				if gz := s.gzipFile(r.Context(), p, t); gz != nil {
					s.sendGzip(w, r, p, t, gz)
					return
				}
			}
		}
		if b = s.decodedFile(r.Context(), p, t); b == nil {
			s.sendDecoded(w, r, p, t)
			return
		}
	} else {
		var err error
		if b, err = s.st.Blob(r.Context(), t.bundle, t.digest); err != nil {
			s.log.Error("opening blob", "path", p, "bundle", t.bundle, "digest", t.digest, "err", err)
			internalError(w, p)
			return
		}
	}
	defer b.Close()
	if b.Size() != t.size {
		s.log.Error("blob size differs from the manifest", "path", p, "digest", t.digest, "size", b.Size(), "want", t.size)
		internalError(w, p)
		return
	}
	if !plain(r) {
		http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(b, 0, b.Size()))
		return
	}
	if answered(w, r, t.size, true) {
		return
	}
	s.sendBlob(w, r, p, t, b)
}

// sendBlob sends b, the t.size bytes of the answer t to a plain GET, with
// sendfile if it is part of a local file and large, else with one read if
// small, else through a copy buffer. Headers are set (answered).
func (s *Server) sendBlob(w http.ResponseWriter, r *http.Request, p string, t *target, b store.Blob) {
	if fr, ok := b.(fileRanger); ok && t.size >= sendfileMin {
		s.sendFileRange(w, r, t, fr)
		return
	}
	if t.size <= smallMax {
		s.sendSmall(w, t, p, b)
		return
	}
	w.WriteHeader(http.StatusOK)
	if n, err := io.Copy(w, io.NewSectionReader(b, 0, t.size)); err != nil || n != t.size {
		s.log.Debug("sending blob", "path", p, "sent", n, "size", t.size, "err", err)
	}
}

// gzipETag is the ETag of the gzip of the answer whose digest is digest:
// another representation, so another tag.
func gzipETag(digest string) string { return `"` + digest + `+gzip"` }

// gzipFile opens the gzip that the store keeps of the encoded target t's
// decoded zip (store.GzipStore), or returns nil if it keeps none.
func (s *Server) gzipFile(ctx context.Context, p string, t *target) store.Blob {
	b, err := s.gz.Gzip(ctx, t.digest)
	if err != nil {
		lvl := slog.LevelWarn
		if errors.Is(err, fs.ErrNotExist) {
			lvl = slog.LevelDebug // a bundle imported by a ferry that kept none
		}
		s.log.Log(ctx, lvl, "no gzip of the decoded zip; sending it uncompressed", "path", p, "digest", t.digest, "err", err)
		return nil
	}
	return b
}

// sendGzip answers a plain request for the encoded zip t with gz, the gzip
// of its decoded zip: Content-Encoding gzip, the gzip's length, ETag
// gzipETag. No Accept-Ranges: ranges are of the decoded zip, which a
// request with Range gets (http.ServeContent), under its own ETag.
func (s *Server) sendGzip(w http.ResponseWriter, r *http.Request, p string, t *target, gz store.Blob) {
	defer gz.Close()
	h := w.Header()
	h.Set("ETag", gzipETag(t.digest))
	h.Set("Content-Encoding", "gzip")
	a := *t // the answer: the gzip's bytes
	a.size = gz.Size()
	if answered(w, r, a.size, false) {
		return
	}
	s.sendBlob(w, r, p, &a, gz)
}

// acceptsGzip reports whether the Accept-Encoding of a request accepts
// gzip: "gzip" (or "x-gzip") with a weight above 0, or "*" with one when
// gzip is not named. A weight that does not parse counts as 0.
func acceptsGzip(h http.Header) bool {
	star := false
	for _, v := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			for _, param := range strings.Split(params, ";") {
				name, val, _ := strings.Cut(param, "=")
				if strings.EqualFold(strings.TrimSpace(name), "q") {
					var err error
					if q, err = strconv.ParseFloat(strings.TrimSpace(val), 64); err != nil {
						q = 0
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				return q > 0
			case "*":
				star = q > 0
			}
		}
	}
	return star
}

// decodedFile opens the decoded zip that the store keeps for the encoded
// target t (store.FileStore), or returns nil if it keeps none.
func (s *Server) decodedFile(ctx context.Context, p string, t *target) store.Blob {
	if s.files == nil {
		return nil
	}
	b, err := s.files.File(ctx, t.digest)
	if err != nil {
		// Not there (a bundle imported by a ferry that kept none) is
		// ordinary; anything else is worth a look, but decoding works.
		lvl := slog.LevelWarn
		if errors.Is(err, fs.ErrNotExist) {
			lvl = slog.LevelDebug
		}
		s.log.Log(ctx, lvl, "no decoded file; decoding the blob", "path", p, "digest", t.digest, "err", err)
		return nil
	}
	if b.Size() != t.size {
		b.Close()
		s.log.Warn("decoded file size differs from the manifest; decoding the blob", "path", p, "digest", t.digest, "size", b.Size(), "want", t.size)
		return nil
	}
	return b
}

// sendDecoded answers with the zip that t's stored blob encodes, decoded
// as it is sent. Range requests get the whole zip (a server may ignore
// Range; the go command never sends one).
func (s *Server) sendDecoded(w http.ResponseWriter, r *http.Request, p string, t *target) {
	b, err := s.st.Blob(r.Context(), t.bundle, t.enc.digest)
	if err != nil {
		s.log.Error("opening blob", "path", p, "bundle", t.bundle, "digest", t.enc.digest, "err", err)
		internalError(w, p)
		return
	}
	defer b.Close()
	if b.Size() != t.enc.size {
		s.log.Error("blob size differs from the manifest", "path", p, "digest", t.enc.digest, "size", b.Size(), "want", t.enc.size)
		internalError(w, p)
		return
	}
	if answered(w, r, t.size, false) {
		return
	}
	w.WriteHeader(http.StatusOK)
	if err := s.decoders.Decode(r.Context(), w, io.NewSectionReader(b, 0, t.enc.size), t.size, t.digest); err != nil {
		// The client went away, or the blob is bad (the connection is
		// closed with a short or wrong body, which the go command refuses).
		s.log.Debug("sending decoded blob", "path", p, "digest", t.enc.digest, "err", err)
	}
}

// plain reports whether r asks for the whole answer with no precondition but
// If-None-Match, as the go command does: such requests are answered without
// http.ServeContent, whose general Range and precondition handling reads a
// small blob in two pieces and a large one without sendfile. Other requests
// go through http.ServeContent.
func plain(r *http.Request) bool {
	h := r.Header
	return h.Get("Range") == "" && h.Get("If-Match") == "" && h.Get("If-Unmodified-Since") == "" && h.Get("If-Range") == ""
}

// answered answers a plain request that needs no body, as http.ServeContent
// would: 304 for a matching If-None-Match, the headers alone for HEAD. For
// a GET it sets Content-Length (size) and, with ranges, Accept-Ranges, and
// reports false. ETag, Content-Type, Cache-Control and any
// Content-Encoding are already set.
func answered(w http.ResponseWriter, r *http.Request, size int64, ranges bool) bool {
	h := w.Header()
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, h.Get("ETag")) {
		h.Del("Content-Type")
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	if ranges {
		h.Set("Accept-Ranges", "bytes")
	}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return true
	}
	return false
}

// internalError answers 500 for path p, without the headers of the answer.
func internalError(w http.ResponseWriter, p string) {
	h := w.Header()
	for _, k := range []string{"ETag", "Cache-Control", "Accept-Ranges", "Content-Length", "Content-Encoding"} {
		h.Del(k)
	}
	http.Error(w, "internal error reading "+p, http.StatusInternalServerError)
}

// fileRanger is implemented by blobs that are a byte range of a local file
// (package local's), which can be sent with sendfile.
type fileRanger interface {
	FileRange() (path string, offset int64)
}

// sendfileMin is the smallest blob sent straight from its file: smaller ones
// are read whole and go out with the headers in as few writes as the
// connection's buffer allows.
const sendfileMin = 64 << 10

// smallMax is the largest blob read whole into memory (a pooled buffer).
const smallMax = 64 << 10

// sendSmall sends blob b of t (at most smallMax bytes) with one read of the
// store: a .info, .mod, tile or small zip. Headers are set (answered).
func (s *Server) sendSmall(w http.ResponseWriter, t *target, p string, b store.Blob) {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := (*bp)[:t.size]
	// ReaderAt may return io.EOF with a full buffer, and a SectionReader
	// does for an empty one.
	if n, err := b.ReadAt(buf, 0); n < len(buf) {
		s.log.Error("reading blob", "path", p, "digest", t.digest, "read", n, "err", err)
		internalError(w, p)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(buf)
}

// sendFileRange sends blob t, a byte range of a local file, letting the
// kernel copy the bytes (sendfile). Headers are set (answered).
func (s *Server) sendFileRange(w http.ResponseWriter, r *http.Request, t *target, fr fileRanger) {
	path, offset := fr.FileRange()
	f, err := os.Open(path)
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		s.log.Error("opening blob file", "path", path, "digest", t.digest, "err", err)
		internalError(w, strings.TrimPrefix(r.URL.Path, "/"))
		return
	}
	defer f.Close()
	w.WriteHeader(http.StatusOK)
	if n, err := io.Copy(w, io.LimitReader(f, t.size)); err != nil || n != t.size {
		// The client went away, or the file is short: the connection is
		// closed with a short body, which the client sees as an error.
		s.log.Debug("sending blob", "path", r.URL.Path, "sent", n, "size", t.size, "err", err)
	}
}

// etagMatch reports whether an If-None-Match header matches etag.
func etagMatch(header, etag string) bool {
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimPrefix(strings.TrimSpace(c), "W/")
		if c == "*" || c == etag {
			return true
		}
	}
	return false
}

// checkRequest validates the request path and returns it without the
// leading slash, or an HTTP status and a one-line message.
func checkRequest(r *http.Request) (p string, status int, msg string) {
	raw := r.URL.EscapedPath()
	if len(raw) > maxPath || len(r.URL.Path) > maxPath {
		return "", http.StatusBadRequest, "bad request: path too long"
	}
	if r.URL.RawQuery != "" {
		return "", http.StatusBadRequest, "bad request: query strings are not part of the protocol"
	}
	lower := strings.ToLower(raw)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") {
		return "", http.StatusBadRequest, "bad request: encoded slash, backslash or NUL in path"
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/")
	if !ok {
		return "", http.StatusBadRequest, "bad request: path must start with /"
	}
	if err := fetch.ValidPath(p); err != nil {
		return "", http.StatusBadRequest, "bad request: " + oneLine(err.Error())
	}
	return p, 0, ""
}

func contentType(kind string) string {
	switch kind {
	case "info", "latest":
		return "application/json"
	case "zip":
		return "application/zip"
	case "tile":
		return "application/octet-stream"
	}
	return "text/plain; charset=utf-8"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
