package main

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// repoRoot is the repository root, from this package's directory.
const repoRoot = "../.."

// copySource copies what building ferry reads (go.mod, go.sum, cmd/,
// internal/) and the release script into dst.
func copySource(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"go.mod", "go.sum", "cmd", "internal", "scripts"} {
		err := filepath.WalkDir(filepath.Join(src, name), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			target := filepath.Join(dst, rel)
			if d.IsDir() {
				return os.MkdirAll(target, 0o755)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// scripts/release.sh builds the same bytes from two copies of the source in
// different directories, a static linux binary (no interpreter, no shared
// libraries), a SHA256SUMS that sha256sum -c accepts, and a binary whose
// --version and version print the stamped version. The second build takes
// its compiled packages from the build cache; only the link is repeated.
func TestReleaseReproducibleStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry twice")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash:", err)
	}
	tmp := t.TempDir()
	// One snapshot of the tree, then a copy of it at another depth, so that
	// both builds read the same source and only the paths differ.
	a := filepath.Join(tmp, "a")
	b := filepath.Join(tmp, "elsewhere", "deeper", "b")
	copySource(t, repoRoot, a)
	copySource(t, a, b)

	const version = "v9.9.9-reproducible.test"
	build := func(src, out string) []byte {
		t.Helper()
		cmd := exec.Command(bash, filepath.Join(src, "scripts", "release.sh"), "-v", version, "-p", "linux/amd64", out)
		cmd.Dir = tmp
		// The caller's GOFLAGS must not matter: the script pins them.
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true", "CGO_ENABLED=1")
		outb, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("release.sh in %s: %v\n%s", src, err, outb)
		}
		t.Logf("release.sh in %s:\n%s", src, outb)
		bin, err := os.ReadFile(filepath.Join(out, "ferry-linux-amd64"))
		if err != nil {
			t.Fatal(err)
		}
		return bin
	}
	outA, outB := filepath.Join(tmp, "outA"), filepath.Join(tmp, "outB")
	binA := build(a, outA)
	binB := build(b, outB)
	if !bytes.Equal(binA, binB) {
		t.Errorf("two builds of the same source differ: %x vs %x", sha256.Sum256(binA), sha256.Sum256(binB))
	}
	sumsA, err := os.ReadFile(filepath.Join(outA, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sumsB, err := os.ReadFile(filepath.Join(outB, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(binA)
	if want := hex.EncodeToString(d[:]) + "  ferry-linux-amd64\n"; string(sumsA) != want || string(sumsB) != want {
		t.Errorf("SHA256SUMS = %q and %q, want %q", sumsA, sumsB, want)
	}

	checkStatic(t, filepath.Join(outA, "ferry-linux-amd64"))

	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		for _, args := range [][]string{{"--version"}, {"version"}} {
			out, err := exec.Command(filepath.Join(outA, "ferry-linux-amd64"), args...).Output()
			if err != nil {
				t.Fatalf("ferry %s: %v", args[0], err)
			}
			if want := "ferry " + version + "\n"; string(out) != want {
				t.Errorf("stamped ferry %s printed %q, want %q", args[0], out, want)
			}
		}
	}
}

// checkStatic fails unless the ELF file at path is statically linked: no
// PT_INTERP program header (no dynamic loader) and no DT_NEEDED entries.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a PT_INTERP program header: dynamically linked", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", path, libs)
	}
}

// goBuildOfFerry matches a command line that builds ./cmd/ferry.
var goBuildOfFerry = regexp.MustCompile(`go build .*\./cmd/ferry\b`)

// Every build of ferry that README.md and the bench scripts give is static:
// the line sets CGO_ENABLED=0. The README's build did not (issue 13 item 2),
// and with a C compiler present it made a binary that needs the build host's
// glibc.
func TestDocumentedBuildsAreStatic(t *testing.T) {
	files := []string{filepath.Join(repoRoot, "README.md")}
	scripts, err := filepath.Glob(filepath.Join(repoRoot, "bench", "*.sh"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, scripts...)
	found := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			loc := goBuildOfFerry.FindStringIndex(line)
			if loc == nil {
				continue
			}
			found++
			if !strings.Contains(line[:loc[0]], "CGO_ENABLED=0") {
				t.Errorf("%s:%d builds ferry without CGO_ENABLED=0: %s", name, i+1, strings.TrimSpace(line))
			}
		}
	}
	if found == 0 {
		t.Fatal(fmt.Errorf("no build of ./cmd/ferry found in %v", files))
	}
}
