//go:build unix

package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/modtest"
	"github.com/ferry-dev/ferry/internal/store"
)

// packedBundle packs, with the ferry binary, a bundle of one small module
// (proved by a test checksum database) signed by a new key, and returns its
// path and the --key flag that trusts it. The user's configuration is
// neither read nor written.
func packedBundle(t *testing.T, dir string) (path, keyFlag string) {
	t.Helper()
	ferry := ferryBin(t)
	srv := modtest.NewServer(t, modtest.Module{Path: "example.com/tiny", Version: "v1.0.0", Files: map[string]string{
		"go.mod": "module example.com/tiny\n\ngo 1.21\n", "tiny.go": "package tiny\n",
	}}, modtest.FakeToolchain("go1.99.1", runtime.GOOS, runtime.GOARCH))
	env := append(modtest.GoEnv(t, srv), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	mustRun(t, dir, env, ferry, "key", "generate", "test", "--dir", dir)
	path = filepath.Join(dir, "tiny.ferry")
	mustRun(t, dir, env, ferry, "pack", "-o", path, "--module", "example.com/tiny@v1.0.0", "--name", "tiny", "--toolchain", "go1.99.1",
		"--sign-key", filepath.Join(dir, "test.key"), "--cache", filepath.Join(dir, "cache"), "-q")
	return path, "--key=" + filepath.Join(dir, "test.pub")
}

// TestImportReports: import prints what the store recorded of each bundle
// (--json: its digests, size, items and import time; else a line on
// stdout), and an import of a bundle already there reports its first import.
func TestImportReports(t *testing.T) {
	dir := t.TempDir()
	b, key := packedBundle(t, dir)
	st := filepath.Join(dir, "store")
	code, stdout, stderr := runFerry(t, "import", b, key, "--store", st, "--json")
	if code != 0 {
		t.Fatalf("import --json: exit status %d\n%s", code, stderr)
	}
	var got []store.BundleInfo
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 1 {
		t.Fatalf("import --json printed %v:\n%s", err, stdout)
	}
	in := got[0]
	if !strings.HasPrefix(in.Digest, "sha256:") || !strings.HasPrefix(in.ManifestDigest, "sha256:") || in.Name != "tiny" ||
		in.Items < 2 || in.Size <= 0 || time.Since(in.Imported) > time.Hour || in.Imported.After(time.Now()) {
		t.Errorf("import --json printed %+v", in)
	}
	fi, err := os.Stat(b)
	if err != nil || in.Size != fi.Size() {
		t.Errorf("import --json: size %d, the bundle file has %d (%v)", in.Size, fi.Size(), err)
	}

	code, stdout, stderr = runFerry(t, "import", b, key, "--store", st)
	want := "imported " + b + " into store " + st + ": tiny, bundle digest " + in.Digest + ", " + strconv.Itoa(in.Items) + " items"
	if code != 0 || !strings.HasPrefix(stdout, want) || stderr != "" {
		t.Errorf("import: exit status %d, stdout %q, stderr %q; want stdout to begin %q", code, stdout, stderr, want)
	}
	_, stdout, _ = runFerry(t, "import", b, key, "--store", st, "--json")
	var again []store.BundleInfo
	if err := json.Unmarshal([]byte(stdout), &again); err != nil || len(again) != 1 || !again[0].Imported.Equal(in.Imported) {
		t.Errorf("import --json of a bundle already there: %v %+v, want the first import %+v", err, again, in)
	}
}

// TestServeBindsFirst: serve on a busy address fails at once, before it
// makes a store or imports anything.
func TestServeBindsFirst(t *testing.T) {
	dir := t.TempDir()
	b, key := packedBundle(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st := filepath.Join(dir, "store")
	code, stdout, stderr := runFerry(t, "serve", b, key, "--store", st, "--listen", ln.Addr().String())
	if code != 1 || stdout != "" || !strings.Contains(stderr, "listening on "+ln.Addr().String()) {
		t.Errorf("serve on a busy address: exit status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(st); err == nil {
		t.Errorf("serve on a busy address made the store %s", st)
	}
}

// TestLsNamesBothDigests: ls says which digest is which, and commands
// take a prefix of either.
func TestLsNamesBothDigests(t *testing.T) {
	dir := t.TempDir()
	b, key := packedBundle(t, dir)
	_, stdout, _ := runFerry(t, "ls", b, "--json")
	var m struct{ Digest, ManifestDigest string }
	if err := json.Unmarshal([]byte(stdout), &m); err != nil || m.Digest == "" || m.ManifestDigest == "" {
		t.Fatalf("ls --json: %v\n%s", err, stdout)
	}
	_, stdout, _ = runFerry(t, "ls", b)
	for _, want := range []string{"bundle digest  " + m.Digest, "manifest digest  " + m.ManifestDigest} {
		if !strings.Contains(strings.Join(strings.Fields(stdout), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("ls does not say %q:\n%s", want, stdout)
		}
	}
	st := filepath.Join(dir, "store")
	if code, _, stderr := runFerry(t, "import", b, key, "--store", st); code != 0 {
		t.Fatal(stderr)
	}
	for _, d := range []string{m.Digest, m.ManifestDigest} {
		q := strings.TrimPrefix(d, "sha256:")[:7]
		code, _, stderr := runFerry(t, "prune", q, "--store", st)
		if code != 1 || !strings.Contains(stderr, "a digest prefix needs at least 8 hex digits") {
			t.Errorf("prune %s (7 digits): exit status %d, %s", q, code, stderr)
		}
	}
	q := strings.TrimPrefix(m.ManifestDigest, "sha256:")[:8]
	if code, stdout, stderr := runFerry(t, "prune", q, "--store", st); code != 0 || !strings.Contains(stdout, "pruned tiny") {
		t.Errorf("prune by 8 digits of the manifest digest: exit status %d\n%s%s", code, stdout, stderr)
	}
}

// TestPackChecksOutputFirst: pack -o into a directory that does not exist
// (or onto a directory) fails at once with a one-line error, before any
// download and before it makes a signing key.
func TestPackChecksOutputFirst(t *testing.T) {
	ferry := ferryBin(t)
	dir := t.TempDir()
	srv := modtest.NewServer(t, modtest.Module{Path: "example.com/tiny", Version: "v1.0.0", Files: map[string]string{
		"go.mod": "module example.com/tiny\n\ngo 1.21\n", "tiny.go": "package tiny\n",
	}}, modtest.FakeToolchain("go1.99.1", runtime.GOOS, runtime.GOARCH))
	config, cache := filepath.Join(dir, "config"), filepath.Join(dir, "cache")
	env := append(modtest.GoEnv(t, srv), "XDG_CONFIG_HOME="+config)
	missing := filepath.Join(dir, "missing")
	for out, want := range map[string]string{
		filepath.Join(missing, "x.ferry"): "ferry: -o " + filepath.Join(missing, "x.ferry") + ": directory " + missing + " does not exist: create it first (mkdir -p " + missing + ")\n",
		dir:                               "ferry: -o " + dir + ": is a directory: give a file name for the bundle\n",
	} {
		got, err := run(t, dir, env, ferry, "pack", "--no-sign", "-o", out, "--module", "example.com/tiny@v1.0.0", "--toolchain", "go1.99.1", "--cache", cache)
		if err == nil || got != want {
			t.Errorf("pack -o %s: %v, said:\n%s\nwant:\n%s", out, err, got, want)
		}
	}
	for _, p := range []string{cache, config, missing} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("pack with a bad -o made %s", p)
		}
	}
	if reqs := srv.Requests(); len(reqs) > 0 {
		t.Errorf("pack with a bad -o asked the module proxy %d things first: %s", len(reqs), reqs[0])
	}
}
