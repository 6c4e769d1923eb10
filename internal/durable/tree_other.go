//go:build !linux

package durable

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// PerFile is true: Tree fsyncs every file and directory under root.
const PerFile = true

// Tree makes everything under root durable: every file and directory is
// fsynced.
func Tree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("syncing %s: %w", p, err)
		}
		if d.IsDir() {
			return Dir(p)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("syncing %s: %w", p, err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("syncing %s: %w", p, err)
		}
		return nil
	})
}
