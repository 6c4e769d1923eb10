//go:build unix

package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mkfifo replaces path with a named pipe, and on cleanup opens its write end
// (without blocking) so that a reader stuck in open returns.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}

// openWithin runs Open(path) and fails the test if it has not returned
// within a few seconds (a named pipe with no writer blocks open(2) forever).
func openWithin(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		r, err := Open(path)
		if err == nil {
			r.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("Open(%s) still blocked after 5 s", path)
		return nil
	}
}

// Open refuses a named pipe, a device or a directory at once, whether it
// is given as the bundle, a part of a split bundle, or where the index of a
// part is looked for.
func TestOpenRefusesNonRegularFiles(t *testing.T) {
	t.Run("bundle", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "app.ferry")
		mkfifo(t, p)
		err := openWithin(t, p)
		if err == nil || !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("Open of a named pipe: %v", err)
		}
	})
	t.Run("device", func(t *testing.T) {
		err := openWithin(t, os.DevNull)
		if err == nil || !strings.Contains(err.Error(), "device") {
			t.Fatalf("Open of %s: %v", os.DevNull, err)
		}
	})
	t.Run("part", func(t *testing.T) {
		path, dir, _ := brokenSplit(t)
		part := filepath.Join(dir, "app.ferry.002")
		mkfifo(t, part)
		for _, given := range []string{path, filepath.Join(dir, "app.ferry.001")} {
			err := openWithin(t, given)
			if err == nil || !strings.Contains(err.Error(), "part app.ferry.002 is a named pipe") {
				t.Fatalf("Open(%s) with a named pipe as a part: %v", given, err)
			}
		}
	})
	t.Run("index of a part", func(t *testing.T) {
		path, dir, _ := brokenSplit(t)
		mkfifo(t, path)
		err := openWithin(t, filepath.Join(dir, "app.ferry.001"))
		if err == nil || !strings.Contains(err.Error(), path+": ") || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("Open of a part whose index is a named pipe: %v", err)
		}
	})
}
