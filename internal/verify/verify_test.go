package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/modtest"
	"github.com/ferry-dev/ferry/internal/sumdbsnap"
)

// The modules of the test bundles: hello and Upper are proved by the
// bundle's checksum snapshot, like the toolchain; world and evil are served
// but only carried as unproved or private modules, or as another valid zip.
var (
	hello     = modtest.Module{Path: "example.com/hello", Version: "v1.0.0", Files: map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "hello.go": "package hello\n"}}
	upper     = modtest.Module{Path: "example.com/Upper", Version: "v0.2.0", Files: map[string]string{"go.mod": "module example.com/Upper\n\ngo 1.22\n", "u.go": "package upper\n"}}
	world     = modtest.Module{Path: "example.com/private/world", Version: "v1.2.3", Files: map[string]string{"go.mod": "module example.com/private/world\n\ngo 1.22\n", "w.go": "package world\n"}}
	evil      = modtest.Module{Path: "example.com/evil", Version: "v1.0.0", Files: map[string]string{"go.mod": "module example.com/evil\n\ngo 1.22\n", "evil.go": "package evil\n"}}
	toolchain = modtest.FakeToolchain("go1.26.8", "linux", "amd64")
)

const (
	helloZip = "example.com/hello/@v/v1.0.0.zip"
	helloMod = "example.com/hello/@v/v1.0.0.mod"
	tcZip    = "golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip"
	worldZip = "example.com/private/world/@v/v1.2.3.zip"
	evilZip  = "example.com/evil/@v/v1.0.0.zip"
)

// fixture is a module proxy with a real checksum database (package
// modtest) on 127.0.0.1, from which the tests pack bundles as ferry pack
// does: every file of every module, the h1: hashes the database records,
// and a snapshot built and proved with package sumdbsnap.
type fixture struct {
	srv *modtest.Server
	dir string
}

func newFixture(t *testing.T) *fixture {
	return &fixture{srv: modtest.NewServer(t, hello, upper, world, evil, toolchain), dir: t.TempDir()}
}

// packOptions say what goes into a test bundle besides hello, Upper and the
// toolchain, which are proved.
type packOptions struct {
	unproved []modtest.Module // carried, but not in the snapshot
	private  []modtest.Module // carried, marked NoSumDB, not in the snapshot
	signer   note.Signer
	// replace carries other bytes for a file (the manifest keeps the h1:
	// hash the checksum database proves; size and digest follow the bytes).
	replace map[string][]byte
}

func (fx *fixture) get(t *testing.T, file string) []byte {
	t.Helper()
	resp, err := http.Get(fx.srv.URL + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", file, resp.Status, err)
	}
	return data
}

// pack writes a bundle named name and returns its path.
func (fx *fixture) pack(t *testing.T, name string, opt packOptions) string {
	t.Helper()
	ctx := context.Background()
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: name, Toolchains: []string{"go1.26.8"}}
	src := bundle.MemSource{}
	var wants []sumdbsnap.Want
	add := func(mod modtest.Module, proved, private bool) {
		ep, err := module.EscapePath(mod.Path)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := module.EscapeVersion(mod.Version)
		if err != nil {
			t.Fatal(err)
		}
		zipHash, modHash, ok := fx.srv.Hashes(mod.Path, mod.Version)
		if !ok {
			t.Fatalf("%s@%s is not served", mod.Path, mod.Version)
		}
		for _, k := range []bundle.Kind{bundle.KindInfo, bundle.KindMod, bundle.KindZip} {
			file := ep + "/@v/" + ev + "." + string(k)
			data := fx.get(t, file)
			if r, ok := opt.replace[file]; ok {
				data = r
			}
			it := bundle.Item{File: file, Kind: k, Module: mod.Path, Version: mod.Version,
				Size: int64(len(data)), Digest: bundle.Digest(data), NoSumDB: private}
			switch k {
			case bundle.KindMod:
				it.Hash = modHash
			case bundle.KindZip:
				it.Hash = zipHash
				if mod.Path == modtest.ToolchainModule {
					it.Platform = "linux/amd64"
				}
			}
			src[it.Digest] = data
			m.Items = append(m.Items, it)
		}
		if proved {
			wants = append(wants, sumdbsnap.Want{Path: mod.Path, Version: mod.Version, ZipHash: zipHash, ModHash: modHash})
		}
	}
	for _, mod := range []modtest.Module{hello, upper, toolchain} {
		add(mod, true, false)
	}
	for _, mod := range opt.unproved {
		add(mod, false, false)
	}
	for _, mod := range opt.private {
		add(mod, false, true)
	}
	snap, err := sumdbsnap.Build(ctx, fx.srv.SumDBName, fx.srv.SumDBKey,
		&sumdbsnap.HTTPRemote{Base: fx.srv.URL + "/sumdb/" + fx.srv.SumDBName}, wants, 2)
	if err != nil {
		t.Fatal(err)
	}
	m.SumDB = &bundle.SumDB{Name: snap.Name, Key: snap.Key, Head: string(snap.Head)}
	for rel, data := range snap.Files {
		d := bundle.Digest(data)
		src[d] = data
		m.Items = append(m.Items, bundle.Item{File: "sumdb/" + snap.Name + "/" + rel, Kind: bundle.KindSumDB, Size: int64(len(data)), Digest: d})
	}
	p := filepath.Join(fx.dir, name)
	if _, err := bundle.Write(ctx, p, m, src, bundle.WriteOptions{Signer: opt.signer}); err != nil {
		t.Fatal(err)
	}
	return p
}

// check opens the bundle at p and verifies it: it returns the report, and
// an error if Open refused the bundle or verification failed to run.
func check(t *testing.T, p string, opt Options) (*Report, error) {
	t.Helper()
	r, err := bundle.Open(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return Bundle(context.Background(), r, opt)
}

// refused fails the test unless the bundle at p is refused, by Open or by a
// problem of the verify report, with a message containing want.
func refused(t *testing.T, p string, opt Options, want string) {
	t.Helper()
	rep, err := check(t, p, opt)
	if err == nil {
		err = rep.Err()
	}
	if err == nil {
		t.Fatalf("bundle accepted (%d proved); want it refused with %q", rep.Proved, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("bundle refused with:\n%v\nwant a message containing %q", err, want)
	}
}

func passes(t *testing.T, p string, opt Options) *Report {
	t.Helper()
	rep, err := check(t, p, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	return rep
}

func signer(t *testing.T, name string) (note.Signer, note.Verifiers) {
	t.Helper()
	var seed [32]byte
	copy(seed[:], name)
	skey, vkey, err := note.GenerateKey(rand.NewChaCha8(seed), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, note.VerifierList(v)
}

// rewriteManifest writes a copy of the bundle at p whose ferry manifest is
// edited by edit, bypassing bundle.Write's checks: the config blob, the OCI
// manifest, index.json and the tar entry names are updated so that the copy
// is exactly what a packer that skipped the checks would have written (the
// signature, if any, still signs the old manifest).
func rewriteManifest(t *testing.T, p, name string, edit func(m *bundle.Manifest)) string {
	t.Helper()
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []entry
	byName := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, entry{h, data})
		byName[h.Name] = data
	}
	type desc struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	}
	var idx struct{ Manifests []desc }
	if err := json.Unmarshal(byName["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	md := idx.Manifests[0]
	var om struct{ Config desc }
	if err := json.Unmarshal(byName[blob(md.Digest)], &om); err != nil {
		t.Fatal(err)
	}
	var m bundle.Manifest
	if err := json.Unmarshal(byName[blob(om.Config.Digest)], &m); err != nil {
		t.Fatal(err)
	}
	edit(&m)
	cfg, err := bundle.EncodeManifest(&m)
	if err != nil {
		t.Fatal(err)
	}
	replaceDesc := func(data []byte, old, new desc) []byte {
		o := fmt.Sprintf(`"digest":%q,"size":%d`, old.Digest, old.Size)
		if bytes.Count(data, []byte(o)) != 1 {
			t.Fatalf("descriptor %s not found once in %s", o, data)
		}
		return bytes.Replace(data, []byte(o), fmt.Appendf(nil, `"digest":%q,"size":%d`, new.Digest, new.Size), 1)
	}
	newCfg := desc{bundle.Digest(cfg), int64(len(cfg))}
	man := replaceDesc(byName[blob(md.Digest)], om.Config, newCfg)
	newMD := desc{bundle.Digest(man), int64(len(man))}
	index := replaceDesc(byName["index.json"], md, newMD)

	out := filepath.Join(filepath.Dir(p), name)
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tw := tar.NewWriter(w)
	for _, e := range entries {
		name, data := e.hdr.Name, e.data
		switch name {
		case "index.json":
			data = index
		case blob(md.Digest):
			name, data = blob(newMD.Digest), man
		case blob(om.Config.Digest):
			name, data = blob(newCfg.Digest), cfg
		}
		h := &tar.Header{Typeflag: e.hdr.Typeflag, Name: name, Size: int64(len(data)), Mode: e.hdr.Mode, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// item returns a pointer to the item of m at file.
func item(t *testing.T, m *bundle.Manifest, file string) *bundle.Item {
	for i := range m.Items {
		if m.Items[i].File == file {
			return &m.Items[i]
		}
	}
	t.Fatalf("no item %s", file)
	return nil
}

func TestGoodBundle(t *testing.T) {
	fx := newFixture(t)
	p := fx.pack(t, "good.ferry", packOptions{})
	rep := passes(t, p, Options{SumDBKey: fx.srv.SumDBKey, Jobs: 2})
	if rep.Proved != 3 || !rep.Recomputed || rep.Signer != "" {
		t.Errorf("report: %d proved (want 3: hello, Upper, the toolchain), recomputed %v, signer %q", rep.Proved, rep.Recomputed, rep.Signer)
	}
	// The key recorded in the bundle is trusted only when asked to.
	refused(t, p, Options{}, "no trusted verifier key for checksum database "+fx.srv.SumDBName)
	passes(t, p, Options{TrustBundleKey: true})
	// A key for another database of the same name proves nothing.
	refused(t, p, Options{SumDBKey: modtest.NewServer(t).SumDBKey}, "verifying tree head")
}

// TestRelabelledItemRefused covers issue 12 item 2: an item whose kind,
// module, version or platform disagrees with its file (so that verify
// would skip the checks its file needs, while install and serve place it by
// its file) is refused, whatever verify would make of it.
func TestRelabelledItemRefused(t *testing.T) {
	fx := newFixture(t)
	good := fx.pack(t, "good.ferry", packOptions{})
	// evil is carried but not proved: the bundle is refused as it is.
	withEvil := fx.pack(t, "evil.ferry", packOptions{unproved: []modtest.Module{evil}})
	opt := Options{SumDBKey: fx.srv.SumDBKey}
	refused(t, withEvil, opt, "example.com/evil@v1.0.0: snapshot has no lookup/example.com/evil@v1.0.0")
	for _, c := range []struct {
		name, base string
		edit       func(t *testing.T, m *bundle.Manifest)
		want       string
	}{
		{"module zip as info", good, func(t *testing.T, m *bundle.Manifest) { item(t, m, helloZip).Kind = bundle.KindInfo }, `kind "info", but a .zip file`},
		{"go.mod as info", good, func(t *testing.T, m *bundle.Manifest) { item(t, m, helloMod).Kind = bundle.KindInfo }, `kind "info", but a .mod file`},
		{"toolchain as info", good, func(t *testing.T, m *bundle.Manifest) { item(t, m, tcZip).Kind = bundle.KindInfo }, `kind "info", but a .zip file`},
		{"module zip as sumdb", good, func(t *testing.T, m *bundle.Manifest) { item(t, m, helloZip).Kind = bundle.KindSumDB }, `kind "sumdb", but a .zip file`},
		{"module zip as image", good, func(t *testing.T, m *bundle.Manifest) { item(t, m, helloZip).Kind = bundle.KindImage }, `kind "image", but a .zip file`},
		{"module zip as oci", good, func(t *testing.T, m *bundle.Manifest) { item(t, m, helloZip).Kind = bundle.KindOCI }, `kind "oci", but a .zip file`},
		{"toolchain for another platform", good, func(t *testing.T, m *bundle.Manifest) { item(t, m, tcZip).Platform = "windows/amd64" }, `platform "windows/amd64", but toolchain`},
		// evil's files claim to be hello's (with evil's own, correct, h1:
		// hashes): verify would look up hello, whose later items carry the
		// proved hashes, and never prove evil's files.
		{"unproved module as a proved one", withEvil, func(t *testing.T, m *bundle.Manifest) {
			for i := range m.Items {
				if m.Items[i].Module == evil.Path {
					m.Items[i].Module = hello.Path
				}
			}
		}, "module example.com/hello version v1.0.0 is at example.com/hello/@v/v1.0.0."},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := rewriteManifest(t, c.base, strings.ReplaceAll(c.name, " ", "-")+".ferry", func(m *bundle.Manifest) { c.edit(t, m) })
			refused(t, p, opt, c.want)
		})
	}
}

// TestPathsRefused covers issue 12 item 6: paths and names install refuses
// are refused by Open, so verify, import and serve never see them.
func TestPathsRefused(t *testing.T) {
	fx := newFixture(t)
	good := fx.pack(t, "good.ferry", packOptions{})
	opt := Options{SumDBKey: fx.srv.SumDBKey}
	for _, c := range []struct {
		name string
		edit func(t *testing.T, m *bundle.Manifest)
		want string
	}{
		{"dot-dot", func(t *testing.T, m *bundle.Manifest) {
			it := item(t, m, helloMod)
			it.File, it.Module = "example.com/../@v/v1.0.0.mod", "example.com/.."
		}, `".." path element`},
		{"absolute", func(t *testing.T, m *bundle.Manifest) { item(t, m, helloMod).File = "/example.com/hello/@v/v1.0.0.mod" }, "absolute path"},
		{"backslash", func(t *testing.T, m *bundle.Manifest) { item(t, m, helloMod).File = `example.com\hello/@v/v1.0.0.mod` }, "backslash"},
		{"ferry metadata", func(t *testing.T, m *bundle.Manifest) {
			it := item(t, m, helloMod)
			it.File, it.Kind, it.Module, it.Version, it.Hash = ".blobs/sha256/"+strings.Repeat("0", 64), bundle.KindInfo, "", "", ""
		}, "ferry's own metadata"},
		{"toolchain name", func(t *testing.T, m *bundle.Manifest) { m.Toolchains = []string{"../../../bin"} }, "not a Go release name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := rewriteManifest(t, good, c.name+".ferry", func(m *bundle.Manifest) { c.edit(t, m) })
			refused(t, p, opt, c.want)
		})
	}
}

func TestFlippedByteRefused(t *testing.T) {
	fx := newFixture(t)
	p := fx.pack(t, "good.ferry", packOptions{})
	r, err := bundle.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	d := item(t, r.Manifest(), helloZip).Digest
	var off int64 = -1
	for _, b := range r.Blobs() {
		if b.Digest == d {
			off = b.Offset + b.Size/2
		}
	}
	r.Close()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x01
	bad := filepath.Join(fx.dir, "flipped.ferry")
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	refused(t, bad, Options{SumDBKey: fx.srv.SumDBKey}, helloZip+": "+bad+": blob "+d+": digest mismatch")
}

func TestWrongH1Refused(t *testing.T) {
	fx := newFixture(t)
	good := fx.pack(t, "good.ferry", packOptions{})
	upperZip, _, _ := fx.srv.Hashes(upper.Path, upper.Version)
	p := rewriteManifest(t, good, "wrong-h1.ferry", func(m *bundle.Manifest) { item(t, m, helloZip).Hash = upperZip })
	helloH1, _, _ := fx.srv.Hashes(hello.Path, hello.Version)
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey}, helloZip+": content hash "+helloH1+", manifest says "+upperZip)
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey}, "checksum mismatch for example.com/hello@v1.0.0")
}

func TestUnprovedModuleRefused(t *testing.T) {
	fx := newFixture(t)
	p := fx.pack(t, "unproved.ferry", packOptions{unproved: []modtest.Module{world}})
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey}, "example.com/private/world@v1.2.3: snapshot has no lookup/example.com/private/world@v1.2.3")
}

func TestNoSumDB(t *testing.T) {
	fx := newFixture(t)
	p := fx.pack(t, "private.ferry", packOptions{private: []modtest.Module{world}})
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey},
		worldZip+`: marked as outside the checksum database, but GONOSUMDB/GOPRIVATE here ("") does not cover example.com/private/world`)
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey, NoSumDB: "example.com/other,example.com/privat"}, "does not cover example.com/private/world")
	rep := passes(t, p, Options{SumDBKey: fx.srv.SumDBKey, NoSumDB: "example.com/other,example.com/private"})
	if rep.Proved != 3 {
		t.Errorf("%d proved, want 3 (the private module is not)", rep.Proved)
	}
	// Its hashes are still recomputed: a private zip that is not the one
	// its h1: names is refused.
	worldH1, _, _ := fx.srv.Hashes(world.Path, world.Version)
	bad := rewriteManifest(t, p, "private-wrong-h1.ferry", func(m *bundle.Manifest) {
		item(t, m, worldZip).Hash = "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	})
	refused(t, bad, Options{SumDBKey: fx.srv.SumDBKey, NoSumDB: "example.com/private"}, worldZip+": content hash "+worldH1)
}

func TestSignature(t *testing.T) {
	fx := newFixture(t)
	sA, vA := signer(t, "release")
	_, vB := signer(t, "attacker")
	signed := fx.pack(t, "signed.ferry", packOptions{signer: sA})
	unsigned := fx.pack(t, "unsigned.ferry", packOptions{})
	opt := Options{SumDBKey: fx.srv.SumDBKey}

	rep := passes(t, signed, Options{SumDBKey: fx.srv.SumDBKey, Signers: vA})
	if rep.Signer != "release" || rep.Recomputed {
		t.Errorf("signed by a trusted key: signer %q, recomputed %v; want release, false", rep.Signer, rep.Recomputed)
	}
	// Without keys the signature is ignored and everything is recomputed.
	if rep := passes(t, signed, opt); rep.Signer != "" || !rep.Recomputed {
		t.Errorf("no keys given: signer %q, recomputed %v; want none, true", rep.Signer, rep.Recomputed)
	}

	opt.Signers = vA
	refused(t, unsigned, opt, bundle.ErrNotSigned.Error())
	opt.Signers = vB
	refused(t, signed, opt, bundle.ErrBadSignature.Error())
	rep, err := check(t, signed, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Signer != "" || !rep.Recomputed {
		t.Errorf("signed by an untrusted key: signer %q, recomputed %v; want none, true", rep.Signer, rep.Recomputed)
	}
	// A signature that signs another manifest does not vouch for this one.
	opt.Signers = vA
	relabelled := rewriteManifest(t, signed, "resigned.ferry", func(m *bundle.Manifest) { m.Version = "2" })
	refused(t, relabelled, opt, "does not name this bundle's manifest")
}

// TestSignedSkipsRecomputationOnlyWhenTrusted carries a zip that is not the
// one its (proved) h1: hash names: only a signature by a trusted key may
// vouch for it without recomputation, and Deep recomputes anyway.
func TestSignedSkipsRecomputationOnlyWhenTrusted(t *testing.T) {
	fx := newFixture(t)
	sA, vA := signer(t, "release")
	_, vB := signer(t, "attacker")
	other := fx.get(t, worldZip)
	p := fx.pack(t, "swapped.ferry", packOptions{signer: sA, replace: map[string][]byte{helloZip: other}})
	worldH1, _, _ := fx.srv.Hashes(world.Path, world.Version)
	mismatch := helloZip + ": content hash " + worldH1

	rep := passes(t, p, Options{SumDBKey: fx.srv.SumDBKey, Signers: vA})
	if rep.Recomputed {
		t.Error("trusted signature: recomputed, want skipped")
	}
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey, Signers: vA, Deep: true}, mismatch)
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey}, mismatch)
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey, Signers: vB}, mismatch)
	refused(t, p, Options{SumDBKey: fx.srv.SumDBKey, Signers: vB}, bundle.ErrBadSignature.Error())
}

func TestReportListsEveryProblem(t *testing.T) {
	fx := newFixture(t)
	good := fx.pack(t, "good.ferry", packOptions{private: []modtest.Module{world}})
	upperZip, _, _ := fx.srv.Hashes(upper.Path, upper.Version)
	p := rewriteManifest(t, good, "two.ferry", func(m *bundle.Manifest) { item(t, m, helloZip).Hash = upperZip })
	rep, err := check(t, p, Options{SumDBKey: fx.srv.SumDBKey})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, pr := range rep.Problems {
		files[pr.File] = true
		if strings.Contains(pr.String(), "\n") {
			t.Errorf("problem has several lines: %q", pr)
		}
	}
	if !files[helloZip] || !files[worldZip] {
		t.Errorf("problems %v: want one for %s and one for %s", rep.Problems, helloZip, worldZip)
	}
	if err := rep.Err(); err == nil || !strings.HasPrefix(err.Error(), p+": ") {
		t.Errorf("Err() = %v; want it to start with the bundle's path", err)
	}
}

func TestCanceled(t *testing.T) {
	fx := newFixture(t)
	p := fx.pack(t, "good.ferry", packOptions{})
	r, err := bundle.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Bundle(ctx, r, Options{SumDBKey: fx.srv.SumDBKey}); !errors.Is(err, context.Canceled) {
		t.Errorf("Bundle with a canceled context: %v, want context.Canceled", err)
	}
}

// uncheckedSource is a bundle whose manifest was edited after Open checked
// it: a Source that does not validate its manifest, as a future store might.
type uncheckedSource struct {
	*bundle.Reader
	m *bundle.Manifest
}

func (s uncheckedSource) Manifest() *bundle.Manifest { return s.m }

// TestSourceManifestChecked: verify validates the manifest of any Source
// itself, so a module zip relabelled as an info item is refused even where
// nothing checked the manifest before.
func TestSourceManifestChecked(t *testing.T) {
	fx := newFixture(t)
	r, err := bundle.Open(fx.pack(t, "good.ferry", packOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := *r.Manifest()
	m.Items = append([]bundle.Item(nil), m.Items...)
	item(t, &m, helloZip).Kind = bundle.KindInfo
	_, err = Bundle(context.Background(), uncheckedSource{r, &m}, Options{SumDBKey: fx.srv.SumDBKey})
	if want := `item "` + helloZip + `": kind "info", but a .zip file is a "zip" item`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Bundle: %v, want an error containing %q", err, want)
	}
}
