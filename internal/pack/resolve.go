package pack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-dev/ferry/internal/gocmd"
)

// downloadResult is one object of `go mod download -json` output.
type downloadResult struct {
	Path    string
	Version string
	Error   string
	Info    string
	GoMod   string
	Zip     string
}

// listPackage is the part of `go list -json` output pack reads.
type listPackage struct {
	ImportPath string
	Module     *struct{ Path, Version string }
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

// failure is something the go command could not get while pack drove it.
type failure struct {
	Module, Version string
	Reason          string
}

// packageError is a package (or test) of a listed platform that did not load.
type packageError struct {
	Platform string
	Package  string
	Err      string
}

// resolver drives the go command to fetch, into its scratch module cache,
// everything the far side's go command will ask for.
type resolver struct {
	run       *gocmd.Runner
	platforms []string
	// failures are modules that `go mod download` could not fetch.
	failures []failure
	// pkgErrors are packages that did not load for some platform.
	pkgErrors []packageError
}

// downloadAll runs `go mod download -json all` for a project: every module of
// the build list, and with it the .mod files of the whole graph. A module the
// proxy refuses is remembered, not fatal: whether it matters is decided by
// the package loads that follow.
func (r *resolver) downloadAll(ctx context.Context, p *project) error {
	args := append([]string{"mod", "download", "-json"}, p.flags...)
	args = append(args, "all")
	out, runErr := r.run.Run(ctx, p.Dir, p.env, args...)
	results, decErr := gocmd.DecodeStream[downloadResult](out)
	if runErr != nil && len(results) == 0 {
		return fmt.Errorf("%s: %w", p.Dir, runErr)
	}
	if decErr != nil {
		return fmt.Errorf("%s: %w", p.Dir, decErr)
	}
	for _, d := range results {
		if d.Error != "" {
			r.failures = append(r.failures, failure{Module: d.Path, Version: d.Version, Reason: firstLine(d.Error)})
		}
	}
	return nil
}

// loadPackages runs `go list -e -deps -test` over the project's packages (and
// its tools) for every platform, with cgo on and off, so the go command
// fetches every module zip a build, cross-build or test compile needs.
func (r *resolver) loadPackages(ctx context.Context, p *project) error {
	patterns := []string{"./..."}
	if p.GoWork != "" {
		patterns = nil
		for _, m := range p.Modules {
			patterns = append(patterns, m+"/...")
		}
	}
	if p.HasTools {
		patterns = append(patterns, "tool")
	}
	for _, plat := range r.platforms {
		goos, goarch, _ := strings.Cut(plat, "/")
		for _, cgo := range []string{"0", "1"} {
			args := append([]string{"list", "-e", "-deps", "-test", "-json=ImportPath,Module,Error,DepsErrors"}, p.flags...)
			args = append(args, patterns...)
			env := append(append([]string(nil), p.env...), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED="+cgo)
			out, err := r.run.Run(ctx, p.Dir, env, args...)
			if err != nil {
				return fmt.Errorf("%s: loading packages for %s: %w", p.Dir, plat, err)
			}
			pkgs, err := gocmd.DecodeStream[listPackage](out)
			if err != nil {
				return fmt.Errorf("%s: loading packages for %s: %w", p.Dir, plat, err)
			}
			for _, pkg := range pkgs {
				if pkg.Error != nil && !benignListError(pkg.Error.Err) {
					r.pkgErrors = append(r.pkgErrors, packageError{Platform: plat, Package: pkg.ImportPath, Err: firstLine(pkg.Error.Err)})
				}
			}
		}
	}
	return nil
}

// benignListError reports package errors that are not about missing
// modules: a package that is empty on a platform is not a build failure.
func benignListError(s string) bool {
	return strings.Contains(s, "build constraints exclude all Go files") ||
		strings.Contains(s, "no Go files in")
}

// installTool makes the go command resolve `go install pkg@version` for
// every platform without building (-n): it downloads what the install needs.
func (r *resolver) installTool(ctx context.Context, scratch, tool string) error {
	dir := filepath.Join(scratch, "tool")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, plat := range r.platforms {
		goos, goarch, _ := strings.Cut(plat, "/")
		env := []string{"GOOS=" + goos, "GOARCH=" + goarch, "GOBIN=", "GOWORK=off", "CGO_ENABLED=0"}
		if _, err := r.run.Run(ctx, dir, env, "install", "-n", tool); err != nil {
			return fmt.Errorf("--tool %s for %s: %w", tool, plat, err)
		}
	}
	return nil
}

// downloadModule fetches one --module MODULE@VERSION.
func (r *resolver) downloadModule(ctx context.Context, scratch, mod string) error {
	dir := filepath.Join(scratch, "module")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := r.run.Run(ctx, dir, []string{"GOWORK=off"}, "mod", "download", "-json", mod)
	res, _ := gocmd.DecodeStream[downloadResult](out)
	for _, d := range res {
		if d.Error != "" {
			return fmt.Errorf("--module %s: %s", mod, firstLine(d.Error))
		}
	}
	if err != nil {
		var ge *gocmd.Error
		if errors.As(err, &ge) {
			return fmt.Errorf("--module %s: %s", mod, firstLine(ge.Stderr))
		}
		return fmt.Errorf("--module %s: %w", mod, err)
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
