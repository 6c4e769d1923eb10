package fetch

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/tlog"
)

// errBadPath is wrapped by every error of checkPath.
var errBadPath = errors.New("invalid proxy path")

// checkPath reports whether p is a well-formed proxy-relative path of the
// GOPROXY or checksum database protocol, and whether its answer is immutable
// (safe to cache forever).
//
// Accepted forms, with escaped module paths and versions:
//
//	<module>/@v/list
//	<module>/@latest
//	<module>/@v/<version>.info | .mod | .zip
//	sumdb/<name>/supported | latest
//	sumdb/<name>/lookup/<module>@<version>
//	sumdb/<name>/tile/<H>/<L>/<N>[.p/<W>]  (and tile/<H>/data/...)
func checkPath(p string) (immutable bool, err error) {
	bad := func(why string) (bool, error) {
		return false, fmt.Errorf("%w %q: %s", errBadPath, p, why)
	}
	switch {
	case p == "":
		return bad("empty")
	case strings.Contains(p, `\`):
		return bad("backslash")
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		return bad("leading or trailing slash")
	case strings.ContainsAny(p, "\x00?#%"):
		return bad("unexpected character")
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return bad("empty, . or .. element")
		}
	}

	if rest, ok := strings.CutPrefix(p, "sumdb/"); ok {
		name, rest, ok := strings.Cut(rest, "/")
		if !ok || !validDBName(name) {
			return bad("invalid checksum database name")
		}
		switch {
		case rest == "supported" || rest == "latest":
			return false, nil
		case strings.HasPrefix(rest, "lookup/"):
			mv := strings.TrimPrefix(rest, "lookup/")
			i := strings.LastIndex(mv, "@")
			if i < 0 {
				return bad("lookup without @version")
			}
			if _, err := module.UnescapePath(mv[:i]); err != nil {
				return bad(err.Error())
			}
			if _, err := module.UnescapeVersion(mv[i+1:]); err != nil {
				return bad(err.Error())
			}
			return true, nil
		case strings.HasPrefix(rest, "tile/"):
			if _, err := tlog.ParseTilePath(rest); err != nil {
				return bad(err.Error())
			}
			return true, nil
		}
		return bad("unknown checksum database path")
	}

	if mod, ok := strings.CutSuffix(p, "/@latest"); ok {
		if _, err := module.UnescapePath(mod); err != nil {
			return bad(err.Error())
		}
		return false, nil
	}
	mod, file, ok := strings.Cut(p, "/@v/")
	if !ok {
		return bad("not a module proxy path")
	}
	if _, err := module.UnescapePath(mod); err != nil {
		return bad(err.Error())
	}
	if file == "list" {
		return false, nil
	}
	i := strings.LastIndex(file, ".")
	if i < 0 {
		return bad("unknown file in @v")
	}
	ext := file[i:]
	if ext != ".info" && ext != ".mod" && ext != ".zip" {
		return bad("unknown file in @v")
	}
	v, err := module.UnescapeVersion(file[:i])
	if err != nil {
		return bad(err.Error())
	}
	// A query such as "master.info" can change; a canonical version cannot.
	return module.CanonicalVersion(v) == v, nil
}

// validDBName reports whether name looks like a checksum database name (a host
// name, possibly with a port).
func validDBName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// Immutable reports whether the answer for the proxy-relative path p never
// changes once it exists (.info, .mod and .zip of canonical versions, checksum
// database lookups and tiles), so that it may be cached forever. It is false
// for invalid paths.
func Immutable(p string) bool {
	imm, err := checkPath(p)
	return err == nil && imm
}

// ValidPath checks that p is a well-formed proxy-relative path (see Get).
func ValidPath(p string) error {
	_, err := checkPath(p)
	return err
}
