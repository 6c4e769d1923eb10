// Package goenv reads and edits the go command's environment file, the file
// `go env -w` writes and `go env GOENV` names.
//
// The format is the go command's own (cmd/go/internal/cfg and envcmd): the
// file is a sequence of lines separated by '\n'; a line whose first byte is
// an upper-case ASCII letter and that contains '=' sets KEY (the bytes before
// the first '=') to VALUE (every byte after it, with no trimming or quoting);
// every other line is ignored. When a key appears more than once, the last
// line wins.
//
// Invariants:
//   - Read never changes anything and treats a missing file as empty.
//   - Set changes only the lines of the keys it is given: every other line,
//     comment and blank line is kept byte for byte, and a key that is not in
//     the file yet is appended at the end.
//   - Set replaces the file atomically (temporary file in the same directory,
//     fsync, rename) and does not write at all when no value changes.
//   - Set refuses values the go command would refuse in `go env -w`
//     (newlines, NUL, invalid UTF-8), so the file always stays readable.
package goenv

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"
)

// Read parses the go env file at path into a map from key to value.
// A missing file is not an error: it gives an empty map.
func Read(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading go env file: %w", err)
	}
	m := make(map[string]string)
	for _, line := range splitLines(data) {
		if key, val, ok := parseLine(line); ok {
			m[key] = val
		}
	}
	return m, nil
}

// Set changes the keys of kv in the go env file at path, creating the file
// and its directory if they are missing. It returns, for each key whose value
// changed, its old and new value (old is "" when the key was not set).
// If path is a symbolic link, the file it points to is replaced.
func Set(path string, kv map[string]string) (map[string][2]string, error) {
	for k, v := range kv {
		if err := checkKV(k, v); err != nil {
			return nil, fmt.Errorf("setting %s in go env file %s: %w", k, path, err)
		}
	}
	target := path
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		target = resolved
	}
	data, err := os.ReadFile(target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading go env file: %w", err)
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(target); err == nil {
		mode = fi.Mode().Perm()
	}

	lines := splitLines(data)
	last := make(map[string]int) // key -> index of the line that takes effect
	old := make(map[string]string)
	for i, line := range lines {
		if key, val, ok := parseLine(line); ok {
			last[key] = i
			old[key] = val
		}
	}
	changed := make(map[string][2]string)
	var appended []string
	for k, v := range kv {
		prev, had := old[k]
		if had && prev == v {
			continue
		}
		changed[k] = [2]string{prev, v}
		if had {
			// Rewrite the line that takes effect; drop the earlier,
			// shadowed copies so the file says one thing.
			for i, line := range lines {
				if key, _, ok := parseLine(line); ok && key == k && i != last[k] {
					lines[i] = nil
				}
			}
			lines[last[k]] = []byte(k + "=" + v)
		} else {
			appended = append(appended, k)
		}
	}
	if len(changed) == 0 {
		return changed, nil
	}
	slices.Sort(appended)
	var buf bytes.Buffer
	for _, line := range lines {
		if line == nil {
			continue
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	for _, k := range appended {
		buf.WriteString(k + "=" + kv[k] + "\n")
	}
	if err := writeAtomic(target, buf.Bytes(), mode); err != nil {
		return nil, err
	}
	return changed, nil
}

// DefaultFile returns the go env file the go command uses in the environment
// env (a list of KEY=VALUE strings as in os.Environ): $GOENV if set, else
// go/env under the user configuration directory computed from env the way
// os.UserConfigDir does for the running operating system.
func DefaultFile(env []string) (string, error) {
	get := func(key string) string {
		val := ""
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				val = v // last one wins, as in os/exec
			}
		}
		return val
	}
	if f := get("GOENV"); f != "" {
		if f == "off" {
			return "", errors.New("finding go env file: GOENV=off disables it")
		}
		return f, nil
	}
	var dir string
	switch runtime.GOOS {
	case "windows":
		dir = get("AppData")
		if dir == "" {
			dir = get("APPDATA")
		}
		if dir == "" {
			return "", errors.New("finding go env file: %AppData% is not set")
		}
	case "darwin", "ios":
		home := get("HOME")
		if home == "" {
			return "", errors.New("finding go env file: $HOME is not set")
		}
		dir = filepath.Join(home, "Library", "Application Support")
	case "plan9":
		home := get("home")
		if home == "" {
			return "", errors.New("finding go env file: $home is not set")
		}
		dir = filepath.Join(home, "lib")
	default:
		dir = get("XDG_CONFIG_HOME")
		if dir == "" {
			home := get("HOME")
			if home == "" {
				return "", errors.New("finding go env file: neither $XDG_CONFIG_HOME nor $HOME is set")
			}
			dir = filepath.Join(home, ".config")
		} else if !filepath.IsAbs(dir) {
			return "", fmt.Errorf("finding go env file: $XDG_CONFIG_HOME %q is not an absolute path", dir)
		}
	}
	return filepath.Join(dir, "go", "env"), nil
}

// splitLines splits data at '\n'. A final line without '\n' is kept; the
// empty string after a final '\n' is not a line.
func splitLines(data []byte) [][]byte {
	if len(data) == 0 {
		return nil
	}
	lines := bytes.Split(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// parseLine applies the go command's rule (cfg.readEnvFile) to one line.
func parseLine(line []byte) (key, val string, ok bool) {
	i := bytes.IndexByte(line, '=')
	if i < 0 || line[0] < 'A' || 'Z' < line[0] {
		return "", "", false
	}
	return string(line[:i]), string(line[i+1:]), true
}

func checkKV(key, val string) error {
	if key == "" || key[0] < 'A' || 'Z' < key[0] {
		return fmt.Errorf("invalid key %q: must start with an upper-case letter", key)
	}
	for _, c := range key {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return fmt.Errorf("invalid key %q: only A-Z, 0-9 and _ are allowed", key)
		}
	}
	switch key {
	case "GOENV":
		return errors.New("GOENV can only be set in the OS environment")
	}
	if !utf8.ValidString(val) {
		return errors.New("invalid UTF-8 in value")
	}
	if strings.ContainsAny(val, "\x00\v\r\n") {
		return errors.New("value contains a NUL or newline")
	}
	return nil
}

func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating go env directory: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing go env file %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing go env file %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("writing go env file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing go env file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing go env file %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replacing go env file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Unset removes every line that sets one of keys from the go env file at
// path, as `go env -u` does, and reports whether it changed the file. The
// file is replaced atomically; a missing file or key is not an error.
func Unset(path string, keys ...string) (bool, error) {
	target := path
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		target = resolved
	}
	data, err := os.ReadFile(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading go env file: %w", err)
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(target); err == nil {
		mode = fi.Mode().Perm()
	}
	var buf bytes.Buffer
	removed := false
	for _, line := range splitLines(data) {
		if key, _, ok := parseLine(line); ok && slices.Contains(keys, key) {
			removed = true
			continue
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if !removed {
		return false, nil
	}
	return true, writeAtomic(target, buf.Bytes(), mode)
}
