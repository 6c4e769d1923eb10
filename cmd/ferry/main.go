// Command ferry carries Go development across an air gap: it packs Go
// toolchains, complete module sets and their checksum-database proofs into
// one signed, content-addressed bundle, and verifies and installs that
// bundle offline so that the go command works with GOSUMDB left on.
//
// This file wires the command line only; each capability lives in a package
// under internal/.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/buildinfo"
)

// app holds the global flags shared by every command.
type app struct {
	json    bool
	verbose bool
	quiet   bool
	stdout  io.Writer
	stderr  io.Writer
}

func main() {
	ctx, stop := signalContext(context.Background(), os.Stderr)
	a := &app{stdout: os.Stdout, stderr: os.Stderr}
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// exitError ends the program with a code after the command printed its own report.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Carry Go toolchains and modules across an air gap, checksum database included",
		Long: `ferry carries Go development across an air gap.

On the connected side, 'ferry pack' collects Go toolchains for every target
platform, the complete module set of your projects (all platforms, tests,
tools) and the checksum-database proofs for all of it into one signed,
content-addressed bundle (an OCI image layout in a tar file).

On the offline side, 'ferry verify' checks every byte of a bundle and
'ferry install' installs it atomically, so that plain 'go build', 'go test',
'go install tool@version' and GOTOOLCHAIN switching work with no network and
GOSUMDB left at its default.

  ferry pack . -o app.ferry --platform linux/amd64,windows/amd64
  ferry verify app.ferry
  ferry install app.ferry --prefix ~/ferry && export PATH=~/ferry/go/bin:$PATH`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Version(),
	}
	root.SetVersionTemplate("ferry {{.Version}}\n") // the same line as 'ferry version'
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print machine-readable JSON on standard output")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log what is being done")
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "no progress bars")
	root.AddCommand(a.packCmd(), a.verifyCmd(), a.installCmd(), a.lsCmd(), a.keyCmd(), a.versionCmd())
	root.AddCommand(a.serveCmd(), a.importCmd())
	root.AddCommand(a.diffCmd(), a.stateCmd(), a.rollbackCmd(), a.uninstallCmd(), a.pruneCmd())
	root.AddCommand(a.imageCmd())
	root.AddCommand(a.pushCmd())
	return root
}

func (a *app) logger() *slog.Logger {
	level := slog.LevelWarn
	if a.verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ferry's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildinfo.Version()
			if a.json {
				return a.printJSON(map[string]string{"version": v})
			}
			fmt.Fprintln(a.stdout, "ferry", v)
			return nil
		},
	}
}
