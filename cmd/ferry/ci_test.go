package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// .ci/run sets CI=true itself (tests that must not skip in CI check it) and
// runs the README's test command. It runs here with a stand-in go command
// that records its environment and arguments, and stand-ins for the tools
// .ci/run would otherwise install, so nothing is installed or tested.
// Before issue 13, CI stayed unset unless the caller set it.
func TestCIRunSetsCI(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash:", err)
	}
	bin := t.TempDir()
	record := filepath.Join(t.TempDir(), "go-calls")
	stub := "#!/bin/sh\necho \"CI=$CI $*\" >>" + record + "\n"
	for _, name := range []string{"go", "skopeo", "chromium", "unshare"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bash, filepath.Join(repoRoot, ".ci", "run"))
	cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf(".ci/run: %v\n%s", err, out)
	}
	calls, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	want := "CI=true test -count=1 -timeout 40m ./...\n"
	if !strings.HasSuffix(string(calls), want) {
		t.Errorf(".ci/run ran go as:\n%swant last: %s", calls, want)
	}
}
