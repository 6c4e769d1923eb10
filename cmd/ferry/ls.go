package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/ferry-dev/ferry/internal/bundle"
)

func (a *app) lsCmd() *cobra.Command {
	var files bool
	cmd := &cobra.Command{
		Use:   "ls BUNDLE",
		Short: "List what a bundle carries",
		Long: `Ls prints a bundle's manifest: name, toolchains, platforms, projects, tools,
every module version with its kinds of files, and what pack could not carry.
It reads only the bundle's table of contents, not the data (use 'ferry
verify' for that). --json prints the manifest itself.`,
		Example: `  ferry ls app.ferry
  ferry ls app.ferry --files
  ferry ls app.ferry --json | jq '.items[] | select(.kind=="zip") | .module'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := bundle.Open(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			m := r.Manifest()
			if a.json {
				msize, _ := r.Stat(r.ManifestDigest())
				return a.printJSON(struct {
					Digest         string `json:"digest"`
					ManifestDigest string `json:"manifestDigest"`
					ManifestSize   int64  `json:"manifestSize"`
					Signature      string `json:"signature,omitempty"`
					*bundle.Manifest
				}{r.Digest(), r.ManifestDigest(), msize, r.Signature(), m})
			}
			w := tabwriter.NewWriter(a.stdout, 2, 8, 2, ' ', 0)
			defer w.Flush()
			if files {
				for _, it := range m.Items {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", it.Kind, it.File, it.Size, it.Digest)
				}
				return nil
			}
			fmt.Fprintf(w, "bundle\t%s\n", filepath.Base(args[0]))
			if m.Name != "" {
				fmt.Fprintf(w, "name\t%s %s\n", m.Name, m.Version)
			}
			// Commands take either digest (or 8 hex digits of one).
			fmt.Fprintf(w, "bundle digest\t%s (this bundle file, as signed; ferry state --store lists it)\n", r.Digest())
			fmt.Fprintf(w, "manifest digest\t%s (what it carries; ferry state lists it, deltas name their base by it)\n", r.ManifestDigest())
			if m.Base != nil {
				ext := r.BaseBlobs()
				var extBytes int64
				for _, b := range ext {
					extBytes += b.Size
				}
				fmt.Fprintf(w, "delta of\t%s, manifest digest %s (%d blobs, %s, left to the base)\n",
					dash(strings.TrimSpace(m.Base.Name+" "+m.Base.Version)), m.Base.ManifestDigest, len(ext), human(extBytes))
			}
			if s := r.Signature(); s != "" {
				fmt.Fprintf(w, "signed by\t%s (unverified; use verify --key)\n", signerNames(s))
			} else {
				fmt.Fprintf(w, "signed by\t(unsigned)\n")
			}
			fmt.Fprintf(w, "toolchains\t%s\n", strings.Join(m.Toolchains, " "))
			fmt.Fprintf(w, "platforms\t%s\n", strings.Join(m.Platforms, " "))
			if len(m.Projects) > 0 {
				fmt.Fprintf(w, "projects\t%s\n", strings.Join(m.Projects, " "))
			}
			if len(m.Tools) > 0 {
				fmt.Fprintf(w, "tools\t%s\n", strings.Join(m.Tools, " "))
			}
			if m.SumDB != nil {
				fmt.Fprintf(w, "checksum db\t%s\n", m.SumDB.Name)
			}
			var imageBytes int64
			for _, it := range m.Items {
				if it.Kind == bundle.KindOCI {
					imageBytes += it.Size
				}
			}
			if len(m.Images) > 0 {
				fmt.Fprintf(w, "images\t%s (%s of image blobs)\n", strings.Join(m.Images, " "), human(imageBytes))
			}
			type row struct {
				kinds []string
				size  int64
			}
			mods := map[string]*row{}
			var total int64
			for _, it := range m.Items {
				total += it.Size
				if it.Module == "" || it.Kind == bundle.KindImage || it.Kind == bundle.KindOCI {
					continue
				}
				k := it.Module + "@" + it.Version
				if mods[k] == nil {
					mods[k] = &row{}
				}
				mods[k].kinds = append(mods[k].kinds, string(it.Kind))
				mods[k].size += it.Size
			}
			fmt.Fprintf(w, "items\t%d (%s)\n", len(m.Items), human(total))
			fmt.Fprintf(w, "module versions\t%d\n\n", len(mods))
			keys := make([]string, 0, len(mods))
			for k := range mods {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "%s\t%s\t%s\n", k, strings.Join(mods[k].kinds, ","), human(mods[k].size))
			}
			w.Flush()
			for _, mi := range m.Missing {
				fmt.Fprintf(a.stdout, "not carried: %s@%s (%s): %s\n  %s\n", mi.Module, mi.Version, mi.File, mi.Reason, mi.Impact)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&files, "files", false, "list every file with its size and digest")
	return cmd
}

// signerNames lists the names that signed a note, without verifying.
func signerNames(msg string) string {
	_, err := note.Open([]byte(msg), note.VerifierList())
	var ue *note.UnverifiedNoteError
	if errors.As(err, &ue) {
		var names []string
		for _, s := range ue.Note.UnverifiedSigs {
			names = append(names, s.Name)
		}
		return strings.Join(names, ",")
	}
	return "?"
}
