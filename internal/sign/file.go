package sign

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// File signatures let a team sign any file, such as the SHA256SUMS of
// ferry's own release binaries, with the key that signs its bundles. A file
// signature is a detached signed note whose text names the file's SHA-256:
//
//	ferry file sha256:<64 hex digits>
//
//	— <key name> <signature>
//
// The text's prefix differs from a bundle's signed text ("ferry bundle
// manifest ..."), so neither kind of signature can stand for the other.
const fileTextPrefix = "ferry file sha256:"

// maxFileSig bounds the signature file read: a note with a few signatures is
// well under a kilobyte.
const maxFileSig = 64 << 10

// fileText returns the note text for the content of r.
func fileText(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return fileTextPrefix + hex.EncodeToString(h.Sum(nil)) + "\n", nil
}

// SignFile returns a detached signature of the content of r, signed by s.
func SignFile(s note.Signer, r io.Reader) ([]byte, error) {
	text, err := fileText(r)
	if err != nil {
		return nil, fmt.Errorf("signing: reading the file: %w", err)
	}
	sig, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return sig, nil
}

// VerifyFile checks that sig, as written by SignFile, is a valid signature by
// v of the content of r. The error says which check failed: not a file
// signature, not signed by v's key, a bad signature, or another file's.
func VerifyFile(v note.Verifier, r io.Reader, sig []byte) error {
	if len(sig) > maxFileSig {
		return errors.New("not a ferry file signature (too large)")
	}
	n, err := note.Open(sig, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			var names []string
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, s.Name)
			}
			return fmt.Errorf("not signed by key %s (signed by: %s)", v.Name(), strings.Join(names, ", "))
		}
		var invalid *note.InvalidSignatureError
		if errors.As(err, &invalid) {
			return fmt.Errorf("bad signature by key %s: the signature file was altered or made with another key of that name", v.Name())
		}
		return fmt.Errorf("not a ferry file signature: %v", err)
	}
	if !strings.HasPrefix(n.Text, fileTextPrefix) {
		return errors.New("not a ferry file signature (the signed text names no file digest)")
	}
	want, err := fileText(r)
	if err != nil {
		return fmt.Errorf("reading the file: %w", err)
	}
	if n.Text != want {
		return fmt.Errorf("the signature is for another file (%s); this file is %s",
			strings.TrimSpace(strings.TrimPrefix(n.Text, "ferry file ")), strings.TrimSpace(strings.TrimPrefix(want, "ferry file ")))
	}
	return nil
}
