package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/install"
	"github.com/ferry-dev/ferry/internal/store"
)

// readManifestArg reads the ferry manifest of a bundle file, or a manifest
// file exported with 'ferry state export'.
func readManifestArg(path string) (*bundle.Manifest, string, error) {
	if r, err := bundle.Open(path); err == nil {
		defer r.Close()
		return r.Manifest(), r.ManifestDigest(), nil
	} else if !strings.HasSuffix(path, ".json") {
		return nil, "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	m, err := bundle.DecodeManifest(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: not a bundle or ferry manifest: %w", path, err)
	}
	return m, bundle.Digest(data), nil
}

func (a *app) diffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff A B",
		Short: "Show what bundle B adds, removes and changes against bundle A",
		Long: `Diff compares two bundles (or manifests exported with 'ferry state export')
by their tables of contents: module versions added, removed and moved,
toolchains, images, and the blobs a delta of B against A would carry.
The exit status is 0 whether or not they differ.`,
		Example: `  ferry diff app-v1.ferry app-v2.ferry
  ferry diff far-side.json app-v2.ferry --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ma, _, err := readManifestArg(args[0])
			if err != nil {
				return err
			}
			mb, _, err := readManifestArg(args[1])
			if err != nil {
				return err
			}
			d := bundle.Compare(ma, mb)
			if a.json {
				return a.printJSON(d)
			}
			printDiff(a.stdout, args[0], args[1], d)
			return nil
		},
	}
}

func printDiff(w io.Writer, nameA, nameB string, d *bundle.Diff) {
	fmt.Fprintf(w, "%s -> %s\n", nameA, nameB)
	if d.Empty() {
		fmt.Fprintln(w, "  no differences")
		return
	}
	for _, c := range d.Changed {
		fmt.Fprintf(w, "  ~ %s %s -> %s\n", c.Path, c.From, c.To)
	}
	for _, m := range d.Added {
		fmt.Fprintf(w, "  + %s %s\n", m.Path, m.Version)
	}
	for _, m := range d.Removed {
		fmt.Fprintf(w, "  - %s %s\n", m.Path, m.Version)
	}
	for _, t := range d.ToolchainsAdded {
		fmt.Fprintf(w, "  + toolchain %s\n", t)
	}
	for _, t := range d.ToolchainsRemoved {
		fmt.Fprintf(w, "  - toolchain %s\n", t)
	}
	for _, i := range d.ImagesAdded {
		fmt.Fprintf(w, "  + image %s\n", i)
	}
	for _, i := range d.ImagesChanged {
		fmt.Fprintf(w, "  ~ image %s\n", i)
	}
	for _, i := range d.ImagesRemoved {
		fmt.Fprintf(w, "  - image %s\n", i)
	}
	fmt.Fprintf(w, "modules: %d changed, %d added, %d removed; blobs: %d new (%s), %d shared, %d dropped (%s)",
		len(d.Changed), len(d.Added), len(d.Removed), d.NewBlobs, human(d.NewBytes), d.SharedBlobs, d.DroppedBlobs, human(d.DroppedBytes))
	if d.SumDBTreeFrom != d.SumDBTreeTo {
		fmt.Fprintf(w, "; checksum database tree %d -> %d", d.SumDBTreeFrom, d.SumDBTreeTo)
	}
	fmt.Fprintln(w)
}

func (a *app) stateCmd() *cobra.Command {
	var (
		prefix string
		sf     storeFlags
	)
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Show the bundles installed in a prefix, or imported into a store",
		Long: `State lists what is installed in a prefix (default) or, with --store, what a
store holds: each bundle's name, version, digest (an install's manifest
digest, a store's bundle digest: 'ferry ls' shows both, and commands take
either), signer and date, and for a delta the bundle it builds on. The
current install is marked with '*'.`,
		Example: `  ferry state
  ferry state --prefix /opt/ferry --json
  ferry state --store /srv/ferry/store
  ferry state export -o far-side.json    # for 'ferry pack --base-manifest'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if cmd.Flags().Changed("store") {
				return a.storeState(ctx, &sf)
			}
			st, err := install.ReadState(prefix)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(st)
			}
			if len(st.Bundles) == 0 {
				fmt.Fprintf(a.stdout, "nothing installed in %s\n", prefix)
				return nil
			}
			cur, _ := install.CurrentGeneration(prefix)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\tGEN\tNAME\tVERSION\tMANIFEST DIGEST\tTOOLCHAIN\tSIGNER\tINSTALLED\tBASE")
			for _, b := range st.Bundles {
				mark := ""
				if cur != "" && cur == b.Generation {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, b.Generation, dash(b.Name), dash(b.Version),
					short(b.ManifestDigest), dash(b.Toolchain), dash(b.Signer), b.Installed, dashShort(b.Base))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", defaultPrefix(), "install prefix")
	sf.add(cmd)
	cmd.AddCommand(a.stateExportCmd())
	return cmd
}

func (a *app) storeState(ctx context.Context, sf *storeFlags) error {
	st, closeStore, err := openStore(ctx, sf, false, a.logger())
	if err != nil {
		return err
	}
	defer closeStore()
	infos, err := st.List(ctx)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(infos)
	}
	if len(infos) == 0 {
		fmt.Fprintf(a.stdout, "store %s is empty\n", sf.at)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tBUNDLE DIGEST\tSIZE\tITEMS\tSIGNER\tIMPORTED\tBASE")
	for _, in := range infos {
		base := "-"
		if m, err := st.Manifest(ctx, in.Digest); err == nil && m.Base != nil {
			base = m.Base.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", dash(in.Name), dash(in.Version), short(in.Digest),
			human(in.Size), in.Items, dash(in.Signer), in.Imported.UTC().Format("2006-01-02T15:04:05Z"), base)
	}
	return tw.Flush()
}

func (a *app) stateExportCmd() *cobra.Command {
	var prefix, out string
	cmd := &cobra.Command{
		Use:   "export [BUNDLE]",
		Short: "Write the manifest of an installed bundle, to pack a delta against it",
		Long: `Export writes the ferry manifest of an installed bundle (default: the last one
installed) byte for byte, so that the connected side can pack a delta that
carries only what this side lacks: 'ferry pack --base-manifest FILE'.
BUNDLE is NAME@VERSION, a version, a name, a generation, or at least 8 hex
digits of its bundle or manifest digest ('ferry ls' shows both).`,
		Example: `  ferry state export -o far-side.json
  ferry state export app@v1.2.0 --prefix /opt/ferry -o far-side.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := install.ReadState(prefix)
			if err != nil {
				return err
			}
			if len(st.Bundles) == 0 {
				return fmt.Errorf("nothing installed in %s", prefix)
			}
			i := len(st.Bundles) - 1
			if len(args) == 1 {
				if i, err = st.FindRecord(args[0]); err != nil {
					return err
				}
			}
			rec := st.Bundles[i]
			p, err := install.ManifestFile(prefix, rec.ManifestDigest)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s was installed by an older ferry that did not record its manifest: reinstall it, or pack against the bundle file with --base", rec.Label())
			}
			if err != nil {
				return err
			}
			if bundle.Digest(data) != rec.ManifestDigest {
				return fmt.Errorf("%s: recorded manifest does not match digest %s", p, rec.ManifestDigest)
			}
			if out == "" || out == "-" {
				_, err = a.stdout.Write(data)
				return err
			}
			if err := writeFileAtomic(out, data); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(a.stderr, "ferry: wrote the manifest of %s to %s\n", rec.Label(), out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", defaultPrefix(), "install prefix")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	return cmd
}

func (a *app) rollbackCmd() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "rollback [TO]",
		Short: "Go back to the state right after an earlier install",
		Long: `Rollback points the prefix back at the module store and toolchain it had
right after an earlier install (default: the one before the last), in one
atomic step as install does: the generation that install made becomes
current again. Only the previous generation is kept, so rollback goes back
one install; with one bundle installed, rollback goes back past it, which
is 'ferry uninstall'. The bundles installed after it are dropped from 'ferry state';
installing one of them again brings it back.
TO is NAME@VERSION, a version, a name, a generation, or at least 8 hex digits
of its bundle or manifest digest ('ferry ls' shows both).`,
		Example: `  ferry rollback
  ferry rollback app@v1.2.0 --prefix /opt/ferry`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to := ""
			if len(args) == 1 {
				to = args[0]
			}
			rep, err := install.Rollback(cmd.Context(), prefix, to, a.logger())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(rep)
			}
			if rep.Uninstalled != nil {
				fmt.Fprintf(a.stdout, "rolled back %s past its first install: ", rep.Prefix)
				a.printUninstall(rep.Uninstalled)
				return nil
			}
			fmt.Fprintf(a.stdout, "rolled back %s to %s (generation %s, was %s)\n", rep.Prefix, rep.To.Label(), rep.Generation, rep.From)
			for _, b := range rep.Dropped {
				fmt.Fprintf(a.stdout, "  no longer installed: %s\n", b.Label())
			}
			if rep.Toolchain != "" {
				fmt.Fprintf(a.stdout, "  toolchain: %s\n", rep.Toolchain)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", defaultPrefix(), "install prefix")
	return cmd
}

func (a *app) pruneCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "prune BUNDLE...",
		Short: "Drop bundles from a store, keeping what other bundles still need",
		Long: `Prune removes bundles from a store. Blobs that another stored bundle still
reads (a delta reads what it left out from its base) are kept: the store
counts references by blob. BUNDLE is NAME@VERSION, a name, or at least 8
hex digits of its bundle or manifest digest ('ferry ls' shows both).`,
		Example: `  ferry prune app@v1.0.0 --store /srv/ferry/store`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, closeStore, err := openStore(ctx, &sf, false, a.logger())
			if err != nil {
				return err
			}
			defer closeStore()
			p, ok := st.(store.Pruner)
			if !ok {
				return fmt.Errorf("store %s cannot drop bundles", sf.at)
			}
			var reps []store.PruneReport
			for _, q := range args {
				infos, err := st.List(ctx)
				if err != nil {
					return err
				}
				in, err := store.Find(infos, q)
				if err != nil {
					return fmt.Errorf("store %s: %w", sf.at, err)
				}
				rep, err := p.Prune(ctx, in.Digest)
				if err != nil {
					return err
				}
				reps = append(reps, rep)
				if !a.json {
					fmt.Fprintf(a.stdout, "pruned %s %s (%s): %s freed, %d blobs (%s) kept for other bundles\n",
						dash(in.Name), dash(in.Version), short(in.Digest), human(rep.FreedBytes), rep.KeptBlobs, human(rep.KeptBytes))
				}
			}
			if a.json {
				return a.printJSON(reps)
			}
			return nil
		},
	}
	sf.add(cmd)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

func dashShort(d string) string { return dash(short(d)) }

// writeFileAtomic writes data to path through a temporary file and rename.
func writeFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
