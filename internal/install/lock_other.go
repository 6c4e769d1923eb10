//go:build !unix

package install

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// lockPrefix opens the lock file; on this system installs into the same
// prefix are not serialized.
func lockPrefix(ctx context.Context, path string, log *slog.Logger) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	log.Warn("concurrent installs into one prefix are not locked on this system", "lock", path)
	return func() { f.Close() }, nil
}
