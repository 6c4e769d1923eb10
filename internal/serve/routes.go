package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Routes are the handlers and middlewares around the protocol handler that
// other packages provide. Every field is optional.
type Routes struct {
	// Browse answers "/" and "/mod/..." (the browse pages); nil: a plain
	// HTML list at "/". No module path starts with "mod/" (the first element
	// of a module path has a dot).
	Browse http.Handler
	// Metrics answers "/metrics"; nil: 404.
	Metrics http.Handler
	// Measure wraps every request for metrics, with Kind as the kind function.
	Measure func(kind func(*http.Request) string, next http.Handler) http.Handler
	// Auth wraps every request (it must let /healthz and /readyz through).
	Auth func(next http.Handler) http.Handler
	// AccessLog wraps every request, outermost.
	AccessLog func(next http.Handler) http.Handler
}

// Handler returns the whole HTTP handler: "/" browse page, /healthz,
// /readyz (200 after the first successful Refresh), /metrics, the OCI
// distribution pull API under /v2 (ociapi.go), and the GOPROXY and checksum
// database paths, wrapped by the middlewares of rt. Every route answers GET
// and HEAD only: anything else gets 405 with an Allow header.
func (s *Server) Handler(rt Routes) http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/mod/") && rt.Browse != nil {
			p = "/"
		}
		switch p {
		case "/", "/healthz", "/readyz", "/metrics":
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
		}
		switch p {
		case "/":
			if rt.Browse != nil {
				rt.Browse.ServeHTTP(w, r)
				return
			}
			s.plainBrowse(w, r)
		case "/healthz":
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprintln(w, "ok")
		case "/readyz":
			w.Header().Set("Cache-Control", "no-store")
			if !s.Ready() {
				http.Error(w, "not ready: the store has not been read yet", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		case "/metrics":
			if rt.Metrics == nil {
				http.Error(w, "not found: metrics are off", http.StatusNotFound)
				return
			}
			rt.Metrics.ServeHTTP(w, r)
		default:
			if p == "/v2" || strings.HasPrefix(p, "/v2/") {
				s.serveOCI(w, r) // ociapi.go
				return
			}
			s.ServeHTTP(w, r)
		}
	})
	if rt.Auth != nil {
		h = rt.Auth(h)
	}
	if rt.Measure != nil {
		h = rt.Measure(Kind, h)
	}
	if rt.AccessLog != nil {
		h = rt.AccessLog(h)
	}
	return h
}

// plainBrowse is the fallback browse page: a plain list of modules.
func (s *Server) plainBrowse(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	fmt.Fprint(w, "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>ferry</title><h1>Modules</h1><ul>")
	for _, m := range s.Modules() {
		fmt.Fprintf(w, "<li>%s", html.EscapeString(m.Path))
		for _, v := range m.Versions {
			fmt.Fprintf(w, " %s", html.EscapeString(v))
		}
	}
	fmt.Fprint(w, "</ul><h1>Toolchains</h1><ul>")
	for _, tc := range s.Toolchains() {
		fmt.Fprintf(w, "<li>%s", html.EscapeString(tc))
	}
	fmt.Fprint(w, "</ul>")
}

// Timeouts of the HTTP server.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	// writeTimeout is the backstop; ServeHTTP sets a per-request deadline.
	writeTimeout  = time.Hour
	shutdownGrace = 30 * time.Second
)

// minRate is the slowest transfer (bytes per second) a request's write
// deadline allows for, on top of a minute.
const minRate = 256 << 10

// writeDeadline returns how long a response of size bytes may take.
func writeDeadline(size int64) time.Duration {
	return time.Minute + time.Duration(size/minRate)*time.Second
}

// Serve serves h on ln (with TLS if tlsConfig is not nil) until ctx is done,
// then shuts down gracefully: it stops accepting, lets requests in flight
// finish (up to 30 s) and returns nil.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, tlsConfig *tls.Config, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests in flight", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	return nil
}
