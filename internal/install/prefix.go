package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Paths under PREFIX (slash-separated, relative to PREFIX).
const (
	ferryDir    = ".ferry"
	genDir      = ".ferry/gen"
	tcDir       = ".ferry/toolchains"
	currentLink = ".ferry/current" // -> gen/NNNNNN: the commit point
	lockFile    = ".ferry/lock"
	modLink     = "mod" // -> .ferry/current/mod
	goLink      = "go"  // -> .ferry/current/go

	// In a generation directory:
	genMod   = "mod"        // the store tree (a GOPROXY directory)
	genGo    = "go"         // -> ../../toolchains/<dir>, if any toolchain
	genState = "state.json" // the installed bundles, as of this generation

	// legacyState is where ferry before the generation layout kept the
	// state; its PREFIX/mod and PREFIX/go pointed straight into
	// .ferry/gen/NNNNNN and .ferry/toolchains.
	legacyState = ".ferry/state.json"
)

// fixedTarget is what PREFIX/<link> points to, and never stops pointing
// to once made: .ferry/current/<link>.
func fixedTarget(link string) string { return ".ferry/current/" + link }

// Prefix is an install prefix whose lock this process holds. Every change to
// a prefix (Install, Rollback) is made through one, so that the lock covers
// everything from the first check to the last cleanup; Close releases it.
type Prefix struct {
	dir     string
	log     *slog.Logger
	unlock  func()
	existed bool // the prefix directory existed before Lock
}

// Lock takes the lock of the install prefix dir (creating dir and
// PREFIX/.ferry if needed), waiting while another ferry holds it, removes
// what interrupted runs left, and finishes the link repair of an interrupted
// layout change. Callers that verify a bundle before installing it take the
// lock first, so that nothing can change between the checks and the install
// made under the same lock.
func Lock(ctx context.Context, dir string, log *slog.Logger) (*Prefix, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		return nil, errors.New("locking prefix: no prefix given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("prefix %s: %w", dir, err)
	}
	p := &Prefix{dir: abs, log: log}
	if fi, err := os.Stat(abs); err == nil {
		if !fi.IsDir() {
			return nil, fmt.Errorf("prefix %s is not a directory: give another --prefix", abs)
		}
		p.existed = true
	}
	unlock, err := lockPrefix(ctx, p.path(lockFile), log)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("prefix %s is not writable: %w", abs, err)
	}
	p.unlock = unlock
	cleanLeftovers(abs, log)
	if err := p.removeUncommitted(); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.repairLinks(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Dir returns the prefix's absolute path.
func (p *Prefix) Dir() string { return p.dir }

func (p *Prefix) path(rel string) string { return filepath.Join(p.dir, filepath.FromSlash(rel)) }

// Close releases the lock. A prefix in which nothing was ever installed is
// first returned to how Lock found it: what this and earlier failed runs
// staged there is removed, under the lock (a process waiting for it starts
// over on the new lock file).
func (p *Prefix) Close() error {
	if p.unlock == nil {
		return nil
	}
	defer func() { p.unlock(); p.unlock = nil }()
	if p.committed() {
		return nil
	}
	for _, l := range []string{modLink, goLink} {
		if t, err := os.Readlink(p.path(l)); err == nil && t == fixedTarget(l) {
			os.Remove(p.path(l))
		}
	}
	// The lock file goes last, while still held.
	ents, _ := os.ReadDir(p.path(ferryDir))
	for _, e := range ents {
		if e.Name() != "lock" {
			if err := os.RemoveAll(p.path(ferryDir + "/" + e.Name())); err != nil {
				p.log.Warn("removing what a failed first install staged", "path", e.Name(), "err", err)
			}
		}
	}
	os.Remove(p.path(lockFile))
	os.Remove(p.path(ferryDir)) // only if empty
	if !p.existed {
		os.Remove(p.dir) // only if empty
	}
	return nil
}

// committed reports whether anything was ever installed in the prefix (in
// this layout or the legacy one).
func (p *Prefix) committed() bool {
	if _, err := os.Lstat(p.path(currentLink)); err == nil {
		return true
	}
	if _, err := os.Lstat(p.path(legacyState)); err == nil {
		return true
	}
	t, err := os.Readlink(p.path(modLink))
	return err == nil && strings.HasPrefix(filepath.ToSlash(t), genDir+"/")
}

// current returns the generation .ferry/current points to, "" if none.
func (p *Prefix) current() (string, error) {
	t, err := os.Readlink(p.path(currentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", p.path(currentLink), err)
	}
	name, ok := strings.CutPrefix(filepath.ToSlash(t), "gen/")
	if _, isGen := genNumber(name); !ok || !isGen {
		return "", fmt.Errorf("%s points to %q, not to a generation: not made by ferry; move it away", p.path(currentLink), t)
	}
	return name, nil
}

// removeUncommitted removes the generations above the current one: sealed
// by an install that was killed before its commit, or left by a rollback
// (nothing can switch to them again).
func (p *Prefix) removeUncommitted() error {
	cur, err := p.current()
	if err != nil || cur == "" {
		return err
	}
	n, _ := genNumber(cur)
	ents, err := os.ReadDir(p.path(genDir))
	if err != nil {
		return fmt.Errorf("listing generations: %w", err)
	}
	for _, e := range ents {
		if k, ok := genNumber(e.Name()); ok && k > n {
			p.log.Info("removing a generation that was never committed or was rolled back from", "generation", e.Name())
			if err := os.RemoveAll(p.genPath(e.Name())); err != nil {
				return fmt.Errorf("removing generation %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// genPath returns the path of generation gen, or of a file in it.
func (p *Prefix) genPath(gen string, elem ...string) string {
	return filepath.Join(append([]string{p.path(genDir), gen}, elem...)...)
}

// checkLinks refuses PREFIX/mod and PREFIX/go when they are something
// ferry did not make: anything but the fixed links or the legacy ones.
func (p *Prefix) checkLinks() error {
	for _, l := range []struct{ name, legacyDir string }{{modLink, genDir}, {goLink, tcDir}} {
		fi, err := os.Lstat(p.path(l.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("inspecting %s: %w", p.path(l.name), err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(p.path(l.name))
			if err != nil {
				return fmt.Errorf("reading symlink %s: %w", p.path(l.name), err)
			}
			if t == fixedTarget(l.name) || isLegacyTarget(t, l.legacyDir) {
				continue
			}
		}
		return fmt.Errorf("%s exists and is not a link ferry made: not installed by ferry; move it away first", p.path(l.name))
	}
	return nil
}

// isLegacyTarget reports whether a link target is one ferry before the
// generation layout made: DIR/NAME with a single, non-staging NAME.
func isLegacyTarget(target, dir string) bool {
	name, ok := strings.CutPrefix(filepath.ToSlash(target), dir+"/")
	return ok && name != "" && !strings.Contains(name, "/") && !strings.Contains(name, ".tmp-") && name != ".." && name != "."
}

// ensureLink makes PREFIX/<link> the fixed link .ferry/current/<link>,
// creating it or replacing a legacy one by rename.
func (p *Prefix) ensureLink(link string) error {
	t, err := os.Readlink(p.path(link))
	switch {
	case err == nil && t == fixedTarget(link):
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading symlink %s: %w", p.path(link), err)
	}
	return swapSymlink(p.path(link), fixedTarget(link))
}

// repairLinks finishes a layout change a kill interrupted: once
// .ferry/current exists, PREFIX/mod and PREFIX/go are the fixed links (PREFIX/go only
// if the current generation has a toolchain) and the legacy state file is gone.
func (p *Prefix) repairLinks() error {
	cur, err := p.current()
	if err != nil || cur == "" {
		return err
	}
	if err := p.checkLinks(); err != nil {
		return err
	}
	if err := p.ensureLink(modLink); err != nil {
		return err
	}
	if _, err := os.Lstat(p.genPath(cur, genGo)); err == nil {
		if err := p.ensureLink(goLink); err != nil {
			return err
		}
	}
	if err := os.Remove(p.path(legacyState)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p.path(legacyState), err)
	}
	return nil
}

// genToolchain returns the toolchain directory generation gen's go link
// names, "" if it has none.
func (p *Prefix) genToolchain(gen string) (string, error) {
	t, err := os.Readlink(p.genPath(gen, genGo))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the toolchain of generation %s: %w", gen, err)
	}
	name, ok := strings.CutPrefix(filepath.ToSlash(t), "../../toolchains/")
	if !ok || !isLegacyTarget("d/"+name, "d") {
		return "", fmt.Errorf("generation %s: go link points to %q, not to a toolchain", gen, t)
	}
	return name, nil
}

// legacyTarget returns the NAME of a legacy PREFIX/<link> -> DIR/NAME, ""
// if the link is not a legacy one.
func (p *Prefix) legacyTarget(link, dir string) string {
	t, err := os.Readlink(p.path(link))
	if err != nil || !isLegacyTarget(t, dir) {
		return ""
	}
	return filepath.Base(t)
}
