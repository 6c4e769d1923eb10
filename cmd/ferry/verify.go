package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/verify"
)

// trustFlags are the flags that say what the offline side trusts.
type trustFlags struct {
	keys     []string
	sumdbKey string
	jobs     int
	deep     bool
	bases    []string
	// trustedKeys is the trusted keys file ("" for the user's).
	trustedKeys string
}

func (t *trustFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&t.keys, "key", nil, "require a signature by this public key file (repeatable)")
	cmd.Flags().StringVar(&t.sumdbKey, "sumdb-key", "", "verifier key of the checksum database (default: from the local go command)")
	cmd.Flags().IntVarP(&t.jobs, "jobs", "j", runtime.GOMAXPROCS(0), "parallel checks")
	cmd.Flags().BoolVar(&t.deep, "deep", false, "recompute every zip's h1: hash even when a trusted signature vouches for them")
	cmd.Flags().StringVar(&t.trustedKeys, "trusted-keys", "", "file of trusted signer keys, one per line (default: user config dir/ferry/trusted_keys)")
	cmd.Flags().StringArrayVar(&t.bases, "base", nil, "for a delta bundle: its base bundle file (repeatable for a chain of deltas)")
}

// check opens and verifies a bundle; a delta is read through its base (a
// --base file, or what finder holds). goroots are extra places to find the
// checksum database key. With leaveEncoded the h1: hashes of encoded zips
// are left to the caller, which decodes them anyway (install). The caller
// must call the returned close.
func (a *app) check(ctx context.Context, path string, t *trustFlags, finder *baseFinder, leaveEncoded bool, goroots ...string) (bundle.Source, func(), *verify.Report, error) {
	f, err := bundle.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	var r bundle.Source = f
	closeAll := func() { f.Close() }
	if f.NeedsBase() {
		l, closeBase, err := withBase(ctx, f, t.bases, finder)
		if err != nil {
			f.Close()
			return nil, nil, nil, err
		}
		r = l
		closeAll = func() { closeBase(); f.Close() }
	}
	// Trust first: every trust problem is found before any hashing.
	opt, err := a.trustOptions(ctx, r, t, goroots)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	opt.LeaveEncoded = leaveEncoded
	prog := a.newProgress()
	var total int64
	for _, b := range r.Blobs() {
		total += b.Size
	}
	prog.phase("verify", total)
	opt.Bytes = prog.add
	rep, err := verify.Bundle(ctx, r, opt)
	prog.finish()
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return r, closeAll, rep, nil
}

func (a *app) verifyCmd() *cobra.Command {
	var t trustFlags
	cmd := &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Check every byte of a bundle, offline",
		Long: `Verify checks a bundle without any network: every blob against its digest and
size, the manifest, the signature (with --key), every zip and go.mod against
its h1: hash (skipped for a bundle whose signature --key checks, unless
--deep: the signed manifest vouches for them), and every hash against the
bundle's checksum-database snapshot:
each record's inclusion proof against the stored signed tree head, checked
with the checksum database's key taken from your own go command (or
--sumdb-key), never from the bundle alone. Every problem is reported, and
the exit status is 1 if there is any.`,
		Example: `  ferry verify app.ferry
  ferry verify app.ferry --key team.pub --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, closeAll, rep, err := a.check(cmd.Context(), args[0], &t, nil, false)
			if err != nil {
				return err
			}
			defer closeAll()
			if a.json {
				if err := a.printJSON(rep); err != nil {
					return err
				}
			} else if rep.OK() {
				signed := "unsigned"
				if rep.Signer != "" {
					signed = "signed by " + rep.Signer
				}
				fmt.Fprintf(a.stdout, "%s: ok: %d items, %s checked, %d module versions proved by the checksum database, %s\n", args[0], rep.Items, human(rep.Bytes), rep.Proved, signed)
			}
			if !rep.OK() {
				if !a.json {
					fmt.Fprintln(a.stderr, "ferry:", rep.Err())
				}
				return exitError{1}
			}
			return nil
		},
	}
	t.add(cmd)
	return cmd
}
