package serve_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve"
	"github.com/ferry-dev/ferry/internal/serve/metrics"
)

// /metrics, /healthz and /readyz answer GET and HEAD, and 405 with an Allow
// header to anything else, like every other route.
func TestFixedRoutesMethods(t *testing.T) {
	e := newEnv(t, bundle1(t))
	ts := httptest.NewServer(e.srv.Handler(serve.Routes{Metrics: metrics.New().Handler()}))
	t.Cleanup(ts.Close)
	for _, p := range []string{"/metrics", "/healthz", "/readyz", "/"} {
		for _, m := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(m, ts.URL+p, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s = %d, want 200", m, p, resp.StatusCode)
			}
		}
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			req, _ := http.NewRequest(m, ts.URL+p, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s = %d, Allow %q; want 405, Allow \"GET, HEAD\"", m, p, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	}
}
