package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/goenv"
	"github.com/ferry-dev/ferry/internal/install"
)

func defaultPrefix() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "ferry")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "ferry")
	}
	return "ferry"
}

func (a *app) installCmd() *cobra.Command {
	var (
		t      trustFlags
		prefix string
		goEnv  string
	)
	cmd := &cobra.Command{
		Use:   "install BUNDLE",
		Short: "Verify a bundle, then install it atomically (offline side)",
		Long: `Install verifies the bundle first (exactly as 'ferry verify'), and installs
nothing if anything is wrong. Then it installs atomically: the first
toolchain for this platform becomes PREFIX/go (the layout of the official
Go archive: add PREFIX/go/bin to PATH), the modules, toolchains and checksum
snapshot go into a module store under PREFIX, and your go environment (the
file 'go env GOENV' names) gets GOPROXY pointed at that store. GOSUMDB is
left alone: the go command keeps verifying every module against the
checksum database, served offline from the store.

Everything is staged beside the target and moved into place only when
complete, so a failure or a kill leaves the previous state intact and a
rerun finishes the job. Installing a second bundle adds to the store;
installing the same bundle twice changes nothing.`,
		Example: `  ferry install app.ferry
  ferry install app.ferry --prefix /opt/ferry --key team.pub
  export PATH=$HOME/.local/share/ferry/go/bin:$PATH`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			abs, err := filepath.Abs(prefix)
			if err != nil {
				return err
			}
			// The lock first: nothing may change the prefix between the
			// checks and the install, and a wait for another install
			// comes before verification, not between it and the copy.
			p, err := install.Lock(ctx, abs, a.logger())
			if err != nil {
				return err
			}
			defer p.Close()
			r, closeAll, rep, err := a.check(ctx, args[0], &t, installedBase(abs), true, filepath.Join(abs, "go"))
			if err != nil {
				return err
			}
			defer closeAll()
			if !rep.OK() {
				if a.json {
					a.printJSON(rep)
				}
				return fmt.Errorf("not installing: %w", rep.Err())
			}
			if goEnv == "" {
				if goEnv, err = goenv.DefaultFile(os.Environ()); err != nil {
					return fmt.Errorf("finding the go environment file: %w (use --goenv)", err)
				}
			}
			prog := a.newProgress()
			var total int64
			for _, it := range r.Manifest().Items {
				total += it.Size
			}
			prog.phase("install", total)
			res, err := p.Install(ctx, r, install.Options{
				GoEnvFile: goEnv,
				Platform:  runtime.GOOS + "/" + runtime.GOARCH,
				Jobs:      t.jobs,
				Signer:    rep.Signer,
				// verify left the encoded zips' h1: to install, which
				// decodes each once; recomputed whenever verify would have.
				CheckEncoded: rep.Recomputed,
				Progress:     func(done, _ int64) { prog.set(done) },
				Log:          a.logger(),
			})
			prog.finish()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(a.stderr, "warning:", w)
			}
			if res.AlreadyInstalled {
				fmt.Fprintf(a.stdout, "%s is already installed in %s; nothing changed\n", args[0], res.Prefix)
				return nil
			}
			fmt.Fprintf(a.stdout, "installed %s into %s (generation %s)\n", args[0], res.Prefix, res.Generation)
			fmt.Fprintf(a.stdout, "  module store: %d files added (%s), %d already present\n", res.Added, human(res.AddedBytes), res.Present)
			if res.Toolchain != "" {
				fmt.Fprintf(a.stdout, "  toolchain: %s at %s\n", res.Toolchain, filepath.Join(res.Prefix, "go"))
			}
			keys := make([]string, 0, len(res.GoEnv))
			for k := range res.GoEnv {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				ch := res.GoEnv[k]
				fmt.Fprintf(a.stdout, "  %s: %s=%s (was %q)\n", goEnv, k, ch[1], ch[0])
			}
			if res.Toolchain != "" {
				fmt.Fprintf(a.stdout, "add to PATH: export PATH=%s:$PATH\n", filepath.Join(res.Prefix, "go", "bin"))
			}
			return nil
		},
	}
	t.add(cmd)
	cmd.Flags().StringVar(&prefix, "prefix", defaultPrefix(), "where to install")
	cmd.Flags().StringVar(&goEnv, "goenv", "", "go environment `FILE` to update (default: what 'go env GOENV' names; \"-\" = leave it)")
	return cmd
}
