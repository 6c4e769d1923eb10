package sign

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func newKeys(t *testing.T, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
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
	return s, v
}

func TestSignVerifyFile(t *testing.T) {
	s, v := newKeys(t, "release")
	_, otherV := newKeys(t, "other")
	// A second key with the same name: its signature is by "release" but bad.
	impostorS, _ := newKeys(t, "release")
	sums := []byte("1f2e  ferry-linux-amd64\n3c4d  ferry-windows-amd64.exe\n")

	sig, err := SignFile(s, bytes.NewReader(sums))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(sig), fileTextPrefix) {
		t.Fatalf("signature does not start with %q:\n%s", fileTextPrefix, sig)
	}
	if err := VerifyFile(v, bytes.NewReader(sums), sig); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}

	impostorSig, err := SignFile(impostorS, bytes.NewReader(sums))
	if err != nil {
		t.Fatal(err)
	}
	bundleSig, err := note.Sign(&note.Note{Text: "ferry bundle manifest sha256:" + strings.Repeat("0", 64) + "\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	altered := append([]byte(nil), sums...)
	altered[0] = '9'
	for _, c := range []struct {
		name    string
		v       note.Verifier
		content []byte
		sig     []byte
		want    string
	}{
		{"altered file", v, altered, sig, "signature is for another file"},
		{"other key", otherV, sums, sig, "not signed by key other (signed by: release)"},
		{"same name, other key", v, sums, impostorSig, "not signed by key release"},
		{"bundle signature", v, sums, bundleSig, "not a ferry file signature"},
		{"truncated", v, sums, sig[:len(sig)-10], "not a ferry file signature"},
		{"altered signature text", v, sums, bytes.Replace(sig, []byte("sha256:"), []byte("sha256:0"), 1), "bad signature by key release"},
		{"empty", v, sums, nil, "not a ferry file signature"},
	} {
		err := VerifyFile(c.v, bytes.NewReader(c.content), c.sig)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: VerifyFile = %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
