package serve_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// rawDo sends a request with exactly the headers hdr (net/http's client
// adds Accept-Encoding: gzip and decompresses unless told not to) and
// returns the answer and its body as sent.
func rawDo(t *testing.T, e *env, method, p string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// sameHeaders reports the headers of names on which a and b differ.
func sameHeaders(t *testing.T, what string, a, b *http.Response, names ...string) {
	t.Helper()
	for _, h := range names {
		if x, y := a.Header.Values(h), b.Header.Values(h); strings.Join(x, ",") != strings.Join(y, ",") {
			t.Errorf("%s: %s %q, want %q", what, h, x, y)
		}
	}
}

var zipHeaders = []string{"Content-Length", "Content-Encoding", "ETag", "Vary", "Content-Type", "Cache-Control", "Accept-Ranges"}

// checkGzipZip checks every way of asking for the encoded zip z at p from
// a server whose store keeps its gzip, and returns the gzip sent.
func checkGzipZip(t *testing.T, e *env, p string, z testbundle.Zip) []byte {
	t.Helper()
	etag, gzETag := `"`+z.FileDigest+`"`, `"`+z.FileDigest+`+gzip"`
	// Accepting gzip: the gzip, smaller, with its own ETag and no
	// Accept-Ranges (ranges are of the decoded zip).
	gz, gzBody := rawDo(t, e, "GET", p, "Accept-Encoding", "gzip")
	if gz.StatusCode != 200 || gz.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET %s accepting gzip = %d, Content-Encoding %q; want 200, gzip", p, gz.StatusCode, gz.Header.Get("Content-Encoding"))
	}
	if !bytes.Equal(gunzip(t, gzBody), z.Decoded) {
		t.Fatalf("GET %s accepting gzip: does not decompress to the decoded zip", p)
	}
	if gz.ContentLength != int64(len(gzBody)) || len(gzBody) >= len(z.Decoded) || gz.Header.Get("ETag") != gzETag ||
		gz.Header.Get("Vary") != "Accept-Encoding" || gz.Header.Get("Accept-Ranges") != "" ||
		gz.Header.Get("Content-Type") != "application/zip" || !strings.Contains(gz.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("GET %s accepting gzip: %d bytes (decoded %d), length %d, headers %v; want the gzip's length, ETag %s, Vary: Accept-Encoding, no Accept-Ranges",
			p, len(gzBody), len(z.Decoded), gz.ContentLength, gz.Header, gzETag)
	}
	// Not accepting it: the decoded zip, under its own ETag.
	id, idBody := rawDo(t, e, "GET", p)
	if id.StatusCode != 200 || !bytes.Equal(idBody, z.Decoded) || id.Header.Get("Content-Encoding") != "" ||
		id.ContentLength != int64(len(z.Decoded)) || id.Header.Get("ETag") != etag ||
		id.Header.Get("Vary") != "Accept-Encoding" || id.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("GET %s without Accept-Encoding = %d, %d bytes, headers %v; want the %d decoded bytes, ETag %s, Vary, Accept-Ranges",
			p, id.StatusCode, len(idBody), id.Header, len(z.Decoded), etag)
	}
	for ae, wantGzip := range map[string]bool{
		"identity": false, "gzip;q=0": false, "deflate, br": false, "*;q=0": false, "gzip;q=zero": false,
		"*": true, "br, gzip;q=0.5": true, "x-gzip": true, "GZIP": true, "deflate, gzip": true, " gzip ; q=1.0": true,
	} {
		resp, body := rawDo(t, e, "GET", p, "Accept-Encoding", ae)
		want, wantBody := id, idBody
		if wantGzip {
			want, wantBody = gz, gzBody
		}
		if resp.StatusCode != 200 || !bytes.Equal(body, wantBody) {
			t.Errorf("GET %s, Accept-Encoding %q = %d, %d bytes; want %d bytes (gzip: %v)", p, ae, resp.StatusCode, len(body), len(wantBody), wantGzip)
		}
		sameHeaders(t, "GET "+p+", Accept-Encoding "+ae, resp, want, zipHeaders...)
	}
	// HEAD: the headers GET gives, no body.
	for _, c := range []struct {
		want *http.Response
		hdr  []string
	}{{gz, []string{"Accept-Encoding", "gzip"}}, {id, nil}} {
		resp, body := rawDo(t, e, "HEAD", p, c.hdr...)
		if resp.StatusCode != 200 || len(body) != 0 {
			t.Errorf("HEAD %s %v = %d, %d body bytes", p, c.hdr, resp.StatusCode, len(body))
		}
		sameHeaders(t, "HEAD "+p+" "+strings.Join(c.hdr, ": "), resp, c.want, zipHeaders...)
	}
	// If-None-Match: of the representation chosen.
	resp, body := rawDo(t, e, "GET", p, "Accept-Encoding", "gzip", "If-None-Match", gzETag)
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != gzETag ||
		resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("If-None-Match of the gzip, accepting gzip = %d, headers %v; want 304 with its ETag and Vary", resp.StatusCode, resp.Header)
	}
	if resp, body := rawDo(t, e, "GET", p, "Accept-Encoding", "gzip", "If-None-Match", etag); resp.StatusCode != 200 || !bytes.Equal(body, gzBody) {
		t.Errorf("If-None-Match of the decoded zip, accepting gzip = %d, %d bytes; want 200 and the gzip", resp.StatusCode, len(body))
	}
	if resp, _ := rawDo(t, e, "GET", p, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match of the decoded zip, not accepting gzip = %d, want 304", resp.StatusCode)
	}
	// Range, even from a client that accepts gzip: the decoded zip's bytes.
	n := len(z.Decoded)
	from, to := n/3, n/3+99
	resp, body = rawDo(t, e, "GET", p, "Accept-Encoding", "gzip", "Range", "bytes="+strconv.Itoa(from)+"-"+strconv.Itoa(to))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, z.Decoded[from:to+1]) ||
		resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("ETag") != etag || resp.Header.Get("Vary") != "Accept-Encoding" ||
		resp.Header.Get("Content-Range") != "bytes "+strconv.Itoa(from)+"-"+strconv.Itoa(to)+"/"+strconv.Itoa(n) {
		t.Errorf("Range accepting gzip = %d, %d bytes, headers %v; want 206 and bytes %d-%d of the decoded zip", resp.StatusCode, len(body), resp.Header, from, to)
	}
	// If-Range with the gzip's tag names another representation: the
	// whole decoded zip.
	resp, body = rawDo(t, e, "GET", p, "Accept-Encoding", "gzip", "Range", "bytes=0-9", "If-Range", gzETag)
	if resp.StatusCode != 200 || !bytes.Equal(body, z.Decoded) || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("Range with If-Range of the gzip = %d, %d bytes; want 200 and the whole decoded zip", resp.StatusCode, len(body))
	}
	return gzBody
}

// TestGzipOnTheWire: to a client that accepts gzip, an encoded zip is sent
// as the gzip the local store wrote at import (a third of the bytes here),
// with its own ETag and Vary: Accept-Encoding; every other request (no
// gzip accepted, Range, HEAD, preconditions) is answered as HTTP says.
// Before, every client got the decoded zip.
func TestGzipOnTheWire(t *testing.T) {
	dir := t.TempDir()
	big, small := encodedZip(t, "big", 400_000), encodedZip(t, "small", 2_000)
	zips := map[string]testbundle.Zip{"example.com/big/@v/v1.0.0.zip": big, "example.com/small/@v/v1.0.0.zip": small}
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testbundle.Import(t, st, testbundle.WriteEncoded(t, dir, "enc.ferry", "", map[string][]byte{
		"example.com/big/@v/v1.0.0.mod": []byte("module example.com/big\n"),
	}, zips))
	e := serveStore(t, st)
	for f, z := range zips {
		checkGzipZip(t, e, "/"+f, z)
	}
	// Neither a .mod nor anything but an encoded zip varies.
	resp, _ := rawDo(t, e, "GET", "/example.com/big/@v/v1.0.0.mod", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "" {
		t.Errorf(".mod accepting gzip: headers %v", resp.Header)
	}

	// The gzip is the store's file, sent as it is (compressed at import,
	// never per request): other bytes in its place are what is sent.
	bigPath := "/example.com/big/@v/v1.0.0.zip"
	gp := filepath.Join(st.Dir(), "gz", "sha256", strings.TrimPrefix(big.FileDigest, "sha256:"))
	var marked bytes.Buffer
	zw := gzip.NewWriter(&marked)
	zw.Write(big.Decoded)
	zw.Write([]byte("marked"))
	zw.Close()
	if err := os.Chmod(gp, 0o644); err != nil { // the store makes it read-only
		t.Fatal(err)
	}
	if err := os.WriteFile(gp, marked.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, body := rawDo(t, e, "GET", bigPath, "Accept-Encoding", "gzip"); !bytes.Equal(body, marked.Bytes()) {
		t.Errorf("GET accepting gzip did not send the store's gzip file (%d bytes)", len(body))
	}

	// No gzip kept (a bundle imported by an older ferry): the decoded zip
	// to every client.
	if err := os.Remove(gp); err != nil {
		t.Fatal(err)
	}
	resp, body := rawDo(t, e, "GET", bigPath, "Accept-Encoding", "gzip")
	if resp.StatusCode != 200 || !bytes.Equal(body, big.Decoded) || resp.Header.Get("Content-Encoding") != "" ||
		resp.Header.Get("ETag") != `"`+big.FileDigest+`"` || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("no gzip kept, accepting gzip = %d, %d bytes, headers %v; want the decoded zip", resp.StatusCode, len(body), resp.Header)
	}

	// A store that keeps no decoded files (an OCI store) sends the zip
	// decoded, and nothing varies.
	dec := serveStore(t, noFiles{st})
	resp, body = rawDo(t, dec, "GET", "/example.com/small/@v/v1.0.0.zip", "Accept-Encoding", "gzip")
	if resp.StatusCode != 200 || !bytes.Equal(body, small.Decoded) || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "" {
		t.Errorf("store without files, accepting gzip = %d, %d bytes, headers %v; want the decoded zip", resp.StatusCode, len(body), resp.Header)
	}
}

// StoreSize counts the gzips the local store keeps.
func TestGzipStoreSize(t *testing.T) {
	dir := t.TempDir()
	big := encodedZip(t, "big", 300_000)
	st, err := local.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := testbundle.WriteEncoded(t, dir, "enc.ferry", "", nil, map[string]testbundle.Zip{"example.com/big/@v/v1.0.0.zip": big})
	testbundle.Import(t, st, p)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := st.Gzip(context.Background(), big.FileDigest)
	if err != nil {
		t.Fatal(err)
	}
	gz.Close()
	if got, want := serveStore(t, st).srv.StoreSize(), fi.Size()+int64(len(big.Decoded))+gz.Size(); got != want {
		t.Errorf("StoreSize = %d, want the bundle file, the decoded zip and its gzip, %d", got, want)
	}
}
