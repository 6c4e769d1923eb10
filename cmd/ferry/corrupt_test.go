package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/verify"
	"github.com/ferry-dev/ferry/internal/zipcodec"
)

// smallBundle packs the fixture project with only fake toolchains, so the
// bundle is small enough to corrupt at thousands of positions.
func smallBundle(t *testing.T, extra ...string) (*fixture, string) {
	t.Helper()
	fx := newFixture(t)
	out := filepath.Join(t.TempDir(), "small.ferry")
	args := append([]string{"pack", ".", "-o", out, "--platform", "linux/amd64,windows/amd64",
		"--toolchain", "go1.99.1", "--tool", "example.com/tool/cmd/hello@v1.0.0",
		"--cache", filepath.Join(t.TempDir(), "cache")}, extra...)
	if !slices.Contains(extra, "--sign-key") {
		args = append(args, "--no-sign") // the unsigned path: proofs checked with the local key
	}
	mustRun(t, fx.project, fx.env, ferryBin(t), args...)
	return fx, out
}

// verifyFile runs the whole offline check in process; it returns "" if the
// file was accepted, else the first problem.
func verifyFile(ctx context.Context, path, sumdbKey string) string {
	r, err := bundle.Open(path)
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	rep, err := verify.Bundle(ctx, r, verify.Options{SumDBKey: sumdbKey, Jobs: 1})
	if err != nil {
		return err.Error()
	}
	if !rep.OK() {
		return rep.Problems[0].String()
	}
	return ""
}

// TestFlippedByteAnywhere flips one byte at thousands of positions spread
// over the whole bundle (every position for the first and last 4 KiB, where
// the tar headers and metadata are, and a stride through the rest): every
// single one must be refused.
func TestFlippedByteAnywhere(t *testing.T) {
	fx, path := smallBundle(t)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p := verifyFile(ctx, path, fx.srv.SumDBKey); p != "" {
		t.Fatalf("the intact bundle is refused: %s", p)
	}
	var positions []int
	stride := max(1, len(orig)/3000)
	for i := 0; i < len(orig); i++ {
		if i < 4096 || i >= len(orig)-4096 || i%stride == 0 {
			positions = append(positions, i)
		}
	}
	t.Logf("bundle is %d bytes; flipping %d positions", len(orig), len(positions))
	dir := t.TempDir()
	var mu sync.Mutex
	var accepted []int
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, len(orig))
			f := filepath.Join(dir, "flip"+string(rune('a'+w)))
			for i := range work {
				copy(buf, orig)
				buf[i] ^= 0x01
				if err := os.WriteFile(f, buf, 0o644); err != nil {
					t.Error(err)
					return
				}
				if verifyFile(ctx, f, fx.srv.SumDBKey) == "" {
					mu.Lock()
					accepted = append(accepted, i)
					mu.Unlock()
				}
			}
		}(w)
	}
	for _, i := range positions {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(accepted) > 0 {
		t.Errorf("%d flipped bytes were accepted, at offsets %v", len(accepted), accepted[:min(len(accepted), 20)])
	}
}

// TestRefusedBundlesInstallNothing runs the CLI on damaged and foreign files:
// verify and install both refuse with a one-line reason, and install leaves
// its prefix empty.
func TestRefusedBundlesInstallNothing(t *testing.T) {
	fx, path := smallBundle(t)
	ferry := ferryBin(t)
	orig, _ := os.ReadFile(path)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rng := rand.New(rand.NewPCG(1, 2))
	flipped := append([]byte(nil), orig...)
	flipped[len(orig)/2] ^= 0x80
	random := make([]byte, 10000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := map[string]struct {
		file string
		want string
	}{
		"flipped":   {write("flipped.ferry", flipped), ""},
		"truncated": {write("truncated.ferry", orig[:len(orig)*2/3]), "truncated"},
		"header":    {write("header.ferry", orig[:700]), "truncated"},
		"empty":     {write("empty.ferry", nil), "not a ferry bundle"},
		"random":    {write("random.ferry", random), "not"},
		"go.mod":    {filepath.Join(fx.project, "go.mod"), "not"},
	}
	env := append(append([]string(nil), fx.env...), "HOME="+dir)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, dir, env, ferry, "verify", c.file)
			if err == nil {
				t.Fatalf("verify accepted it:\n%s", out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("verify said %q, want it to mention %q", out, c.want)
			}
			prefix := filepath.Join(dir, "prefix-"+name)
			out, err = run(t, dir, append(env, "GOENV="+filepath.Join(dir, "goenv-"+name)), ferry, "install", c.file, "--prefix", prefix)
			if err == nil {
				t.Fatalf("install accepted it:\n%s", out)
			}
			t.Logf("install said: %s", strings.TrimSpace(out))
			if entries, err := os.ReadDir(prefix); err == nil && len(entries) > 0 {
				t.Errorf("refused install left %d entries in its prefix", len(entries))
			}
			if _, err := os.Stat(filepath.Join(dir, "goenv-"+name)); err == nil {
				t.Errorf("refused install wrote the go env file")
			}
		})
	}
}

// rewrite writes a copy of the bundle at src whose manifest is changed by
// edit, with replaced blob contents: an attacker who controls the whole file
// but not the checksum database.
func rewrite(t *testing.T, src string, edit func(m *bundle.Manifest, blobs bundle.MemSource)) string {
	t.Helper()
	r, err := bundle.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := *r.Manifest()
	m.Items = append([]bundle.Item(nil), m.Items...)
	blobs := bundle.MemSource{}
	for _, b := range r.Blobs() {
		sr, err := r.Open(b.Digest)
		if err != nil {
			continue // the metadata blobs
		}
		data, _ := io.ReadAll(sr)
		blobs[b.Digest] = data
	}
	edit(&m, blobs)
	out := filepath.Join(t.TempDir(), "rewritten.ferry")
	if _, err := bundle.Write(context.Background(), out, &m, blobs, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return out
}

func replaceItem(m *bundle.Manifest, blobs bundle.MemSource, file string, data []byte, h1 string) bool {
	for i, it := range m.Items {
		if it.File == file {
			d := bundle.Digest(data)
			blobs[d] = data
			m.Items[i].Digest, m.Items[i].Size = d, int64(len(data))
			if h1 != "" {
				m.Items[i].Hash = h1
			}
			return true
		}
	}
	return false
}

func mustZip(t *testing.T, b []byte) *zip.Reader {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestConsistentForgeries: bundles that are internally consistent (digests
// and h1: hashes updated) but whose content the checksum database does not
// vouch for.
func TestConsistentForgeries(t *testing.T) {
	fx, path := smallBundle(t)
	ctx := context.Background()
	get := func(r *bundle.Reader, file string) []byte {
		for _, it := range r.Manifest().Items {
			if it.File == file {
				sr, _ := r.Open(it.Digest)
				b, _ := io.ReadAll(sr)
				return b
			}
		}
		t.Fatalf("no %s in bundle", file)
		return nil
	}
	r, err := bundle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	oldZip := get(r, "example.com/lib/@v/v1.0.0.zip")
	newZip := get(r, "example.com/lib/@v/v1.1.0.zip")
	var oldItem, newItem bundle.Item
	var tiles []string
	for _, it := range r.Manifest().Items {
		switch it.File {
		case "example.com/lib/@v/v1.0.0.zip":
			oldItem = it
		case "example.com/lib/@v/v1.1.0.zip":
			newItem = it
		}
		if strings.Contains(it.File, "/tile/") {
			tiles = append(tiles, it.File)
		}
	}
	tileData := get(r, tiles[0])
	r.Close()

	t.Run("record does not match zip", func(t *testing.T) {
		// lib v1.1.0 now carries the bytes (and h1:) of v1.0.0's zip.
		p := rewrite(t, path, func(m *bundle.Manifest, blobs bundle.MemSource) {
			if !replaceItem(m, blobs, "example.com/lib/@v/v1.1.0.zip", oldZip, oldItem.Hash) {
				t.Fatal("no zip to replace")
			}
			for i := range m.Items {
				if m.Items[i].File == "example.com/lib/@v/v1.1.0.zip" {
					m.Items[i].Encoding, m.Items[i].FileDigest, m.Items[i].FileSize = oldItem.Encoding, oldItem.FileDigest, oldItem.FileSize
				}
			}
		})
		got := verifyFile(ctx, p, fx.srv.SumDBKey)
		if got == "" {
			t.Fatal("accepted a zip the checksum database does not vouch for")
		}
		t.Logf("refused: %s", got)
	})
	t.Run("encoded zip decodes to other files", func(t *testing.T) {
		// An attacker re-encodes lib v1.1.0 with a changed file and makes
		// the manifest agree with every byte, except the h1: that the
		// checksum database vouches for: verify decodes and refuses it, and
		// so does install, which decodes each zip once as it stages it.
		if !newItem.Encoded() {
			t.Fatalf("pack did not encode %s", newItem.File)
		}
		var dec bytes.Buffer
		if err := zipcodec.Decode(ctx, &dec, bytes.NewReader(newZip), newItem.FileSize, newItem.FileDigest); err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(dec.Bytes()), int64(dec.Len()))
		if err != nil {
			t.Fatal(err)
		}
		var evil bytes.Buffer
		zw := zip.NewWriter(&evil)
		for _, f := range zr.File {
			rc, _ := f.Open()
			data, _ := io.ReadAll(rc)
			rc.Close()
			if strings.HasSuffix(f.Name, ".go") {
				data = append(data, "\nfunc Backdoor() {}\n"...)
			}
			w, _ := zw.Create(f.Name)
			w.Write(data)
		}
		zw.Close()
		var blob bytes.Buffer
		res, err := zipcodec.Encode(ctx, &blob, mustZip(t, evil.Bytes()), zipcodec.FastLevel)
		if err != nil {
			t.Fatal(err)
		}
		p := rewrite(t, path, func(m *bundle.Manifest, blobs bundle.MemSource) {
			replaceItem(m, blobs, newItem.File, blob.Bytes(), "")
			for i := range m.Items {
				if m.Items[i].File == newItem.File {
					m.Items[i].FileDigest, m.Items[i].FileSize = res.FileDigest, res.FileSize
				}
			}
		})
		got := verifyFile(ctx, p, fx.srv.SumDBKey)
		if !strings.Contains(got, "content hash") {
			t.Fatalf("verify said %q, want a content hash mismatch", got)
		}
		dir := t.TempDir()
		prefix := filepath.Join(dir, "prefix")
		env := append(append([]string(nil), fx.env...), "HOME="+dir, "GOENV="+filepath.Join(dir, "goenv"))
		out, err := run(t, dir, env, ferryBin(t), "install", p, "--prefix", prefix)
		if err == nil || !strings.Contains(out, "h1") {
			t.Fatalf("install accepted it or did not say why (%v):\n%s", err, out)
		}
		t.Logf("install refused: %s", strings.TrimSpace(out))
		if entries, err := os.ReadDir(prefix); err == nil && len(entries) > 0 {
			t.Errorf("refused install left %d entries in its prefix", len(entries))
		}
		if _, err := os.Stat(filepath.Join(dir, "goenv")); err == nil {
			t.Error("refused install wrote the go env file")
		}
		// import into a local store leaves the h1: hashes of encoded zips
		// to the store, which decodes each once as it imports it.
		st := filepath.Join(dir, "store")
		out, err = run(t, dir, env, ferryBin(t), "import", p, "--store", st)
		if err == nil || !strings.Contains(out, "content hash") {
			t.Fatalf("import accepted it or did not say why (%v):\n%s", err, out)
		}
		t.Logf("import refused: %s", strings.TrimSpace(out))
		filepath.WalkDir(st, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && d.Name() != "lock" {
				t.Errorf("refused import left %s in the store", p)
			}
			return err
		})
	})
	t.Run("tile does not prove record", func(t *testing.T) {
		p := rewrite(t, path, func(m *bundle.Manifest, blobs bundle.MemSource) {
			bad := append([]byte(nil), tileData...)
			bad[len(bad)/2] ^= 0xff
			replaceItem(m, blobs, tiles[0], bad, "")
		})
		got := verifyFile(ctx, p, fx.srv.SumDBKey)
		if got == "" {
			t.Fatal("accepted a tile that does not prove its records")
		}
		t.Logf("refused: %s", got)
	})
	t.Run("module marked outside the checksum database", func(t *testing.T) {
		p := rewrite(t, path, func(m *bundle.Manifest, blobs bundle.MemSource) {
			for i := range m.Items {
				if m.Items[i].Module == "example.com/lib" {
					m.Items[i].NoSumDB = true
				}
			}
		})
		if got := verifyFile(ctx, p, fx.srv.SumDBKey); !strings.Contains(got, "outside the checksum database") {
			t.Fatalf("verify said %q", got)
		}
	})
	t.Run("other checksum database key", func(t *testing.T) {
		other := newFixture(t)
		if got := verifyFile(ctx, path, other.srv.SumDBKey); got == "" {
			t.Fatal("accepted a snapshot signed by a key the verifier does not trust")
		}
	})
}

// TestSignedBundles: --sign-key on pack, --key on verify and install.
func TestSignedBundles(t *testing.T) {
	ferry := ferryBin(t)
	keys := t.TempDir()
	mustRun(t, keys, nil, ferry, "key", "generate", "release", "--dir", keys)
	mustRun(t, keys, nil, ferry, "key", "generate", "mallory", "--dir", keys)
	fx, signed := smallBundle(t, "--sign-key", filepath.Join(keys, "release.key"))
	unsigned := filepath.Join(t.TempDir(), "unsigned.ferry")
	mustRun(t, fx.project, fx.env, ferry, "pack", "--no-sign", ".", "-o", unsigned, "--toolchain", "go1.99.1", "--cache", filepath.Join(t.TempDir(), "c"))

	out := mustRun(t, keys, fx.env, ferry, "verify", signed, "--key", filepath.Join(keys, "release.pub"))
	if !strings.Contains(out, "signed by release") {
		t.Errorf("verify output %q does not name the signer", out)
	}
	for _, c := range []struct{ bundle, key, want string }{
		{signed, "mallory.pub", "signature"},
		{unsigned, "release.pub", "not signed"},
	} {
		out, err := run(t, keys, fx.env, ferry, "verify", c.bundle, "--key", filepath.Join(keys, c.key))
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("verify %s --key %s: err=%v, output %q (want %q)", filepath.Base(c.bundle), c.key, err, out, c.want)
		}
		prefix := filepath.Join(t.TempDir(), "p")
		out, err = run(t, keys, append(fx.env, "GOENV="+filepath.Join(keys, "env")), ferry, "install", c.bundle, "--key", filepath.Join(keys, c.key), "--prefix", prefix)
		if err == nil {
			t.Errorf("install %s --key %s accepted it: %s", filepath.Base(c.bundle), c.key, out)
		}
		if _, err := os.Stat(prefix); err == nil {
			if e, _ := os.ReadDir(prefix); len(e) > 0 {
				t.Errorf("refused install wrote into its prefix")
			}
		}
	}
}

// TestPackIsReproducible: the same inputs give a byte-identical bundle.
func TestPackIsReproducible(t *testing.T) {
	fx, first := smallBundle(t)
	second := filepath.Join(t.TempDir(), "again.ferry")
	mustRun(t, fx.project, fx.env, ferryBin(t), "pack", "--no-sign", ".", "-o", second, "--platform", "linux/amd64,windows/amd64",
		"--toolchain", "go1.99.1", "--tool", "example.com/tool/cmd/hello@v1.0.0", "--cache", filepath.Join(t.TempDir(), "cache2"))
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	if string(a) != string(b) {
		ls := func(p string) string { return mustRun(t, "", nil, ferryBin(t), "ls", "--json", p) }
		t.Logf("first:\n%s\nsecond:\n%s", ls(first), ls(second))
		t.Fatalf("two packs of the same inputs differ (%d vs %d bytes)", len(a), len(b))
	}
}

// TestPackResumesFromCache: a second pack with the same --cache fetches no
// module or toolchain file again (only the lists and tree head, which may
// change), and --json reports it.
func TestPackResumesFromCache(t *testing.T) {
	fx := newFixture(t)
	cache := filepath.Join(t.TempDir(), "cache")
	args := []string{"pack", "--no-sign", ".", "-o", filepath.Join(t.TempDir(), "a.ferry"), "--toolchain", "go1.99.1", "--cache", cache, "--json"}
	type result struct {
		Items    int `json:"items"`
		Transfer struct {
			ItemsFetched, ItemsCached int64
		} `json:"transfer"`
	}
	var first, second result
	decodeJSON(t, mustRun(t, fx.project, fx.env, ferryBin(t), args...), &first)
	fx.srv.ResetRequests()
	decodeJSON(t, mustRun(t, fx.project, fx.env, ferryBin(t), args...), &second)
	if first.Items == 0 || second.Items != first.Items {
		t.Fatalf("items: first %d, second %d", first.Items, second.Items)
	}
	if second.Transfer.ItemsCached == 0 {
		t.Errorf("second pack used nothing from the cache: %+v", second.Transfer)
	}
	for _, r := range fx.srv.Requests() {
		if !strings.HasSuffix(r, " 200") {
			continue // refusals are asked again: the mirror may have changed its mind
		}
		if strings.Contains(r, ".zip ") || strings.Contains(r, ".mod ") || strings.Contains(r, "/tile/") || strings.Contains(r, "/lookup/") {
			t.Errorf("second pack fetched %s again", r)
		}
	}
}

// TestCompressionNone: --compression none carries the zips as the proxy
// serves them (no encoded item), and such a bundle verifies; the default
// encodes every module zip but the toolchains'.
func TestCompressionNone(t *testing.T) {
	count := func(path string) (encoded, plain int) {
		r, err := bundle.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for _, it := range r.Manifest().Items {
			switch {
			case it.Kind != bundle.KindZip:
			case it.Encoded():
				encoded++
				if it.Module == bundle.ToolchainModule {
					t.Errorf("%s: toolchain zip encoded", it.File)
				}
			default:
				plain++
			}
		}
		return encoded, plain
	}
	fx, none := smallBundle(t, "--compression", "none")
	if enc, plain := count(none); enc != 0 || plain == 0 {
		t.Fatalf("--compression none: %d encoded zips, %d plain", enc, plain)
	}
	if got := verifyFile(context.Background(), none, fx.srv.SumDBKey); got != "" {
		t.Fatalf("verify: %s", got)
	}
	_, def := smallBundle(t)
	if enc, _ := count(def); enc == 0 {
		t.Fatal("default pack encoded no zip")
	}
}
