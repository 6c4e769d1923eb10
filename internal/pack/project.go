package pack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/ferry-dev/ferry/internal/gocmd"
)

// project is one DIR given to pack: a main module or a workspace.
type project struct {
	Dir       string   // absolute directory
	GoMod     string   // go.mod of a single-module project, "" for a workspace
	GoWork    string   // go.work of a workspace project, "" otherwise
	Modules   []string // main module paths
	Toolchain string   // toolchain asked for: go.mod/go.work toolchain line, else go line ("" if none)
	HasTools  bool     // a main module has tool directives
	UseDirs   []string // workspace module directories

	// scratch holds the copies the go command may write (go.mod/go.sum via
	// -modfile, or go.work/go.work.sum via GOWORK), so the user's files are
	// never changed.
	scratch string
	flags   []string // -modfile=...
	env     []string // GOWORK=...
}

// loadProject finds the go.mod or go.work governing dir the way the go
// command does, and prepares scratch copies of the files it may write.
func loadProject(ctx context.Context, run *gocmd.Runner, dir, scratch string) (*project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("%s: not a Go project: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a Go project: not a directory", dir)
	}
	envs, err := run.GoEnv(ctx, abs, []string{"GOWORK="}, "GOMOD", "GOWORK")
	if err != nil {
		return nil, fmt.Errorf("%s: reading go env: %w", dir, err)
	}
	p := &project{Dir: abs, scratch: scratch}
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return nil, err
	}
	switch {
	case envs["GOWORK"] != "" && envs["GOWORK"] != "off":
		if err := p.loadWork(envs["GOWORK"]); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
	case envs["GOMOD"] != "" && envs["GOMOD"] != os.DevNull:
		if err := p.loadMod(envs["GOMOD"]); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
	default:
		return nil, fmt.Errorf("%s: not a Go project: no go.mod or go.work in it or above it", dir)
	}
	return p, nil
}

func toolchainOf(tc *modfile.Toolchain, gov *modfile.Go) string {
	if tc != nil && tc.Name != "" && tc.Name != "default" {
		return tc.Name
	}
	if gov != nil {
		return goLineToolchain(gov.Version)
	}
	return ""
}

// goLineToolchain maps a go line to the toolchain it names: "1.26.7" ->
// "go1.26.7", "1.22" -> "go1.22.0". Versions before Go 1.21 have no
// toolchain module and give "".
func goLineToolchain(v string) string {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || parts[0] != "1" {
		return ""
	}
	var minor int
	if _, err := fmt.Sscanf(parts[1], "%d", &minor); err != nil || minor < 21 {
		return ""
	}
	if len(parts) == 2 && !strings.ContainsAny(parts[1], "rcbeta") {
		return "go" + v + ".0"
	}
	return "go" + v
}

func (p *project) loadMod(gomod string) error {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(gomod, data, nil)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", gomod, err)
	}
	if f.Module == nil {
		return fmt.Errorf("%s: no module line", gomod)
	}
	p.Dir = filepath.Dir(gomod)
	p.GoMod = gomod
	p.Modules = []string{f.Module.Mod.Path}
	p.Toolchain = toolchainOf(f.Toolchain, f.Go)
	p.HasTools = len(f.Tool) > 0
	// The go command derives go.sum's path from -modfile's.
	if err := copyFile(gomod, filepath.Join(p.scratch, "go.mod")); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(p.Dir, "go.sum"), filepath.Join(p.scratch, "go.sum")); err != nil && !os.IsNotExist(err) {
		return err
	}
	p.flags = []string{"-modfile=" + filepath.Join(p.scratch, "go.mod")}
	p.env = []string{"GOWORK=off"}
	return nil
}

func (p *project) loadWork(gowork string) error {
	data, err := os.ReadFile(gowork)
	if err != nil {
		return err
	}
	wf, err := modfile.ParseWork(gowork, data, nil)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", gowork, err)
	}
	p.Dir = filepath.Dir(gowork)
	p.GoWork = gowork
	p.Toolchain = toolchainOf(wf.Toolchain, wf.Go)
	// A copy of go.work with absolute use and replace paths: the go command
	// writes go.work.sum beside it, in scratch.
	for _, u := range wf.Use {
		d := u.Path
		if !filepath.IsAbs(d) {
			d = filepath.Join(p.Dir, d)
		}
		if err := wf.AddUse(d, u.ModulePath); err != nil {
			return err
		}
		if err := wf.DropUse(u.Path); err != nil {
			return err
		}
		mdata, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err != nil {
			return fmt.Errorf("workspace module %s: %w", u.Path, err)
		}
		mf, err := modfile.Parse(filepath.Join(d, "go.mod"), mdata, nil)
		if err != nil {
			return fmt.Errorf("workspace module %s: %w", u.Path, err)
		}
		p.UseDirs = append(p.UseDirs, d)
		if mf.Module != nil {
			p.Modules = append(p.Modules, mf.Module.Mod.Path)
		}
		if len(mf.Tool) > 0 {
			p.HasTools = true
		}
	}
	for _, r := range wf.Replace {
		if r.New.Version == "" && !filepath.IsAbs(r.New.Path) {
			np := filepath.Join(p.Dir, r.New.Path)
			if err := wf.AddReplace(r.Old.Path, r.Old.Version, np, ""); err != nil {
				return err
			}
		}
	}
	wf.Cleanup()
	out := modfile.Format(wf.Syntax)
	if err := os.WriteFile(filepath.Join(p.scratch, "go.work"), out, 0o644); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(p.Dir, "go.work.sum"), filepath.Join(p.scratch, "go.work.sum")); err != nil && !os.IsNotExist(err) {
		return err
	}
	p.env = []string{"GOWORK=" + filepath.Join(p.scratch, "go.work")}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// defaultName names a bundle after its first project's first main module:
// the last element of its path that is not a major version suffix.
func defaultName(p *project) string {
	if len(p.Modules) == 0 {
		return filepath.Base(p.Dir)
	}
	prefix, _, _ := module.SplitPathVersion(p.Modules[0])
	return path.Base(prefix)
}

// gitVersion is the project's version from its git tags (`git describe
// --tags`, e.g. v1.2.3 or v1.2.3-4-gabcdef0), or "" if dir is not in a git
// work tree or the description is not a semantic version.
func gitVersion(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--tags", "--match", "v[0-9]*", "--dirty")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(out))
	if !semver.IsValid(v) {
		return ""
	}
	return v
}
