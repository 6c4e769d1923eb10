package modtest

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// TestLocalToolchain extracts the local toolchain module like the go command
// does and builds a program with it.
func TestLocalToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds a zip of GOROOT and compiles with it")
	}
	m := LocalToolchain(t)
	if m.ZipFile == "" || m.Path != ToolchainModule || !strings.HasPrefix(m.Version, "v0.0.1-go") {
		t.Fatalf("LocalToolchain = %+v", m)
	}
	if again := LocalToolchain(t); again.ZipFile != m.ZipFile {
		t.Errorf("second LocalToolchain zip %s, first %s", again.ZipFile, m.ZipFile)
	}
	goroot := filepath.Join(t.TempDir(), "goroot")
	if err := modzip.Unzip(goroot, module.Version{Path: m.Path, Version: m.Version}, m.ZipFile); err != nil {
		t.Fatalf("unzipping toolchain: %v", err)
	}
	// Rename nested _go.mod files and set exec bits, as the go command does.
	err := filepath.WalkDir(goroot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(goroot, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Name() == "_go.mod":
			return os.Rename(p, filepath.Join(filepath.Dir(p), "go.mod"))
		case d.Name() == "go.mod":
			t.Errorf("toolchain zip holds %s", rel)
		case strings.HasSuffix(rel, "_test.go") || strings.Contains("/"+rel+"/", "/testdata/"):
			t.Errorf("toolchain zip holds %s", rel)
		case !d.IsDir() && (strings.HasPrefix(rel, "bin/") || strings.HasPrefix(rel, "pkg/tool/")):
			return os.Chmod(p, 0o755)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"api", "doc", "misc", "test"} {
		if _, err := os.Stat(filepath.Join(goroot, dir)); err == nil {
			t.Errorf("toolchain zip holds %s/", dir)
		}
	}

	env := GoEnv(t, nil)
	gobin := filepath.Join(goroot, "bin", "go")
	out, err := exec.Command(gobin, "version").Output()
	if err != nil || !strings.Contains(string(out), runtime.Version()) {
		t.Fatalf("extracted go version: %q, %v", out, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.21\n"), 0o666)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"built\") }\n"), 0o666)
	cmd := exec.Command(gobin, "run", ".")
	cmd.Dir = dir
	cmd.Env = append(env, "GOPROXY=off")
	out, err = cmd.CombinedOutput()
	if err != nil || string(out) != "built\n" {
		t.Fatalf("go run with the extracted toolchain: %v\n%s", err, out)
	}
}
