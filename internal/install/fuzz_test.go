package install

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckFile checks that every name checkFile accepts stays inside the
// directory it is joined to.
func FuzzCheckFile(f *testing.F) {
	for _, s := range []string{"golang.org/x/mod/@v/v0.1.0.zip", "../x", "a/../../b", "/abs", "a\\b", "a//b", "sumdb/s/tile/8/0/000.p/3", "C:x", "..", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkFile(name) != nil {
			return
		}
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			t.Fatalf("checkFile accepted non-local %q", name)
		}
		root := "/root/prefix"
		if p := filepath.Join(root, filepath.FromSlash(name)); !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Fatalf("checkFile accepted %q, which joins to %q", name, p)
		}
	})
}
