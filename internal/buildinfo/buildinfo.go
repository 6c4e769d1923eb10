// Package buildinfo reports the version of the running ferry binary.
//
// A release build stamps the version at link time:
//
//	go build -ldflags "-X github.com/ferry-dev/ferry/internal/buildinfo.version=v1.2.3" ./cmd/ferry
//
// (scripts/release.sh does this with the output of git describe). An
// unstamped binary reports the main module's version recorded by the go
// command (v1.2.3 after "go install github.com/ferry-dev/ferry/cmd/ferry@v1.2.3"),
// or "devel" for a build from a source tree.
package buildinfo

import "runtime/debug"

// version is set with -ldflags -X; empty in an unstamped build.
var version string

// Version returns the stamped version, else the main module's version from
// the binary's build information, else "devel". It is never empty.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	return resolve(version, bi, ok)
}

func resolve(stamped string, bi *debug.BuildInfo, ok bool) string {
	if stamped != "" {
		return stamped
	}
	if ok && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
