// Package metrics exposes the Prometheus metrics of `ferry serve`.
//
// Invariants:
//   - Each Metrics has its own prometheus.Registry; nothing is registered
//     with the global default registry, so several servers (or tests) in
//     one process do not share or collide.
//   - Label values are bounded: kind is one of Kinds (anything else is
//     counted as "other") and code is the numeric HTTP status, so the
//     number of series does not grow with the requests seen.
//   - Store gauges are computed at scrape time by the functions given to
//     SetStoreSize and SetBundles (0 until they are set); they must be
//     cheap and safe for concurrent use.
//
// Metrics:
//
//	ferry_http_requests_total{kind,code}             counter
//	ferry_http_response_bytes_total{kind}            counter (body bytes)
//	ferry_http_request_duration_seconds{kind}        histogram, 100µs .. 30s
//	ferry_http_requests_in_flight                    gauge
//	ferry_store_bytes                                gauge
//	ferry_store_bundles                              gauge
//
// plus the Go runtime and process collectors.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-dev/ferry/internal/serve/accesslog"
)

// Kinds returns the values of the kind label.
func Kinds() []string {
	return []string{"info", "mod", "zip", "list", "latest", "sumdb", "page", "oci-manifest", "oci-blob", "other"}
}

// Buckets returns the upper bounds of the latency histogram, in seconds:
// from sub-millisecond .info/.mod answers to multi-second toolchain zips.
func Buckets() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
}

// Metrics holds the collectors of one server.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge

	storeSize atomic.Pointer[func() int64]
	bundles   atomic.Pointer[func() int]
}

// New returns Metrics registered with a new registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_requests_total",
			Help: "HTTP requests answered, by kind of path and status code.",
		}, []string{"kind", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_response_bytes_total",
			Help: "Response body bytes sent, by kind of path.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_http_request_duration_seconds",
			Help:    "Time from request to the handler's return, by kind of path.",
			Buckets: Buckets(),
		}, []string{"kind"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_http_requests_in_flight",
			Help: "Requests being answered.",
		}),
	}
	storeBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ferry_store_bytes",
		Help: "Bytes the store holds: its bundle files, and the decoded zips a local store keeps.",
	}, func() float64 {
		if f := m.storeSize.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	storeBundles := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ferry_store_bundles",
		Help: "Number of bundles imported into the store.",
	}, func() float64 {
		if f := m.bundles.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	m.reg.MustRegister(m.requests, m.bytes, m.latency, m.inFlight, storeBytes, storeBundles,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every kind appears from the start, so dashboards and rate() see zeros
	// rather than missing series.
	for _, k := range Kinds() {
		m.bytes.WithLabelValues(k)
		m.latency.WithLabelValues(k)
	}
	return m
}

// Registry returns the registry, to add collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetStoreSize sets the function read at scrape time for ferry_store_bytes.
func (m *Metrics) SetStoreSize(f func() int64) { m.storeSize.Store(&f) }

// SetBundles sets the function read at scrape time for ferry_store_bundles.
func (m *Metrics) SetBundles(f func() int) { m.bundles.Store(&f) }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func knownKind(k string) string {
	switch k {
	case "info", "mod", "zip", "list", "latest", "sumdb", "page", "oci-manifest", "oci-blob":
		return k
	}
	return "other"
}

// Middleware records every request passed to next by kind(r) and status.
func (m *Metrics) Middleware(kind func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := knownKind(kind(r))
		start := time.Now()
		m.inFlight.Inc()
		rw := &accesslog.Recorder{ResponseWriter: w}
		defer func() {
			m.inFlight.Dec()
			status := rw.Status
			if status == 0 {
				status = http.StatusOK // net/http sends 200 for a handler that writes nothing
			}
			m.requests.WithLabelValues(k, strconv.Itoa(status)).Inc()
			m.bytes.WithLabelValues(k).Add(float64(rw.Bytes))
			m.latency.WithLabelValues(k).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rw, r)
	})
}
