//go:build !unix

package install

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// lockPrefix opens the lock file; on this system installs into the same
// prefix are not serialized.
func lockPrefix(ctx context.Context, path string, log *slog.Logger) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	log.Warn("concurrent installs into one prefix are not locked on this system", "lock", path)
	return func() { f.Close() }, nil
}
