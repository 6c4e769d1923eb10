//go:build unix

package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockPrefix takes an exclusive flock on path (creating it and its
// directory), waiting (until ctx is done) while another process holds it.
// The lock goes away with the process.
//
// The holder may remove the lock file before it unlocks (a first install
// that failed leaves the prefix as it found it); a waiter that then gets
// the lock holds it on a file no longer at path, so it checks, once locked,
// that path is still the file it locked, and starts again if not.
func lockPrefix(ctx context.Context, path string, log *slog.Logger) (unlock func(), err error) {
	waiting := false
	for {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening lock %s: %w", path, err)
		}
		for {
			err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
				f.Close()
				return nil, fmt.Errorf("locking %s: %w", path, err)
			}
			if !waiting {
				log.Info("waiting for another ferry using the same prefix", "lock", path)
				waiting = true
			}
			select {
			case <-ctx.Done():
				f.Close()
				return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		// Removed (or replaced) by the holder we waited for: lock the file
		// that is there now.
		f.Close()
	}
}
