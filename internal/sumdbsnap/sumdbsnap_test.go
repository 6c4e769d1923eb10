package sumdbsnap

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-dev/ferry/internal/modtest"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
)

func mod(p, v string) modtest.Module {
	return modtest.Module{Path: p, Version: v, Files: map[string]string{
		"go.mod": "module " + p + "\n\ngo 1.21\n",
		"x.go":   "package " + p[strings.LastIndex(p, "/")+1:] + "\n\nconst V = \"" + v + "\"\n",
	}}
}

// fixture returns a server with enough records for level-1 tiles, and wants for three of them.
func fixture(t *testing.T) (*modtest.Server, []Want) {
	var mods []modtest.Module
	for i := range 300 {
		mods = append(mods, mod(fmt.Sprintf("example.com/filler%d", i), "v1.0.0"))
	}
	mods = append(mods, mod("example.com/hello", "v1.0.0"), mod("example.com/Upper", "v0.2.0"), mod("example.com/world", "v1.2.3"))
	s := modtest.NewServer(t, mods...)
	return s, wantsFor(t, s, []string{"example.com/hello@v1.0.0", "example.com/Upper@v0.2.0", "example.com/world@v1.2.3"})
}

func wantsFor(t *testing.T, s *modtest.Server, mvs []string) []Want {
	var wants []Want
	for _, mv := range mvs {
		p, v, _ := strings.Cut(mv, "@")
		z, m, ok := s.Hashes(p, v)
		if !ok {
			t.Fatalf("no module %s", mv)
		}
		wants = append(wants, Want{Path: p, Version: v, ZipHash: z, ModHash: m})
	}
	return wants
}

func remote(s *modtest.Server) *HTTPRemote {
	return &HTTPRemote{Base: s.URL + "/sumdb/" + s.SumDBName}
}

func mustBuild(t *testing.T, s *modtest.Server, wants []Want) *Snapshot {
	t.Helper()
	snap, err := Build(context.Background(), s.SumDBName, s.SumDBKey, remote(s), wants, 4)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return snap
}

func TestBuildVerify(t *testing.T) {
	s, wants := fixture(t)
	snap := mustBuild(t, s, wants)
	if snap.Name != s.SumDBName || snap.Key != s.SumDBKey || !bytes.Equal(snap.Files["latest"], snap.Head) {
		t.Errorf("snapshot name %q key %q, latest==head %v", snap.Name, snap.Key, bytes.Equal(snap.Files["latest"], snap.Head))
	}
	if !bytes.HasPrefix(snap.Head, []byte("go.sum database tree\n303\n")) {
		t.Errorf("head = %q", snap.Head)
	}
	for _, f := range []string{"lookup/example.com/hello@v1.0.0", "lookup/example.com/!upper@v0.2.0", "tile/8/1/000.p/1", "tile/8/0/001.p/47"} {
		if _, ok := snap.Files[f]; !ok {
			t.Errorf("snapshot lacks %s; has %q", f, sortedKeys(snap.Files))
		}
	}
	if errs := Verify(context.Background(), s.SumDBKey, snap, wants); len(errs) != 0 {
		t.Errorf("Verify: %v", errs)
	}
}

func TestBuildErrors(t *testing.T) {
	s, wants := fixture(t)
	ctx := context.Background()

	bad := append([]Want(nil), wants...)
	bad[0].ZipHash = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	_, err := Build(ctx, s.SumDBName, s.SumDBKey, remote(s), bad, 2)
	want := fmt.Sprintf("checksum mismatch for example.com/hello@v1.0.0: bundle %s, checksum database %s %s", bad[0].ZipHash, s.SumDBName, wants[0].ZipHash)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Build with a wrong zip hash: %v, want %q", err, want)
	}

	bad = append([]Want(nil), wants...)
	bad[1].ModHash = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	_, err = Build(ctx, s.SumDBName, s.SumDBKey, remote(s), bad, 2)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch for example.com/Upper@v0.2.0/go.mod") {
		t.Errorf("Build with a wrong go.mod hash: %v", err)
	}

	_, err = Build(ctx, s.SumDBName, s.SumDBKey, remote(s), append(wants, Want{Path: "example.com/nope", Version: "v1.0.0"}), 2)
	if err == nil || !strings.Contains(err.Error(), "example.com/nope@v1.0.0: not found in checksum database") {
		t.Errorf("Build with an unknown module: %v", err)
	}

	other := modtest.NewServer(t)
	_, err = Build(ctx, s.SumDBName, other.SumDBKey, remote(s), wants, 2)
	if err == nil || !strings.Contains(err.Error(), "verifying tree head") {
		t.Errorf("Build with another key: %v", err)
	}
}

// staleHead answers /latest with an old head the first time.
type staleHead struct {
	Remote
	mu   sync.Mutex
	head []byte
}

func (r *staleHead) ReadRemote(ctx context.Context, p string) ([]byte, error) {
	r.mu.Lock()
	head := r.head
	r.head = nil
	r.mu.Unlock()
	if p == "/latest" && head != nil {
		return head, nil
	}
	return r.Remote.ReadRemote(ctx, p)
}

func TestBuildRecordNewerThanHead(t *testing.T) {
	s, wants := fixture(t)
	old, err := remote(s).ReadRemote(context.Background(), "/latest")
	if err != nil {
		t.Fatal(err)
	}
	s.Add(mod("example.com/late", "v1.0.0"))
	wants = append(wants, wantsFor(t, s, []string{"example.com/late@v1.0.0"})...)
	r := &staleHead{Remote: remote(s), head: old}
	snap, err := Build(context.Background(), s.SumDBName, s.SumDBKey, r, wants, 2)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if bytes.Equal(snap.Head, old) {
		t.Errorf("Build kept the stale head")
	}
	if errs := Verify(context.Background(), s.SumDBKey, snap, wants); len(errs) != 0 {
		t.Errorf("Verify: %v", errs)
	}
}

func clone(s *Snapshot) *Snapshot {
	c := *s
	c.Files = make(map[string][]byte)
	for k, v := range s.Files {
		c.Files[k] = bytes.Clone(v)
	}
	return &c
}

func TestVerifyCorruption(t *testing.T) {
	s, wants := fixture(t)
	oldSnap := mustBuild(t, s, wants) // at tree size 303
	s.Add(mod("example.com/later", "v1.0.0"))
	snap := mustBuild(t, s, wants) // at tree size 304
	ctx := context.Background()

	check := func(name string, snap *Snapshot, wants []Want, want ...string) {
		t.Run(name, func(t *testing.T) {
			errs := Verify(ctx, s.SumDBKey, snap, wants)
			if len(errs) == 0 {
				t.Fatalf("Verify found no problem")
			}
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
				if strings.Contains(e.Error(), "\n") {
					t.Errorf("multi-line error: %q", e)
				}
			}
			all := strings.Join(msgs, "\n")
			t.Logf("Verify errors:\n%s", all)
			for _, w := range want {
				if !strings.Contains(all, w) {
					t.Errorf("errors:\n%s\nwant one containing %q", all, w)
				}
			}
		})
	}

	// The bundle's zip does not match the record.
	bad := append([]Want(nil), wants...)
	bad[2].ZipHash = wants[0].ZipHash
	check("zip hash", snap, bad, "checksum mismatch for example.com/world@v1.2.3: bundle "+wants[0].ZipHash)

	// The record text was changed to carry another hash.
	c := clone(snap)
	f := "lookup/example.com/hello@v1.0.0"
	c.Files[f] = bytes.Replace(c.Files[f], []byte(wants[0].ZipHash), []byte(wants[2].ZipHash), 1)
	check("record text", c, wants, "example.com/hello@v1.0.0: verifying record")

	// A tile byte flipped.
	c = clone(snap)
	c.Files["tile/8/0/001.p/48"][5] ^= 1
	check("tile", c, wants, "example.com/hello@v1.0.0: verifying record", "example.com/world@v1.2.3: verifying record")

	// A missing tile.
	c = clone(snap)
	delete(c.Files, "tile/8/1/000.p/1")
	check("missing tile", c, wants, "example.com/hello@v1.0.0: verifying record")

	// A head signed by another key of the same name.
	c = clone(snap)
	skey, _, err := note.GenerateKey(rand.Reader, s.SumDBName)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	n, err := note.Open(snap.Head, note.VerifierList(mustVerifier(t, s.SumDBKey)))
	if err != nil {
		t.Fatal(err)
	}
	c.Head, err = note.Sign(&note.Note{Text: n.Text}, signer)
	if err != nil {
		t.Fatal(err)
	}
	check("head key", c, wants, "checksum database "+s.SumDBName+": verifying tree head")

	// A lookup wrapped with another (older, validly signed) head.
	c = clone(snap)
	c.Files[f] = oldSnap.Files[f]
	check("other head", c, wants, "example.com/hello@v1.0.0: "+f+" is wrapped with another tree head")

	// A lookup missing.
	c = clone(snap)
	delete(c.Files, f)
	check("missing lookup", c, wants, "example.com/hello@v1.0.0: snapshot has no "+f)

	// latest is not the head.
	c = clone(snap)
	c.Files["latest"] = oldSnap.Head
	check("latest", c, wants, "latest file is not the snapshot head")
}

func mustVerifier(t *testing.T, key string) note.Verifier {
	v, err := note.NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestGoCommandOffline lays a snapshot out in a GOPROXY directory with the
// module files and checks that the real go command downloads and verifies
// through it, and fails when a tile is missing.
func TestGoCommandOffline(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	s, wants := fixture(t)
	snap := mustBuild(t, s, wants)
	dir := t.TempDir()
	for _, w := range wants {
		ep, _ := module.EscapePath(w.Path)
		ev, _ := module.EscapeVersion(w.Version)
		for _, ext := range []string{".info", ".mod", ".zip"} {
			p := "/" + ep + "/@v/" + ev + ext
			resp, err := http.Get(s.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: %v %v", p, resp.Status, err)
			}
			fp := filepath.Join(dir, filepath.FromSlash(p))
			os.MkdirAll(filepath.Dir(fp), 0o777)
			if err := os.WriteFile(fp, data, 0o666); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := snap.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	gosumdb := snap.Key
	run := func() ([]byte, error) {
		env := append(modtest.GoEnv(t, nil), "GOPROXY=file://"+filepath.ToSlash(dir), "GOSUMDB="+gosumdb)
		cmd := exec.Command("go", "mod", "download", "-json", "example.com/hello@v1.0.0", "example.com/Upper@v0.2.0", "example.com/world@v1.2.3")
		cmd.Dir = t.TempDir()
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	s.ResetRequests()
	if out, err := run(); err != nil {
		t.Fatalf("go mod download from the snapshot directory: %v\n%s", err, out)
	}
	if reqs := s.Requests(); len(reqs) != 0 {
		t.Errorf("the go command reached the server: %q", reqs)
	}

	// The go command really used the snapshot: without a tile it fails.
	if err := os.Remove(filepath.Join(dir, "sumdb", snap.Name, "tile", "8", "1", "000.p", "1")); err != nil {
		t.Fatal(err)
	}
	out, err := run()
	if err == nil {
		t.Fatalf("go mod download succeeded without a tile:\n%s", out)
	}
	if !bytes.Contains(out, []byte("verifying")) || !bytes.Contains(out, []byte("tile/8/1/000.p/1")) {
		t.Errorf("unexpected failure:\n%s", out)
	}
}

func TestParseGOSUMDB(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "db.example")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, name, key, url string
		err                bool
	}{
		{in: "db.example", name: "db.example"},
		{in: vkey, name: "db.example", key: vkey},
		{in: vkey + " https://mirror.example/db", name: "db.example", key: vkey, url: "https://mirror.example/db"},
		{in: "db.example https://mirror.example/db", name: "db.example", url: "https://mirror.example/db"},
		{in: "off", err: true},
		{in: "", err: true},
		{in: "a b c", err: true},
		{in: "db.example+1234+notbase64!", err: true},
	}
	for _, tt := range tests {
		name, key, url, err := ParseGOSUMDB(tt.in)
		if (err != nil) != tt.err || name != tt.name || key != tt.key || url != tt.url {
			t.Errorf("ParseGOSUMDB(%q) = %q, %q, %q, %v", tt.in, name, key, url, err)
		}
	}
}

func TestGoRootKey(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "db.example")
	if err != nil {
		t.Fatal(err)
	}
	goroot := t.TempDir()
	dir := filepath.Join(goroot, "src", "cmd", "go", "internal", "modfetch")
	os.MkdirAll(dir, 0o777)
	src := fmt.Sprintf("package modfetch\n\nvar knownGOSUMDB = map[string]string{\n\t%q: %q,\n}\n", "db.example", vkey)
	if err := os.WriteFile(filepath.Join(dir, "key.go"), []byte(src), 0o666); err != nil {
		t.Fatal(err)
	}
	if got, err := GoRootKey(goroot, "db.example"); err != nil || got != vkey {
		t.Errorf("GoRootKey = %q, %v, want %q", got, err, vkey)
	}
	if _, err := GoRootKey(goroot, "other.example"); err == nil {
		t.Errorf("GoRootKey of an unknown name succeeded")
	}
	if _, err := GoRootKey(t.TempDir(), "db.example"); err == nil {
		t.Errorf("GoRootKey without sources succeeded")
	}

	// The real installation knows the default database of `go env GOSUMDB`.
	if _, err := exec.LookPath("go"); err != nil {
		return
	}
	out, err := exec.Command("go", "env", "GOROOT", "GOSUMDB").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\n")
	name, key, _, err := ParseGOSUMDB(f[1])
	if err != nil || key != "" {
		t.Skipf("GOSUMDB %q is not a plain name", f[1])
	}
	key, err = GoRootKey(f[0], name)
	if err != nil {
		t.Fatalf("GoRootKey(%s, %s): %v", f[0], name, err)
	}
	if v := mustVerifier(t, key); v.Name() != name {
		t.Errorf("key name %q, want %q", v.Name(), name)
	}
}

func TestHTTPRemoteNotFound(t *testing.T) {
	s, _ := fixture(t)
	r := remote(s)
	r.Retries = 2
	_, err := r.ReadRemote(context.Background(), "/lookup/example.com/nope@v1.0.0")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown lookup: %v, want fs.ErrNotExist", err)
	}
	s.FailNext("/sumdb/"+s.SumDBName+"/latest", 503, 2)
	data, err := r.ReadRemote(context.Background(), "/latest")
	if err != nil {
		t.Fatalf("latest after 2 failures with 2 retries: %v", err)
	}
	if _, err := openHead(data, mustVerifier(t, s.SumDBKey)); err != nil {
		t.Errorf("latest: %v", err)
	}
}
