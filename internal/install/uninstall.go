package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/ferry-dev/ferry/internal/durable"
	"github.com/ferry-dev/ferry/internal/goenv"
)

// goenvRecordFile records, for each go env file install changed, the value
// each key had before ferry first set it (null: it was not set), so that
// Uninstall can put it back.
const goenvRecordFile = ".ferry/goenv.json"

type goenvRecord struct {
	Files map[string]map[string]*string `json:"files"`
}

func (p *Prefix) readGoEnvRecord() (*goenvRecord, error) {
	rec := &goenvRecord{Files: map[string]map[string]*string{}}
	data, err := os.ReadFile(p.path(goenvRecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading what install changed in go env files: %w", err)
	}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p.path(goenvRecordFile), err)
	}
	if rec.Files == nil {
		rec.Files = map[string]map[string]*string{}
	}
	return rec, nil
}

// recordGoEnv records the values of the keys of want that setting them in
// envFile (whose values now are cur) replaces, unless recorded already,
// before anything is changed.
func (p *Prefix) recordGoEnv(envFile string, cur, want map[string]string) error {
	rec, err := p.readGoEnvRecord()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(envFile)
	if err != nil {
		return fmt.Errorf("recording the go env: %w", err)
	}
	changed := false
	for k, v := range want {
		if cur[k] == v {
			continue
		}
		if _, ok := rec.Files[abs][k]; ok {
			continue
		}
		if rec.Files[abs] == nil {
			rec.Files[abs] = map[string]*string{}
		}
		var orig *string
		if old, had := cur[k]; had {
			orig = &old
		}
		rec.Files[abs][k] = orig
		changed = true
	}
	if !changed {
		return nil
	}
	data, err := json.MarshalIndent(rec, "", "\t")
	if err != nil {
		return fmt.Errorf("recording the go env: %w", err)
	}
	if err := writeBytes(p.path(goenvRecordFile), append(data, '\n')); err != nil {
		return err
	}
	return durable.Dir(p.path(ferryDir))
}

// UninstallReport says what Uninstall did.
type UninstallReport struct {
	Prefix string `json:"prefix"`
	// Removed are the bundles that were installed.
	Removed []BundleRecord `json:"removed"`
	// GoEnv maps "FILE: KEY" to [ferry's value, the value put back] ("" for unset).
	GoEnv    map[string][2]string `json:"goenv,omitempty"`
	Warnings []string             `json:"warnings,omitempty"`
}

// Uninstall locks prefix and undoes every install into it.
func Uninstall(ctx context.Context, prefix string, log *slog.Logger) (*UninstallReport, error) {
	abs, err := filepath.Abs(prefix)
	if err != nil {
		return nil, fmt.Errorf("uninstalling: %w", err)
	}
	if _, err := os.Stat(filepath.Join(abs, ferryDir)); err != nil {
		return nil, fmt.Errorf("uninstalling: %s holds no ferry install", abs)
	}
	p, err := Lock(ctx, abs, log)
	if err != nil {
		return nil, fmt.Errorf("uninstalling %s: %w", abs, err)
	}
	defer p.Close()
	return p.Uninstall(ctx)
}

// Uninstall undoes every install into the locked prefix: the go env values
// install replaced are put back where they still hold ferry's value, then
// one removal makes the prefix hold nothing installed (.ferry/current, or a
// legacy prefix's state file), then PREFIX/mod, PREFIX/go and the rest of
// PREFIX/.ferry go (Close removes what is left, lock last) and the prefix
// directory too if that leaves it empty. A kill at any point leaves either
// the install (and a rerun finishes) or nothing installed.
func (p *Prefix) Uninstall(ctx context.Context) (*UninstallReport, error) {
	cur, err := p.readInstalled()
	if err != nil {
		return nil, err
	}
	rep := &UninstallReport{Prefix: p.dir, Removed: cur.state.Bundles}

	// The go env: put back what install replaced.
	rec, err := p.readGoEnvRecord()
	if err != nil {
		return nil, err
	}
	ours := fileURL(filepath.Join(p.dir, modLink))
	files := make([]string, 0, len(rec.Files))
	for f := range rec.Files {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, file := range files {
		env, err := goenv.Read(file)
		if err != nil {
			return nil, fmt.Errorf("uninstalling: %w", err)
		}
		for k, orig := range rec.Files[file] {
			now, set := env[k]
			switch {
			case orig != nil && set && now == *orig, orig == nil && !set:
				continue // already put back
			case now != ours:
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: %s=%s was changed since ferry set it; left as it is", file, k, now))
				continue
			}
			back := ""
			if orig == nil {
				_, err = goenv.Unset(file, k)
			} else {
				back = *orig
				_, err = goenv.Set(file, map[string]string{k: back})
			}
			if err != nil {
				return nil, fmt.Errorf("uninstalling: putting back %s in %s: %w", k, file, err)
			}
			if rep.GoEnv == nil {
				rep.GoEnv = map[string][2]string{}
			}
			rep.GoEnv[file+": "+k] = [2]string{now, back}
		}
	}

	// The commit: nothing is installed once this is gone.
	for _, f := range []string{currentLink, legacyState} {
		if err := os.Remove(p.path(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("uninstalling: %w", err)
		}
	}
	if err := durable.Dir(p.path(ferryDir)); err != nil {
		return nil, err
	}

	// The rest: the links (the fixed ones, or a legacy prefix's); Close
	// removes .ferry, and the prefix if it is empty then.
	for _, l := range []struct{ name, legacyDir string }{{modLink, genDir}, {goLink, tcDir}} {
		if t, err := os.Readlink(p.path(l.name)); err == nil && (t == fixedTarget(l.name) || isLegacyTarget(t, l.legacyDir)) {
			if err := os.Remove(p.path(l.name)); err != nil {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("removing %s: %v", p.path(l.name), err))
			}
		}
	}
	p.existed = false
	p.log.Info("uninstalled", "prefix", p.dir, "bundles", len(rep.Removed))
	return rep, nil
}
