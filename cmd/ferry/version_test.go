package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/buildinfo"
)

// runRoot runs ferry's root command in process with args and returns what it
// printed on standard output.
func runRoot(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr}
	root := a.rootCmd()
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// 'ferry --version' and 'ferry version' print the same line, with the
// version of an unstamped build ("devel" in a test binary). Before issue 13,
// --version was an unknown flag.
func TestVersionFlagAndCommand(t *testing.T) {
	want := "ferry " + buildinfo.Version() + "\n"
	if got := runRoot(t, "--version"); got != want {
		t.Errorf("ferry --version printed %q, want %q", got, want)
	}
	if got := runRoot(t, "version"); got != want {
		t.Errorf("ferry version printed %q, want %q", got, want)
	}
	if got := runRoot(t, "version", "--json"); !strings.Contains(got, `"version": "`+buildinfo.Version()+`"`) {
		t.Errorf("ferry version --json printed %q", got)
	}
}
