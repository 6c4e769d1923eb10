package sign

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUserKeyCreatedOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ferry")
	path, vkey, created, err := UserKey(dir)
	if err != nil || !created {
		t.Fatalf("first UserKey: created=%v, %v", created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key %s: %v, %v", path, fi.Mode(), err)
	}
	if strings.ContainsAny(KeyName(vkey), " +/") || KeyName(vkey) == "" {
		t.Errorf("key name %q", KeyName(vkey))
	}
	path2, vkey2, created2, err := UserKey(dir)
	if err != nil || created2 || path2 != path || vkey2 != vkey {
		t.Errorf("second UserKey: %s %s created=%v %v", path2, vkey2, created2, err)
	}
	if pub, err := VerifierKey(filepath.Join(dir, "signing.pub")); err != nil || pub != vkey {
		t.Errorf("signing.pub = %q, %v", pub, err)
	}
}

func TestFingerprint(t *testing.T) {
	_, vkey, _, err := UserKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Fingerprint(vkey)
	if err != nil || !strings.HasPrefix(fp, "SHA256:") || len(fp) != len("SHA256:")+43 {
		t.Errorf("Fingerprint = %q, %v", fp, err)
	}
	if fp2, _ := Fingerprint(vkey); fp2 != fp {
		t.Error("Fingerprint is not stable")
	}
	_, other, _, _ := UserKey(t.TempDir())
	if fp3, _ := Fingerprint(other); fp3 == fp {
		t.Error("two keys have one fingerprint")
	}
	if _, err := Fingerprint("not a key"); err == nil {
		t.Error("Fingerprint of garbage")
	}
}

func TestTrustedKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cfg", "trusted_keys")
	if keys, err := ReadTrusted(file); err != nil || len(keys) != 0 {
		t.Fatalf("missing file: %v, %v", keys, err)
	}
	_, k1, _, _ := UserKey(t.TempDir())
	_, k2, _, _ := UserKey(t.TempDir())
	for _, k := range []string{k1, k2, k1} {
		if err := AddTrusted(file, k, "a comment\nwith a newline"); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := ReadTrusted(file)
	if err != nil || len(keys) != 2 || keys[0] != k1 || keys[1] != k2 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	if _, err := Verifiers(keys); err != nil {
		t.Fatal(err)
	}
	if err := AddTrusted(file, "garbage", ""); err == nil {
		t.Error("AddTrusted accepted garbage")
	}
	os.WriteFile(file, []byte("# mine\n"+k1+" ok\nnot-a-key\n"), 0o644)
	if _, err := ReadTrusted(file); err == nil || !strings.Contains(err.Error(), ":3:") {
		t.Errorf("bad line: %v", err)
	}
}

// TestFingerprintPlusInKeyData: the key data of a verifier key is standard
// base64 and may hold '+' (the fingerprint once split the line at the last
// '+', and failed on such keys about one time in three).
func TestFingerprintPlusInKeyData(t *testing.T) {
	for i := 0; i < 200; i++ {
		_, vkey, err := newKey("a@b")
		if err != nil {
			t.Fatal(err)
		}
		if parts := strings.SplitN(vkey, "+", 3); !strings.Contains(parts[2], "+") {
			continue
		}
		if fp, err := Fingerprint(vkey); err != nil || !strings.HasPrefix(fp, "SHA256:") {
			t.Fatalf("Fingerprint(%q) = %q, %v", vkey, fp, err)
		}
		return
	}
	t.Fatal("no key with '+' in its key data in 200 tries")
}
