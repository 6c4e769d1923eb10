package image

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ferry-dev/ferry/internal/gocmd"
)

// mainPkg is a main package to build.
type mainPkg struct {
	ImportPath string
	Name       string // binary name
}

// binary is one compiled program for one platform.
type binary struct {
	mainPkg
	Data []byte
	Info *buildinfo.BuildInfo
}

// listMains resolves the package arguments (default ".") to main packages,
// as the go command sees them for platform p. An argument without "..."
// must be a main package; a pattern with "..." selects the main packages it
// matches and must match at least one.
func listMains(ctx context.Context, r *gocmd.Runner, dir string, args []string, p Platform) ([]mainPkg, error) {
	if len(args) == 0 {
		args = []string{"."}
	}
	var out []mainPkg
	seen := map[string]string{} // binary name -> import path
	for _, arg := range args {
		stdout, err := r.Run(ctx, dir, p.goEnv(), "list", "-e", "-json=ImportPath,Name,Error", "--", arg)
		if err != nil {
			return nil, fmt.Errorf("listing package %s: %w", arg, err)
		}
		type listed struct {
			ImportPath string
			Name       string
			Error      *struct{ Err string }
		}
		var found []listed
		dec := json.NewDecoder(bytes.NewReader(stdout))
		for {
			var l listed
			if err := dec.Decode(&l); err == io.EOF {
				break
			} else if err != nil {
				return nil, fmt.Errorf("listing package %s: parsing go list output: %w", arg, err)
			}
			found = append(found, l)
		}
		wild := strings.Contains(arg, "...")
		n := 0
		for _, l := range found {
			switch {
			case l.Error != nil && (!wild || l.Name == "main"):
				return nil, fmt.Errorf("package %s: %s", arg, oneLine(l.Error.Err))
			case l.Name != "main" && !wild:
				return nil, fmt.Errorf("no main package: %s is package %s, not a command", arg, l.Name)
			case l.Name != "main" || l.Error != nil:
				continue
			}
			n++
			bin := exeName(l.ImportPath)
			if prev, ok := seen[bin]; ok {
				if prev == l.ImportPath {
					continue
				}
				return nil, fmt.Errorf("main packages %s and %s would both be /usr/local/bin/%s", prev, l.ImportPath, bin)
			}
			seen[bin] = l.ImportPath
			out = append(out, mainPkg{ImportPath: l.ImportPath, Name: bin})
		}
		if n == 0 {
			return nil, fmt.Errorf("no main package: %s matches no main package for %s", arg, p)
		}
	}
	return out, nil
}

var majorSuffix = regexp.MustCompile(`^v[2-9][0-9]*$`)

// exeName is the name `go build` gives the binary of a main package: the
// last path element, or the one before a major-version suffix.
func exeName(importPath string) string {
	elem := path.Base(importPath)
	if majorSuffix.MatchString(elem) {
		if d := path.Dir(importPath); d != "." {
			elem = path.Base(d)
		}
	}
	return elem
}

// oneLine joins s into one line of at most 2000 bytes (keeping the end,
// where the go command puts the cause).
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// knownPlatforms returns the GOOS/GOARCH pairs the go command in use supports.
func knownPlatforms(ctx context.Context, r *gocmd.Runner, dir string) (map[string]bool, error) {
	out, err := r.Run(ctx, dir, nil, "tool", "dist", "list")
	if err != nil {
		return nil, fmt.Errorf("asking the go command for its platforms: %w", err)
	}
	m := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		m[l] = true
	}
	return m, nil
}

// compile builds one main package for one platform into tmp and reads it back.
func compile(ctx context.Context, r *gocmd.Runner, dir, tmp string, pkg mainPkg, p Platform) (*binary, error) {
	outDir, err := os.MkdirTemp(tmp, "bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(outDir)
	out := filepath.Join(outDir, pkg.Name)
	args := []string{"build", "-trimpath", "-ldflags=-buildid=", "-o", out, "--", pkg.ImportPath}
	if _, err := r.Run(ctx, dir, p.goEnv(), args...); err != nil {
		var gerr *gocmd.Error
		if errors.As(err, &gerr) {
			return nil, fmt.Errorf("compiling %s for %s: %s", pkg.ImportPath, p, oneLine(gerr.Stderr))
		}
		return nil, fmt.Errorf("compiling %s for %s: %w", pkg.ImportPath, p, err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("reading the binary of %s for %s: %w", pkg.ImportPath, p, err)
	}
	info, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading the build info of %s for %s: %w", pkg.ImportPath, p, err)
	}
	for _, s := range info.Settings {
		if (s.Key == "GOOS" && s.Value != p.OS) || (s.Key == "GOARCH" && s.Value != p.Arch) || (s.Key == "CGO_ENABLED" && s.Value != "0") {
			return nil, fmt.Errorf("compiling %s for %s: the binary says %s=%s", pkg.ImportPath, p, s.Key, s.Value)
		}
	}
	return &binary{mainPkg: pkg, Data: data, Info: info}, nil
}

// setting returns a build setting of a binary.
func setting(info *buildinfo.BuildInfo, key string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
