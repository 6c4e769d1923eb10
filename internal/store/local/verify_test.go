package local_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// TestImportUsesOnlyTheCheckedCopy: the caller verifies a bundle file, then
// Import copies it; whoever can write to that file meanwhile (here, at the
// moment Import holds the store's lock, and again after it checked its
// copy) gets nothing into the store. Import refuses a file whose bytes or
// identity changed before the copy was checked, and once it has checked
// the copy it reads nothing else: the blobs it decodes and the files it
// writes come from the copy.
func TestImportUsesOnlyTheCheckedCopy(t *testing.T) {
	f := newKillFixture(t)
	ctx := context.Background()
	// flip overwrites the data of every item blob of the bundle file at
	// p in place (same inode, same size).
	flip := func(p string) {
		r := open(t, p)
		fh, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		for _, it := range r.Manifest().Items {
			b, ok := r.Stat(it.Digest)
			if !ok {
				continue
			}
			for _, bl := range r.Blobs() {
				if bl.Digest == it.Digest {
					if _, err := fh.WriteAt([]byte(strings.Repeat("X", int(b))), bl.Offset); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	copyTo := func(src, dst string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		at     string
		change func(p string)
		errs   string // "" if the import must succeed
	}{
		{"blobs overwritten before the copy", local.StepImportLocked, flip, "checking the copy"},
		{"another bundle renamed over it before the copy", local.StepImportLocked, func(p string) {
			copyTo(f.delta, p+".new")
			if err := os.Rename(p+".new", p); err != nil {
				t.Fatal(err)
			}
		}, "the file changed after it was verified"},
		{"the same bundle renamed over it", local.StepImportLocked, func(p string) {
			copyTo(f.full, p+".new")
			if err := os.Rename(p+".new", p); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"blobs overwritten after the copy was checked", local.StepImportChecked, flip, ""},
		{"removed after the copy was checked", local.StepImportChecked, func(p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "full.ferry")
			copyTo(f.full, src)
			r := open(t, src) // as the caller verified it
			st, err := local.OpenWith(filepath.Join(dir, "store"), local.Options{Hook: func(step string) {
				if step == c.at {
					c.change(src)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			err = st.ImportChecked(ctx, r, store.BundleInfo{})
			if c.errs != "" {
				if err == nil || !strings.Contains(err.Error(), c.errs) {
					t.Fatalf("Import = %v, want an error containing %q", err, c.errs)
				}
				if l, err := st.List(ctx); err != nil || len(l) != 0 {
					t.Fatalf("List after a refused import = %v, %v", l, err)
				}
				checkTidy(t, st.Dir())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			if got, w := readState(t, st.Dir(), f.all).served, want(t, f.all, f.full); !maps.Equal(got, w) {
				t.Fatalf("served %v, want %v", got, w)
			}
			checkTidy(t, st.Dir())
		})
	}
}
