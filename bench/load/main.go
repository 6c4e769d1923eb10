// Command load is the load generator of bench/serve-load.sh: it fills a
// ferry store with a synthetic bundle (-make-store), or runs concurrent
// clients against a `ferry serve` for a while (-url) fetching .info, .mod,
// .zip and checksum database tiles of the bundles in that store, and reports
// requests/s, p50/p99 latency per kind, errors and zip MB/s.
//
// The synthetic bundle is imported without verification (its checksum
// database tiles are random bytes): it measures serving, not proving.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

func main() {
	var (
		makeStore = flag.String("make-store", "", "write a synthetic bundle into this store directory and exit")
		modules   = flag.Int("modules", 300, "modules in the synthetic bundle")
		url       = flag.String("url", "", "base URL of the server to load")
		storeDir  = flag.String("store", "", "store directory whose bundles name the paths to fetch")
		clients   = flag.Int("c", 64, "concurrent clients")
		duration  = flag.Duration("d", 60*time.Second, "how long to run")
	)
	flag.Parse()
	ctx := context.Background()
	switch {
	case *makeStore != "":
		if err := synth(ctx, *makeStore, *modules); err != nil {
			log.Fatal(err)
		}
	case *url != "" && *storeDir != "":
		if err := run(ctx, *url, *storeDir, *clients, *duration); err != nil {
			log.Fatal(err)
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
}

// synth writes a bundle of n modules (zips of 20 KB to 2 MB) and 300 full
// checksum database tiles, and imports it into the store in dir.
func synth(ctx context.Context, dir string, n int) error {
	rng := rand.New(rand.NewPCG(1, 2))
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: "load-synthetic", SumDB: &bundle.SumDB{Name: "sum.bench"}}
	src := bundle.MemSource{}
	add := func(file string, kind bundle.Kind, mod, ver string, data []byte) {
		d := bundle.Digest(data)
		src[d] = data
		m.Items = append(m.Items, bundle.Item{File: file, Kind: kind, Module: mod, Version: ver, Size: int64(len(data)), Digest: d})
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
		add(base+".zip", bundle.KindZip, mod, "v1.0.0", random(size))
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

func run(ctx context.Context, base, dir string, clients int, d time.Duration) error {
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
			byKind[k] = append(byKind[k], target{"/" + it.File, it.Size})
		}
	}
	for _, w := range weights {
		if len(byKind[w.kind]) == 0 {
			return fmt.Errorf("the store has no %s files", w.kind)
		}
	}
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, DisableCompression: true}
	client := &http.Client{Transport: tr}
	deadline := time.Now().Add(d)
	results := make([][]sample, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for time.Now().Before(deadline) {
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
				n, err := fetch(client, base+t.path, t.size)
				results[c] = append(results[c], sample{kind, time.Since(t0), n, err})
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

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
	fmt.Printf("clients %d, duration %s, requests %d, errors %d, %.0f requests/s, %.1f MB/s total\n",
		clients, elapsed.Round(time.Millisecond), total, errs, float64(total)/elapsed.Seconds(), float64(allBytes)/1e6/elapsed.Seconds())
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

func fetch(c *http.Client, url string, want int64) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
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
