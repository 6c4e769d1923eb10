// Command load is the load generator of bench/serve-load.sh: it fills a
// ferry store with a synthetic bundle (-make-store), or runs concurrent
// clients against a `ferry serve` for a while (-url) fetching .info, .mod,
// .zip and checksum database tiles of the bundles in that store, and reports
// requests/s, p50/p99 latency per kind, errors, zip MB/s and its own CPU
// use. Each client holds one keep-alive connection and reads every body
// whole (into a buffer it reuses), checking status and length; nothing is
// cached. -client stdlib uses net/http's client instead of the minimal one.
//
// The synthetic bundle is imported without verification (its checksum
// database tiles are random bytes): it measures serving, not proving.
package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

func main() {
	var (
		makeStore = flag.String("make-store", "", "write a synthetic bundle into this store directory and exit")
		modules   = flag.Int("modules", 300, "modules in the synthetic bundle")
		url       = flag.String("url", "", "base URL of the server to load")
		storeDir  = flag.String("store", "", "store directory whose bundles name the paths to fetch")
		clients   = flag.Int("c", 64, "concurrent clients")
		duration  = flag.Duration("d", 60*time.Second, "how long to run")
		cpuprof   = flag.String("cpuprofile", "", "write a CPU profile of the load generator to this file")
		rate      = flag.Float64("rate", 0, "open loop: requests per second in all, spread evenly over the clients, latency counted from when each request was due (0: closed loop, each client sends its next request as soon as it has the answer)")
		clientImp = flag.String("client", "raw", "HTTP client: raw (HTTP/1.1 on one keep-alive connection per client, like wrk) or stdlib (net/http, as the go command)")
	)
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	switch {
	case *makeStore != "":
		if err := synth(ctx, *makeStore, *modules); err != nil {
			log.Fatal(err)
		}
	case *url != "" && *storeDir != "":
		if *clientImp != "raw" && *clientImp != "stdlib" {
			log.Fatalf("-client %s: want raw or stdlib", *clientImp)
		}
		if err := run(ctx, *url, *storeDir, *clients, *duration, *clientImp, *rate); err != nil {
			pprof.StopCPUProfile()
			log.Fatal(err)
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
}

// synth writes a bundle of n modules and 300 full checksum database tiles,
// and imports it into the store in dir. Each module's zip is a real module
// zip (20 KB to 2 MB once decoded, of text that compresses about as Go
// source does) carried zstd-encoded, as pack writes it, so that the store
// and the server handle what they handle for a packed bundle.
func synth(ctx context.Context, dir string, n int) error {
	rng := rand.New(rand.NewPCG(1, 2))
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: "load-synthetic", SumDB: &bundle.SumDB{Name: "sum.bench"}}
	src := bundle.MemSource{}
	words := strings.Fields(vocabulary)
	add := func(file string, kind bundle.Kind, mod, ver string, data []byte) *bundle.Item {
		d := bundle.Digest(data)
		src[d] = data
		m.Items = append(m.Items, bundle.Item{File: file, Kind: kind, Module: mod, Version: ver, Size: int64(len(data)), Digest: d})
		return &m.Items[len(m.Items)-1]
	}
	random := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	for i := range n {
		mod := fmt.Sprintf("example.com/load/m%03d", i)
		base := mod + "/@v/v1.0.0"
		add(base+".info", bundle.KindInfo, mod, "v1.0.0", fmt.Appendf(nil, `{"Version":"v1.0.0","Time":"2026-01-01T00:00:00Z"}`))
		add(base+".mod", bundle.KindMod, mod, "v1.0.0", fmt.Appendf(nil, "module %s\n\ngo 1.22\n", mod))
		size := 20_000 + rng.IntN(80_000)
		if i%10 == 0 {
			size = 2_000_000
		}
		blob, res, err := moduleZip(ctx, rng, words, mod, "v1.0.0", size)
		if err != nil {
			return fmt.Errorf("module %s: %w", mod, err)
		}
		it := add(base+".zip", bundle.KindZip, mod, "v1.0.0", blob)
		it.Hash, it.Encoding, it.FileDigest, it.FileSize = res.H1, bundle.EncodingZstd, res.FileDigest, res.FileSize
	}
	for i := range 300 {
		add(fmt.Sprintf("sumdb/sum.bench/tile/8/0/%03d", i), bundle.KindSumDB, "", "", random(8192))
	}
	tmp, err := os.MkdirTemp("", "load-bundle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p := filepath.Join(tmp, "synthetic.ferry")
	if _, err := bundle.Write(ctx, p, m, src, bundle.WriteOptions{}); err != nil {
		return err
	}
	r, err := bundle.Open(p)
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := local.Open(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Import(ctx, r, store.BundleInfo{})
}

// vocabulary makes up the synthetic source files.
const vocabulary = `package import func return if else for range var const type struct
interface map chan go defer select case switch default break continue nil err error string int
byte bool true false len cap make new append copy delete panic recover context ctx fmt Errorf
Sprintf io Reader Writer Close Read Write os File path filepath strings Builder bytes Buffer
sync Mutex Lock Unlock time Duration Now http Request Response Handler ServeHTTP json Marshal
Unmarshal config value key name size offset count index result data buf p n i j ok t s b r w`

// moduleZip builds the zip of mod@version, deflated as a proxy serves it,
// with files of Go-like text adding up to about size bytes, and encodes it
// as pack does.
func moduleZip(ctx context.Context, rng *rand.Rand, words []string, mod, version string, size int) ([]byte, zipcodec.Result, error) {
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	prefix := mod + "@" + version + "/"
	w, err := zw.Create(prefix + "go.mod")
	if err != nil {
		return nil, zipcodec.Result{}, err
	}
	fmt.Fprintf(w, "module %s\n\ngo 1.22\n", mod)
	var line []byte
	for f, left := 0, size; left > 0; f++ {
		w, err := zw.Create(fmt.Sprintf("%spkg%d/file%03d.go", prefix, f%7, f))
		if err != nil {
			return nil, zipcodec.Result{}, err
		}
		n := min(left, 4_000+rng.IntN(60_000))
		left -= n
		for n > 0 {
			line = line[:0]
			for indent := rng.IntN(4); indent > 0; indent-- {
				line = append(line, '\t')
			}
			for len(line) < 20+rng.IntN(60) {
				line = append(line, words[rng.IntN(len(words))]...)
				line = append(line, ' ')
			}
			line[len(line)-1] = '\n'
			line = line[:min(len(line), n)]
			w.Write(line)
			n -= len(line)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, zipcodec.Result{}, err
	}
	zr, err := zip.NewReader(bytes.NewReader(zb.Bytes()), int64(zb.Len()))
	if err != nil {
		return nil, zipcodec.Result{}, err
	}
	var blob bytes.Buffer
	res, err := zipcodec.Encode(ctx, &blob, zr, zipcodec.DefaultLevel)
	return blob.Bytes(), res, err
}

type target struct {
	path string
	size int64
}

// weights of each kind in the request mix.
var weights = []struct {
	kind string
	w    int
}{{"info", 30}, {"mod", 30}, {"tile", 30}, {"zip", 10}}

type sample struct {
	kind  string
	d     time.Duration
	bytes int64
	err   error
}

func run(ctx context.Context, base, dir string, clients int, d time.Duration, clientImp string, rate float64) error {
	st, err := local.Open(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	infos, err := st.List(ctx)
	if err != nil {
		return err
	}
	byKind := map[string][]target{}
	for _, in := range infos {
		m, err := st.Manifest(ctx, in.Digest)
		if err != nil {
			return err
		}
		for _, it := range m.Items {
			k := string(it.Kind)
			if it.Kind == bundle.KindSumDB {
				if !strings.Contains(it.File, "/tile/") {
					continue
				}
				k = "tile"
			}
			_, size := it.FileID() // an encoded zip is served decoded
			byKind[k] = append(byKind[k], target{"/" + it.File, size})
		}
	}
	for _, w := range weights {
		if len(byKind[w.kind]) == 0 {
			return fmt.Errorf("the store has no %s files", w.kind)
		}
	}
	// stdlib: every client keeps its connection (MaxIdleConnsPerHost >= clients).
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, DisableCompression: true}
	client := &http.Client{Transport: tr}
	u, err := neturl.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %s: want http://HOST:PORT", base)
	}
	cpu0 := cpuTime()
	deadline := time.Now().Add(d)
	results := make([][]sample, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			buf := make([]byte, 256<<10) // large reads: a 2 MB zip in a few read(2)s, not 256
			var get func(path string, want int64) (int64, error)
			if clientImp == "raw" {
				rc := &rawConn{host: u.Host}
				defer rc.close()
				get = func(path string, want int64) (int64, error) { return rc.get(path, want, buf) }
			} else {
				get = func(path string, want int64) (int64, error) { return fetch(client, base+path, want, buf) }
			}
			// Open loop: client c's requests are due every interval from
			// start + c*interval/clients; a late answer delays the next
			// request, and that delay counts in the next one's latency
			// (no coordinated omission).
			var interval time.Duration
			due := start
			if rate > 0 {
				interval = time.Duration(float64(clients) / rate * float64(time.Second))
				due = start.Add(interval * time.Duration(c) / time.Duration(clients))
			}
			for time.Now().Before(deadline) {
				if interval > 0 {
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
					if !due.Before(deadline) {
						break
					}
				}
				x := rng.IntN(100)
				kind := ""
				for _, w := range weights {
					if x < w.w {
						kind = w.kind
						break
					}
					x -= w.w
				}
				ts := byKind[kind]
				t := ts[rng.IntN(len(ts))]
				t0 := time.Now()
				if interval > 0 {
					t0 = due
					due = due.Add(interval)
				}
				n, err := get(t.path, t.size)
				results[c] = append(results[c], sample{kind, time.Since(t0), n, err})
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0

	lat := map[string][]time.Duration{}
	var total, errs int
	var zipBytes, allBytes int64
	var firstErr error
	for _, rs := range results {
		for _, s := range rs {
			total++
			allBytes += s.bytes
			if s.err != nil {
				errs++
				if firstErr == nil {
					firstErr = s.err
				}
				continue
			}
			lat[s.kind] = append(lat[s.kind], s.d)
			if s.kind == "zip" {
				zipBytes += s.bytes
			}
		}
	}
	mode := "closed loop"
	if rate > 0 {
		mode = fmt.Sprintf("open loop, %.0f requests/s offered", rate)
	}
	fmt.Printf("%s, client %s, clients %d, duration %s, requests %d, errors %d, %.0f requests/s, %.1f MB/s total\n",
		mode, clientImp, clients, elapsed.Round(time.Millisecond), total, errs, float64(total)/elapsed.Seconds(), float64(allBytes)/1e6/elapsed.Seconds())
	fmt.Printf("%-5s %9s %10s %10s %10s\n", "kind", "requests", "p50", "p99", "max")
	for _, w := range weights {
		ds := lat[w.kind]
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		if len(ds) == 0 {
			continue
		}
		fmt.Printf("%-5s %9d %10s %10s %10s\n", w.kind, len(ds), pct(ds, 50), pct(ds, 99), ds[len(ds)-1].Round(time.Microsecond))
	}
	fmt.Printf("zip throughput: %.1f MB/s\n", float64(zipBytes)/1e6/elapsed.Seconds())
	fmt.Printf("load generator CPU: %.1f s (%.2f cores, %.0f µs a request)\n",
		cpu.Seconds(), cpu.Seconds()/elapsed.Seconds(), float64(cpu.Microseconds())/float64(max(total, 1)))
	if errs > 0 {
		return fmt.Errorf("%d errors, first: %v", errs, firstErr)
	}
	return nil
}

func pct(ds []time.Duration, p int) time.Duration {
	i := (len(ds)*p + 99) / 100
	if i > 0 {
		i--
	}
	return ds[i].Round(time.Microsecond)
}

func fetch(c *http.Client, url string, want int64, buf []byte) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(discard{}, resp.Body, buf)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != 200 {
		return n, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if n != want {
		return n, fmt.Errorf("GET %s: %d bytes, want %d", url, n, want)
	}
	return n, nil
}

// discard is io.Discard without its ReadFrom (which reads in 8 KiB pieces),
// so that io.CopyBuffer uses the client's buffer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawConn is a minimal HTTP/1.1 client on one keep-alive connection: the
// request is one write, the response is parsed by http.ReadResponse and its
// body read whole. It spares the shared CPUs the goroutines and channels of
// net/http's Transport, so that the measurement is of the server.
type rawConn struct {
	host string
	c    net.Conn
	br   *bufio.Reader
	req  []byte
}

func (rc *rawConn) close() {
	if rc.c != nil {
		rc.c.Close()
		rc.c = nil
	}
}

// get fetches path, reads the body into buf (over and over) and checks
// that it is a 200 of want bytes.
func (rc *rawConn) get(path string, want int64, buf []byte) (n int64, err error) {
	if rc.c == nil {
		c, err := net.Dial("tcp", rc.host)
		if err != nil {
			return 0, err
		}
		rc.c, rc.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	defer func() {
		if err != nil {
			rc.close() // start the next request on a new connection
		}
	}()
	rc.req = append(rc.req[:0], "GET "...)
	rc.req = append(rc.req, path...)
	rc.req = append(rc.req, " HTTP/1.1\r\nHost: "...)
	rc.req = append(rc.req, rc.host...)
	rc.req = append(rc.req, "\r\nUser-Agent: ferry-load\r\n\r\n"...)
	if _, err := rc.c.Write(rc.req); err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	n, err = io.CopyBuffer(discard{}, resp.Body, buf)
	resp.Body.Close()
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != 200 {
		return n, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if n != want {
		return n, fmt.Errorf("GET %s: %d bytes, want %d", path, n, want)
	}
	if resp.Close {
		rc.close()
	}
	return n, nil
}
