package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: each mistake gets a one-line error naming what and where,
// a non-zero exit, and no bundle written.
func TestBadInput(t *testing.T) {
	fx := newFixture(t)
	ferry := ferryBin(t)
	dir := t.TempDir()
	notProject := filepath.Join(dir, "empty")
	os.MkdirAll(notProject, 0o755)
	out := filepath.Join(dir, "x.ferry")
	cache := "--cache=" + filepath.Join(dir, "cache")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"not a project", []string{"pack", notProject, "-o", out, cache}, "not a Go project"},
		{"missing dir", []string{"pack", filepath.Join(dir, "nope"), "-o", out, cache}, "not a Go project"},
		{"unknown platform", []string{"pack", fx.project, "-o", out, "--platform", "plan10/amd64", cache}, `unknown platform "plan10/amd64"`},
		{"bad toolchain name", []string{"pack", fx.project, "-o", out, "--toolchain", "1.22", cache}, `invalid toolchain "1.22"`},
		{"unknown toolchain", []string{"pack", fx.project, "-o", out, "--toolchain", "go1.98.7", cache}, "unknown toolchain go1.98.7"},
		{"module that does not exist", []string{"pack", "-o", out, "--toolchain", "go1.99.1", "--module", "example.com/nothere@v1.0.0", cache}, "example.com/nothere@v1.0.0"},
		{"bad module syntax", []string{"pack", "-o", out, "--module", "example.com/x", cache}, "want MODULE@VERSION"},
		{"no output", []string{"pack", fx.project}, `"output" not set`},
		{"unknown compression", []string{"pack", fx.project, "-o", out, "--compression", "zip", cache}, `--compression "zip": want better, best, default or none`},
		{"missing bundle", []string{"verify", filepath.Join(dir, "nope.ferry")}, "nope.ferry"},
		{"bundle version not semver", []string{"pack", fx.project, "-o", out, "--bundle-version", "1.2", cache}, `--bundle-version "1.2" is not a semantic version`},
		{"base and base manifest", []string{"pack", fx.project, "-o", out, "--base", out, "--base-manifest", out, cache}, "not both"},
		{"base not a bundle", []string{"pack", fx.project, "-o", out, "--base", notProject, cache}, "--base"},
		{"diff of a missing bundle", []string{"diff", filepath.Join(dir, "nope.ferry"), filepath.Join(dir, "nope.ferry")}, "nope.ferry"},
		{"rollback with nothing installed", []string{"rollback", "--prefix", filepath.Join(dir, "noprefix")}, "holds no ferry install"},
		{"state export with nothing installed", []string{"state", "export", "--prefix", filepath.Join(dir, "noprefix")}, "nothing installed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := run(t, fx.project, fx.env, ferry, c.args...)
			if err == nil {
				t.Fatalf("ferry %s succeeded:\n%s", strings.Join(c.args, " "), got)
			}
			if !strings.Contains(got, c.want) {
				t.Errorf("ferry %s said:\n%s\nwant it to mention %q", strings.Join(c.args, " "), got, c.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a failed pack left %s behind", out)
			}
		})
	}
}
