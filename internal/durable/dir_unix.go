//go:build unix

package durable

const canSyncDirs = true
