//go:build linux

package local

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncEachFile is false: durable makes all of an import's decoded files
// durable with one syncfs(2) instead of an fsync per file.
const syncEachFile = false

// durable makes everything written in dir's file system so far durable,
// before it is published by a rename.
func durable(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
