package install

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// memSource is an in-memory Source.
type memSource struct {
	m      *bundle.Manifest
	digest string
	blobs  map[string][]byte
	// failAt, if > 0, makes reading the failAt-th opened blob fail.
	failAt int64
	calls  atomic.Int64
	// onOpen, if not nil, is called first by every Open.
	onOpen func()
}

func (s *memSource) Manifest() *bundle.Manifest { return s.m }
func (s *memSource) ManifestDigest() string     { return s.digest }

// Open returns the blob; the failAt-th call returns a reader that fails
// midway, like a real read error.
func (s *memSource) Open(digest string) (*io.SectionReader, error) {
	if s.onOpen != nil {
		s.onOpen()
	}
	b, ok := s.blobs[digest]
	if !ok {
		return nil, fmt.Errorf("no blob %s", digest)
	}
	if n := s.calls.Add(1); s.failAt > 0 && n == s.failAt {
		return io.NewSectionReader(failingReaderAt{b}, 0, int64(len(b))), nil
	}
	return io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))), nil
}

var errInjected = errors.New("injected failure")

// failingReaderAt reads the first half of its bytes, then fails.
type failingReaderAt struct{ b []byte }

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	half := int64(len(f.b) / 2)
	if off >= half {
		return 0, errInjected
	}
	n := copy(p, f.b[off:half])
	if off+int64(n) >= half {
		return n, errInjected
	}
	return n, nil
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// bundleBuilder assembles a memSource.
type bundleBuilder struct {
	m     bundle.Manifest
	blobs map[string][]byte
}

func newBuilder(name string) *bundleBuilder {
	return &bundleBuilder{m: bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: name, Version: "1"}, blobs: map[string][]byte{}}
}

func (b *bundleBuilder) add(it bundle.Item, data []byte) {
	it.Size = int64(len(data))
	it.Digest = sha(data)
	b.blobs[it.Digest] = data
	b.m.Items = append(b.m.Items, it)
}

// module adds the given files (".info", ".mod", ".zip") of mod@version.
func (b *bundleBuilder) module(t *testing.T, mod, version string, exts ...string) {
	t.Helper()
	em, err := module.EscapePath(mod)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bundle.Kind{".info": bundle.KindInfo, ".mod": bundle.KindMod, ".zip": bundle.KindZip}
	for _, ext := range exts {
		var data []byte
		switch ext {
		case ".info":
			data = fmt.Appendf(nil, "{\"Version\":%q,\"Time\":\"2020-01-01T00:00:00Z\"}\n", version)
		case ".mod":
			data = fmt.Appendf(nil, "module %s\n", mod)
		default:
			data = fmt.Appendf(nil, "zip of %s@%s\n", mod, version)
		}
		b.add(bundle.Item{File: em + "/@v/" + ev + ext, Kind: kinds[ext], Module: mod, Version: version}, data)
	}
}

// toolchain adds a fake toolchain zip for goVersion on platform.
func (b *bundleBuilder) toolchain(t *testing.T, goVersion, platform string, extra map[string]string) {
	t.Helper()
	goos, goarch, _ := strings.Cut(platform, "/")
	version := "v0.0.1-" + goVersion + "." + goos + "-" + goarch
	prefix := toolchainModule + "@" + version + "/"
	files := map[string]string{
		"VERSION":   goVersion + "\n",
		"bin/go":    "#!/bin/sh\necho " + goVersion + "\n",
		"bin/gofmt": "gofmt",
		"pkg/tool/" + goos + "_" + goarch + "/compile": "compile",
		"src/_go.mod":               "module std\n",
		"src/cmd/_go.mod":           "module cmd\n",
		"src/fmt/print.go":          "package fmt\n",
		"misc/wasm/go_js_wasm_exec": "not lib, no exec\n",
		"lib/wasm/go_js_wasm_exec":  "exec\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		full := prefix + name
		if strings.HasPrefix(name, "!") { // raw entry name, outside the prefix
			full = name[1:]
		}
		w, err := zw.Create(full)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b.m.Toolchains = append(b.m.Toolchains, goVersion)
	b.add(bundle.Item{File: toolchainModule + "/@v/" + version + ".zip", Kind: bundle.KindZip,
		Module: toolchainModule, Version: version, Platform: platform}, buf.Bytes())
}

// sumdb is a test checksum database signer.
type testSumDB struct {
	name   string
	signer note.Signer
}

func newSumDB(t *testing.T) *testSumDB {
	skey, _, err := note.GenerateKey(rand.Reader, "sum.test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testSumDB{name: "sum.test", signer: s}
}

func (db *testSumDB) head(t *testing.T, n int64) []byte {
	t.Helper()
	var h tlog.Hash
	h[0] = byte(n)
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: h}))}, db.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// snapshot adds a checksum snapshot with tree size n: latest, lookups of
// mods ("path@version") and the given tiles.
func (b *bundleBuilder) snapshot(t *testing.T, db *testSumDB, n int64, mods []string, tiles map[string]string) {
	t.Helper()
	head := db.head(t, n)
	b.m.SumDB = &bundle.SumDB{Name: db.name, Head: string(head)}
	b.add(bundle.Item{File: "sumdb/" + db.name + "/latest", Kind: bundle.KindSumDB}, head)
	for i, mv := range mods {
		rec := fmt.Appendf(nil, "%s h1:xyz=\n%s/go.mod h1:abc=\n", strings.Replace(mv, "@", " ", 1), strings.Replace(mv, "@", " ", 1))
		data, err := tlog.FormatRecord(int64(i), rec)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, head...)
		b.add(bundle.Item{File: "sumdb/" + db.name + "/lookup/" + mv, Kind: bundle.KindSumDB}, data)
	}
	for p, content := range tiles {
		b.add(bundle.Item{File: "sumdb/" + db.name + "/" + p, Kind: bundle.KindSumDB}, []byte(content))
	}
}

func (b *bundleBuilder) source() *memSource {
	b.m.Sort()
	m := b.m
	m.Items = append([]bundle.Item(nil), b.m.Items...)
	return &memSource{m: &m, digest: sha([]byte(fmt.Sprint(m))), blobs: b.blobs}
}

func TestMemSourceManifestChecks(t *testing.T) {
	b := newBuilder("x")
	b.module(t, "example.com/a", "v1.0.0", ".mod")
	if err := b.source().m.Check(); err != nil {
		t.Fatal(err)
	}
}
