package install

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// RollbackReport says what Rollback changed.
type RollbackReport struct {
	Prefix string `json:"prefix"`
	// To is the bundle whose install the prefix is back at.
	To BundleRecord `json:"to"`
	// From and Generation are the store generations before and after.
	From       string `json:"from"`
	Generation string `json:"generation"`
	Toolchain  string `json:"toolchain,omitempty"`
	// Dropped are the bundles installed after To, now no longer installed.
	Dropped []BundleRecord `json:"dropped"`
	// Uninstalled is set when the rollback went back past the first
	// install: everything was uninstalled (To is empty).
	Uninstalled *UninstallReport `json:"uninstalled,omitempty"`
}

// Rollback puts the prefix back to the state right after an earlier
// install: .ferry/current is switched back to the generation that install
// made (its store, toolchain and state), so the bundles installed after it
// are no longer listed. to names the bundle (see FindRecord); "" means the
// one before the last, and with one bundle installed, back past it: the
// prefix is uninstalled (Uninstall). It locks the prefix; the go env file is not touched
// (GOPROXY still names PREFIX/mod).
func Rollback(ctx context.Context, prefix, to string, log *slog.Logger) (*RollbackReport, error) {
	abs, err := filepath.Abs(prefix)
	if err != nil {
		return nil, fmt.Errorf("rolling back: %w", err)
	}
	if _, err := os.Stat(filepath.Join(abs, ferryDir)); err != nil {
		return nil, fmt.Errorf("rolling back: %s holds no ferry install", abs)
	}
	p, err := Lock(ctx, abs, log)
	if err != nil {
		return nil, fmt.Errorf("rolling back %s: %w", abs, err)
	}
	defer p.Close()
	return p.Rollback(ctx, to)
}

// Rollback is the package's Rollback on a locked prefix. Switching
// .ferry/current is its one change, so a kill leaves the prefix where it
// was or where it was going.
func (p *Prefix) Rollback(ctx context.Context, to string) (*RollbackReport, error) {
	cur, err := p.readInstalled()
	if err != nil {
		return nil, err
	}
	st := cur.state
	if cur.legacy {
		return nil, fmt.Errorf("rolling back %s: it was installed by an older ferry, whose generations cannot be rolled back to; install a bundle first", p.dir)
	}
	var i int
	if to == "" {
		if len(st.Bundles) == 1 {
			// Back past the first install: the state before it, which
			// is nothing installed.
			un, err := p.Uninstall(ctx)
			if err != nil {
				return nil, err
			}
			return &RollbackReport{Prefix: p.dir, From: cur.gen, Dropped: un.Removed, Uninstalled: un}, nil
		}
		if len(st.Bundles) < 2 {
			return nil, fmt.Errorf("rolling back %s: nothing installed", p.dir)
		}
		i = len(st.Bundles) - 2
	} else if i, err = st.FindRecord(to); err != nil {
		return nil, fmt.Errorf("rolling back %s: %w", p.dir, err)
	}
	rec := st.Bundles[i]
	if rec.Generation == cur.gen {
		return nil, fmt.Errorf("rolling back %s: %s is the last bundle installed: nothing to roll back", p.dir, rec.Label())
	}
	gone := fmt.Errorf("rolling back %s: generation %q of %s is gone (only the previous one is kept)", p.dir, rec.Generation, rec.Label())
	if _, ok := genNumber(rec.Generation); !ok {
		return nil, gone
	}
	target, err := readStateFile(p.genPath(rec.Generation, genState))
	if err != nil {
		return nil, fmt.Errorf("rolling back %s: %w", p.dir, err)
	}
	if n := len(target.Bundles); n == 0 || target.Bundles[n-1].ManifestDigest != rec.ManifestDigest {
		return nil, gone
	}
	tcName, err := p.genToolchain(rec.Generation)
	if err != nil {
		return nil, fmt.Errorf("rolling back %s: %w", p.dir, err)
	}
	if tcName != "" {
		if fi, err := os.Stat(filepath.Join(p.path(tcDir), tcName, "bin")); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("rolling back %s: toolchain %s of %s is gone", p.dir, tcName, rec.Label())
		}
	}
	rep := &RollbackReport{Prefix: p.dir, To: rec, From: cur.gen, Generation: rec.Generation, Dropped: append([]BundleRecord(nil), st.Bundles[i+1:]...)}
	if tcName != "" {
		rep.Toolchain = tcName[:len(tcName)-len(filepath.Ext(tcName))]
	}
	if err := swapSymlink(p.path(currentLink), "gen/"+rec.Generation); err != nil {
		return nil, err
	}
	p.log.Info("rolled back", "prefix", p.dir, "to", rec.Label(), "generation", rec.Generation, "dropped", len(rep.Dropped))
	return rep, nil
}

// Label names a record for people: "NAME VERSION (sha256:1234abcd5678)".
func (b BundleRecord) Label() string {
	d := b.ManifestDigest
	if len(d) > len("sha256:")+12 {
		d = d[:len("sha256:")+12]
	}
	name := strings.TrimSpace(b.Name + " " + b.Version)
	if name == "" {
		return d
	}
	return name + " (" + d + ")"
}

// FindRecord finds an installed bundle by what a user types: a manifest or
// bundle digest (or a prefix of its hex of at least 8 digits), NAME@VERSION,
// NAME VERSION, a version, a name (its last install), or a store
// generation number. It refuses an ambiguous answer.
func (st *State) FindRecord(q string) (int, error) {
	q = strings.TrimSpace(q)
	var hits []int
	seen := map[int]bool{}
	add := func(i int) {
		if !seen[i] {
			seen[i] = true
			hits = append(hits, i)
		}
	}
	for i, b := range st.Bundles {
		if bundle.MatchDigest(q, b.ManifestDigest) || bundle.MatchDigest(q, b.Digest) {
			add(i)
		}
		if q == b.Name+"@"+b.Version || q == b.Name+" "+b.Version || q == b.Generation {
			add(i)
		}
		if n, ok := genNumber(q); ok {
			if m, ok2 := genNumber(b.Generation); ok2 && n == m {
				add(i)
			}
		}
	}
	if len(hits) == 0 {
		// A bare version or name: the last install of it.
		for i := len(st.Bundles) - 1; i >= 0; i-- {
			if b := st.Bundles[i]; b.Version == q || b.Name == q {
				add(i)
				break
			}
		}
	}
	switch len(hits) {
	case 0:
		return 0, fmt.Errorf("no installed bundle matches %q (see ferry state): %s", q, bundle.RefHint(q, "NAME@VERSION, NAME, VERSION, a generation"))
	case 1:
		return hits[0], nil
	}
	names := make([]string, len(hits))
	for k, i := range hits {
		names[k] = st.Bundles[i].Label()
	}
	return 0, fmt.Errorf("%q matches %d installed bundles: %s", q, len(hits), strings.Join(names, ", "))
}
