package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestDisabledIsSilent(t *testing.T) {
	var buf bytes.Buffer
	p := New(&buf, false)
	b := p.Bar("modules", 100)
	b.Add(50)
	b.SetTotal(200)
	b.Done()
	p.Counter("fetch", func() (int64, int64, int64, int64) { return 1, 2, 3, 4 }).Done()
	p.BarNote("push", 1, func() string { return "note" }).Add(1)
	p.Wait()
	if buf.Len() != 0 {
		t.Errorf("disabled Progress wrote %q", buf.String())
	}
	var np *Progress
	np.Bar("x", 1).Add(1)
	np.Wait()
	var nb *Bar
	nb.Add(1)
	nb.SetTotal(1)
	nb.Done()
}

func TestEnabledDraws(t *testing.T) {
	var buf syncBuffer
	p := New(&buf, true)
	known := p.Bar("toolchains", 3000)
	growing := p.Bar("modules", 0)
	counter := p.Counter("fetch", func() (int64, int64, int64, int64) { return 7, 3 << 20, 2, 1536 })
	noted := p.BarNote("push", 4096, func() string { return "sent 1.0 KiB, present 3.0 KiB" })
	noted.Add(4096)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			known.Add(300)
			growing.Add(100)
			growing.SetTotal(2000)
		})
	}
	wg.Wait()
	known.Done()
	_ = counter // left running: Wait must complete it
	p.Wait()
	p.Wait() // idempotent
	p.Bar("late", 1).Add(1)

	out := buf.String()
	for _, want := range []string{"toolchains", "2.9 KiB / 2.9 KiB", "modules", "1000 B", "fetch", "7 fetched (3.0 MiB), 2 already present (1.5 KiB)", "4.0 KiB / 4.0 KiB", "sent 1.0 KiB, present 3.0 KiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestEnabled(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if Enabled(f, false) || Enabled(&bytes.Buffer{}, false) || Enabled(os.Stdout, true) {
		t.Errorf("Enabled is true for a file, a buffer or JSON mode")
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		71680185: "68.4 MiB", 5 << 30: "5.0 GiB", 1 << 62: "4.0 EiB",
	} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q; want %q", n, got, want)
		}
	}
	if got := Summary(1, 2048, 0, 0); got != "1 fetched (2.0 KiB), 0 already present (0 B)" {
		t.Errorf("Summary = %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the drawing goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
