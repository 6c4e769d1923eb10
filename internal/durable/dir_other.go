//go:build !unix

package durable

// canSyncDirs is false: Windows cannot fsync a directory handle; renames are
// made durable by the file system's own journal.
const canSyncDirs = false
