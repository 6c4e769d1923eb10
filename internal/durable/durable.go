// Package durable makes what ferry writes survive a crash before it is
// published: install and the local store write a whole tree, make it
// durable, and only then rename it into place and sync the directory that
// holds the new name.
//
// Invariants:
//   - When Tree returns nil, every file and directory written under root
//     before the call is on stable storage. On Linux that is one syncfs(2)
//     of root's file system (a toolchain alone is 12,000 files); elsewhere
//     every file and directory under root is fsynced.
//   - PerFile reports where Tree has to walk the tree: a writer that adds
//     files to a large directory that already holds durable ones (the local
//     store's decoded zips) fsyncs each new file itself there and skips Tree.
//   - When Dir returns nil, the entries of dir (names created, renamed or
//     removed in it) are on stable storage, where the system can sync a
//     directory at all.
package durable

import (
	"errors"
	"fmt"
	"os"
)

// Dir makes the entries of dir durable: renames into dir, files created or
// removed in it. Systems that cannot sync a directory are not an error.
func Dir(dir string) error {
	if !canSyncDirs {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
