package serve_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve"
)

// FuzzRequestPath: whatever the raw request path, the handler answers 200
// only for a path of the index, otherwise 400 or 404, and never fails.
func FuzzRequestPath(f *testing.F) {
	for _, s := range []string{
		"/example.com/a/@v/list", "/example.com/a/@v/v1.0.0.zip", "/example.com/%2e%2e/@v/list",
		"/sumdb/sum.test/lookup/example.com/a@v1.0.0", "/sumdb/sum.test/tile/8/0/000.p/5",
		"/example.com/!upper/@v/v0.1.0.mod", "/../../etc/passwd", "/example.com%2Fa/@latest",
	} {
		f.Add(s)
	}
	e := newEnv(f, bundle1(f))
	h := e.srv.Handler(serve.Routes{})
	known := map[string]bool{}
	for p := range bundle1(f) {
		known["/"+p] = true
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.HasPrefix(raw, "/") {
			raw = "/" + raw
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		req := &http.Request{Method: "GET", URL: u, RequestURI: raw, Header: http.Header{}, Host: "x"}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200:
			p := u.Path
			generated := p == "/" || p == "/healthz" || p == "/readyz" || strings.HasSuffix(p, "/@v/list") ||
				strings.HasSuffix(p, "/@latest") || strings.HasSuffix(p, "/supported")
			if !known[p] && !generated {
				t.Fatalf("GET %q = 200 for a path that is not in the store", raw)
			}
		case 400, 404:
		default:
			t.Fatalf("GET %q = %d", raw, w.Code)
		}
	})
}
