package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// noFiles is a store that keeps no decoded files: the local store with
// File hidden, as the OCI store is.
type noFiles struct{ store.Store }

func serveStore(t *testing.T, st store.Store) *env {
	t.Helper()
	srv, err := serve.New(st, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler(serve.Routes{}))
	t.Cleanup(ts.Close)
	return &env{srv: srv, ts: ts}
}

// encodedZip is a module zip whose decoded form has about size bytes.
func encodedZip(t *testing.T, name string, size int) testbundle.Zip {
	t.Helper()
	mod := "example.com/" + name
	src := make([]byte, size)
	for i := range src {
		src[i] = "package x // text\n"[i%18] + byte(i/4096%3)
	}
	return testbundle.EncodeZip(t, mod, "v1.0.0", map[string][]byte{"go.mod": []byte("module " + mod + "\n"), "x.go": src})
}

// identity is the header of a client that does not accept gzip (net/http's
// asks for it unless a request names an Accept-Encoding).
var identity = []string{"Accept-Encoding", "identity"}

// checkZip checks GET, HEAD and If-None-Match of an encoded zip, by a
// client that does not accept gzip (gzip_test.go has the others), against
// want (the decoded zip's bytes and digest).
func checkZip(t *testing.T, e *env, what, p string, want []byte, digest string) {
	t.Helper()
	resp, body := e.do(t, "GET", p, identity...)
	if resp.StatusCode != 200 || !bytes.Equal([]byte(body), want) {
		t.Errorf("%s: GET %s = %d, %d bytes, want 200 and the %d decoded bytes", what, p, resp.StatusCode, len(body), len(want))
	}
	etag := `"` + digest + `"`
	if resp.ContentLength != int64(len(want)) || resp.Header.Get("ETag") != etag ||
		resp.Header.Get("Content-Type") != "application/zip" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("%s: GET %s: length %d, headers %v; want length %d, ETag %s", what, p, resp.ContentLength, resp.Header, len(want), etag)
	}
	resp, body = e.do(t, "HEAD", p, identity...)
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(want)) || resp.Header.Get("ETag") != etag {
		t.Errorf("%s: HEAD %s = %d, %d body bytes, length %d, ETag %s", what, p, resp.StatusCode, len(body), resp.ContentLength, resp.Header.Get("ETag"))
	}
	resp, body = e.do(t, "GET", p, append(identity, "If-None-Match", etag)...)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("%s: If-None-Match %s = %d, %d bytes", what, p, resp.StatusCode, len(body))
	}
	resp, _ = e.do(t, "GET", p, append(identity, "If-None-Match", `"sha256:00"`)...)
	if resp.StatusCode != 200 {
		t.Errorf("%s: If-None-Match of another digest = %d", what, resp.StatusCode)
	}
}

// TestEncodedZips: an encoded zip is answered with the zip it decodes to,
// from the local store's decoded file, or decoded from the blob by a store
// that keeps none or has lost it.
func TestEncodedZips(t *testing.T) {
	dir := t.TempDir()
	big, small := encodedZip(t, "big", 400_000), encodedZip(t, "small", 2_000)
	if len(big.Decoded) < 64<<10 || len(small.Decoded) > 64<<10 || len(big.Blob) >= len(big.Decoded) {
		t.Fatalf("sizes: big %d (blob %d), small %d", len(big.Decoded), len(big.Blob), len(small.Decoded))
	}
	zips := map[string]testbundle.Zip{"example.com/big/@v/v1.0.0.zip": big, "example.com/small/@v/v1.0.0.zip": small}
	p := testbundle.WriteEncoded(t, dir, "enc.ferry", "", map[string][]byte{
		"example.com/big/@v/v1.0.0.mod": []byte("module example.com/big\n"),
	}, zips)
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testbundle.Import(t, st, p)
	withFiles, decoding := serveStore(t, st), serveStore(t, noFiles{st})
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	gzSize := int64(0)
	for _, z := range []testbundle.Zip{big, small} {
		gz, err := st.Gzip(context.Background(), z.FileDigest)
		if err != nil {
			t.Fatal(err)
		}
		gzSize += gz.Size()
		gz.Close()
	}
	if got, want := withFiles.srv.StoreSize(), fi.Size()+int64(len(big.Decoded)+len(small.Decoded))+gzSize; got != want {
		t.Errorf("local store: StoreSize = %d, want the bundle file, both decoded zips and their gzips, %d", got, want)
	}
	if got := decoding.srv.StoreSize(); got != fi.Size() {
		t.Errorf("store without files: StoreSize = %d, want the bundle file, %d", got, fi.Size())
	}
	for f, z := range zips {
		checkZip(t, withFiles, "local store", "/"+f, z.Decoded, z.FileDigest)
		checkZip(t, decoding, "store without files", "/"+f, z.Decoded, z.FileDigest)
	}

	// Range: a decoded file is a blob like any other; decoding sends the
	// whole zip.
	bigPath := "/example.com/big/@v/v1.0.0.zip"
	resp, body := withFiles.do(t, "GET", bigPath, "Range", "bytes=100000-100009")
	if resp.StatusCode != http.StatusPartialContent || body != string(big.Decoded[100000:100010]) {
		t.Errorf("local store: Range = %d %q", resp.StatusCode, body)
	}
	resp, body = decoding.do(t, "GET", bigPath, "Range", "bytes=100000-100009")
	if resp.StatusCode != 200 || body != string(big.Decoded) {
		t.Errorf("store without files: Range = %d, %d bytes, want the whole zip", resp.StatusCode, len(body))
	}

	// The local store's server sends the file as it is (no decoding per
	// request): bytes put in its place are what it sends, while decoding
	// still gives the zip.
	fp := filepath.Join(st.Dir(), "files", "sha256", strings.TrimPrefix(big.FileDigest, "sha256:"))
	if fi, err := os.Stat(fp); err != nil || fi.Size() != int64(len(big.Decoded)) {
		t.Fatalf("decoded file %s: %v, %v", fp, fi, err)
	}
	marked := bytes.Clone(big.Decoded)
	copy(marked[1000:], "sent from the decoded file")
	if err := os.Chmod(fp, 0o644); err != nil { // the store makes it read-only
		t.Fatal(err)
	}
	if err := os.WriteFile(fp, marked, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, body := withFiles.do(t, "GET", bigPath, identity...); body != string(marked) {
		t.Errorf("local store: GET did not send the decoded file (%d bytes)", len(body))
	}
	if _, body := decoding.do(t, "GET", bigPath); body != string(big.Decoded) {
		t.Errorf("store without files: GET = %d bytes, not the decoded zip", len(body))
	}

	// A file the store has lost (or a store written before it kept them)
	// or of the wrong size: decoded from the blob.
	if err := os.WriteFile(fp, big.Decoded[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	checkZip(t, withFiles, "decoded file cut short", bigPath, big.Decoded, big.FileDigest)
	if err := os.Remove(fp); err != nil {
		t.Fatal(err)
	}
	checkZip(t, withFiles, "decoded file removed", bigPath, big.Decoded, big.FileDigest)
}

// TestEncodedZipsLoad: concurrent GETs of encoded zips from the local
// store all get the whole decoded zip: half of the clients accept gzip
// (net/http's default) and get it compressed, half do not.
func TestEncodedZipsLoad(t *testing.T) {
	dir := t.TempDir()
	zips := map[string]testbundle.Zip{}
	for i := range 4 {
		name := fmt.Sprintf("m%d", i)
		zips["example.com/"+name+"/@v/v1.0.0.zip"] = encodedZip(t, name, 50_000+i*100_000)
	}
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testbundle.Import(t, st, testbundle.WriteEncoded(t, dir, "enc.ferry", "", nil, zips))
	e := serveStore(t, st)
	errs := make(chan error, 8)
	for i := range 8 {
		gzip := i%2 == 0
		go func() {
			for f, z := range zips {
				req, err := http.NewRequest("GET", e.ts.URL+"/"+f, nil)
				if err != nil {
					errs <- err
					return
				}
				if !gzip {
					req.Header.Set(identity[0], identity[1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				var buf bytes.Buffer
				_, err = buf.ReadFrom(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(buf.Bytes(), z.Decoded) || resp.Uncompressed != gzip ||
					!gzip && resp.Header.Get("Content-Length") != strconv.Itoa(len(z.Decoded)) {
					errs <- fmt.Errorf("GET %s (gzip %v) = %d, %d bytes, decompressed %v, %v", f, gzip, resp.StatusCode, buf.Len(), resp.Uncompressed, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
