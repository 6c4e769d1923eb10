package sign

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestGenerateLoadSignVerify(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, err := GenerateKey(dir, "ferry-test")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode = %v, want 0600", keyPath, fi.Mode().Perm())
	}
	if _, _, err := GenerateKey(dir, "ferry-test"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second GenerateKey: err = %v, want already exists", err)
	}

	s, err := LoadSigner(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pubPath, keyPath} {
		v, err := LoadVerifier(p)
		if err != nil {
			t.Fatalf("LoadVerifier(%s): %v", p, err)
		}
		if v.Name() != "ferry-test" || v.KeyHash() != s.KeyHash() {
			t.Errorf("LoadVerifier(%s) = %s/%08x, want ferry-test/%08x", p, v.Name(), v.KeyHash(), s.KeyHash())
		}
		n, err := note.Open(msg, note.VerifierList(v))
		if err != nil {
			t.Fatalf("verifying with %s: %v", p, err)
		}
		if n.Text != "hello\n" {
			t.Errorf("text = %q", n.Text)
		}
	}
	pubLine, _ := os.ReadFile(pubPath)
	derived, err := VerifierKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if derived != strings.TrimSpace(string(pubLine)) {
		t.Errorf("derived verifier key %q != %q", derived, pubLine)
	}

	// Another key must not verify.
	_, otherPub, err := GenerateKey(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	ov, err := LoadVerifier(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(ov)); err == nil {
		t.Error("note verified with the wrong key")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, err := GenerateKey(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pub")
	os.WriteFile(bad, []byte("not a key\n"), 0o644)

	if _, err := LoadVerifier(bad); err == nil || !strings.Contains(err.Error(), "key file "+bad+": not a note verifier key") {
		t.Errorf("LoadVerifier(bad) err = %v", err)
	}
	if _, err := LoadSigner(pubPath); err == nil || !strings.Contains(err.Error(), "not a note signer key") {
		t.Errorf("LoadSigner(pub) err = %v", err)
	}
	// A private key whose hash does not match must be refused by both.
	skey, _ := os.ReadFile(keyPath)
	f := strings.Split(strings.TrimSpace(string(skey)), "+")
	f[3] = "00000000"
	corrupt := filepath.Join(dir, "corrupt.key")
	os.WriteFile(corrupt, []byte(strings.Join(f, "+")+"\n"), 0o600)
	if _, err := LoadSigner(corrupt); err == nil {
		t.Error("LoadSigner accepted a key with a wrong hash")
	} else if strings.Contains(err.Error(), f[4]) {
		t.Errorf("error leaks the private key: %v", err)
	}
	if _, err := LoadVerifier(corrupt); err == nil {
		t.Error("LoadVerifier accepted a key with a wrong hash")
	}
	if _, err := LoadSigner(filepath.Join(dir, "missing.key")); err == nil {
		t.Error("LoadSigner of a missing file succeeded")
	}
	for _, name := range []string{"", "a/b", "..", "has space", "a+b"} {
		if _, _, err := GenerateKey(dir, name); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", name)
		}
	}
}
