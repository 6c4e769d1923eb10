// Command gziplevel measures what each gzip level costs and gives on the
// decoded module zips of a local store (DIR/files/sha256): the bytes the
// gzips add up to, the CPU time and wall time compressing all of them takes
// (one file per core at a time, as an import does), and the time net/http's
// gzip reader (the go command's) takes to decompress them. It is the
// measurement behind local.GzipLevel; nothing in ferry uses it.
//
//	go run ./bench/gziplevel -store STORE [-codecs k1,k2,...] [-par N]
//
// Codecs: kN is github.com/klauspost/compress/gzip at level N (k-2 is
// Huffman only, k-3 stateless), sN is the standard library's compress/gzip.
package main

import (
	"bytes"
	stdgzip "compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newWriter(codec string, w io.Writer) (io.WriteCloser, error) {
	lvl, err := strconv.Atoi(codec[1:])
	if err != nil {
		return nil, fmt.Errorf("codec %q: %w", codec, err)
	}
	switch codec[0] {
	case 'k':
		return kgzip.NewWriterLevel(w, lvl)
	case 's':
		return stdgzip.NewWriterLevel(w, lvl)
	}
	return nil, fmt.Errorf("unknown codec %q", codec)
}

func main() {
	storeDir := flag.String("store", "", "local store directory")
	codecs := flag.String("codecs", "k-3,k-2,k1,k2,k3,k4,k5,k6,k7,k9,s1,s6,s9", "comma-separated codecs")
	par := flag.Int("par", runtime.GOMAXPROCS(0), "files compressed at a time")
	flag.Parse()
	if *storeDir == "" {
		fmt.Fprintln(os.Stderr, "usage: gziplevel -store STORE [-codecs ...] [-par N]")
		os.Exit(2)
	}
	paths, err := filepath.Glob(filepath.Join(*storeDir, "files", "sha256", "*"))
	if err != nil || len(paths) == 0 {
		fmt.Fprintf(os.Stderr, "gziplevel: no decoded files in %s (%v)\n", *storeDir, err)
		os.Exit(1)
	}
	files := make([][]byte, 0, len(paths))
	var total int64
	for _, p := range paths {
		if strings.HasPrefix(filepath.Base(p), ".") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gziplevel:", err)
			os.Exit(1)
		}
		files = append(files, b)
		total += int64(len(b))
	}
	fmt.Printf("%d decoded zips, %.1f MB; %d at a time on %d CPUs\n", len(files), float64(total)/1e6, *par, runtime.NumCPU())
	fmt.Printf("| codec | gzips MB | of decoded | compress wall s | compress CPU s | MB/s a core | gunzip (stdlib) CPU s |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, codec := range strings.Split(*codecs, ",") {
		out := make([][]byte, len(files))
		runtime.GC()
		c0, t0 := cpu(), time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, *par)
		var mu sync.Mutex
		var firstErr error
		for i, f := range files {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				var buf bytes.Buffer
				zw, err := newWriter(codec, &buf)
				if err == nil {
					_, err = zw.Write(f)
				}
				if err == nil {
					err = zw.Close()
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				out[i] = buf.Bytes()
			}()
		}
		wg.Wait()
		wall, cpuT := time.Since(t0), cpu()-c0
		if firstErr != nil {
			fmt.Fprintln(os.Stderr, "gziplevel:", firstErr)
			os.Exit(1)
		}
		var gzTotal int64
		for _, o := range out {
			gzTotal += int64(len(o))
		}
		// Decompress on one core, as one go command's download does.
		runtime.GC()
		d0 := cpu()
		for i, o := range out {
			zr, err := stdgzip.NewReader(bytes.NewReader(o))
			if err != nil {
				fmt.Fprintln(os.Stderr, "gziplevel:", err)
				os.Exit(1)
			}
			n, err := io.Copy(io.Discard, zr)
			if err != nil || n != int64(len(files[i])) {
				fmt.Fprintf(os.Stderr, "gziplevel: %s: decompressed %d bytes of %d: %v\n", codec, n, len(files[i]), err)
				os.Exit(1)
			}
		}
		dec := cpu() - d0
		fmt.Printf("| %s | %.1f | %.1f%% | %.1f | %.1f | %.0f | %.1f |\n", codec, float64(gzTotal)/1e6, 100*float64(gzTotal)/float64(total),
			wall.Seconds(), cpuT.Seconds(), float64(total)/1e6/cpuT.Seconds(), dec.Seconds())
	}
}
