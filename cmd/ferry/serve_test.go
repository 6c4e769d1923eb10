package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/modtest"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// serveScript starts `ferry serve` on the store inside the current network
// namespace (brought up: only lo), waits until it is ready, runs body, and
// stops the server with SIGTERM (graceful shutdown must succeed).
func serveScript(ferry, store, addr, body string) string {
	return fmt.Sprintf(`set -eu
ip link set lo up
%s serve -q --store %s --listen %s --refresh 200ms 2>"$SERVE_LOG" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
i=0
until curl -sf http://%s/readyz >/dev/null; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "server never became ready"; cat "$SERVE_LOG"; exit 1; }
  sleep 0.1
done
%s
kill -TERM $pid
wait $pid
trap - EXIT
echo "== server stopped cleanly"
`, ferry, store, addr, addr, body)
}

// TestServeOffline: bundles imported into a store and served by `ferry serve`
// in a network namespace with no network; the real go command builds, tidies,
// queries versions, installs a tool and switches toolchains through it, with
// GOSUMDB at the organisation's checksum database. Then a newer bundle
// (packed with --sumdb-head of the first, after the database grew) is
// imported while the server runs, and a client whose cached tree head is the
// first bundle's still verifies.
func TestServeOffline(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	needNetNS(t)
	ferry := ferryBin(t)
	fx := newFixture(t)
	// More than a tile of records before bundle 1 and again before bundle 2,
	// so that the tiles proving bundle 1's head inside bundle 2's are not
	// among those proving bundle 2's own records.
	fx.srv.Add(fillers("a", 300)...)
	fx.srv.Add(modtest.Module{Path: "example.com/extra", Version: "v1.0.0", Files: map[string]string{
		"go.mod": "module example.com/extra\n\ngo 1.21\n", "extra.go": "package extra\n\nconst X = 1\n",
	}})
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	b1 := filepath.Join(work, "one.ferry")
	mustRun(t, fx.project, fx.env, ferry, "pack", "--no-sign", ".", "-q", "-o", b1, "--platform", "linux/amd64",
		"--toolchain", "go1.99.1", "--tool", "example.com/tool/cmd/hello@v1.0.0",
		"--module", "example.com/extra@v1.0.0", "--cache", cache)

	// The far side.
	store := filepath.Join(work, "store")
	client := modtest.GoEnv(t, nil)
	client = append(client, "GOSUMDB="+fx.srv.GOSUMDB, "PATH=/usr/sbin:/usr/bin:/bin:"+filepath.Dir(fx.goBinary(t)),
		"SERVE_LOG="+filepath.Join(work, "serve.log"))
	// A damaged copy is refused and leaves the store empty.
	bad := corruptCopy(t, b1, filepath.Join(work, "bad.ferry"))
	if out, err := offline(t, work, client, ferry, "import", "-q", bad, "--store", store); err == nil {
		t.Fatalf("import of a damaged bundle succeeded:\n%s", out)
	}
	out, err := offline(t, work, client, ferry, "import", "-q", b1, "--store", store)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if st, err := local.Open(store); err != nil {
		t.Fatal(err)
	} else if l, err := st.List(context.Background()); err != nil || len(l) != 1 || l[0].Size == 0 {
		t.Fatalf("store after one good and one damaged import: %+v, %v", l, err)
	}
	proj := filepath.Join(work, "app")
	mustRun(t, "", nil, "cp", "-r", fx.project, proj)
	const addr = "127.0.0.1:8080"
	env := append(client, "GOPROXY=http://"+addr)
	gopath := ""
	for _, kv := range client {
		if v, ok := strings.CutPrefix(kv, "GOPATH="); ok {
			gopath = v
		}
	}
	latest := filepath.Join(gopath, "pkg", "sumdb", fx.srv.SumDBName, "latest")

	script := serveScript(ferry, store, addr, `
echo "== go build"; go build ./...
echo "== go mod tidy (new import of a carried module)"
printf 'package main\n\nimport _ "example.com/extra"\n' >extra.go
go mod tidy; grep -q 'example.com/extra v1.0.0' go.mod
echo "== go list -m -versions"; test "$(go list -m -versions example.com/lib)" = "example.com/lib v1.0.0 v1.1.0"
echo "== go get @latest"; go get example.com/old@latest; grep -q 'example.com/old v1.2.0' go.mod
echo "== go install"; go install example.com/tool/cmd/hello@v1.0.0; "$(go env GOPATH)/bin/hello"
echo "== GOTOOLCHAIN"; GOTOOLCHAIN=go1.99.1 go version | grep go1.99.1
echo "== browse page and metrics"; curl -sf http://`+addr+`/ | grep -q example.com/lib
curl -sf http://`+addr+`/metrics | grep -q 'kind="zip"'
echo "== 404 for an unknown module"; test "$(curl -s -o /dev/null -w '%{http_code}' http://`+addr+`/example.com/nope/@v/list)" = 404
`)
	out, err = run(t, proj, env, "unshare", "-n", "--", "bash", "-c", script)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "serve.log"))
		t.Fatalf("offline through ferry serve: %v\n%s\nserver log:\n%s", err, out, log)
	}
	t.Logf("phase 1:\n%s", out)
	t1, err := os.ReadFile(latest)
	if err != nil {
		t.Fatalf("the client kept no tree head: %v", err)
	}

	// The connected side: the database grows by more than a tile, a new
	// version appears, and bundle 2 is packed with bundle 1's head.
	more := append(fillers("b", 300), modtest.Module{Path: "example.com/lib", Version: "v1.2.0", Files: map[string]string{
		"go.mod": "module example.com/lib\n\ngo 1.21\n",
		"lib.go": "package lib\n\nfunc Hello() string { return \"hello v1.2.0\" }\n",
	}})
	fx.srv.Add(more...)
	b2 := filepath.Join(work, "two.ferry")
	mustRun(t, work, fx.env, ferry, "pack", "--no-sign", "-q", "-o", b2, "--platform", "linux/amd64", "--toolchain", "go1.99.1",
		"--module", "example.com/lib@v1.2.0", "--sumdb-head", b1, "--cache", cache)

	// Bundle 2 is imported while the server runs; the client holds T1.
	script = serveScript(ferry, store, addr, `
echo "== import while serving"; "$FERRY" import -q "$B2" --store "$STORE"
i=0
until go list -m -versions example.com/lib | grep -q v1.2.0; do
  i=$((i+1)); [ $i -lt 300 ] || { echo "the server never picked up bundle 2"; exit 1; }
  sleep 0.1
done
echo "== go get the new version with the old tree head"; go get example.com/lib@v1.2.0
go build ./...
echo "== go mod verify"; go mod verify
`)
	out, err = run(t, proj, append(env, "FERRY="+ferry, "B2="+b2, "STORE="+store), "unshare", "-n", "--", "bash", "-c", script)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "serve.log"))
		t.Fatalf("offline after importing bundle 2: %v\n%s\nserver log:\n%s", err, out, log)
	}
	t.Logf("phase 2:\n%s", out)
	t2, err := os.ReadFile(latest)
	if err != nil || string(t2) == string(t1) {
		t.Errorf("the client's tree head did not move to bundle 2's (err %v)", err)
	}
}

// fillers returns n small modules that only grow the checksum database.
func fillers(prefix string, n int) []modtest.Module {
	var mods []modtest.Module
	for i := range n {
		p := fmt.Sprintf("example.com/filler%s%d", prefix, i)
		mods = append(mods, modtest.Module{Path: p, Version: "v1.0.0", Files: map[string]string{
			"go.mod": "module " + p + "\n", "f.go": "package filler\n",
		}})
	}
	return mods
}

// corruptCopy copies the bundle at src to dst with one byte of its largest
// blob flipped.
func corruptCopy(t *testing.T, src, dst string) string {
	t.Helper()
	r, err := bundle.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	var big bundle.Blob
	for _, b := range r.Blobs() {
		if b.Size > big.Size {
			big = b
		}
	}
	r.Close()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	data[big.Offset+big.Size/2] ^= 0xff
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}
