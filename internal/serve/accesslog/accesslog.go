// Package accesslog writes one structured log/slog record per HTTP request.
//
// Invariants:
//   - Exactly one record is logged per request, after the handler returns
//     (also when it panics: the record is logged, then the panic goes on).
//   - A record has the attributes method, path, status, bytes, duration,
//     remote and, when an inner middleware called SetUser, user. Nothing
//     from request headers that could carry secrets (Authorization, cookies,
//     the query string) is logged.
//   - status is what the handler sent (200 if it wrote a body without
//     calling WriteHeader, 0 if it wrote nothing at all before panicking);
//     bytes counts body bytes written, not headers.
//   - The ResponseWriter handed to the inner handler still supports
//     http.Flusher, io.ReaderFrom and http.ResponseController (Unwrap).
//   - A Writer under the log's handler takes the log's I/O off the request
//     path: records reach the underlying writer whole, in the order logged,
//     within 100 ms, and all of them by Close.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

type ctxKey struct{}

// entry is the per-request state an inner handler may add to.
type entry struct {
	mu   sync.Mutex
	user string
}

// SetUser records the authenticated user of the request whose context is
// ctx, so that the access log record names it. It does nothing when ctx
// does not come from a request handled by Middleware.
func SetUser(ctx context.Context, user string) {
	if e, ok := ctx.Value(ctxKey{}).(*entry); ok {
		e.mu.Lock()
		e.user = user
		e.mu.Unlock()
	}
}

// Middleware logs one record per request to log at level Info (Warn for
// 5xx responses), with the message "http request".
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		e := &entry{}
		rw := &Recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, e))
		defer func() {
			level := slog.LevelInfo
			if rw.Status >= 500 {
				level = slog.LevelWarn
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rw.Status),
				slog.Int64("bytes", rw.Bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", r.RemoteAddr),
			}
			e.mu.Lock()
			if e.user != "" {
				attrs = append(attrs, slog.String("user", e.user))
			}
			e.mu.Unlock()
			log.LogAttrs(r.Context(), level, "http request", attrs...)
		}()
		next.ServeHTTP(rw, r)
	})
}

// Recorder is an http.ResponseWriter that remembers the status code and
// counts the body bytes written through it. Package metrics uses it too.
type Recorder struct {
	http.ResponseWriter
	Status int   // status code sent, 0 before anything was written
	Bytes  int64 // body bytes written
}

// WriteHeader records the first status code sent.
func (w *Recorder) WriteHeader(code int) {
	if w.Status == 0 && code >= 200 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts body bytes.
func (w *Recorder) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += int64(n)
	return n, err
}

// ReadFrom keeps the sendfile path of the underlying writer while counting.
func (w *Recorder) ReadFrom(r io.Reader) (int64, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.Bytes += n
	return n, err
}

// Flush flushes the underlying writer if it can.
func (w *Recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.Status == 0 {
			w.Status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *Recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
