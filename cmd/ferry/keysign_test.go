package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runRootErr runs ferry's root command in process and returns its standard
// output and error.
func runRootErr(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr}
	root := a.rootCmd()
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	err := root.Execute()
	return stdout.String(), err
}

// 'ferry key sign' and 'ferry key verify' sign a release's SHA256SUMS with a
// bundle key and check it, refusing an altered file or another key.
func TestKeySignVerify(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"release", "other"} {
		if out, err := runRootErr("key", "generate", name, "--dir", dir); err != nil {
			t.Fatalf("key generate %s: %v\n%s", name, err, out)
		}
	}
	sums := filepath.Join(dir, "SHA256SUMS")
	if err := os.WriteFile(sums, []byte("0123  ferry-linux-amd64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	key, pub, otherPub := filepath.Join(dir, "release.key"), filepath.Join(dir, "release.pub"), filepath.Join(dir, "other.pub")

	if out, err := runRootErr("key", "sign", sums, "--key", key); err != nil {
		t.Fatalf("key sign: %v\n%s", err, out)
	}
	if _, err := os.Stat(sums + ".sig"); err != nil {
		t.Fatalf("key sign wrote no FILE.sig: %v", err)
	}
	out, err := runRootErr("key", "verify", sums, "--key", pub)
	if err != nil || !strings.Contains(out, "good signature by key release") {
		t.Fatalf("key verify of a good signature: %v\n%s", err, out)
	}
	if _, err := runRootErr("key", "verify", sums, "--key", otherPub); err == nil || !strings.Contains(err.Error(), "not signed by key other") {
		t.Errorf("key verify with another key: %v, want 'not signed by key other'", err)
	}
	if _, err := runRootErr("key", "verify", sums, "--key", sums+".sig"); err == nil {
		t.Errorf("key verify accepted the signature file as the key")
	}
	if err := os.WriteFile(sums, []byte("4567  ferry-linux-amd64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runRootErr("key", "verify", sums, "--key", pub); err == nil || !strings.Contains(err.Error(), "another file") {
		t.Errorf("key verify of an altered file: %v, want 'another file'", err)
	}
	if _, err := runRootErr("key", "sign", sums); err == nil || !strings.Contains(err.Error(), "--key is required") {
		t.Errorf("key sign without --key: %v", err)
	}
}
