package install

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
}

// Rollback puts the prefix back to the state right after an earlier
// install: PREFIX/mod to the store generation that install made, PREFIX/go
// to the toolchain it left, and the bundles installed after it are dropped
// from the state (their generations stay on disk until removed by hand).
// to names the bundle (see FindRecord); "" means the one before the last.
// Each change is one atomic symlink swap, as in Install, under the prefix
// lock; the go env file is not touched (GOPROXY still names PREFIX/mod).
func Rollback(ctx context.Context, prefix, to string, log *slog.Logger) (*RollbackReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prefix, err := filepath.Abs(prefix)
	if err != nil {
		return nil, fmt.Errorf("rolling back: %w", err)
	}
	if _, err := os.Stat(filepath.Join(prefix, ferryDir)); err != nil {
		return nil, fmt.Errorf("rolling back: %s holds no ferry install", prefix)
	}
	unlock, err := lockPrefix(ctx, filepath.Join(prefix, ferryDir, "lock"), log)
	if err != nil {
		return nil, fmt.Errorf("rolling back %s: %w", prefix, err)
	}
	defer unlock()
	cleanLeftovers(prefix, log)

	st, err := ReadState(prefix)
	if err != nil {
		return nil, err
	}
	var i int
	if to == "" {
		if len(st.Bundles) < 2 {
			return nil, fmt.Errorf("rolling back %s: %d bundle(s) installed, nothing earlier to go back to", prefix, len(st.Bundles))
		}
		i = len(st.Bundles) - 2
	} else if i, err = st.FindRecord(to); err != nil {
		return nil, fmt.Errorf("rolling back %s: %w", prefix, err)
	}
	rec := st.Bundles[i]
	curGen, err := currentTarget(prefix, modLink, genDir)
	if err != nil {
		return nil, err
	}
	// TO already last: nothing to do, unless an interrupted rollback wrote
	// the state but did not swap PREFIX/mod yet; then finish it.
	if i == len(st.Bundles)-1 && curGen == rec.Generation {
		return nil, fmt.Errorf("rolling back %s: %s is the last bundle installed: nothing to roll back", prefix, rec.Label())
	}
	genPath := filepath.Join(prefix, filepath.FromSlash(genDir), rec.Generation)
	if fi, err := os.Stat(genPath); err != nil || !fi.IsDir() || rec.Generation == "" {
		return nil, fmt.Errorf("rolling back %s: store generation %q of %s is gone", prefix, rec.Generation, rec.Label())
	}
	// The toolchain PREFIX/go pointed to after that install.
	tcName := rec.ToolchainDir
	for j := i; tcName == "" && j >= 0; j-- {
		tcName = st.Bundles[j].ToolchainDir
	}
	if tcName != "" {
		if fi, err := os.Stat(filepath.Join(prefix, filepath.FromSlash(tcDir), tcName, "bin")); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("rolling back %s: toolchain %s of %s is gone", prefix, tcName, rec.Label())
		}
	}
	rep := &RollbackReport{Prefix: prefix, To: rec, From: curGen, Generation: rec.Generation, Dropped: append([]BundleRecord(nil), st.Bundles[i+1:]...)}
	if tcName != "" {
		rep.Toolchain = tcName[:len(tcName)-len(filepath.Ext(tcName))]
	}

	// The new state is written first: a kill before the swaps leaves a
	// state that names fewer bundles than the store holds, which the next
	// install or rollback repairs; never one that names what is not there.
	st.Bundles = st.Bundles[:i+1]
	if err := writeState(prefix, st); err != nil {
		return nil, err
	}
	if curGen != rec.Generation {
		if err := swapSymlink(filepath.Join(prefix, modLink), genDir+"/"+rec.Generation); err != nil {
			return nil, err
		}
	}
	if tcName != "" {
		if cur, _ := currentTarget(prefix, goLink, tcDir); cur != tcName {
			if err := swapSymlink(filepath.Join(prefix, goLink), tcDir+"/"+tcName); err != nil {
				return nil, err
			}
		}
	}
	log.Info("rolled back", "prefix", prefix, "to", rec.Label(), "generation", rec.Generation, "dropped", len(rep.Dropped))
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
	hexq := strings.TrimPrefix(q, "sha256:")
	for i, b := range st.Bundles {
		for _, d := range []string{b.ManifestDigest, b.Digest} {
			if len(hexq) >= 8 && strings.HasPrefix(strings.TrimPrefix(d, "sha256:"), hexq) {
				add(i)
			}
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
		return 0, fmt.Errorf("no installed bundle matches %q (see ferry state)", q)
	case 1:
		return hits[0], nil
	}
	names := make([]string, len(hits))
	for k, i := range hits {
		names[k] = st.Bundles[i].Label()
	}
	return 0, fmt.Errorf("%q matches %d installed bundles: %s", q, len(hits), strings.Join(names, ", "))
}
