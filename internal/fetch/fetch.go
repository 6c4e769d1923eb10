// Package fetch is ferry's client for the user's upstream module proxies and
// checksum databases, and the recording GOPROXY server that the go command
// talks to while ferry packs a bundle.
//
// Invariants:
//
//   - Every path is proxy-relative and checked before use (see ValidPath):
//     escaped module paths and versions only, no "..", no backslashes, no empty
//     elements. A checked path is also a safe relative file name, so the cache
//     directory has exactly the GOPROXY layout (a file:// proxy).
//   - Upstream entries are tried in GOPROXY order with the go command's rules:
//     after ',' only 404/410 falls through, after '|' any error does; "direct"
//     and "off" end the list. This package never does version control work:
//     "direct" is left to the go command, which sees a 404 from Handler.
//   - Transient failures (connection errors, timeouts, stalled bodies, 5xx,
//     429) are retried with exponential backoff and full jitter; other 4xx
//     answers are never retried.
//   - At most Options.Jobs upstream requests are in flight at once.
//   - Only immutable answers (see Immutable) are cached, and a cache file only
//     ever appears complete: it is written to a temporary file in the same
//     directory and renamed into place after the whole body arrived.
//   - A zip is streamed to disk by GetFile and never held in memory whole.
package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configure a Client.
type Options struct {
	GOPROXY  string       // the user's value (go env GOPROXY)
	CacheDir string       // persistent cache of immutable answers, for resume ("" = none)
	Jobs     int          // max concurrent upstream requests (default 8)
	Retries  int          // retries after the first attempt of a transient failure (default 5; <0 = none)
	Client   *http.Client // default: no overall timeout, but dial, header and idle timeouts
	Log      *slog.Logger // default: discard
	Stats    *Stats       // may be nil
	// StallTimeout aborts (and retries) a response whose body makes no
	// progress for this long (default 60s).
	StallTimeout time.Duration
}

// Client fetches proxy-relative paths from the upstream GOPROXY list.
// It is safe for concurrent use.
type Client struct {
	entries  []Entry
	cacheDir string
	sem      chan struct{}
	retries  int
	hc       *http.Client
	log      *slog.Logger
	stats    *Stats
	stall    time.Duration

	backoffBase, backoffCap time.Duration

	mu      sync.Mutex
	records []Record
}

// New returns a Client for opt.GOPROXY. It fails when the list has no
// HTTP(S) or file entry to fetch from.
func New(opt Options) (*Client, error) {
	entries, err := ParseGOPROXY(opt.GOPROXY)
	if err != nil {
		return nil, err
	}
	hasURL := false
	for _, e := range entries {
		hasURL = hasURL || e.URL != ""
	}
	if !hasURL {
		return nil, fmt.Errorf("GOPROXY=%s: nothing to fetch from", opt.GOPROXY)
	}
	c := &Client{
		entries:     entries,
		cacheDir:    opt.CacheDir,
		retries:     opt.Retries,
		hc:          opt.Client,
		log:         opt.Log,
		stats:       opt.Stats,
		stall:       opt.StallTimeout,
		backoffBase: 200 * time.Millisecond,
		backoffCap:  10 * time.Second,
	}
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = 8
	}
	c.sem = make(chan struct{}, jobs)
	if c.retries == 0 {
		c.retries = 5
	} else if c.retries < 0 {
		c.retries = 0
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient(jobs)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.stall <= 0 {
		c.stall = 60 * time.Second
	}
	if c.cacheDir != "" {
		abs, err := filepath.Abs(c.cacheDir)
		if err != nil {
			return nil, fmt.Errorf("resolving cache directory %s: %w", c.cacheDir, err)
		}
		c.cacheDir = abs
	}
	return c, nil
}

func defaultHTTPClient(jobs int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 15 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConnsPerHost = jobs
	return &http.Client{Transport: t} // no Timeout: zips can be large
}

// Entries returns the parsed GOPROXY list.
func (c *Client) Entries() []Entry { return append([]Entry(nil), c.entries...) }

// HasDirect reports whether the GOPROXY list ends with "direct", in which case
// the go command should be run with GOPROXY=<Handler URL>,direct so that it
// falls back to version control itself.
func (c *Client) HasDirect() bool {
	for _, e := range c.entries {
		if e.Direct {
			return true
		}
	}
	return false
}

// StatusError is an HTTP answer other than 200 from an upstream entry (file://
// entries report a missing file as 404). It matches fs.ErrNotExist for 404
// and 410.
type StatusError struct {
	Path    string // proxy-relative path requested
	Entry   string // upstream entry (redacted URL), "direct" or "off"
	Status  int
	Message string // first line of the upstream body
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("fetching %s from %s: %d: %s", e.Path, e.Entry, e.Status, msg)
}

// Is reports whether target is fs.ErrNotExist and the status is 404 or 410.
func (e *StatusError) Is(target error) bool {
	return target == fs.ErrNotExist && (e.Status == http.StatusNotFound || e.Status == http.StatusGone)
}

// transientError marks a failure worth retrying (network, timeout, cut body).
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests
	}
	var te *transientError
	return errors.As(err, &te)
}

// Get returns the bytes at a proxy-relative path such as
// "golang.org/x/mod/@v/v0.1.0.info", "golang.org/x/mod/@v/list",
// "golang.org/x/mod/@latest", "sumdb/<name>/supported",
// "sumdb/<name>/lookup/<module>@<version>" or "sumdb/<name>/tile/8/0/000".
// A 404/410 from every entry gives an error matching fs.ErrNotExist (a
// *StatusError carrying the upstream body's first line). Immutable answers are
// served from and stored in the cache directory.
func (c *Client) Get(ctx context.Context, p string) ([]byte, error) {
	data, _, err := c.get(ctx, p)
	return data, err
}

func (c *Client) get(ctx context.Context, p string) (data []byte, cached bool, err error) {
	immutable, err := checkPath(p)
	if err != nil {
		return nil, false, err
	}
	dst := c.cachePath(p, immutable)
	if dst != "" {
		data, err := os.ReadFile(dst)
		if err == nil {
			c.stats.cached(int64(len(data)))
			return data, true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("reading cached %s: %w", p, err)
		}
	}
	var buf bytes.Buffer
	err = c.try(ctx, p, func(r io.Reader) error {
		buf.Reset()
		_, err := buf.ReadFrom(r)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	data = buf.Bytes()
	if dst != "" {
		if err := writeFileAtomic(dst, data); err != nil {
			return nil, false, fmt.Errorf("caching %s: %w", p, err)
		}
	}
	c.stats.fetched(int64(len(data)))
	return data, false, nil
}

// GetFile is Get for big answers (zips): it streams the body to disk and
// returns the file's path, never holding the whole body in memory. When the
// Client has a cache directory and p is Immutable, the file is the cache
// entry (do not modify or remove it); otherwise it is a new temporary file
// that the caller must remove.
func (c *Client) GetFile(ctx context.Context, p string) (string, error) {
	name, _, err := c.getFile(ctx, p)
	return name, err
}

func (c *Client) getFile(ctx context.Context, p string) (name string, cached bool, err error) {
	immutable, err := checkPath(p)
	if err != nil {
		return "", false, err
	}
	dst := c.cachePath(p, immutable)
	dir := os.TempDir()
	if dst != "" {
		fi, err := os.Stat(dst)
		if err == nil && fi.Mode().IsRegular() {
			c.stats.cached(fi.Size())
			return dst, true, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", false, fmt.Errorf("checking cached %s: %w", p, err)
		}
		dir = filepath.Dir(dst)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", false, fmt.Errorf("caching %s: %w", p, err)
		}
	}
	var tmp string
	var size int64
	err = c.try(ctx, p, func(r io.Reader) error {
		f, err := os.CreateTemp(dir, ".ferry-*.tmp")
		if err != nil {
			return err
		}
		size, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
			return err
		}
		tmp = f.Name()
		return nil
	})
	if err != nil {
		return "", false, err
	}
	if dst == "" {
		return tmp, false, nil
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("caching %s: %w", p, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("caching %s: %w", p, err)
	}
	c.stats.fetched(size)
	return dst, false, nil
}

// cachePath returns where p is cached, or "" when it is not cached.
func (c *Client) cachePath(p string, immutable bool) string {
	if c.cacheDir == "" || !immutable {
		return ""
	}
	return filepath.Join(c.cacheDir, filepath.FromSlash(p))
}

func writeFileAtomic(dst string, data []byte) error {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".ferry-*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// try walks the GOPROXY list for p, calling sink with the body of the first
// successful answer. sink may be called again on a retry and must start over.
func (c *Client) try(ctx context.Context, p string, sink func(io.Reader) error) error {
	var best error
	bestNotExist := true
	for _, e := range c.entries {
		if e.Direct || e.Off {
			break
		}
		err := c.fromEntry(ctx, e, p, sink)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		notExist := errors.Is(err, fs.ErrNotExist)
		if best == nil || (bestNotExist && !notExist) {
			best, bestNotExist = err, notExist
		}
		if !notExist && !e.FallThroughOnAnyError {
			break
		}
	}
	if best == nil {
		// Only possible if the list starts with direct or off; New forbids a
		// list without URLs, so keep a sensible answer anyway.
		best = &StatusError{Path: p, Entry: c.entries[0].String(), Status: http.StatusNotFound, Message: "no upstream proxy to fetch from"}
	}
	return best
}

// fromEntry fetches p from one entry, retrying transient failures.
func (c *Client) fromEntry(ctx context.Context, e Entry, p string, sink func(io.Reader) error) error {
	for attempt := 0; ; attempt++ {
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("fetching %s: %w", p, ctx.Err())
		}
		err := c.once(ctx, e, p, sink)
		<-c.sem
		if err == nil {
			c.log.DebugContext(ctx, "fetched", "path", p, "from", redact(e.URL))
			return nil
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= c.retries {
			return err
		}
		c.stats.retried()
		d := c.backoff(attempt)
		c.log.WarnContext(ctx, "retrying upstream request", "path", p, "from", redact(e.URL), "attempt", attempt+1, "wait", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("fetching %s: %w", p, ctx.Err())
		}
	}
}

// backoff returns a full-jitter exponential delay for the given attempt.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.backoffCap
	if attempt < 30 {
		if x := c.backoffBase << attempt; x > 0 && x < d {
			d = x
		}
	}
	return rand.N(d + 1)
}

// once makes one attempt at p on entry e.
func (c *Client) once(ctx context.Context, e Entry, p string, sink func(io.Reader) error) error {
	if strings.HasPrefix(e.URL, "file:") {
		return c.onceFile(e, p, sink)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u := strings.TrimSuffix(e.URL, "/") + "/" + p
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("fetching %s from %s: %w", p, redact(e.URL), err)
	}
	req.Header.Set("User-Agent", "ferry")
	resp, err := c.hc.Do(req)
	if err != nil {
		return &transientError{fmt.Errorf("fetching %s from %s: %w", p, redact(e.URL), err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		line, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg, _, _ := strings.Cut(string(line), "\n")
		return &StatusError{Path: p, Entry: redact(e.URL), Status: resp.StatusCode, Message: strings.TrimSpace(msg)}
	}
	errStall := fmt.Errorf("no data for %v", c.stall)
	timer := time.AfterFunc(c.stall, func() { cancel(errStall) })
	defer timer.Stop()
	body := &stallReader{r: resp.Body, timer: timer, d: c.stall}
	if err := sink(body); err != nil {
		if body.err != nil {
			if cause := context.Cause(ctx); cause == errStall {
				err = cause
			}
			return &transientError{fmt.Errorf("reading %s from %s: %w", p, redact(e.URL), err)}
		}
		return fmt.Errorf("storing %s: %w", p, err)
	}
	return nil
}

func (c *Client) onceFile(e Entry, p string, sink func(io.Reader) error) error {
	u, err := url.Parse(e.URL)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", e.URL, err)
	}
	name := filepath.Join(filepath.FromSlash(u.Path), filepath.FromSlash(p))
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &StatusError{Path: p, Entry: e.URL, Status: http.StatusNotFound, Message: "not found"}
	}
	if err != nil {
		return fmt.Errorf("fetching %s: %w", p, err)
	}
	defer f.Close()
	if err := sink(f); err != nil {
		return fmt.Errorf("fetching %s from %s: %w", p, e.URL, err)
	}
	return nil
}

// stallReader resets the stall timer on every read and remembers read errors,
// so that a failed body read (retryable) is told apart from a failed write.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
	err   error
}

func (s *stallReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// redact removes user information from a proxy URL for messages.
func redact(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	return pu.Redacted()
}
