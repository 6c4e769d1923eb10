package main

import (
	"os"
	"strings"
	"testing"
)

// Shell completion offers pack's --compression levels.
func TestCompletePackCompression(t *testing.T) {
	out, err := run(t, t.TempDir(), os.Environ(), ferryBin(t), "__complete", "pack", "--compression", "")
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, want := range []string{"better", "best", "default", "none"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("completion %q does not offer %q", out, want)
		}
	}
}
