package accesslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMiddleware(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		SetUser(r.Context(), "alice")
		io.WriteString(w, "hello, world")
	})
	mux.HandleFunc("/content", func(w http.ResponseWriter, r *http.Request) {
		// ServeContent copies through io.ReaderFrom when it can.
		http.ServeContent(w, r, "x.zip", time.Time{}, strings.NewReader(strings.Repeat("z", 100000)))
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	srv := httptest.NewServer(Middleware(log, mux))
	defer srv.Close()

	for _, p := range []string{"/hello?token=secret", "/content", "/missing", "/fail"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	srv.Close() // all handlers have returned and logged

	var recs []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4:\n%s", len(recs), buf.String())
	}
	byPath := map[string]map[string]any{}
	for _, m := range recs {
		byPath[m["path"].(string)] = m
		for _, k := range []string{"method", "path", "status", "bytes", "duration", "remote"} {
			if _, ok := m[k]; !ok {
				t.Errorf("record %v lacks %q", m, k)
			}
		}
		if m["msg"] != "http request" {
			t.Errorf("msg = %v", m["msg"])
		}
	}
	check := func(path string, status, n float64, user any, level string) {
		t.Helper()
		m := byPath[path]
		if m == nil {
			t.Fatalf("no record for %s", path)
		}
		if m["status"] != status || m["bytes"] != n || m["user"] != user || m["level"] != level {
			t.Errorf("%s: got status=%v bytes=%v user=%v level=%v, want %v %v %v %v", path,
				m["status"], m["bytes"], m["user"], m["level"], status, n, user, level)
		}
	}
	check("/hello", 200, 12, "alice", "INFO")
	check("/content", 200, 100000, nil, "INFO")
	check("/missing", 404, float64(len("404 page not found\n")), nil, "INFO")
	check("/fail", 500, float64(len("boom\n")), nil, "WARN")
	if strings.Contains(buf.String(), "secret") {
		t.Errorf("query string leaked into the log: %s", buf.String())
	}
}

func TestSetUserOutsideMiddleware(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	SetUser(r.Context(), "nobody") // must not panic
}

func TestRecorderUnwrap(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	h := Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through ResponseController: %v", err)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
