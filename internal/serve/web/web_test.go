package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// fixedSource is a Source over fixed data (what the server core builds
// from the merged manifests of a store).
type fixedSource struct {
	mods       []Module
	toolchains []string
	bundles    []store.BundleInfo
}

func (s *fixedSource) Modules() []Module           { return s.mods }
func (s *fixedSource) Toolchains() []string        { return s.toolchains }
func (s *fixedSource) Bundles() []store.BundleInfo { return s.bundles }

const longPath = "github.com/an-organization-with-a-really-long-name/an-extremely-long-repository-name-that-must-wrap/v2/internal/subpackage"

func sampleSource() *fixedSource {
	return &fixedSource{
		mods: []Module{
			{Path: "golang.org/x/mod", Versions: []string{"v0.41.0", "v0.42.0", "v0.43.0"}},
			{Path: "github.com/spf13/cobra", Versions: []string{"v1.9.1", "v1.10.1", "v1.10.2"}},
			{Path: "github.com/spf13/pflag", Versions: []string{"v1.0.9", "v1.0.10"}},
			{Path: "github.com/inconshreveable/mousetrap", Versions: []string{"v1.1.0"}},
			{Path: "gopkg.in/yaml.v3", Versions: []string{"v3.0.1", "v3.1.0-rc.1"}},
			{Path: longPath, Versions: []string{"v2.0.0-20240102030405-abcdefabcdef", "v2.1.0"}},
		},
		toolchains: []string{"go1.26.8", "go1.27.3", "go1.25.9"},
		bundles: []store.BundleInfo{
			{
				Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				Name:   "svc", Version: "2026.11.1", Created: "2026-11-01T12:00:00Z",
				Imported: time.Date(2026, 11, 2, 8, 30, 0, 0, time.UTC),
				Signer:   "release", Size: 734003200, Items: 1234,
			},
			{
				Digest:   "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
				Imported: time.Date(2026, 11, 20, 17, 5, 0, 0, time.UTC),
				Size:     52428, Items: 12,
			},
		},
	}
}

func get(t *testing.T, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestIndex(t *testing.T) {
	h := Handler(sampleSource())
	resp, body := get(t, h, "/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy %q allows scripts", csp)
	}
	for _, want := range []string{
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<label for="q">`, `<h1>`, `<h2 id="modules">`, `<h2 id="toolchains">`, `<h2 id="bundles">`,
		`go get golang.org/x/mod@v0.43.0`,
		`go get gopkg.in/yaml.v3@v3.0.1`, // the release, not the newer pre-release
		`go get ` + longPath + `@v2.1.0`,
		`<a href="/mod/github.com/spf13/cobra">github.com/<wbr>spf13/<wbr>cobra</a>`,
		`<summary>3 versions</summary>`,
		`<code>go1.27.3</code>`, `GOTOOLCHAIN=go1.27.3 go version`,
		`svc`, `2026.11.1`, `release`, `700.0 MiB`, `51.2 KiB`, `unsigned`, `2026-11-02 08:30 UTC`, `0123456789ab`,
		`go env -w GOPROXY=http://example.com`,
		`6 modules, 13 versions, 3 toolchains, from 2 bundles`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "http://") && strings.Contains(body, `src="http`) {
		t.Errorf("index has scripts or external assets")
	}
	// Modules are listed in path order.
	if strings.Index(body, "github.com/inconshreveable") > strings.Index(body, "golang.org/x/mod") {
		t.Errorf("modules not sorted by path")
	}
}

func TestSearch(t *testing.T) {
	h := Handler(sampleSource())
	_, body := get(t, h, "/?q=SPF13")
	if !strings.Contains(body, "github.com/spf13/cobra") || !strings.Contains(body, "github.com/spf13/pflag") {
		t.Errorf("search lacks spf13 modules")
	}
	if strings.Contains(body, "golang.org/x/mod@") || strings.Contains(body, "mousetrap") {
		t.Errorf("search shows modules that do not match")
	}
	if !strings.Contains(body, `value="SPF13"`) || !strings.Contains(body, "2 modules matching") {
		t.Errorf("search box or count missing")
	}
	_, body = get(t, h, "/?q=nothing-like-this")
	if !strings.Contains(body, "No modules match this search") {
		t.Errorf("empty search result not explained")
	}
}

func TestModulePage(t *testing.T) {
	h := Handler(sampleSource())
	resp, body := get(t, h, "/mod/github.com/spf13/cobra")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, v := range []string{"v1.9.1", "v1.10.1", "v1.10.2"} {
		if !strings.Contains(body, "<code class=\"cmd\">go get github.com/spf13/cobra@"+v+"</code>") {
			t.Errorf("module page lacks the go get line for %s", v)
		}
	}
	if strings.Index(body, "@v1.10.1<") > strings.Index(body, "@v1.9.1<") {
		t.Errorf("versions not newest first")
	}
	if !strings.Contains(body, "<h1>github.com/<wbr>spf13/<wbr>cobra</h1>") {
		t.Errorf("no heading")
	}
	if resp, _ := get(t, h, "/mod/github.com/spf13/cobra/"); resp.StatusCode != 200 {
		t.Errorf("trailing slash: %d", resp.StatusCode)
	}
	resp, body = get(t, h, "/mod/github.com/spf13")
	if resp.StatusCode != 404 || !strings.Contains(body, "Not found") {
		t.Errorf("unknown module: %d", resp.StatusCode)
	}
	if resp, _ := get(t, h, "/elsewhere"); resp.StatusCode != 404 {
		t.Errorf("/elsewhere: %d", resp.StatusCode)
	}
}

func TestMethods(t *testing.T) {
	h := Handler(sampleSource())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader("x")))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %q", rec.Code, rec.Header().Get("Allow"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("HEAD", "/", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d, %d body bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

func TestHostileValuesAreEscaped(t *testing.T) {
	const xss = `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	src := &fixedSource{
		mods: []Module{
			{Path: "evil.example/" + xss, Versions: []string{"v1.0.0", `v1.0.1-"><script>alert(3)</script>`}},
			{Path: "javascript:alert(4)", Versions: []string{"v1.0.0"}},
		},
		toolchains: []string{`go1.26.8<script>alert(5)</script>`},
		bundles:    []store.BundleInfo{{Name: xss, Version: xss, Signer: xss, Created: xss, Digest: xss}},
	}
	h := Handler(src)
	for _, target := range []string{
		"/",
		"/?q=" + url.QueryEscape(xss),
		"/?q=evil",
		"/mod/evil.example/" + url.PathEscape(xss),
		"/mod/" + url.PathEscape(xss),
		"/" + url.PathEscape(xss),
	} {
		resp, body := get(t, h, target)
		if resp.StatusCode != 200 && resp.StatusCode != 404 {
			t.Errorf("%s: status %d", target, resp.StatusCode)
		}
		for _, bad := range []string{"<script", "<img", `href="javascript:`} {
			if strings.Contains(body, bad) {
				i := strings.Index(body, bad)
				t.Errorf("%s: unescaped %q in %q", target, bad, body[max(0, i-80):min(len(body), i+80)])
			}
		}
	}
	_, body := get(t, h, "/?q=evil")
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("hostile module path not shown escaped")
	}
}

var moduleItem = regexp.MustCompile(`<li>\s*<h3><a href="/mod/`)

func bigSource(n int) *fixedSource {
	src := &fixedSource{toolchains: []string{"go1.26.8"}}
	for i := range n {
		src.mods = append(src.mods, Module{
			Path:     fmt.Sprintf("example.com/org%03d/module%05d", i%100, i),
			Versions: []string{"v0.1.0", "v0.2.0", "v1.0.0", "v1.1.0", "v1.2.0"},
		})
	}
	return src
}

func TestPaging(t *testing.T) {
	src := bigSource(5000)
	h := Handler(src)
	resp, body := get(t, h, "/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := len(moduleItem.FindAllString(body, -1)); n != PageSize {
		t.Errorf("first page lists %d modules, want %d", n, PageSize)
	}
	if len(body) > 150_000 {
		t.Errorf("first page of 5000 modules is %d bytes", len(body))
	}
	for _, want := range []string{"Showing 1–100 of 5000", "Page 1 of 50", `<a href="/?page=2#modules" rel="next">`, "5000 modules, 25000 versions"} {
		if !strings.Contains(body, want) {
			t.Errorf("first page lacks %q", want)
		}
	}
	_, body = get(t, h, "/?page=50")
	if n := len(moduleItem.FindAllString(body, -1)); n != PageSize || !strings.Contains(body, "module04999") || strings.Contains(body, `rel="next"`) {
		t.Errorf("last page wrong: %d modules", n)
	}
	// Search pages keep the query.
	_, body = get(t, h, "/?q=org007/")
	if !strings.Contains(body, "50 modules matching") || strings.Contains(body, "Page 1 of") {
		t.Errorf("search over 5000 modules: %q", body[:min(len(body), 200)])
	}
	_, body = get(t, h, "/?q=module0")
	if !strings.Contains(body, `href="/?page=2&amp;q=module0#modules"`) {
		t.Errorf("next link of a search does not keep the query")
	}
	for _, bad := range []string{"/?page=51", "/?page=0", "/?page=x"} {
		if resp, _ := get(t, h, bad); resp.StatusCode != 404 {
			t.Errorf("%s: status %d", bad, resp.StatusCode)
		}
	}
}

func BenchmarkIndex5000(b *testing.B) {
	h := Handler(bigSource(5000))
	req := httptest.NewRequest("GET", "/?q=module", nil)
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 71680185: "68.4 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanSize(in); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "latest"},
		{[]string{"v1.0.0"}, "v1.0.0"},
		{[]string{"v1.0.0", "v1.1.0-rc.1"}, "v1.0.0"},
		{[]string{"v0.0.0-20240102030405-abcdefabcdef"}, "v0.0.0-20240102030405-abcdefabcdef"},
		{[]string{"v2.0.0+incompatible", "v2.1.0+incompatible"}, "v2.1.0+incompatible"},
	} {
		if got := latest(tc.in); got != tc.want {
			t.Errorf("latest(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
