package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackSplit: pack --split writes an index and parts; verify, install,
// import and ls take the index or the first part; a missing part, a part with
// a flipped byte and parts swapped are each named, and nothing is installed
// or imported.
func TestPackSplit(t *testing.T) {
	ferry := ferryBin(t)
	fx := newFixture(t)
	work := t.TempDir()
	b := filepath.Join(work, "app.ferry")
	out := mustRun(t, fx.project, fx.env, ferry, "pack", ".", "-o", b, "--toolchain", "go1.99.1", "--split", "8K", "--cache", filepath.Join(work, "cache"))
	if !strings.Contains(out, "app.ferry is now their index") {
		t.Errorf("pack output:\n%s", out)
	}
	env := append(fx.env, "GOENV="+filepath.Join(work, "env"))
	for i, g := range []string{b, b + ".001"} {
		mustRun(t, work, env, ferry, "verify", g)
		mustRun(t, work, env, ferry, "ls", g)
		mustRun(t, work, env, ferry, "install", g, "--prefix", filepath.Join(work, "p", strings.Repeat("x", i+1)))
		mustRun(t, work, env, ferry, "import", g, "--store", filepath.Join(work, "store", strings.Repeat("x", i+1)))
	}
	if _, err := os.Stat(b + ".005"); err != nil {
		t.Fatalf("want at least 5 parts: %v", err)
	}
	os.Remove(b + ".003")
	d, err := os.ReadFile(b + ".002")
	if err != nil {
		t.Fatal(err)
	}
	d[len(d)/2] ^= 1
	os.WriteFile(b+".002", d, 0o644)
	for _, r := range [][2]string{{b + ".004", b + ".x"}, {b + ".005", b + ".004"}, {b + ".x", b + ".005"}} {
		if err := os.Rename(r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"part app.ferry.002: sha256 mismatch",
		"part app.ferry.003 is missing",
		"part app.ferry.004 holds the content of part app.ferry.005",
		"part app.ferry.005 holds the content of part app.ferry.004",
	}
	prefix, store := filepath.Join(work, "refused-p"), filepath.Join(work, "refused-store")
	for _, args := range [][]string{
		{"verify", b}, {"verify", b + ".001"},
		{"install", b + ".001", "--prefix", prefix},
		{"import", b, "--store", store},
	} {
		out, err := run(t, work, env, ferry, args...)
		if err == nil {
			t.Errorf("%s accepted a broken split bundle:\n%s", strings.Join(args, " "), out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output does not name %q:\n%s", strings.Join(args, " "), w, out)
			}
		}
	}
	if e, _ := os.ReadDir(prefix); len(e) > 0 {
		t.Errorf("a refused install wrote into %s", prefix)
	}
	if e, _ := os.ReadDir(filepath.Join(store, "bundles")); len(e) > 0 {
		t.Errorf("a refused import wrote into %s", store)
	}
}
