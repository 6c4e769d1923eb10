//go:build linux

package install

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// durable makes everything written under root so far durable before it is
// published by a rename: one syncfs(2) of root's filesystem instead of an
// fsync per file (a toolchain alone is 12,000 files).
func durable(root string) error {
	d, err := os.Open(root)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", root, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncing %s: %w", root, err)
	}
	return nil
}
