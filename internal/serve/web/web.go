// Package web renders the browse page of `ferry serve`: the modules,
// toolchains and bundles a store holds, with the `go get` line for each
// module version.
//
// Invariants:
//   - Pages are rendered on the server with html/template: every value
//     from the store (module paths, versions, bundle names, signers) is
//     escaped for its context, and a Content-Security-Policy that allows no
//     script at all is sent, so a hostile module path cannot run code.
//   - No external assets: CSS is inline, there is no JavaScript, and every
//     feature (search, paging, expanding version lists) works with plain
//     links, forms and <details>.
//   - The work and output of a request are bounded by the page size, not
//     by the store: the module list is paged (PageSize per page) and
//     filtered by substring before rendering.
//   - Only GET and HEAD are answered; the handler reads from Source and
//     never changes anything.
package web

import (
	"bytes"
	_ "embed"
	"fmt"
	goversion "go/version"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/store"
)

// PageSize is the number of modules on one page of the module list.
const PageSize = 100

// Module is a module path and the versions the store holds of it.
type Module struct {
	Path     string
	Versions []string // semver-sorted ascending
}

// Source is what the browse page shows. Its methods are called on every
// request and must be safe for concurrent use.
type Source interface {
	Modules() []Module
	Toolchains() []string // goX.Y.Z
	Bundles() []store.BundleInfo
}

//go:embed page.html
var pageHTML string

type handler struct {
	src  Source
	tmpl *template.Template
}

// Handler serves the browse page at "/" ("/?q=SUBSTRING&page=N" filters
// and pages the module list) and one page per module at "/mod/<module path>"
// with every version and its `go get` line. Other paths get 404.
func Handler(src Source) http.Handler {
	tmpl := template.Must(template.New("page").Funcs(template.FuncMap{
		"size":    humanSize,
		"latest":  latest,
		"reverse": reversed,
		"short":   shortDigest,
		"date":    func(t time.Time) string { return formatTime(t) },
		"wrap":    wrapPath,
	}).Parse(pageHTML))
	return &handler{src: src, tmpl: tmpl}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case r.URL.Path == "/":
		h.index(w, r)
	case strings.HasPrefix(r.URL.Path, "/mod/"):
		h.module(w, r, strings.Trim(strings.TrimPrefix(r.URL.Path, "/mod/"), "/"))
	default:
		h.render(w, r, http.StatusNotFound, &page{Title: "Not found", NotFound: r.URL.Path})
	}
}

// page is the data of the template.
type page struct {
	Title    string
	Proxy    string // GOPROXY value for this server
	Query    string
	NotFound string // path that matched nothing

	// Index.
	Index       bool
	Modules     []Module
	Total       int // modules in the store
	Versions    int // module versions in the store
	Matched     int // modules matching Query
	First, Last int // 1-based range of Modules within Matched
	Prev, Next  string
	PageNum     int
	Pages       int
	Toolchains  []string
	Bundles     []store.BundleInfo

	// Module page.
	Module *Module
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	all := h.src.Modules()
	p := &page{Title: "Modules", Index: true, Query: q, Total: len(all)}
	var matched []Module
	for _, m := range all {
		p.Versions += len(m.Versions)
		if q == "" || strings.Contains(strings.ToLower(m.Path), strings.ToLower(q)) {
			matched = append(matched, m)
		}
	}
	slices.SortFunc(matched, func(a, b Module) int { return strings.Compare(a.Path, b.Path) })
	p.Matched = len(matched)
	p.Pages = max(1, (len(matched)+PageSize-1)/PageSize)
	p.PageNum = 1
	if s := r.URL.Query().Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > p.Pages {
			h.render(w, r, http.StatusNotFound, &page{Title: "Not found", NotFound: r.URL.RequestURI()})
			return
		}
		p.PageNum = n
	}
	start := (p.PageNum - 1) * PageSize
	end := min(start+PageSize, len(matched))
	p.Modules = matched[start:end]
	p.First, p.Last = start+1, end
	link := func(n int) string {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		if len(v) == 0 {
			return "/#modules"
		}
		return "/?" + v.Encode() + "#modules"
	}
	if p.PageNum > 1 {
		p.Prev = link(p.PageNum - 1)
	}
	if p.PageNum < p.Pages {
		p.Next = link(p.PageNum + 1)
	}
	p.Toolchains = slices.Clone(h.src.Toolchains())
	slices.SortFunc(p.Toolchains, func(a, b string) int { return -goversion.Compare(a, b) }) // newest first
	p.Bundles = h.src.Bundles()
	if q != "" {
		p.Title = "Modules matching " + q
	}
	h.render(w, r, http.StatusOK, p)
}

func (h *handler) module(w http.ResponseWriter, r *http.Request, path string) {
	for _, m := range h.src.Modules() {
		if m.Path == path {
			h.render(w, r, http.StatusOK, &page{Title: m.Path, Module: &m})
			return
		}
	}
	h.render(w, r, http.StatusNotFound, &page{Title: "Module not found", NotFound: path, Query: path})
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, code int, p *page) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	p.Proxy = scheme + "://" + r.Host
	var buf bytes.Buffer
	if err := h.tmpl.Execute(&buf, p); err != nil {
		http.Error(w, fmt.Sprintf("rendering browse page: %v", err), http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// latest is the version `go get` is shown with on the index: the highest
// release if there is one, else the highest pre-release.
func latest(versions []string) string {
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		if !strings.Contains(strings.SplitN(v, "+", 2)[0], "-") {
			return v
		}
	}
	if len(versions) > 0 {
		return versions[len(versions)-1]
	}
	return "latest"
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// wrapPath escapes a module path for HTML and lets it break after each
// slash, so long paths wrap at element boundaries on narrow screens.
func wrapPath(p string) template.HTML {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = template.HTMLEscapeString(s)
	}
	return template.HTML(strings.Join(parts, "/<wbr>"))
}
