package serve_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve"
)

// BenchmarkInfo measures the handler alone (no network) for an .info file.
func BenchmarkInfo(b *testing.B) {
	e := newEnv(b, bundle1(b))
	h := e.srv.Handler(serve.Routes{})
	req := httptest.NewRequest("GET", "/example.com/a/@v/v1.0.0.info", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
