package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/install"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
)

// TestInstallLocksBeforeVerifying: ferry install takes the prefix lock
// before it verifies the bundle, so a bundle changed while the install
// waits for another one is verified as it is when the install runs, and
// refused by verification; never installed from bytes checked earlier.
func TestInstallLocksBeforeVerifying(t *testing.T) {
	dir := t.TempDir()
	path := testbundle.Write(t, dir, "app.ferry", map[string][]byte{
		"example.com/a/@v/v1.0.0.info": []byte(`{"Version":"v1.0.0"}`),
	})
	prefix := filepath.Join(dir, "prefix")

	// Another install holds the prefix.
	p, err := install.Lock(context.Background(), prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	cmd := exec.Command(ferryBin(t), "install", path, "--prefix", prefix, "--goenv", "-", "-v")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), "waiting for another") {
			break
		}
	}

	// While it waits, the bundle's one blob changes in place.
	r, err := bundle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	it := r.Manifest().Items[0]
	sr, err := r.Open(it.Digest)
	if err != nil {
		t.Fatal(err)
	}
	_, off, _ := sr.Outer()
	r.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p.Close()

	done := make(chan error, 1)
	go func() {
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		done <- cmd.Wait()
	}()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("ferry install did not finish")
	}
	out := strings.Join(lines, "\n")
	if err == nil {
		t.Fatalf("ferry install of a bundle changed while it waited succeeded:\n%s", out)
	}
	if !strings.Contains(out, "not installing") || !strings.Contains(out, it.File) {
		t.Errorf("the change was not caught by verification:\n%s", out)
	}
	if st, err := install.ReadState(prefix); err != nil || len(st.Bundles) != 0 {
		t.Errorf("state after the refused install: %+v, %v", st, err)
	}
}
