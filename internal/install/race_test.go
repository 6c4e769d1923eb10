package install

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// storedToolchainZip builds a toolchain zip whose entries are stored (not
// compressed) in a fixed order, so that two zips with files of equal sizes
// differ only in the files' bytes and CRCs.
func storedToolchainZip(t *testing.T, goVersion, platform string, files map[string]string) []byte {
	t.Helper()
	goos, goarch, _ := strings.Cut(platform, "/")
	prefix := toolchainModule + "@v0.0.1-" + goVersion + "." + goos + "-" + goarch + "/"
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + n, Method: zip.Store, Modified: time.Unix(1e9, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[n]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBundleChangedAfterVerificationIsRefused: whoever can write to the
// bundle file between its verification and the install (for example while
// the install waits for the prefix lock) must not get bytes into the prefix.
// Rewriting bin/gofmt inside the toolchain zip (same size, valid CRC) and a
// module zip after the bundle was opened fails the install and leaves the
// prefix as it was.
func TestBundleChangedAfterVerificationIsRefused(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{
		"VERSION":   "go1.26.8\n",
		"bin/go":    "#!/bin/sh\necho go1.26.8\n",
		"bin/gofmt": "#!/bin/sh\necho the real gofmt\n",
	}
	good := storedToolchainZip(t, "go1.26.8", "linux/amd64", files)
	files["bin/gofmt"] = "#!/bin/sh\necho PLANTED gofmt!\n"
	planted := storedToolchainZip(t, "go1.26.8", "linux/amd64", files)
	if len(good) != len(planted) || bytes.Equal(good, planted) {
		t.Fatal("the planted zip must have the size of the good one")
	}
	if zr, err := zip.NewReader(bytes.NewReader(planted), int64(len(planted))); err != nil || len(zr.File) != 3 {
		t.Fatalf("planted zip: %v", err)
	}

	b := newBuilder("race")
	b.module(t, "example.com/a", "v1.0.0", ".info", ".mod", ".zip")
	version := "v0.0.1-go1.26.8.linux-amd64"
	b.add(bundle.Item{File: toolchainModule + "/@v/" + version + ".zip", Kind: bundle.KindZip,
		Module: toolchainModule, Version: version, Platform: "linux/amd64"}, good)
	b.m.Toolchains = []string{"go1.26.8"}
	src := b.source()
	path := filepath.Join(t.TempDir(), "race.ferry")
	if _, err := bundle.Write(ctx, path, src.m, bundle.MemSource(src.blobs), bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		file    string
		replace func(old []byte) []byte
	}{
		{"toolchain", toolchainModule + "/@v/" + version + ".zip", func([]byte) []byte { return planted }},
		{"module zip", "example.com/a/@v/v1.0.0.zip", func(old []byte) []byte { return bytes.ToUpper(old) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "prefix")
			r, err := bundle.Open(copyTestFile(t, path))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// The bundle was opened (and, in ferry install, verified); now
			// its bytes change in place, same inode.
			var it bundle.Item
			for _, x := range r.Manifest().Items {
				if x.File == tc.file {
					it = x
				}
			}
			sr, err := r.Open(it.Digest)
			if err != nil {
				t.Fatal(err)
			}
			_, off, n := sr.Outer()
			f, err := os.OpenFile(r.Path(), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			old := make([]byte, n)
			if _, err := f.ReadAt(old, off); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(tc.replace(old), off); err != nil {
				t.Fatal(err)
			}
			f.Close()

			opt := options(t, prefix)
			_, err = Install(ctx, r, opt)
			if err == nil || !strings.Contains(err.Error(), "changed after it was verified") {
				t.Fatalf("Install of a bundle changed after it was opened: %v", err)
			}
			if _, err := os.Lstat(prefix); err == nil {
				ents, _ := os.ReadDir(prefix)
				t.Errorf("the failed first install left the prefix behind: %v", ents)
			}
		})
	}
}

// copyTestFile copies a file into a new temporary directory.
func copyTestFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(p))
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}
