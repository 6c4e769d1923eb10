//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// tinyBundle writes a bundle of one go.mod and returns its path.
func tinyBundle(t *testing.T, dir string) string {
	t.Helper()
	gomod := []byte("module example.com/m\n")
	h1, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := bundle.Digest(gomod)
	m := &bundle.Manifest{SchemaVersion: bundle.SchemaVersion, Name: "tiny", Items: []bundle.Item{{
		File: "example.com/m/@v/v1.0.0.mod", Kind: bundle.KindMod, Module: "example.com/m", Version: "v1.0.0",
		Hash: h1, Size: int64(len(gomod)), Digest: d,
	}}}
	path := filepath.Join(dir, "tiny.ferry")
	if _, err := bundle.Write(context.Background(), path, m, bundle.MemSource{d: gomod}, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// A first SIGINT or SIGTERM cancels what ferry does; a second one ends it
// at once, even where it waits on something that does not see the
// cancellation: here, reading a --key file that is a named pipe nobody
// writes to (as with --key <(command) when the command hangs).
func TestSecondSignalExits(t *testing.T) {
	ferry := ferryBin(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		code int
	}{
		{"SIGINT", syscall.SIGINT, 130},
		{"SIGTERM", syscall.SIGTERM, 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := tinyBundle(t, dir)
			key := filepath.Join(dir, "key.pub")
			if err := syscall.Mkfifo(key, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			cmd := exec.Command(ferry, "verify", b, "--key", key)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { cmd.Process.Kill() })

			// Wait until ferry has the pipe open for reading, then open its
			// write end and leave it silent: ferry then waits in read.
			var w *os.File
			for deadline := time.Now().Add(20 * time.Second); w == nil; {
				f, err := os.OpenFile(key, os.O_WRONLY|syscall.O_NONBLOCK, 0)
				switch {
				case err == nil:
					w = f
				case !errors.Is(err, syscall.ENXIO) || time.Now().After(deadline):
					t.Fatalf("ferry never opened the key: %v\n%s", err, out.String())
				default:
					select {
					case err := <-exited:
						t.Fatalf("ferry exited before reading the key: %v\n%s", err, out.String())
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
			defer w.Close()

			cmd.Process.Signal(tc.sig)
			select {
			case err := <-exited:
				t.Fatalf("ferry exited on the first signal, waiting on a pipe that does not see it: %v\n%s", err, out.String())
			case <-time.After(300 * time.Millisecond):
			}
			cmd.Process.Signal(tc.sig)
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
					t.Fatalf("ferry ended with %v after a second %s, want exit status %d\n%s", err, tc.name, tc.code, out.String())
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("ferry still running 5 s after a second %s\n%s", tc.name, out.String())
			}
			if !strings.Contains(out.String(), "again") {
				t.Errorf("ferry did not say why it exited:\n%s", out.String())
			}
			t.Logf("ferry said:\n%s", out.String())
		})
	}
}
