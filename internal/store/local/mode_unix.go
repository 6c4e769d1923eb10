//go:build unix

package local

// filePerm is the mode every file of the store is created with, before the
// umask: read-only for everyone, like the files the go command extracts into
// its module cache (golang.org/x/mod/zip creates them 0444 and lets the
// umask clear bits). Nothing in the store is ever written in place: files
// are written once through a temporary file and replaced or removed by
// rename and unlink, which need write permission on the directory, not on
// the file, so read-only files do not stop Import or Prune.
const filePerm = 0o444
