package durable_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/durable"
)

func TestTreeAndDir(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a", "b", "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := durable.Tree(root); err != nil {
		t.Fatalf("Tree: %v", err)
	}
	if err := durable.Dir(filepath.Join(root, "a")); err != nil {
		t.Fatalf("Dir: %v", err)
	}
}

// Errors name the path they were about.
func TestMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone")
	fs := map[string]func(string) error{"Tree": durable.Tree, "Dir": durable.Dir}
	if runtime.GOOS == "windows" {
		delete(fs, "Dir") // a no-op there
	}
	for name, f := range fs {
		if err := f(missing); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s(missing) = %v, want an error naming %s", name, err, missing)
		}
	}
}
