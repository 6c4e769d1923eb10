//go:build !unix

package local

import "context"

// lockFile is a no-op where flock does not exist: one importer at a time is
// then the caller's business.
func lockFile(ctx context.Context, path string, exclusive bool) (unlock func(), err error) {
	return func() {}, nil
}
