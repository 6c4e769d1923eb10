package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/note"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/fetch"
	"github.com/ferry-dev/ferry/internal/pack"
	"github.com/ferry-dev/ferry/internal/progress"
	"github.com/ferry-dev/ferry/internal/sign"
)

func (a *app) packCmd() *cobra.Command {
	var (
		opt          pack.Options
		platforms    []string
		tcs          []string
		keyFile      string
		noSign       bool
		heads        []string
		baseFile     string
		baseManifest string
		split        string
	)
	cmd := &cobra.Command{
		Use:   "pack [DIR ...] -o BUNDLE",
		Short: "Pack toolchains, modules and checksum proofs into a bundle (connected side)",
		Long: `Pack collects, for every listed platform, everything the go command will ask
for offline: the whole module graph of each project DIR (go.mod, or go.work
with all its modules), the packages and tests of every platform, the
project's tool directives, each --tool and --module, and each --toolchain as
the module the go command downloads for GOTOOLCHAIN switching. It drives your
go command (with your GOPROXY, GOSUMDB, GOPRIVATE, GONOSUMDB and GOFLAGS) in a
throwaway module cache to learn what is needed, proves every module and
toolchain against the checksum database, and writes one bundle.

Defaults: the host platform; the toolchain the project's go.mod asks for
(toolchain line, else go line), else the local go version.

Downloads are cached under --cache, so an interrupted pack resumes where it
stopped. Modules that no package, test or tool of a listed platform needs
but that could not be fetched are listed as warnings.`,
		Example: `  ferry pack . -o app.ferry
  ferry pack ./svc ./tools -o all.ferry --platform linux/amd64,linux/arm64,windows/amd64 \
      --toolchain go1.26.8,go1.27.4 --tool golang.org/x/tools/cmd/stringer@v0.30.0
  ferry pack . -o app.ferry --sign-key team.key
  ferry pack . -o app-v2.ferry --base app-v1.ferry     # a delta: only what v1 lacks
  ferry pack . -o app-v2.ferry --base-manifest far-side.json
  ferry pack . -o app.ferry --image oci:./image --image registry.internal/base/static:1.0
` + splitExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			partSize, err := parseSplitFlag(split)
			if err != nil {
				return err
			}
			if err := bundle.CheckOutput("-o", opt.Output); err != nil {
				return err // before any work, a signing key made included
			}
			opt.Dirs = args
			if opt.Version != "" && !semver.IsValid(opt.Version) {
				return fmt.Errorf("--bundle-version %q is not a semantic version (like v1.2.3)", opt.Version)
			}
			opt.Platforms = splitList(platforms)
			if cmd.Flags().Changed("platform") {
				opt.ImagePlatforms = opt.Platforms
			}
			opt.Toolchains = splitList(tcs)
			if baseFile != "" && baseManifest != "" {
				return fmt.Errorf("give --base or --base-manifest, not both")
			}
			if baseFile != "" || baseManifest != "" {
				m, d, err := readBase(baseFile, baseManifest)
				if err != nil {
					return err
				}
				opt.Base, opt.BaseDigest = m, d
			}
			for _, h := range heads {
				data, err := readSumDBHead(h)
				if err != nil {
					return err
				}
				opt.SumDBHeads = append(opt.SumDBHeads, data...)
			}
			if opt.Signer, opt.SignerKey, err = a.packSigner(keyFile, noSign); err != nil {
				return err
			}
			if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
				sec, err := strconv.ParseInt(e, 10, 64)
				if err != nil {
					return fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", e)
				}
				opt.ModTime = time.Unix(sec, 0)
			}
			opt.Log = a.logger()
			stats := &fetch.Stats{}
			opt.Stats = stats
			prog := a.newProgress()
			prog.stats = stats
			opt.Phase, opt.Bytes = prog.phase, prog.add
			res, err := pack.Pack(cmd.Context(), opt)
			prog.finish()
			if err != nil {
				return err
			}
			var parts *bundle.SplitIndex
			if partSize > 0 {
				if parts, err = a.splitBundle(cmd.Context(), res.Bundle, partSize); err != nil {
					return err
				}
			}
			snap := stats.Snapshot()
			if a.json {
				return a.printJSON(packReport{res, snap, parts})
			}
			for _, m := range res.Missing {
				fmt.Fprintf(a.stderr, "warning: not carried: %s@%s (%s): %s; %s\n", m.Module, m.Version, m.File, m.Reason, m.Impact)
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(a.stderr, "warning:", w)
			}
			fmt.Fprintf(a.stdout, "wrote %s (%s, %d items, %d module versions, %d zips)\n", res.Bundle, human(res.Size), res.Items, res.Modules, res.Zips)
			fmt.Fprintf(a.stdout, "  toolchains %s for %s\n", strings.Join(res.Toolchains, ","), strings.Join(res.Platforms, ","))
			fmt.Fprintf(a.stdout, "  fetched %d files (%s), already present %d files (%s)\n", snap.ItemsFetched, human(snap.BytesFetched), snap.ItemsCached, human(snap.BytesCached))
			fmt.Fprintf(a.stdout, "  digest %s\n", res.Digest)
			if parts != nil {
				a.printSplit(res.Bundle, parts)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opt.Output, "output", "o", "", "bundle file to write (required)")
	f.StringSliceVar(&platforms, "platform", nil, "target platforms GOOS/GOARCH, comma-separated (default: host)")
	f.StringSliceVar(&tcs, "toolchain", nil, "Go toolchains goX.Y.Z, comma-separated; the first is installed as PREFIX/go")
	f.StringArrayVar(&opt.Tools, "tool", nil, "`PACKAGE@VERSION` to carry for 'go install PACKAGE@VERSION' (repeatable)")
	f.StringArrayVar(&opt.Modules, "module", nil, "extra MODULE@VERSION to carry (repeatable)")
	f.StringVar(&keyFile, "sign-key", "", "sign the bundle with the private key in `FILE` (made by 'ferry key generate')")
	f.BoolVar(&noSign, "no-sign", false, "write an unsigned bundle (the far side then needs the checksum database's key)")
	f.StringArrayVar(&heads, "sumdb-head", nil, "earlier checksum database tree head to prove consistent: a saved signed head note (e.g. GOPATH/pkg/sumdb/NAME/latest) or a bundle (repeatable)")
	f.StringVar(&baseFile, "base", "", "write a delta: carry only what this earlier bundle lacks")
	f.StringVar(&baseManifest, "base-manifest", "", "write a delta against a bundle the far side has, from its manifest `FILE` (written by 'ferry state export')")
	f.StringVar(&split, "split", "", splitFlagUsage)
	f.StringArrayVar(&opt.Images, "image", nil, "container image to carry: oci:DIR (the images an OCI layout names) or a registry reference (repeatable); with --platform, only those platforms")
	f.BoolVar(&opt.PlainHTTP, "plain-http", false, "read --image registries over plain HTTP")
	f.StringVar(&opt.Name, "name", "", "bundle name (default: the last element of the first project's module path)")
	f.StringVar(&opt.Version, "bundle-version", "", "bundle version, semver (default: 'git describe --tags' of the first project, if it is one)")
	f.IntVarP(&opt.Jobs, "jobs", "j", 8, "concurrent downloads")
	f.StringVar(&opt.CacheDir, "cache", "", "download cache for resuming (default: user cache dir/ferry)")
	f.StringVar(&opt.Compression, "compression", "better", "how module zips travel: better, best (smallest, slowest), default (fastest) or none (as the proxy serves them); zstd, decoded to the same h1: on install")
	cmd.MarkFlagRequired("output")
	cmd.RegisterFlagCompletionFunc("platform", completePlatforms)
	cmd.RegisterFlagCompletionFunc("compression", cobra.FixedCompletions([]string{"better", "best", "default", "none"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// packReport is what pack --json prints.
type packReport struct {
	*pack.Result
	Transfer fetch.Snapshot     `json:"transfer"`
	Split    *bundle.SplitIndex `json:"split,omitempty"`
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func completePlatforms(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"linux/amd64", "linux/arm64", "darwin/arm64", "darwin/amd64", "windows/amd64", "windows/arm64"}, cobra.ShellCompDirectiveNoFileComp
}

func human(n int64) string { return progress.HumanBytes(n) }

// verifiers loads --key files.
func verifiers(files []string) (note.Verifiers, error) {
	if len(files) == 0 {
		return nil, nil
	}
	var vs []note.Verifier
	for _, f := range files {
		v, err := sign.LoadVerifier(f)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// readSumDBHead reads the tree heads named by a --sumdb-head file: a signed
// note, or a bundle (its head and the earlier heads it records).
func readSumDBHead(p string) ([][]byte, error) {
	if r, err := bundle.Open(p); err == nil {
		defer r.Close()
		m := r.Manifest()
		if m.SumDB == nil || m.SumDB.Head == "" {
			return nil, fmt.Errorf("--sumdb-head %s: the bundle has no checksum database snapshot", p)
		}
		out := [][]byte{[]byte(m.SumDB.Head)}
		for _, h := range m.SumDB.Heads {
			out = append(out, []byte(h))
		}
		return out, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("--sumdb-head: %w", err)
	}
	if len(data) > 1<<16 {
		return nil, fmt.Errorf("--sumdb-head %s: too large for a signed tree head", p)
	}
	return [][]byte{data}, nil
}

// readBase reads the manifest a delta is packed against: that of a bundle
// file, or one exported with 'ferry state export'.
func readBase(file, manifest string) (*bundle.Manifest, string, error) {
	if file != "" {
		r, err := bundle.Open(file)
		if err != nil {
			return nil, "", fmt.Errorf("--base: %w", err)
		}
		defer r.Close()
		return r.Manifest(), r.ManifestDigest(), nil
	}
	data, err := os.ReadFile(manifest)
	if err != nil {
		return nil, "", fmt.Errorf("--base-manifest: %w", err)
	}
	m, err := bundle.DecodeManifest(data)
	if err != nil {
		return nil, "", fmt.Errorf("--base-manifest %s: not a ferry manifest: %w", manifest, err)
	}
	return m, bundle.Digest(data), nil
}
