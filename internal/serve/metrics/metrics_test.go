package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func kindOf(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/sumdb/"):
		return "sumdb"
	case strings.HasSuffix(p, ".info"):
		return "info"
	case strings.HasSuffix(p, ".mod"):
		return "mod"
	case strings.HasSuffix(p, ".zip"):
		return "zip"
	case strings.HasSuffix(p, "/@v/list"):
		return "list"
	case p == "/":
		return "page"
	case strings.HasPrefix(p, "/weird"):
		return "not-a-kind" // must be folded into "other"
	}
	return "other"
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing exposition: %v", err)
	}
	return fams
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

func TestMetrics(t *testing.T) {
	m := New()
	m.SetStoreSize(func() int64 { return 123456789 })
	m.SetBundles(func() int { return 3 })

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, ".zip"):
			io.WriteString(w, strings.Repeat("z", 1000))
		case strings.Contains(r.URL.Path, "missing"):
			http.NotFound(w, r)
		case strings.HasSuffix(r.URL.Path, "/gone.info"):
			w.WriteHeader(http.StatusGone)
		case r.URL.Path == "/empty":
			// writes nothing: net/http answers 200
		default:
			io.WriteString(w, "12345")
		}
	})
	app := httptest.NewServer(m.Middleware(kindOf, mux))
	defer app.Close()
	metricsSrv := httptest.NewServer(m.Handler())
	defer metricsSrv.Close()

	get := func(p string, n int) {
		for range n {
			resp, err := http.Get(app.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	get("/m/@v/v1.0.0.info", 3)
	get("/m/@v/gone.info", 1)
	get("/m/@v/v1.0.0.mod", 2)
	get("/m/@v/v1.0.0.zip", 4)
	get("/m/@v/list", 1)
	get("/missing/@v/list", 2)
	get("/sumdb/x/lookup/m@v1.0.0", 1)
	get("/", 1)
	get("/weird", 1)
	get("/empty", 1)
	app.Close() // every handler has returned and been recorded

	fams := scrape(t, metricsSrv.URL)

	want := map[[2]string]float64{
		{"info", "200"}:  3,
		{"info", "410"}:  1,
		{"mod", "200"}:   2,
		{"zip", "200"}:   4,
		{"list", "200"}:  1,
		{"list", "404"}:  2,
		{"sumdb", "200"}: 1,
		{"page", "200"}:  1,
		{"other", "200"}: 2, // /weird folded into other, /empty
	}
	reqs := fams["ferry_http_requests_total"]
	if reqs == nil || reqs.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("ferry_http_requests_total missing or not a counter: %v", reqs)
	}
	got := map[[2]string]float64{}
	for _, s := range reqs.GetMetric() {
		l := labels(s)
		got[[2]string{l["kind"], l["code"]}] = s.GetCounter().GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requests{kind=%q,code=%q} = %v, want %v", k[0], k[1], got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("requests series = %v, want %v", got, want)
	}

	bytesByKind := map[string]float64{}
	for _, s := range fams["ferry_http_response_bytes_total"].GetMetric() {
		bytesByKind[labels(s)["kind"]] = s.GetCounter().GetValue()
	}
	if bytesByKind["zip"] != 4000 || bytesByKind["mod"] != 10 || bytesByKind["latest"] != 0 {
		t.Errorf("bytes by kind = %v", bytesByKind)
	}
	if _, ok := bytesByKind["latest"]; !ok {
		t.Errorf("kind latest has no series before any request: %v", bytesByKind)
	}

	lat := fams["ferry_http_request_duration_seconds"]
	if lat == nil || lat.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("latency histogram missing: %v", lat)
	}
	for _, s := range lat.GetMetric() {
		h := s.GetHistogram()
		k := labels(s)["kind"]
		if k == "zip" && h.GetSampleCount() != 4 {
			t.Errorf("zip latency count = %d, want 4", h.GetSampleCount())
		}
		if len(h.GetBucket()) != len(Buckets())+1 { // and +Inf
			t.Errorf("%s: %d buckets, want %d", k, len(h.GetBucket()), len(Buckets())+1)
		}
		if b := h.GetBucket(); len(b) > 0 && b[0].GetUpperBound() > 0.001 {
			t.Errorf("smallest bucket %v is not sub-millisecond", b[0].GetUpperBound())
		}
	}

	gauge := func(name string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil || f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 1 {
			t.Fatalf("%s missing or not one gauge: %v", name, f)
		}
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	if v := gauge("ferry_store_bytes"); v != 123456789 {
		t.Errorf("ferry_store_bytes = %v", v)
	}
	if v := gauge("ferry_store_bundles"); v != 3 {
		t.Errorf("ferry_store_bundles = %v", v)
	}
	if v := gauge("ferry_http_requests_in_flight"); v != 0 {
		t.Errorf("in flight after all requests = %v", v)
	}
	if fams["go_goroutines"] == nil {
		t.Errorf("no Go runtime metrics")
	}

	// Gauges follow the store at scrape time.
	m.SetBundles(func() int { return 4 })
	if v := scrape(t, metricsSrv.URL)["ferry_store_bundles"].GetMetric()[0].GetGauge().GetValue(); v != 4 {
		t.Errorf("after SetBundles(4): %v", v)
	}
}

func TestIndependentRegistries(t *testing.T) {
	// Two servers in one process must not collide (no global registry).
	a, b := New(), New()
	h := a.Middleware(func(*http.Request) string { return "info" }, http.NotFoundHandler())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x.info", nil))
	rec := httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(rec.Body.String(), `ferry_http_requests_total{code="404"`) {
		t.Errorf("b reports a's requests:\n%s", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `ferry_http_requests_total{code="404",kind="info"} 1`) {
		t.Errorf("a does not report its request:\n%s", rec.Body.String())
	}
	if !strings.Contains(rec.Body.String(), "ferry_store_bytes 0") {
		t.Errorf("unset store size is not 0")
	}
}
