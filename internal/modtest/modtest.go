// Package modtest provides hermetic fixtures for tests: module versions built
// in memory with golang.org/x/mod/zip, served over the GOPROXY protocol on
// 127.0.0.1, together with a real checksum database (golang.org/x/mod/sumdb)
// signed with a key generated for each server.
//
// Invariants:
//   - Every module version served has exactly one record in the checksum
//     database, added when the module is added (never lazily), so the tree only
//     grows when Add is called and every tree head is consistent with the
//     earlier ones.
//   - Records are "path version h1:<zip hash>\npath version/go.mod h1:<mod hash>\n",
//     computed with golang.org/x/mod/sumdb/dirhash exactly as the go command does,
//     so the real go command verifies fixtures with GOSUMDB=Server.GOSUMDB.
//   - A module version, once added, never changes: adding it again with other
//     content fails the test.
//   - Nothing here touches the network beyond the 127.0.0.1 listener.
package modtest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	modzip "golang.org/x/mod/zip"
)

// DefaultSumDBName is the name of the checksum database of every Server.
const DefaultSumDBName = "ferrytest.sumdb"

// DefaultTime is the time of module versions whose Module.Time is zero.
var defaultTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Module is one module version to serve.
type Module struct {
	Path, Version string
	// Files maps file names (slash-separated, relative to the module root) to
	// contents. Include "go.mod" for normal modules. Ignored if ZipFile is set.
	Files map[string]string
	// Time is reported in the .info file; zero means a fixed date.
	Time time.Time
	// ZipFile, if set, is a prebuilt module zip file served as is (not held in
	// memory). GoMod is then the .mod content ("module <Path>\n" if empty).
	ZipFile string
	GoMod   string
}

// version is a module version as served.
type version struct {
	info    []byte
	mod     []byte
	zip     []byte // in-memory zip, or
	zipFile string // path of the zip on disk
	zipHash string
	modHash string
}

// Server is a module proxy and checksum database for tests.
type Server struct {
	URL       string // http://127.0.0.1:port (use as GOPROXY)
	SumDBName string // name of the checksum database
	SumDBKey  string // verifier key of the checksum database
	GOSUMDB   string // value for GOSUMDB (the verifier key, which names the database)

	t      testing.TB
	srv    *httptest.Server
	sumdb  *sumdb.Server
	signer note.Signer

	mu      sync.Mutex
	mods    map[string]map[string]*version // path -> version -> files
	records [][]byte
	hashes  []tlog.Hash
	lookup  map[string]int64 // path@version -> record id
	reqs    []string
	fail    map[string]*failure
	refuse  map[string]int
	latency time.Duration
}

type failure struct{ code, n int }

// NewServer starts a Server on 127.0.0.1 serving mods. It is closed when the test ends.
func NewServer(t testing.TB, mods ...Module) *Server {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, DefaultSumDBName)
	if err != nil {
		t.Fatalf("generating checksum database key: %v", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatalf("creating checksum database signer: %v", err)
	}
	s := &Server{
		SumDBName: DefaultSumDBName,
		SumDBKey:  vkey,
		GOSUMDB:   vkey,
		t:         t,
		signer:    signer,
		mods:      make(map[string]map[string]*version),
		lookup:    make(map[string]int64),
		fail:      make(map[string]*failure),
		refuse:    make(map[string]int),
	}
	s.sumdb = sumdb.NewServer(ops{s})
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.Add(mods...)
	return s
}

// Add adds module versions (and their checksum records) to the server.
// Adding a version that already exists with different content fails the test.
func (s *Server) Add(mods ...Module) {
	s.t.Helper()
	for _, m := range mods {
		v, err := prepare(m)
		if err != nil {
			s.t.Fatalf("modtest: %v", err)
		}
		if err := s.add(m.Path, m.Version, v); err != nil {
			s.t.Fatalf("modtest: %v", err)
		}
	}
}

func (s *Server) add(modPath, vers string, v *version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := modPath + "@" + vers
	if old := s.mods[modPath][vers]; old != nil {
		if old.zipHash != v.zipHash || old.modHash != v.modHash {
			return fmt.Errorf("adding %s: already added with other content", key)
		}
		return nil
	}
	if s.mods[modPath] == nil {
		s.mods[modPath] = make(map[string]*version)
	}
	s.mods[modPath][vers] = v
	rec := []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", modPath, vers, v.zipHash, modPath, vers, v.modHash))
	id := int64(len(s.records))
	hashes, err := tlog.StoredHashes(id, rec, tlog.HashReaderFunc(s.readHashes))
	if err != nil {
		return fmt.Errorf("adding %s to the checksum database: %w", key, err)
	}
	s.records = append(s.records, rec)
	s.hashes = append(s.hashes, hashes...)
	s.lookup[key] = id
	return nil
}

// readHashes reads stored hashes; s.mu must be held.
func (s *Server) readHashes(indexes []int64) ([]tlog.Hash, error) {
	list := make([]tlog.Hash, 0, len(indexes))
	for _, i := range indexes {
		if i < 0 || i >= int64(len(s.hashes)) {
			return nil, fmt.Errorf("stored hash %d not found: %w", i, fs.ErrNotExist)
		}
		list = append(list, s.hashes[i])
	}
	return list, nil
}

// Hashes returns the "h1:" hashes of the zip and go.mod of an added module version.
func (s *Server) Hashes(modPath, vers string) (zipHash, modHash string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.mods[modPath][vers]
	if v == nil {
		return "", "", false
	}
	return v.zipHash, v.modHash, true
}

// Requests returns the request log, one "GET /path status" line per request, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

// ResetRequests clears the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

// FailNext makes the next n requests for the URL path answer code, then serve normally.
func (s *Server) FailNext(urlPath string, code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[urlPath] = &failure{code: code, n: n}
}

// Refuse makes every request for the URL path answer code (e.g. 404 or 410).
func (s *Server) Refuse(urlPath string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse[urlPath] = code
}

// SetLatency delays every response by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// prepare builds the zip (unless prebuilt) and the hashes of m.
func prepare(m Module) (*version, error) {
	mv := module.Version{Path: m.Path, Version: m.Version}
	if err := module.Check(m.Path, m.Version); err != nil {
		// golang.org/toolchain versions are not canonical module versions
		// for every check; accept any semver version there.
		if m.Path != "golang.org/toolchain" || !semver.IsValid(m.Version) {
			return nil, fmt.Errorf("module %s@%s: %w", m.Path, m.Version, err)
		}
	}
	tm := m.Time
	if tm.IsZero() {
		tm = defaultTime
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{m.Version, tm.UTC()})
	if err != nil {
		return nil, err
	}
	v := &version{info: append(info, '\n')}

	gomod := m.GoMod
	if m.ZipFile != "" {
		v.zipFile = m.ZipFile
		if v.zipHash, err = dirhash.HashZip(m.ZipFile, dirhash.Hash1); err != nil {
			return nil, fmt.Errorf("hashing zip of %s: %w", mv, err)
		}
	} else {
		var files []modzip.File
		for name, content := range m.Files {
			files = append(files, memFile{name: name, data: []byte(content)})
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Path() < files[j].Path() })
		var buf bytes.Buffer
		if err := modzip.Create(&buf, mv, files); err != nil {
			return nil, fmt.Errorf("creating zip of %s: %w", mv, err)
		}
		v.zip = buf.Bytes()
		if v.zipHash, err = hashZipBytes(v.zip); err != nil {
			return nil, fmt.Errorf("hashing zip of %s: %w", mv, err)
		}
		if gomod == "" {
			gomod = m.Files["go.mod"]
		}
	}
	if gomod == "" {
		gomod = fmt.Sprintf("module %s\n", m.Path)
	}
	v.mod = []byte(gomod)
	v.modHash, err = HashGoMod(v.mod)
	if err != nil {
		return nil, fmt.Errorf("hashing go.mod of %s: %w", mv, err)
	}
	return v, nil
}

// HashGoMod returns the "h1:" hash of a go.mod file as the go command computes it.
func HashGoMod(data []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// hashZipBytes is dirhash.HashZip for a zip held in memory.
func hashZipBytes(data []byte) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	var names []string
	files := make(map[string]*zip.File)
	for _, f := range zr.File {
		names = append(names, f.Name)
		files[f.Name] = f
	}
	return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		return files[name].Open()
	})
}

// memFile is a modzip.File held in memory.
type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (fs.FileInfo, error)  { return memInfo{f}, nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type memInfo struct{ f memFile }

func (i memInfo) Name() string       { return path.Base(i.f.name) }
func (i memInfo) Size() int64        { return int64(len(i.f.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return defaultTime }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// statusWriter records the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	p := r.URL.Path
	defer func() {
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, fmt.Sprintf("%s %s %d", r.Method, p, code))
		s.mu.Unlock()
	}()

	s.mu.Lock()
	latency := s.latency
	code := s.refuse[p]
	if f := s.fail[p]; code == 0 && f != nil && f.n > 0 {
		code = f.code
		f.n--
	}
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if code != 0 {
		http.Error(sw, fmt.Sprintf("modtest: injected status %d for %s", code, p), code)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(sw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	if rest, ok := strings.CutPrefix(p, "/sumdb/"+s.SumDBName+"/"); ok {
		if rest == "supported" {
			sw.WriteHeader(http.StatusOK)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rest
		r2.URL.RawPath = ""
		s.sumdb.ServeHTTP(sw, r2)
		return
	}
	if strings.HasPrefix(p, "/sumdb/") {
		http.Error(sw, "not found: unknown checksum database", http.StatusNotFound)
		return
	}
	s.serveProxy(sw, r, p)
}

func notFound(w http.ResponseWriter, format string, args ...any) {
	http.Error(w, "not found: "+fmt.Sprintf(format, args...), http.StatusNotFound)
}

// serveProxy serves the GOPROXY protocol for urlPath.
func (s *Server) serveProxy(w http.ResponseWriter, r *http.Request, urlPath string) {
	escPath, file, ok := strings.Cut(strings.TrimPrefix(urlPath, "/"), "/@")
	if !ok {
		notFound(w, "%s", urlPath)
		return
	}
	modPath, err := module.UnescapePath(escPath)
	if err != nil {
		notFound(w, "invalid module path %q: %v", escPath, err)
		return
	}
	s.mu.Lock()
	versions := s.mods[modPath]
	var list []string
	for v := range versions {
		list = append(list, v)
	}
	s.mu.Unlock()

	if len(versions) == 0 {
		notFound(w, "module %s: no matching versions", modPath)
		return
	}
	if file == "latest" {
		latest := latestVersion(list)
		if latest == "" {
			notFound(w, "module %s: no matching versions for query \"latest\"", modPath)
			return
		}
		s.mu.Lock()
		info := versions[latest].info
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(info)
		return
	}
	file, ok = strings.CutPrefix(file, "v/")
	if !ok {
		notFound(w, "%s", urlPath)
		return
	}
	if file == "list" {
		var tagged []string
		for _, v := range list {
			if !module.IsPseudoVersion(v) {
				tagged = append(tagged, v)
			}
		}
		semver.Sort(tagged)
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		for _, v := range tagged {
			fmt.Fprintln(w, v)
		}
		return
	}
	ext := path.Ext(file)
	escVers := strings.TrimSuffix(file, ext)
	vers, err := module.UnescapeVersion(escVers)
	if err != nil {
		notFound(w, "invalid version %q: %v", escVers, err)
		return
	}
	s.mu.Lock()
	v := versions[vers]
	s.mu.Unlock()
	if v == nil {
		notFound(w, "%s@%s: unknown revision %s", modPath, vers, vers)
		return
	}
	switch ext {
	case ".info":
		w.Header().Set("Content-Type", "application/json")
		w.Write(v.info)
	case ".mod":
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.Write(v.mod)
	case ".zip":
		w.Header().Set("Content-Type", "application/zip")
		if v.zipFile != "" {
			f, err := os.Open(v.zipFile)
			if err != nil {
				http.Error(w, fmt.Sprintf("opening zip of %s@%s: %v", modPath, vers, err), http.StatusInternalServerError)
				return
			}
			defer f.Close()
			http.ServeContent(w, r, "", time.Time{}, f)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(v.zip))
	default:
		notFound(w, "%s", urlPath)
	}
}

// latestVersion picks what a proxy's @latest returns: the highest release,
// else the highest pre-release, else the highest pseudo-version.
func latestVersion(list []string) string {
	var rel, pre, pseudo string
	for _, v := range list {
		switch {
		case module.IsPseudoVersion(v):
			if semver.Compare(v, pseudo) > 0 {
				pseudo = v
			}
		case semver.Prerelease(v) != "":
			if semver.Compare(v, pre) > 0 {
				pre = v
			}
		default:
			if semver.Compare(v, rel) > 0 {
				rel = v
			}
		}
	}
	switch {
	case rel != "":
		return rel
	case pre != "":
		return pre
	}
	return pseudo
}

// ops implements sumdb.ServerOps over the records of a Server.
type ops struct{ s *Server }

func (o ops) Signed(ctx context.Context) ([]byte, error) {
	s := o.s
	s.mu.Lock()
	n := int64(len(s.records))
	h, err := tlog.TreeHash(n, tlog.HashReaderFunc(s.readHashes))
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("computing tree hash: %w", err)
	}
	return note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: h}))}, s.signer)
}

func (o ops) ReadRecords(ctx context.Context, id, n int64) ([][]byte, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 0 || n < 0 || id+n > int64(len(s.records)) {
		return nil, &fs.PathError{Op: "read", Path: fmt.Sprintf("records %d+%d", id, n), Err: fs.ErrNotExist}
	}
	return append([][]byte(nil), s.records[id:id+n]...), nil
}

func (o ops) Lookup(ctx context.Context, m module.Version) (int64, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.lookup[m.Path+"@"+m.Version]
	if !ok {
		// os.IsNotExist (used by sumdb.Server for 404) looks through *PathError.
		return 0, &fs.PathError{Op: "not found:", Path: m.String(), Err: fs.ErrNotExist}
	}
	return id, nil
}

func (o ops) ReadTileData(ctx context.Context, t tlog.Tile) ([]byte, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.N<<uint(t.H)+int64(t.W) > int64(len(s.records))>>uint(t.L*t.H) {
		return nil, &fs.PathError{Op: "read", Path: t.Path(), Err: fs.ErrNotExist}
	}
	return tlog.ReadTileData(t, tlog.HashReaderFunc(s.readHashes))
}
