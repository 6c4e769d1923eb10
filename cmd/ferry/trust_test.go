package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
)

// TestTrustProblemBeforeHashing: on a host with no go command, an unsigned
// bundle has no checksum database key to be checked with. That is found
// before any blob is hashed (a damaged blob goes unmentioned), and the
// message says which fixes apply here.
func TestTrustProblemBeforeHashing(t *testing.T) {
	dir := t.TempDir()
	path := testbundle.Write(t, dir, "app.ferry", map[string][]byte{
		"example.com/a/@v/v1.0.0.mod":        []byte("module example.com/a\n"),
		"example.com/a/@v/v1.0.0.info":       []byte(`{"Version":"v1.0.0"}`),
		"sumdb/" + testbundle.DB + "/latest": testbundle.Head(t, 1),
	})
	r, err := bundle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var off int64
	for _, it := range r.Manifest().Items {
		if strings.HasSuffix(it.File, ".mod") {
			sr, _ := r.Open(it.Digest)
			_, off, _ = sr.Outer()
		}
	}
	r.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("M"), off)
	f.Close()

	cmd := exec.Command(ferryBin(t), "verify", path)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("verify of an unsigned bundle with no checksum database key succeeded:\n%s", out)
	}
	msg := string(out)
	for _, want := range []string{"unsigned", "no go command", "--sumdb-key", "signs by default"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "digest") || strings.Contains(msg, "v1.0.0.mod") {
		t.Errorf("the bundle was hashed before the trust problem was reported:\n%s", msg)
	}
}

// TestWrongKeyBeforeHashing: --key naming a key that did not sign the
// bundle is refused before any hashing.
func TestWrongKeyBeforeHashing(t *testing.T) {
	dir := t.TempDir()
	path := testbundle.Write(t, dir, "app.ferry", map[string][]byte{
		"example.com/a/@v/v1.0.0.info": []byte(`{"Version":"v1.0.0"}`),
	})
	ferry := ferryBin(t)
	if out, err := exec.Command(ferry, "key", "generate", "other", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cmd := exec.Command(ferry, "verify", path, "--key", filepath.Join(dir, "other.pub"))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not signed") {
		t.Fatalf("verify --key of an unsigned bundle: %v\n%s", err, out)
	}
}
