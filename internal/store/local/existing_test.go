package local_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/store/local"
)

// TestOpenExisting: with Options.Existing, a directory that holds no store
// is an error wrapping fs.ErrNotExist that names it, and nothing is
// created; a store Open made opens.
func TestOpenExisting(t *testing.T) {
	dir := t.TempDir()
	notStore := filepath.Join(dir, "plain")
	if err := os.Mkdir(notStore, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "typo"), filepath.Join(dir, "typo", "deeper"), notStore, file} {
		_, err := local.OpenWith(p, local.Options{Existing: true})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Errorf("OpenWith(%s, Existing) = %v, want an error naming it that wraps fs.ErrNotExist", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "typo")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenWith(Existing) created %s (stat: %v)", filepath.Join(dir, "typo"), err)
	}
	if _, err := os.Stat(filepath.Join(notStore, "bundles")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenWith(Existing) made a store of %s (stat: %v)", notStore, err)
	}

	made := filepath.Join(dir, "store")
	st, err := local.Open(made)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = local.OpenWith(made, local.Options{Existing: true})
	if err != nil {
		t.Fatalf("OpenWith(Existing) of a store Open made: %v", err)
	}
	st.Close()
}
