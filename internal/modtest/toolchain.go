package modtest

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// ToolchainModule is the module path of Go toolchains.
const ToolchainModule = "golang.org/toolchain"

// ToolchainVersion returns the module version of the toolchain goVersion
// ("go1.2.3" or "1.2.3") for goos/goarch: v0.0.1-go1.2.3.goos-goarch.
func ToolchainVersion(goVersion, goos, goarch string) string {
	if !strings.HasPrefix(goVersion, "go") {
		goVersion = "go" + goVersion
	}
	return "v0.0.1-" + goVersion + "." + goos + "-" + goarch
}

// FakeToolchain returns a toolchain module whose bin/go is a shell script
// printing "go version goX.Y.Z GOOS/GOARCH (ferry fake)" for `go version`
// (exiting 0; any other command exits 2), plus a VERSION file.
// goVersion may be "go1.2.3" or "1.2.3".
func FakeToolchain(goVersion, goos, goarch string) Module {
	if !strings.HasPrefix(goVersion, "go") {
		goVersion = "go" + goVersion
	}
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1" = version ] && [ $# -eq 1 ]; then
	echo "go version %s %s/%s (ferry fake)"
	exit 0
fi
echo "ferry fake go %s: unsupported command: $*" >&2
exit 2
`, goVersion, goos, goarch, goVersion)
	exe := ""
	if goos == "windows" {
		exe = ".exe"
	}
	// The go command sets exec bits under pkg/tool, lib and bin/gofmt
	// before running bin/go, and fails if they do not exist.
	return Module{
		Path:    ToolchainModule,
		Version: ToolchainVersion(goVersion, goos, goarch),
		Files: map[string]string{
			"bin/go" + exe:    script,
			"bin/gofmt" + exe: "#!/bin/sh\necho \"ferry fake gofmt: unsupported\" >&2\nexit 2\n",
			"pkg/tool/" + goos + "_" + goarch + "/README": "ferry fake toolchain: no tools\n",
			"lib/README": "ferry fake toolchain\n",
			"VERSION":    goVersion + "\ntime 2024-01-02T03:04:05Z\n",
		},
		GoMod: "module " + ToolchainModule + "\n",
	}
}

// LocalToolchain returns the toolchain module of this machine's Go (the GOROOT
// of `go env GOROOT`, its VERSION, runtime.GOOS and runtime.GOARCH) as a
// prebuilt zip file (Module.ZipFile): the GOROOT tree minus api/ doc/ misc/
// test/, testdata directories and *_test.go files, with nested go.mod files
// stored as _go.mod, under the prefix golang.org/toolchain@<version>/.
//
// The zip is cached in os.TempDir()/ferry-testcache/ keyed by version and
// platform; it is written to a temporary file and renamed, so concurrent test
// processes can share the cache.
func LocalToolchain(t testing.TB) Module {
	t.Helper()
	goroot, err := localGOROOT()
	if err != nil {
		t.Fatalf("modtest: %v", err)
	}
	goVersion, err := readGoVersion(goroot)
	if err != nil {
		t.Fatalf("modtest: %v", err)
	}
	vers := ToolchainVersion(goVersion, runtime.GOOS, runtime.GOARCH)
	dir := filepath.Join(os.TempDir(), "ferry-testcache")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("modtest: creating toolchain cache: %v", err)
	}
	zipFile := filepath.Join(dir, "toolchain@"+vers+".zip")
	if _, err := os.Stat(zipFile); err != nil {
		t.Logf("modtest: building %s@%s from %s (cached in %s)", ToolchainModule, vers, goroot, zipFile)
		if err := writeToolchainZip(goroot, vers, zipFile); err != nil {
			t.Fatalf("modtest: %v", err)
		}
	}
	return Module{
		Path:    ToolchainModule,
		Version: vers,
		ZipFile: zipFile,
		GoMod:   "module " + ToolchainModule + "\n",
	}
}

func localGOROOT() (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("running go env GOROOT: %w", err)
	}
	goroot := strings.TrimSpace(string(out))
	if goroot == "" {
		return "", fmt.Errorf("go env GOROOT is empty")
	}
	return goroot, nil
}

func readGoVersion(goroot string) (string, error) {
	f, err := os.Open(filepath.Join(goroot, "VERSION"))
	if err != nil {
		return "", fmt.Errorf("reading Go version: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "go") {
		return "", fmt.Errorf("reading Go version: %s has no goX.Y.Z first line", f.Name())
	}
	return strings.TrimSpace(sc.Text()), nil
}

// writeToolchainZip writes the toolchain zip of goroot to dst (via a temporary file and rename).
func writeToolchainZip(goroot, vers, dst string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp*")
	if err != nil {
		return fmt.Errorf("creating toolchain zip: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	prefix := ToolchainModule + "@" + vers + "/"
	err = filepath.WalkDir(goroot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(goroot, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch {
			case rel == "api" || rel == "doc" || rel == "misc" || rel == "test" || rel == "pkg/obj":
				return filepath.SkipDir
			case d.Name() == "testdata" || d.Name() == ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		name := rel
		if path.Base(name) == "go.mod" {
			name = path.Join(path.Dir(name), "_go.mod")
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + name, Method: zip.Deflate})
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing toolchain zip from %s: %w", goroot, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("writing toolchain zip %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing toolchain zip %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("installing toolchain zip: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("installing toolchain zip: %w", err)
	}
	return nil
}
