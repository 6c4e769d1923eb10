package sign

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// The user's own key and the keys the user trusts live in the user's config
// directory (os.UserConfigDir()/ferry), as OpenSSH keeps ~/.ssh:
//
//   - signing.key / signing.pub: the key ferry pack signs with unless told
//     otherwise, created on first use (UserKey);
//   - trusted_keys: one verifier key line per trusted signer, with '#'
//     comments, as known_hosts holds host keys. A key is added only by the
//     user: a confirmed prompt, or 'ferry key trust'. The user's own signing
//     key is trusted without being listed.
const (
	userKeyName     = "signing"
	trustedKeysName = "trusted_keys"
)

// ConfigDir returns the directory of the user's ferry keys.
func ConfigDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the user's config directory for ferry keys: %w", err)
	}
	return filepath.Join(d, "ferry"), nil
}

// UserPublicKey returns the path of the user's public signing key in dir
// (it may not exist yet).
func UserPublicKey(dir string) string { return filepath.Join(dir, userKeyName+".pub") }

// TrustedKeysFile returns the default trusted keys file in dir.
func TrustedKeysFile(dir string) string { return filepath.Join(dir, trustedKeysName) }

// UserKey returns the user's signing key in dir (its private key file and
// verifier key), creating it first if there is none. The key's name is
// "user@host", so that the far side sees whose it is.
func UserKey(dir string) (keyPath, vkey string, created bool, err error) {
	keyPath = filepath.Join(dir, userKeyName+".key")
	if _, err := os.Stat(keyPath); err == nil {
		vkey, err := VerifierKey(keyPath)
		return keyPath, vkey, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, fmt.Errorf("creating %s for the signing key: %w", dir, err)
	}
	skey, vkey, err := newKey(keyName())
	if err != nil {
		return "", "", false, err
	}
	if err := writeNew(keyPath, skey+"\n", 0o600); err != nil {
		return "", "", false, fmt.Errorf("creating the signing key: %w", err)
	}
	pub := UserPublicKey(dir)
	os.Remove(pub) // a stale public key of a removed private key
	if err := writeNew(pub, vkey+"\n", 0o644); err != nil {
		os.Remove(keyPath)
		return "", "", false, fmt.Errorf("creating the signing key: %w", err)
	}
	return keyPath, vkey, true, nil
}

// keyName is "user@host" with what a note key name cannot hold replaced.
func keyName() string {
	name := "ferry"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return strings.Map(func(r rune) rune {
		if r == '+' || r == '/' || r == '\\' || r <= ' ' || r == 0x7f {
			return '-'
		}
		return r
	}, name)
}

// Fingerprint returns the fingerprint people compare for a verifier key:
// "SHA256:" and the unpadded base64 of the SHA-256 of its public key, as
// OpenSSH shows host keys.
func Fingerprint(vkey string) (string, error) {
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", fmt.Errorf("not a verifier key: %v", err)
	}
	// NAME+HASH+KEYDATA; KEYDATA (standard base64) may hold '+' itself.
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return "", errors.New("not a verifier key")
	}
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("not a verifier key: %v", err)
	}
	sum := sha256.Sum256(key)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), nil
}

// KeyName returns the name part of a verifier key line.
func KeyName(vkey string) string {
	name, _, _ := strings.Cut(vkey, "+")
	return name
}

// ReadTrusted reads a trusted keys file: the verifier key lines it holds
// (a missing file holds none). A line that is not a verifier key is an
// error naming the file and line.
func ReadTrusted(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading trusted keys: %w", err)
	}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, " ")
		if _, err := note.NewVerifier(k); err != nil {
			return nil, fmt.Errorf("trusted keys %s:%d: not a verifier key (%v): fix or remove that line", path, n, err)
		}
		keys = append(keys, k)
	}
	return keys, sc.Err()
}

// AddTrusted adds vkey to the trusted keys file at path (creating it),
// with a comment, unless it is there already. The file is replaced by
// rename, so a reader sees the old or the new list.
func AddTrusted(path, vkey, comment string) error {
	if _, err := note.NewVerifier(vkey); err != nil {
		return fmt.Errorf("trusting key: not a verifier key: %v", err)
	}
	keys, err := ReadTrusted(path)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k == vkey {
			return nil
		}
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading trusted keys: %w", err)
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	line := vkey
	if comment = strings.Join(strings.Fields(comment), " "); comment != "" {
		line += " " + comment
	}
	data := append(old, line+"\n"...)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("trusting key: %w", err)
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := writeNew(tmp, string(data), 0o644); err != nil {
		return fmt.Errorf("trusting key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("trusting key: %w", err)
	}
	return nil
}

// Verifiers makes verifiers of verifier key lines.
func Verifiers(vkeys []string) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("not a verifier key %q: %v", k, err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

func newKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generating key %q: %w", name, err)
	}
	return skey, vkey, nil
}
