package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses: 1 for a failure, 2 for a command called wrongly (as the
// go command does).
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake in how a command was called: a wrong number of
// arguments, an unknown or malformed flag, a required flag not given.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// markUsageErrors makes the argument and flag errors of cmd and all its
// subcommands usageErrors.
func markUsageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		markUsageErrors(c)
	}
}

// isUsageError says whether err is a usage error: marked by
// markUsageErrors, or one of the two that cobra makes without a hook (an
// unknown command, a required flag not given).
func isUsageError(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command ") || strings.HasPrefix(msg, "required flag(s) ")
}

// oneLine puts cobra's multi-line messages ("unknown command ... Did you
// mean this?") on one line.
func oneLine(msg string) string {
	if before, after, ok := strings.Cut(msg, "\n\nDid you mean this?"); ok {
		return before + " (did you mean " + strings.Join(strings.Fields(after), ", ") + "?)"
	}
	return strings.Join(strings.Fields(msg), " ")
}

// usageLine is the one-line usage hint for cmd.
func usageLine(cmd *cobra.Command) string {
	use := cmd.UseLine()
	if !cmd.Runnable() {
		use = cmd.CommandPath() + " COMMAND [flags]"
	}
	return "usage: " + use + "; see " + cmd.CommandPath() + " --help"
}

// wroteWriter records whether anything was written through it.
type wroteWriter struct {
	w     io.Writer
	wrote bool
}

func (w *wroteWriter) Write(p []byte) (int, error) {
	w.wrote = w.wrote || len(p) > 0
	return w.w.Write(p)
}

// run runs ferry with args and returns the exit status. A failure is
// reported on stderr in one line ("ferry: ..."), a usage error with a
// usage line and status 2; with --json, a command that fails without having
// printed its own JSON report prints {"error": "..."} on stdout.
func (a *app) run(ctx context.Context, args []string) int {
	out := &wroteWriter{w: a.stdout}
	a.stdout = out
	root := a.rootCmd()
	markUsageErrors(root)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	report := struct {
		Error string `json:"error"`
		Usage string `json:"usage,omitempty"`
	}{Error: oneLine(err.Error())}
	var ex exitError
	if errors.As(err, &ex) {
		// The command printed its own report.
		if a.wantsJSON(args) && !out.wrote {
			a.printJSON(report)
		}
		return ex.code
	}
	code := exitFailure
	if isUsageError(err) {
		code = exitUsage
		report.Error = cmd.CommandPath() + ": " + report.Error
		report.Usage = usageLine(cmd)
	}
	if report.Usage != "" {
		fmt.Fprintf(a.stderr, "%s\n%s\n", report.Error, report.Usage)
	} else {
		fmt.Fprintln(a.stderr, "ferry:", report.Error)
	}
	if a.wantsJSON(args) && !out.wrote {
		a.printJSON(report)
	}
	return code
}

// wantsJSON says whether --json was given, also when flag parsing stopped
// before reaching it.
func (a *app) wantsJSON(args []string) bool {
	if a.json {
		return true
	}
	for _, arg := range args {
		if arg == "--" {
			break
		}
		if arg == "--json" || arg == "--json=true" {
			return true
		}
	}
	return false
}
