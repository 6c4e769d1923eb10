package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
	"github.com/ferry-dev/ferry/internal/store/ocistore"
)

// defaultStore is the store directory when --store is not given.
func defaultStore() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "ferry", "store")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "ferry", "store")
	}
	return filepath.Join("ferry", "store")
}

// storeFlags say where the store is.
type storeFlags struct {
	at        string
	plainHTTP bool
	ociCache  string
}

func (f *storeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.at, "store", defaultStore(), "store directory, or oci://REGISTRY/REPO (a repository in an OCI registry)")
	cmd.Flags().BoolVar(&f.plainHTTP, "plain-http", false, "talk to the --store oci:// registry over plain HTTP")
	cmd.Flags().StringVar(&f.ociCache, "oci-cache", "", "local cache of blobs read from an oci:// store (default: user cache dir/ferry/oci)")
}

// openStore opens the store the flags name: a directory, or oci://REGISTRY/REPO.
// Only a command that imports (create) makes a store directory that does
// not exist; the others say how to make one.
func openStore(ctx context.Context, f *storeFlags, create bool, log *slog.Logger) (store.Store, func() error, error) {
	if ref, ok := strings.CutPrefix(f.at, "oci://"); ok {
		cache := f.ociCache
		if cache == "" {
			d, err := os.UserCacheDir()
			if err != nil {
				return nil, nil, fmt.Errorf("finding a cache directory for the OCI store (give --oci-cache): %w", err)
			}
			cache = filepath.Join(d, "ferry", "oci")
		}
		st, err := ocistore.Open(ctx, ref, ocistore.Options{PlainHTTP: f.plainHTTP, CacheDir: cache, Log: log})
		if err != nil {
			return nil, nil, err
		}
		return st, func() error { return nil }, nil
	}
	if f.plainHTTP {
		return nil, nil, errors.New("--plain-http is for --store oci:// only")
	}
	st, err := local.OpenWith(f.at, local.Options{Existing: !create})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: create it with 'ferry import BUNDLE --store %s'", err, f.at)
	}
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}

// importBundles verifies each bundle exactly as 'ferry verify' does and
// imports it into st. It stops at the first bundle that fails. A store that
// decodes every encoded zip as it imports (store.HashChecker) checks their
// h1: hashes itself, so that each is decoded once.
func (a *app) importBundles(ctx context.Context, st store.Store, where string, paths []string, t *trustFlags) ([]store.BundleInfo, error) {
	var out []store.BundleInfo
	hc, leaveEncoded := st.(store.HashChecker)
	for _, p := range paths {
		src, closeAll, rep, err := a.check(ctx, p, t, storedBase(st, where), leaveEncoded)
		if err != nil {
			return out, err
		}
		if !rep.OK() {
			closeAll()
			return out, fmt.Errorf("%s: not imported: %w", p, rep.Err())
		}
		r := fileOf(src)
		info := store.BundleInfo{Signer: rep.Signer}
		if leaveEncoded && rep.Recomputed {
			err = hc.ImportChecked(ctx, r, info)
		} else {
			err = st.Import(ctx, r, info)
		}
		closeAll()
		if err != nil {
			return out, err // the store's errors name the bundle
		}
		// What the store recorded (an import of a bundle already there
		// changes nothing: its first import).
		if info, err = store.Info(ctx, st, r.Digest()); err != nil {
			return out, fmt.Errorf("%s: imported into store %s, but: %w", p, where, err)
		}
		out = append(out, info)
		if !a.json {
			fmt.Fprintf(a.stdout, "imported %s into store %s: %s, bundle digest %s, %d items (%s)\n",
				p, where, dash(strings.TrimSpace(info.Name+" "+info.Version)), info.Digest, info.Items, human(info.Size))
		}
	}
	return out, nil
}

func (a *app) importCmd() *cobra.Command {
	var (
		t  trustFlags
		sf storeFlags
	)
	cmd := &cobra.Command{
		Use:   "import BUNDLE...",
		Short: "Verify bundles and add them to a store that 'ferry serve' answers from",
		Long: `Import verifies each bundle exactly as 'ferry verify' does (nothing is imported
if anything is wrong) and adds it to the store: the bundle file is copied
whole, checked again, and listed only when all of it is on disk, so a running
'ferry serve' on the same store picks it up at its next refresh and never
sees half of it. Importing a bundle that is already there changes nothing.`,
		Example: `  ferry import app.ferry --key team.pub
  ferry import a.ferry b.ferry --store /srv/ferry/store`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, closeStore, err := openStore(ctx, &sf, true, a.logger())
			if err != nil {
				return err
			}
			defer closeStore()
			infos, err := a.importBundles(ctx, st, sf.at, args, &t)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(infos)
			}
			return nil
		},
	}
	t.add(cmd)
	sf.add(cmd)
	return cmd
}
