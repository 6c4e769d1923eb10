package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/install"
)

func (a *app) uninstallCmd() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Undo every install into a prefix, go env included",
		Long: `Uninstall puts back the go env values install replaced (GOPROXY), where they
still hold what ferry set (a value you changed since is left, with a
warning), then removes what install made: PREFIX/mod, PREFIX/go and
PREFIX/.ferry, and PREFIX itself if that leaves it empty. One removal is the
point after which nothing is installed: a kill before it leaves the install
as it was, and a rerun finishes.`,
		Example: `  ferry uninstall
  ferry uninstall --prefix /opt/ferry --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := install.Uninstall(cmd.Context(), prefix, a.logger())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(rep)
			}
			a.printUninstall(rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", defaultPrefix(), "install prefix")
	return cmd
}

func (a *app) printUninstall(rep *install.UninstallReport) {
	fmt.Fprintf(a.stdout, "uninstalled %s (%d bundle(s))\n", rep.Prefix, len(rep.Removed))
	keys := make([]string, 0, len(rep.GoEnv))
	for k := range rep.GoEnv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := rep.GoEnv[k]
		back := fmt.Sprintf("%q", v[1])
		if v[1] == "" {
			back = "unset"
		}
		fmt.Fprintf(a.stdout, "  %s: %s again (was %s)\n", k, back, v[0])
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(a.stderr, "warning:", w)
	}
}
