// Package sign creates and loads the ed25519 keys that sign ferry bundles.
//
// Keys use the golang.org/x/mod/sumdb/note formats, the same ones the Go
// checksum database uses:
//
//   - a private key file (NAME.key, mode 0600) holds one line
//     "PRIVATE+KEY+<name>+<hash>+<keydata>";
//   - a public key file (NAME.pub) holds one verifier key line
//     "<name>+<hash>+<keydata>".
//
// Invariants: GenerateKey never overwrites an existing file and never leaves
// a private key without its public key; the private key is written with mode
// 0600 and is never included in an error message. LoadVerifier accepts either
// file, deriving the public key from a private one, so a packer can check its
// own bundles with the key it signed them with.
package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

const privatePrefix = "PRIVATE+KEY+"

// GenerateKey creates an ed25519 note key pair named name. It writes the
// private key to dir/name.key (mode 0600) and the verifier key to dir/name.pub
// (mode 0644), each as one line, and returns both paths. It refuses to
// overwrite existing files. name must be a valid note key name (no spaces,
// no '+') that is also a plain file name (no path separators).
func GenerateKey(dir, name string) (keyPath, pubPath string, err error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", "", fmt.Errorf("generating key %q: name must be a plain file name", name)
	}
	if !utf8.ValidString(name) || strings.ContainsRune(name, '+') || strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return "", "", fmt.Errorf("generating key %q: a note key name must not contain spaces or '+'", name)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generating key %q: %w", name, err)
	}
	keyPath = filepath.Join(dir, name+".key")
	pubPath = filepath.Join(dir, name+".pub")
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("generating key %q: %s already exists, not overwriting", name, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("generating key %q: %w", name, err)
		}
	}
	if err := writeNew(keyPath, skey+"\n", 0o600); err != nil {
		return "", "", fmt.Errorf("generating key %q: %w", name, err)
	}
	if err := writeNew(pubPath, vkey+"\n", 0o644); err != nil {
		os.Remove(keyPath) // we created it just above
		return "", "", fmt.Errorf("generating key %q: %w", name, err)
	}
	return keyPath, pubPath, nil
}

// writeNew creates path (failing if it exists), writes data and syncs it.
func writeNew(path, data string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// readKey reads the single key line of a key file.
func readKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading key file: %w", err)
	}
	line := strings.TrimSpace(string(data))
	if line == "" || strings.ContainsAny(line, "\n\r") {
		return "", fmt.Errorf("key file %s: want exactly one key line", path)
	}
	return line, nil
}

// LoadSigner loads the private key in a .key file written by GenerateKey.
func LoadSigner(path string) (note.Signer, error) {
	skey, err := readKey(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(skey, privatePrefix) {
		return nil, fmt.Errorf("key file %s: not a note signer key (want a PRIVATE+KEY+... line)", path)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("key file %s: not a note signer key: %v", path, err)
	}
	return s, nil
}

// VerifierKey returns the verifier key line ("<name>+<hash>+<keydata>") of a
// .pub file, or derives it from the private key in a .key file.
func VerifierKey(path string) (string, error) {
	line, err := readKey(path)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, privatePrefix) {
		if _, err := note.NewVerifier(line); err != nil {
			return "", fmt.Errorf("key file %s: not a note verifier key: %v", path, err)
		}
		return line, nil
	}
	// Validate fully (including the key hash) before deriving.
	if _, err := note.NewSigner(line); err != nil {
		return "", fmt.Errorf("key file %s: not a note signer key: %v", path, err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(alg, seed)>
	fields := strings.SplitN(strings.TrimPrefix(line, privatePrefix), "+", 3)
	if len(fields) != 3 {
		return "", fmt.Errorf("key file %s: not a note signer key", path)
	}
	key, err := base64.StdEncoding.DecodeString(fields[2])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", fmt.Errorf("key file %s: not an ed25519 note signer key", path)
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(fields[0], pub)
	if err != nil {
		return "", fmt.Errorf("key file %s: deriving verifier key: %w", path, err)
	}
	return vkey, nil
}

// LoadVerifier accepts a .pub file (verifier key) or a .key file (the public
// key is derived from the private one).
func LoadVerifier(path string) (note.Verifier, error) {
	vkey, err := VerifierKey(path)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("key file %s: not a note verifier key: %v", path, err)
	}
	return v, nil
}
