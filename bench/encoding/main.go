// Command encoding measures how small a bundle's zip items could get if
// each zip's files were stored with a better codec (zstd) and the zips were
// rebuilt on install (the go command checks a zip by the h1: hash of its
// contents, so a rebuilt zip is accepted): sizes, encode and decode speed,
// and, with -storezip, the time to write Store-method zips and a check that
// each rebuilt zip has the h1: hash the bundle records. It is the measurement
// behind issue 2's plan for the bundle-size target; nothing in ferry uses it.
//
//	go run ./bench/encoding -bundle BUNDLE [-which mods|toolchain] [-codecs zdef,zbetter,zbest] [-solid] [-par N] [-storezip]
package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/mod/sumdb/dirhash"
)

type item struct {
	File, Kind, Module, Version, Digest, H1 string
	Size                                    int64
}

type mod struct {
	it  item
	raw []byte // concatenation: uvarint(len name) name uvarint(len data) data ...
	n   int    // files
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type meter struct {
	w0 time.Time
	c0 time.Duration
	l0 string
}

func start() meter { return meter{time.Now(), cpu(), loadavg()} }
func (m meter) done(bytes int64) string {
	w := time.Since(m.w0)
	c := cpu() - m.c0
	mb := float64(bytes) / 1e6
	return fmt.Sprintf("wall %7.1fs (%6.1f MB/s) cpu %7.1fs (%6.1f MB/s/core) load %s -> %s",
		w.Seconds(), mb/w.Seconds(), c.Seconds(), mb/c.Seconds(), m.l0, loadavg())
}

func readZip(sr *io.SectionReader) ([]byte, int, int64, error) {
	zr, err := zip.NewReader(sr, sr.Size())
	if err != nil {
		return nil, 0, 0, err
	}
	var buf bytes.Buffer
	var tmp [binary.MaxVarintLen64]byte
	var content int64
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, 0, 0, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, 0, 0, err
		}
		buf.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(f.Name)))])
		buf.WriteString(f.Name)
		buf.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(data)))])
		buf.Write(data)
		content += int64(len(data))
	}
	return buf.Bytes(), len(zr.File), content, nil
}

// writeStoreZip parses raw and writes a Store-method zip.
func writeStoreZip(raw []byte, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw := zip.NewWriter(bw)
	r := raw
	for len(r) > 0 {
		n, k := binary.Uvarint(r)
		r = r[k:]
		name := string(r[:n])
		r = r[n:]
		n, k = binary.Uvarint(r)
		r = r[k:]
		data := r[:n]
		r = r[n:]
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

type codec struct {
	name string
	enc  func([]byte) []byte
	dec  func([]byte) []byte
}

func zstdCodec(name string, lvl zstd.EncoderLevel, window int) codec {
	opts := []zstd.EOption{zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1)}
	if window > 0 {
		opts = append(opts, zstd.WithWindowSize(window))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		panic(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30), zstd.WithDecoderMaxMemory(1<<32))
	if err != nil {
		panic(err)
	}
	return codec{name,
		func(b []byte) []byte { return enc.EncodeAll(b, make([]byte, 0, len(b)/3)) },
		func(b []byte) []byte {
			out, err := dec.DecodeAll(b, nil)
			if err != nil {
				panic(err)
			}
			return out
		}}
}

// zstdStream uses the streaming encoder (window option honored there; EncodeAll
// with a single input also uses it). Kept for the solid run via io.Writer.

func codecs(names string, window int) []codec {
	var cs []codec
	for _, n := range strings.Split(names, ",") {
		switch n {
		case "zfast":
			cs = append(cs, zstdCodec(n, zstd.SpeedFastest, window))
		case "zdef":
			cs = append(cs, zstdCodec(n, zstd.SpeedDefault, window))
		case "zbetter":
			cs = append(cs, zstdCodec(n, zstd.SpeedBetterCompression, window))
		case "zbest":
			cs = append(cs, zstdCodec(n, zstd.SpeedBestCompression, window))
		default:
			panic("codec " + n)
		}
	}
	return cs
}

func main() {
	bundlePath := flag.String("bundle", "", "bundle file to measure (required)")
	which := flag.String("which", "mods", "mods|toolchain")
	cnames := flag.String("codecs", "zdef,zbetter,zbest", "")
	window := flag.Int("window", 1<<27, "zstd encoder window")
	solid := flag.Bool("solid", false, "one solid stream over all")
	par := flag.Int("par", 1, "parallel workers for per-zip encode")
	storezip := flag.Bool("storezip", false, "rebuild Store-method zips in a temporary directory and check their h1: (first codec)")
	flag.Parse()
	fmt.Printf("GOMAXPROCS=%d load %s\n", runtime.GOMAXPROCS(0), loadavg())

	r, err := bundle.Open(*bundlePath)
	must(err)
	defer r.Close()
	var cfg struct{ Items []item }
	for _, it := range r.Manifest().Items {
		cfg.Items = append(cfg.Items, item{File: it.File, Kind: string(it.Kind), Module: it.Module, Version: it.Version, Digest: it.Digest, H1: it.Hash, Size: it.Size})
	}

	var mods []*mod
	var zipBytes, content, rawBytes int64
	files := 0
	m := start()
	for _, it := range cfg.Items {
		if it.Kind != "zip" {
			continue
		}
		tc := strings.HasPrefix(it.Module, "golang.org/toolchain")
		if tc != (*which == "toolchain") {
			continue
		}
		sr, err := r.Open(it.Digest)
		must(err)
		raw, n, c, err := readZip(sr)
		must(err)
		mods = append(mods, &mod{it: it, raw: raw, n: n})
		zipBytes += it.Size
		content += c
		rawBytes += int64(len(raw))
		files += n
	}
	sort.Slice(mods, func(i, j int) bool {
		if mods[i].it.Module != mods[j].it.Module {
			return mods[i].it.Module < mods[j].it.Module
		}
		return mods[i].it.Version < mods[j].it.Version
	})
	fmt.Printf("%s: %d zips, %d files, zip bytes %d (%.2f MiB), content %d (%.2f MiB), raw-concat %d; inflate %s\n",
		*which, len(mods), files, zipBytes, mib(zipBytes), content, mib(content), rawBytes, m.done(content))

	for _, c := range codecs(*cnames, *window) {
		if *solid {
			var all []byte
			for _, md := range mods {
				all = append(all, md.raw...)
			}
			m := start()
			out := c.enc(all)
			es := m.done(int64(len(all)))
			m = start()
			back := c.dec(out)
			ds := m.done(int64(len(all)))
			if !bytes.Equal(back, all) {
				panic("roundtrip")
			}
			fmt.Printf("SOLID %-8s window %d: %d (%.2f MiB) ratio-vs-zip %.3f\n  enc %s\n  dec %s\n",
				c.name, *window, len(out), mib(int64(len(out))), float64(len(out))/float64(zipBytes), es, ds)
			continue
		}
		comp := make([][]byte, len(mods))
		m := start()
		var wg sync.WaitGroup
		next := make(chan int)
		// Each worker needs its own codec (encoders are not safe for concurrent EncodeAll? they are, but keep simple).
		for w := 0; w < *par; w++ {
			wg.Add(1)
			cc := c
			if w > 0 {
				cc = codecs(c.name, *window)[0]
			}
			go func() {
				defer wg.Done()
				for i := range next {
					comp[i] = cc.enc(mods[i].raw)
				}
			}()
		}
		for i := range mods {
			next <- i
		}
		close(next)
		wg.Wait()
		es := m.done(rawBytes)
		var total int64
		for _, b := range comp {
			total += int64(len(b))
		}
		m = start()
		dec := make([][]byte, len(mods))
		for i, b := range comp {
			dec[i] = c.dec(b)
		}
		ds := m.done(rawBytes)
		for i := range mods {
			if !bytes.Equal(dec[i], mods[i].raw) {
				panic("roundtrip " + mods[i].it.File)
			}
		}
		fmt.Printf("PER-ZIP %-8s window %d par %d: %d (%.2f MiB) ratio-vs-zip %.3f\n  enc %s\n  dec %s\n",
			c.name, *window, *par, total, mib(total), float64(total)/float64(zipBytes), es, ds)
		if *storezip {
			*storezip = false
			outDir, err := os.MkdirTemp("", "ferry-encoding-")
			must(err)
			defer os.RemoveAll(outDir)
			m := start()
			var zsz int64
			for i := range mods {
				p := filepath.Join(outDir, fmt.Sprintf("%d.zip", i))
				must(writeStoreZip(dec[i], p))
			}
			ws := m.done(rawBytes)
			bad := 0
			for i := range mods {
				p := filepath.Join(outDir, fmt.Sprintf("%d.zip", i))
				st, _ := os.Stat(p)
				zsz += st.Size()
				h, err := dirhash.HashZip(p, dirhash.Hash1)
				must(err)
				if h != mods[i].it.H1 {
					bad++
					fmt.Println("H1 MISMATCH", mods[i].it.File, h, mods[i].it.H1)
				}
			}
			fmt.Printf("  store-zip write (no fsync) %s; store zips total %.2f MiB; h1 mismatches %d/%d\n", ws, mib(zsz), bad, len(mods))
			// decode+write pipeline timing
			m = start()
			for i, b := range comp {
				p := filepath.Join(outDir, fmt.Sprintf("%d.zip", i))
				must(writeStoreZip(c.dec(b), p))
			}
			fmt.Printf("  decode+store-zip pipeline %s\n", m.done(rawBytes))
			os.RemoveAll(outDir)
		}
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func must(err error) {
	if err != nil {
		panic(err)
	}
}
