package serve_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve"
)

// FuzzOCIRequest: whatever the path under /v2, the OCI API answers 200
// only with what the store holds (a manifest or blob whose bytes hash to the
// Docker-Content-Digest it names, or a JSON listing), otherwise 400 or 404
// with an OCI error body, and never fails.
func FuzzOCIRequest(f *testing.F) {
	fx := newOCIFixture(f, serve.Routes{})
	for _, s := range []string{
		"/v2/", "/v2/_catalog?n=1", "/v2/web/tags/list?n=1&last=0", "/v2/web/manifests/1.0",
		"/v2/team/app/manifests/2.0", "/v2/web/manifests/" + fx.idxD.String(),
		"/v2/web/blobs/" + fx.amd64.Digest.String(), "/v2/web/referrers/" + fx.amd64.Digest.String(),
		"/v2/web/blobs/sha256:../../etc/passwd", "/v2/../../etc/passwd/manifests/x", "/v2/we%2Fb/tags/list",
		"/v2/registry.internal/team/app/manifests/1.0", "/v2/web/manifests/sha256:" + strings.Repeat("0", 64),
	} {
		f.Add(s)
	}
	h := fx.srv.Handler(serve.Routes{})
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.HasPrefix(raw, "/v2") {
			raw = "/v2/" + raw
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil || u.Path != "/v2" && !strings.HasPrefix(u.Path, "/v2/") {
			return
		}
		req := &http.Request{Method: "GET", URL: u, RequestURI: raw, Header: http.Header{}, Host: "x"}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		body := w.Body.String()
		switch w.Code {
		case 200:
			p := u.Path
			switch {
			case strings.Contains(p, "/manifests/") || strings.Contains(p, "/blobs/"):
				d := w.Header().Get("Docker-Content-Digest")
				if d == "" || sha(body) != d || !strings.HasSuffix(p, "/"+d) && !strings.Contains(p, "/manifests/") {
					t.Fatalf("GET %q = 200 with %d bytes hashing to %s, Docker-Content-Digest %q", raw, len(body), sha(body), d)
				}
			case p == "/v2/" || p == "/v2" || p == "/v2/_catalog" || strings.HasSuffix(p, "/tags/list") || strings.Contains(p, "/referrers/"):
			default:
				t.Fatalf("GET %q = 200", raw)
			}
		case 400, 404:
			if !strings.Contains(body, `"errors"`) {
				t.Fatalf("GET %q = %d without an OCI error body: %q", raw, w.Code, body)
			}
		default:
			t.Fatalf("GET %q = %d", raw, w.Code)
		}
	})
}
