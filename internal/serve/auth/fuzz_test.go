package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad checks that Load never panics, that every error names the file,
// and that what it accepts has only well-formed entries.
func FuzzLoad(f *testing.F) {
	f.Add("token ci " + HashToken("x") + "\n")
	f.Add("# comment\n\nuser alice $2a$04$abcdefghijklmnopqrstuu5Q2n6C2N3bI6Sk2mC5rZ7ZQd9v8Y6L.\n")
	f.Add("token a " + HashToken("x") + "\ntoken a " + HashToken("y") + "\n")
	f.Add("user a:b c\n")
	f.Add("\x00\xff token")
	f.Fuzz(func(t *testing.T, content string) {
		// Load only parses bcrypt hashes, it never computes one, so a
		// fuzzed high cost cannot make it slow.
		p := filepath.Join(t.TempDir(), "auth")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(c.tokens)+len(c.users) == 0 {
			t.Fatalf("accepted a file with no entries")
		}
		for _, tk := range c.tokens {
			if tk.name == "" || strings.Contains(tk.name, ":") {
				t.Fatalf("bad token name %q", tk.name)
			}
		}
	})
}
