package serve_test

import (
	"net/http"
	"testing"
)

// The short path for plain requests (what the go command sends) answers
// exactly as http.ServeContent does: a request with If-Unmodified-Since
// (a no-op here: answers have no modification time) takes the
// http.ServeContent path and is the reference. Blobs of every path: read
// whole (.info, .mod, tiles, a zip just under 64 KiB), sent with sendfile
// (64 KiB and more), and generated answers (@v/list, @latest is a blob).
func TestPlainMatchesServeContent(t *testing.T) {
	files := bundle1(t)
	for name, size := range map[string]int{"small": 64<<10 - 1, "edge": 64 << 10} {
		zip := make([]byte, size)
		for i := range zip {
			zip[i] = byte(i * 13)
		}
		files["example.com/"+name+"/@v/v1.0.0.zip"] = zip
		files["example.com/"+name+"/@v/v1.0.0.mod"] = []byte("module example.com/" + name + "\n")
	}
	e := newEnv(t, files)
	paths := []string{"/example.com/a/@v/list", "/example.com/a/@latest", "/sumdb/sum.test/supported"}
	for f := range files {
		paths = append(paths, "/"+f)
	}
	const ref = "If-Unmodified-Since"
	const refDate = "Mon, 02 Jan 2006 15:04:05 GMT"
	headers := []string{"Content-Length", "Accept-Ranges", "ETag", "Content-Type", "Cache-Control", "Last-Modified", "Content-Range"}
	for _, p := range paths {
		for _, method := range []string{"GET", "HEAD"} {
			want, wantBody := e.do(t, method, p, ref, refDate)
			got, gotBody := e.do(t, method, p)
			if want.StatusCode != 200 {
				t.Fatalf("%s %s (reference) = %d", method, p, want.StatusCode)
			}
			compare(t, method+" "+p, headers, want, wantBody, got, gotBody)
			if method == "GET" && len(gotBody) != len(files[p[1:]]) && files[p[1:]] != nil {
				t.Errorf("GET %s: %d bytes, want %d", p, len(gotBody), len(files[p[1:]]))
			}
			etag := got.Header.Get("ETag")
			for _, inm := range []string{etag, `W/` + etag, `"sha256:00", ` + etag, "*", `"sha256:00"`} {
				want, wantBody := e.do(t, method, p, ref, refDate, "If-None-Match", inm)
				got, gotBody := e.do(t, method, p, "If-None-Match", inm)
				compare(t, method+" "+p+" If-None-Match: "+inm, headers, want, wantBody, got, gotBody)
			}
		}
	}
}

func compare(t *testing.T, what string, headers []string, want *http.Response, wantBody string, got *http.Response, gotBody string) {
	t.Helper()
	if got.StatusCode != want.StatusCode {
		t.Errorf("%s = %d, want %d", what, got.StatusCode, want.StatusCode)
	}
	for _, h := range headers {
		if g, w := got.Header.Values(h), want.Header.Values(h); len(g) != len(w) || (len(g) > 0 && g[0] != w[0]) {
			t.Errorf("%s: %s: %q, want %q", what, h, g, w)
		}
	}
	if gotBody != wantBody {
		t.Errorf("%s: body of %d bytes differs from the reference's %d", what, len(gotBody), len(wantBody))
	}
}

// Preconditions other than If-None-Match still work (http.ServeContent).
func TestPreconditions(t *testing.T) {
	e := newEnv(t, bundle1(t))
	p := "/example.com/a/@v/v1.0.0.mod"
	resp, _ := e.do(t, "GET", p, "If-Match", `"sha256:00"`)
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("If-Match mismatch = %d, want 412", resp.StatusCode)
	}
	resp, body := e.do(t, "GET", p, "Range", "bytes=0-5")
	if resp.StatusCode != http.StatusPartialContent || body != "module" {
		t.Errorf("Range = %d %q", resp.StatusCode, body)
	}
}
