//go:build !unix

package local

// filePerm is the mode every file of the store is created with. Where a
// read-only file cannot be removed or replaced by a rename (Windows), store
// files stay writable so that Prune and Import can still replace them.
const filePerm = 0o666
