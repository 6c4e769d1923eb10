package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	main := func(v string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/ferry-dev/ferry", Version: v}}
	}
	for _, c := range []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"stamped wins", "v1.4.0-3-gabc1234", main("v1.2.3"), true, "v1.4.0-3-gabc1234"},
		{"go install at a version", "", main("v1.2.3"), true, "v1.2.3"},
		{"source tree build", "", main("(devel)"), true, "devel"},
		{"no main version", "", main(""), true, "devel"},
		{"no build info", "", nil, false, "devel"},
	} {
		if got := resolve(c.stamped, c.bi, c.ok); got != c.want {
			t.Errorf("%s: resolve = %q, want %q", c.name, got, c.want)
		}
	}
}

// A test binary is not stamped and is built from the source tree.
func TestVersionUnstamped(t *testing.T) {
	if got := Version(); got != "devel" {
		t.Errorf("Version() = %q in a test binary, want devel", got)
	}
}
