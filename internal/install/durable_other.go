//go:build !linux

package install

import (
	"io/fs"
	"os"
	"path/filepath"
)

// durable makes everything written under root durable before it is
// published by a rename: every file and directory is fsynced.
func durable(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
