package serve_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/modtest"
	"github.com/ferry-dev/ferry/internal/serve"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/sumdbsnap"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// goSource returns about size bytes of Go-like source, varied enough that
// it compresses as real code does (to a fraction, not to nothing).
func goSource(seed uint64, pkg string, size int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	words := []string{"err", "ctx", "return", "if", "nil", "func", "string", "int64", "len", "append", "range",
		"for", "var", "fmt.Errorf", "strings.Cut", "bytes.Buffer", "io.Reader", "map", "struct", "defer", "Close"}
	var b strings.Builder
	fmt.Fprintf(&b, "package %s\n\n", pkg)
	for n := 0; b.Len() < size; n++ {
		fmt.Fprintf(&b, "// f%d does %s with %s and %s.\nfunc f%d(x%d %s) (%s, error) {\n", n,
			words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], n, r.IntN(1000), words[r.IntN(len(words))], words[r.IntN(len(words))])
		for range 2 + r.IntN(8) {
			fmt.Fprintf(&b, "\t%s := %s(%s, %d) // %x\n", words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1<<16), r.Uint32())
		}
		b.WriteString("\treturn nil, nil\n}\n\n")
	}
	return b.String()
}

// headerLog records, for every request, its method, path, Accept-Encoding
// and the Content-Encoding and bytes of the answer.
type headerLog struct {
	mu   sync.Mutex
	reqs []logged
}

type logged struct {
	method, path, acceptEncoding, contentEncoding string
	status                                        int
	sent                                          int64
}

func (l *headerLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.reqs = append(l.reqs, logged{r.Method, r.URL.Path, r.Header.Get("Accept-Encoding"), w.Header().Get("Content-Encoding"), cw.status, cw.n})
	})
}

// countingWriter counts the body bytes of an answer; it keeps sendfile
// (ReadFrom) and the response controller (Unwrap) of the writer it wraps.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// remote reads the checksum database of a modtest server.
type sumdbRemote struct{ srv *modtest.Server }

func (r sumdbRemote) ReadRemote(ctx context.Context, p string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/sumdb/"+r.srv.SumDBName+p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", p, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s, %v", url, resp.Status, err)
	}
	return data
}

// packFixture writes a bundle of mods as pack carries them, from the
// fixture server srv: .info, .mod, each zip encoded, and a snapshot of
// srv's checksum database proving them. It returns the bundle's path and
// each zip's encoding by proxy path.
func packFixture(t *testing.T, srv *modtest.Server, dir string, mods []modtest.Module) (string, map[string]testbundle.Zip) {
	t.Helper()
	ctx := context.Background()
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: "fixture"}
	src := bundle.MemSource{}
	zips := map[string]testbundle.Zip{}
	add := func(it bundle.Item, data []byte) {
		it.Size, it.Digest = int64(len(data)), bundle.Digest(data)
		src[it.Digest] = data
		m.Items = append(m.Items, it)
	}
	var wants []sumdbsnap.Want
	for _, mod := range mods {
		ep, err1 := module.EscapePath(mod.Path)
		ev, err2 := module.EscapeVersion(mod.Version)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		zipHash, modHash, _ := srv.Hashes(mod.Path, mod.Version)
		wants = append(wants, sumdbsnap.Want{Path: mod.Path, Version: mod.Version, ZipHash: zipHash, ModHash: modHash})
		base := ep + "/@v/" + ev
		it := bundle.Item{Module: mod.Path, Version: mod.Version}
		info, gomod, orig := fetch(t, srv.URL+"/"+base+".info"), fetch(t, srv.URL+"/"+base+".mod"), fetch(t, srv.URL+"/"+base+".zip")
		it.File, it.Kind = base+".info", bundle.KindInfo
		add(it, info)
		it.File, it.Kind, it.Hash = base+".mod", bundle.KindMod, modHash
		add(it, gomod)
		zr, err := zip.NewReader(bytes.NewReader(orig), int64(len(orig)))
		if err != nil {
			t.Fatal(err)
		}
		var blob, dec bytes.Buffer
		res, err := zipcodec.Encode(ctx, &blob, zr, zipcodec.FastLevel)
		if err != nil {
			t.Fatal(err)
		}
		if err := zipcodec.Decode(ctx, &dec, bytes.NewReader(blob.Bytes()), res.FileSize, res.FileDigest); err != nil {
			t.Fatal(err)
		}
		if res.H1 != zipHash {
			t.Fatalf("%s: encoded zip has %s, the fixture %s", base, res.H1, zipHash)
		}
		zips[base+".zip"] = testbundle.Zip{Blob: blob.Bytes(), Decoded: dec.Bytes(), FileDigest: res.FileDigest, H1: res.H1}
		it.File, it.Kind, it.Hash = base+".zip", bundle.KindZip, zipHash
		it.Encoding, it.FileSize, it.FileDigest = bundle.EncodingZstd, res.FileSize, res.FileDigest
		add(it, blob.Bytes())
	}
	snap, err := sumdbsnap.Build(ctx, srv.SumDBName, srv.SumDBKey, sumdbRemote{srv}, wants, 4)
	if err != nil {
		t.Fatal(err)
	}
	m.SumDB = &bundle.SumDB{Name: snap.Name, Key: snap.Key, Head: string(snap.Head)}
	for f, data := range snap.Files {
		add(bundle.Item{File: "sumdb/" + snap.Name + "/" + f, Kind: bundle.KindSumDB}, data)
	}
	p := filepath.Join(dir, "fixture.ferry")
	if _, err := bundle.Write(ctx, p, m, src, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return p, zips
}

// TestGoCommandGetsGzip runs the real go command (go mod download, GOSUMDB
// at the fixture's checksum database) against a server on 127.0.0.1 and
// records the headers the server saw: the go command's HTTP client (net/http)
// asks for gzip for every request, and decompresses a gzip answer before it
// checks the zip's h1: hash. The zips go out as gzips (a fraction of their
// bytes; before, they went out decoded) and what the go command keeps in
// its module cache is, byte for byte, the decoded zip.
func TestGoCommandGetsGzip(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	mods := []modtest.Module{
		{Path: "example.com/big", Version: "v1.2.0", Files: map[string]string{
			"go.mod": "module example.com/big\n\ngo 1.21\n", "a.go": goSource(1, "big", 300_000), "b.go": goSource(2, "big", 200_000),
			"internal/c/c.go": goSource(3, "c", 100_000), "LICENSE": strings.Repeat("Permission is hereby granted, free of charge.\n", 30),
		}},
		{Path: "example.com/Small", Version: "v0.1.0", Files: map[string]string{
			"go.mod": "module example.com/Small\n\ngo 1.21\n", "s.go": goSource(4, "small", 8_000),
		}},
	}
	fx := modtest.NewServer(t, mods...)
	dir := t.TempDir()
	p, zips := packFixture(t, fx, dir, mods)
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testbundle.Import(t, st, p)
	srv, err := serve.New(st, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var hl headerLog
	ts := httptest.NewServer(hl.wrap(srv.Handler(serve.Routes{})))
	t.Cleanup(ts.Close)

	env := append(modtest.GoEnv(t, nil), "GOPROXY="+ts.URL, "GOSUMDB="+fx.GOSUMDB)
	var args []string
	for _, m := range mods {
		args = append(args, m.Path+"@"+m.Version)
	}
	cmd := exec.Command(gobin, append([]string{"mod", "download", "-json"}, args...)...)
	cmd.Dir, cmd.Env = t.TempDir(), env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	got := map[string]string{} // zip path in the module cache by module@version
	for {
		var dl struct{ Path, Version, Zip, Sum, Error string }
		if err := dec.Decode(&dl); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go mod download -json: %v\n%s", err, out)
		}
		zipHash, _, _ := fx.Hashes(dl.Path, dl.Version)
		if dl.Error != "" || dl.Sum != zipHash {
			t.Errorf("go mod download %s@%s: sum %s, error %q; want %s", dl.Path, dl.Version, dl.Sum, dl.Error, zipHash)
		}
		got[dl.Path+"@"+dl.Version] = dl.Zip
	}

	hl.mu.Lock()
	reqs := slices.Clone(hl.reqs)
	hl.mu.Unlock()
	var lines []string
	var zipsSeen int
	for _, r := range reqs {
		lines = append(lines, fmt.Sprintf("%s %s %d Accept-Encoding: %q -> Content-Encoding: %q, %d bytes", r.method, r.path, r.status, r.acceptEncoding, r.contentEncoding, r.sent))
		if !strings.Contains(r.acceptEncoding, "gzip") {
			t.Errorf("%s %s: Accept-Encoding %q, want gzip", r.method, r.path, r.acceptEncoding)
		}
		z, ok := zips[strings.TrimPrefix(r.path, "/")]
		if !ok {
			continue
		}
		zipsSeen++
		if r.status != 200 || r.contentEncoding != "gzip" || r.sent >= int64(len(z.Decoded)) {
			t.Errorf("%s %s: %d, Content-Encoding %q, %d bytes sent; want 200, gzip, fewer than the %d decoded bytes",
				r.method, r.path, r.status, r.contentEncoding, r.sent, len(z.Decoded))
		}
	}
	t.Logf("requests the server saw from %s:\n%s", strings.TrimSpace(goVersion(t, gobin, env)), strings.Join(lines, "\n"))
	if zipsSeen != len(mods) {
		t.Errorf("the server saw %d zip requests, want %d", zipsSeen, len(mods))
	}
	// What the go command kept is the decoded zip, byte for byte.
	for _, m := range mods {
		ep, _ := module.EscapePath(m.Path)
		ev, _ := module.EscapeVersion(m.Version)
		data, err := os.ReadFile(got[m.Path+"@"+m.Version])
		if z := zips[ep+"/@v/"+ev+".zip"]; err != nil || !bytes.Equal(data, z.Decoded) {
			t.Errorf("%s@%s: the module cache holds %d bytes (%v), not the %d of the decoded zip", m.Path, m.Version, len(data), err, len(z.Decoded))
		}
	}
}

func goVersion(t *testing.T, gobin string, env []string) string {
	cmd := exec.Command(gobin, "version")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go version: %v", err)
	}
	return string(out)
}
