package accesslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// gate is a writer whose Write waits until the gate is opened.
type gate struct {
	open chan struct{}
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

// A record is accepted while the underlying writer is stuck: logging a
// request must not wait for the log's I/O (it did when the access log wrote
// to stderr under the handler's lock).
func TestWriterDoesNotWaitForIO(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	w := NewWriter(g)
	log := slog.New(slog.NewJSONHandler(w, nil))
	// Far more than a flush's worth: the goroutine is stuck in g.Write
	// after the first flush, and the later records must still go in.
	for i := range 2000 {
		log.Info("http request", "i", i, "pad", strings.Repeat("x", 100))
	}
	close(g.open)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, g.buf.String(), 2000)
}

// checkRecords checks that out holds n whole JSON records with i = 0..n-1 in order.
func checkRecords(t *testing.T, out string, n int) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	i := 0
	for sc.Scan() {
		if want := fmt.Sprintf(`"i":%d,`, i); !strings.Contains(sc.Text(), want) {
			t.Fatalf("record %d: %q does not have %s", i, sc.Text(), want)
		}
		i++
	}
	if i != n {
		t.Fatalf("%d records, want %d", i, n)
	}
}

// Concurrent writers: every record arrives whole, none is lost, and a
// writer's own records keep their order.
func TestWriterConcurrent(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out)
	log := slog.New(slog.NewJSONHandler(w, nil))
	const writers, each = 8, 5000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				log.Info("r", "g", g, "i", i)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	n := 0
	for sc.Scan() {
		var g, i int
		line := sc.Text()
		k := strings.Index(line, `"g":`)
		if k < 0 {
			t.Fatalf("bad record %q", line)
		}
		if _, err := fmt.Sscanf(line[k:], `"g":%d,"i":%d}`, &g, &i); err != nil {
			t.Fatalf("bad record %q: %v", line, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: record %d after %d", g, i, next[g]-1)
		}
		next[g]++
		n++
	}
	if n != writers*each {
		t.Fatalf("%d records, want %d", n, writers*each)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// More than maxPending while the underlying writer is stuck: Write waits
// (nothing is dropped), and goes on once the writer moves.
func TestWriterBackPressure(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	w := NewWriter(g)
	rec := []byte(strings.Repeat("y", 1023) + "\n")
	n := 3 * maxPending / len(rec)
	var written atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			if _, err := w.Write(rec); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	// Let maxPending bytes pile up behind the stuck writer first.
	for written.Load() < int64(maxPending/len(rec)) {
		runtime.Gosched()
	}
	close(g.open)
	<-done
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := g.buf.Len(); got != n*len(rec) {
		t.Fatalf("wrote %d bytes, want %d", got, n*len(rec))
	}
}

type failing struct{}

func (failing) Write(p []byte) (int, error) { return 0, errors.New("disk full") }

// Close writes what is pending, reports the underlying writer's error, and
// a Write after Close goes straight through.
func TestWriterClose(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out)
	io.WriteString(w, "one\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "one\n" {
		t.Fatalf("after Close: %q", out.String())
	}
	io.WriteString(w, "two\n")
	if out.String() != "one\ntwo\n" {
		t.Fatalf("Write after Close: %q", out.String())
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	f := NewWriter(failing{})
	io.WriteString(f, "lost\n")
	if err := f.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close over a failing writer: %v", err)
	}
}
