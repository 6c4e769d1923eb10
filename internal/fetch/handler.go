package fetch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Record is one request served by Handler.
type Record struct {
	Path   string // proxy-relative path as requested (without the leading '/')
	Status int    // HTTP status answered
	Size   int64  // size of the answer's body (also for HEAD)
	Cached bool   // answered from the cache directory without an upstream request
}

// Records returns a copy of every request Handler served, in order.
func (c *Client) Records() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Record(nil), c.records...)
}

func (c *Client) record(r Record) {
	c.mu.Lock()
	c.records = append(c.records, r)
	c.mu.Unlock()
}

// Handler serves the GOPROXY protocol (GET and HEAD) for the go command from
// Get and GetFile. A 404 or 410 from upstream is passed on with its message; a
// path that no upstream entry has before "direct" or "off" is a 404, so that
// the go command can fall back to "direct" itself. Other failures (after
// retries) are 502 with a one-line body. Malformed paths (see ValidPath) are
// 400. Every request is recorded (see Records).
func (c *Client) Handler() http.Handler {
	return http.HandlerFunc(c.serveHTTP)
}

func (c *Client) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	rec := Record{Path: p}
	defer func() { c.record(rec) }()

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		rec.Status = http.StatusMethodNotAllowed
		httpError(w, rec.Status, "method not allowed")
		return
	}
	if err := ValidPath(p); err != nil {
		rec.Status = http.StatusBadRequest
		httpError(w, rec.Status, err.Error())
		return
	}

	var body io.Reader
	if strings.HasSuffix(p, ".zip") {
		name, cached, err := c.getFile(r.Context(), p)
		if err != nil {
			rec.Status = c.failure(w, r, p, err)
			return
		}
		if !cached && name != c.cachePath(p, Immutable(p)) {
			defer os.Remove(name)
		}
		f, err := os.Open(name)
		if err != nil {
			rec.Status = c.failure(w, r, p, fmt.Errorf("opening %s: %w", p, err))
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			rec.Status = c.failure(w, r, p, fmt.Errorf("opening %s: %w", p, err))
			return
		}
		rec.Size, rec.Cached, body = fi.Size(), cached, f
	} else {
		data, cached, err := c.get(r.Context(), p)
		if err != nil {
			rec.Status = c.failure(w, r, p, err)
			return
		}
		rec.Size, rec.Cached, body = int64(len(data)), cached, bytes.NewReader(data)
	}

	rec.Status = http.StatusOK
	h := w.Header()
	h.Set("Content-Type", contentType(p))
	h.Set("Content-Length", strconv.FormatInt(rec.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, body); err != nil {
		c.log.DebugContext(r.Context(), "writing answer", "path", p, "err", err)
	}
}

// failure writes the answer for a failed fetch and returns its status.
func (c *Client) failure(w http.ResponseWriter, r *http.Request, p string, err error) int {
	var se *StatusError
	switch {
	case errors.As(err, &se) && errors.Is(err, fs.ErrNotExist):
		msg := se.Message
		if msg == "" {
			msg = "not found"
		}
		httpError(w, se.Status, msg)
		return se.Status
	case errors.Is(err, errBadPath):
		httpError(w, http.StatusBadRequest, err.Error())
		return http.StatusBadRequest
	}
	if se != nil && se.Status >= 400 && se.Status < 500 {
		// A refusal (403 from a mirror's policy, 401, ...): the go command
		// decides whether it matters; pass the status on.
		c.log.InfoContext(r.Context(), "upstream refused", "path", p, "err", err)
		httpError(w, se.Status, err.Error())
		return se.Status
	}
	c.log.WarnContext(r.Context(), "upstream fetch failed", "path", p, "err", err)
	httpError(w, http.StatusBadGateway, err.Error())
	return http.StatusBadGateway
}

func httpError(w http.ResponseWriter, status int, msg string) {
	msg = strings.Join(strings.Fields(msg), " ") // one line
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

func contentType(p string) string {
	switch {
	case strings.HasSuffix(p, ".zip"):
		return "application/zip"
	case strings.HasSuffix(p, ".info"), strings.HasSuffix(p, "/@latest"):
		return "application/json"
	case strings.Contains(p, "/tile/"):
		return "application/octet-stream"
	}
	return "text/plain; charset=utf-8"
}
