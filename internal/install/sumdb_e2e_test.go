package install

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// recordingOps are sumdb.ClientOps that fetch from a test checksum
// database over HTTP and record every response.
type recordingOps struct {
	base string
	vkey string
	mu   sync.Mutex
	got  map[string][]byte // remote path -> response
	conf map[string][]byte
}

func (o *recordingOps) ReadRemote(path string) ([]byte, error) {
	resp, err := http.Get(o.base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, data)
	}
	o.mu.Lock()
	o.got[path] = data
	o.mu.Unlock()
	return data, nil
}

func (o *recordingOps) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.vkey), nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conf[file], nil
}

func (o *recordingOps) WriteConfig(file string, old, new []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !bytes.Equal(o.conf[file], old) {
		return sumdb.ErrWriteConflict
	}
	o.conf[file] = new
	return nil
}

func (o *recordingOps) ReadCache(file string) ([]byte, error) { return nil, errors.New("no cache") }
func (o *recordingOps) WriteCache(file string, data []byte)   {}
func (o *recordingOps) Log(msg string)                        {}
func (o *recordingOps) SecurityError(msg string)              { panic(msg) }

// realSnapshot adds to b a checksum snapshot, made the way the offline facts
// describe, from a real test checksum database (golang.org/x/mod/sumdb with
// its own key) holding the go.mod hashes of mods. It returns the verifier key.
func (b *bundleBuilder) realSnapshot(t *testing.T, mods []module.Version) string {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.test")
	if err != nil {
		t.Fatal(err)
	}
	gomods := map[module.Version][]byte{}
	for _, it := range b.m.Items {
		if it.Kind == bundle.KindMod {
			gomods[module.Version{Path: it.Module, Version: it.Version}] = b.blobs[it.Digest]
		}
	}
	gosum := func(path, vers string) ([]byte, error) {
		data, ok := gomods[module.Version{Path: path, Version: vers}]
		if !ok {
			return nil, fmt.Errorf("no go.mod for %s@%s", path, vers)
		}
		h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err != nil {
			return nil, err
		}
		// The zip line is never checked in these tests (no zip is downloaded).
		return fmt.Appendf(nil, "%s %s h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n%s %s/go.mod %s\n", path, vers, path, vers, h), nil
	}
	srv := httptest.NewServer(sumdb.NewServer(sumdb.NewTestServer(skey, gosum)))
	defer srv.Close()

	// 1. Add every record, so the tree stops growing.
	warm := &recordingOps{base: srv.URL, vkey: vkey, got: map[string][]byte{}, conf: map[string][]byte{}}
	for _, m := range mods {
		if _, err := sumdb.NewClient(warm).Lookup(m.Path, m.Version); err != nil {
			t.Fatal(err)
		}
	}
	// 2. A fresh client now sees one tree head; keep what it reads.
	ops := &recordingOps{base: srv.URL, vkey: vkey, got: map[string][]byte{}, conf: map[string][]byte{}}
	c := sumdb.NewClient(ops)
	for _, m := range mods {
		if _, err := c.Lookup(m.Path, m.Version); err != nil {
			t.Fatal(err)
		}
	}
	head, err := warm.ReadRemote("/latest")
	if err != nil {
		t.Fatal(err)
	}
	b.m.SumDB = &bundle.SumDB{Name: "sum.test", Key: vkey, Head: string(head)}
	b.add(bundle.Item{File: "sumdb/sum.test/latest", Kind: bundle.KindSumDB}, head)
	for p, data := range ops.got {
		if !strings.HasPrefix(p, "/lookup/") && !strings.HasPrefix(p, "/tile/") {
			continue
		}
		b.add(bundle.Item{File: "sumdb/sum.test" + p, Kind: bundle.KindSumDB}, data)
	}
	return vkey
}

// TestGoCommandVerifiesFromStore installs a bundle with a real checksum
// snapshot and runs the real go command offline against the store with
// GOSUMDB on (the test database's key): version lists and go.mod checksum
// verification must work from the store alone.
func TestGoCommandVerifiesFromStore(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	b := newBuilder("e2e")
	b.module(t, "example.com/a", "v1.0.0", ".info", ".mod", ".zip")
	b.module(t, "example.com/a", "v1.1.0", ".info", ".mod")
	b.module(t, "example.com/Upper", "v0.1.0", ".info", ".mod")
	vkey := b.realSnapshot(t, []module.Version{
		{Path: "example.com/a", Version: "v1.0.0"},
		{Path: "example.com/a", Version: "v1.1.0"},
		{Path: "example.com/Upper", Version: "v0.1.0"},
	})
	prefix := filepath.Join(t.TempDir(), "a b,c")
	opt := options(t, prefix)
	rep, err := Install(context.Background(), b.source(), opt)
	if err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GO") && k != "GOROOT" && k != "GOTOOLCHAIN" || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GOENV="+opt.GoEnvFile, "HOME="+home, "GOPATH="+filepath.Join(home, "gopath"),
		"GOFLAGS=-modcacherw", "GOCACHE="+filepath.Join(home, "cache"), "GOSUMDB="+vkey)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(gobin, args...)
		cmd.Env = env
		cmd.Dir = home
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("env", "GOPROXY"); got != rep.GOPROXY {
		t.Errorf("go env GOPROXY = %q, want %q", got, rep.GOPROXY)
	}
	if got := run("list", "-m", "-versions", "example.com/a"); got != "example.com/a v1.0.0 v1.1.0" {
		t.Errorf("go list -m -versions = %q", got)
	}
	if got := run("list", "-m", "example.com/Upper@latest"); got != "example.com/Upper v0.1.0" {
		t.Errorf("go list -m @latest = %q", got)
	}
	// The go command verified go.mod files against the snapshot.
	if _, err := os.Stat(filepath.Join(home, "gopath/pkg/sumdb/sum.test/latest")); err != nil {
		t.Errorf("go command did not use the checksum database: %v", err)
	}
}
