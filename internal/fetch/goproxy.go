package fetch

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// Entry is one element of a GOPROXY list.
type Entry struct {
	// URL is the proxy base URL (http, https or file scheme), or "" for the
	// special entries "direct" and "off".
	URL    string
	Direct bool // the entry is "direct": fetch from version control
	Off    bool // the entry is "off": stop here, nothing may be fetched
	// FallThroughOnAnyError is true when the entry was followed by '|': any
	// error moves on to the next entry. After ',' (or at the end) only a
	// not-found answer (404 or 410) does.
	FallThroughOnAnyError bool
}

// String returns the entry as it is spelled in GOPROXY.
func (e Entry) String() string {
	switch {
	case e.Direct:
		return "direct"
	case e.Off:
		return "off"
	}
	return e.URL
}

// ParseGOPROXY parses a GOPROXY value with the same rules as the go command:
// entries are separated by ',' (fall through on 404/410 only) or '|' (fall
// through on any error); blank entries are skipped; "off" and "direct" end the
// list; a URL-less word containing '.', ':' or '/' that is not an absolute
// path gets an implicit "https://". The empty string means the go command's
// default, which callers must resolve with `go env GOPROXY` first; it is an
// error here.
func ParseGOPROXY(v string) ([]Entry, error) {
	if v == "" {
		return nil, errors.New("parsing GOPROXY: empty value (resolve it with go env GOPROXY)")
	}
	var list []Entry
	rest := v
	for rest != "" {
		var u string
		anyErr := false
		if i := strings.IndexAny(rest, ",|"); i >= 0 {
			u = rest[:i]
			anyErr = rest[i] == '|'
			rest = rest[i+1:]
		} else {
			u, rest = rest, ""
		}
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if u == "off" {
			list = append(list, Entry{Off: true, FallThroughOnAnyError: anyErr})
			break
		}
		if u == "direct" {
			list = append(list, Entry{Direct: true, FallThroughOnAnyError: anyErr})
			break
		}
		if strings.ContainsAny(u, ".:/") && !strings.Contains(u, ":/") && !filepath.IsAbs(u) && !path.IsAbs(u) {
			u = "https://" + u
		}
		if err := checkProxyURL(u); err != nil {
			return nil, fmt.Errorf("parsing GOPROXY entry %q: %w", u, err)
		}
		list = append(list, Entry{URL: u, FallThroughOnAnyError: anyErr})
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("parsing GOPROXY %q: list is not the empty string, but contains no entries", v)
	}
	return list, nil
}

// checkProxyURL applies the checks of the go command's newProxyRepo.
func checkProxyURL(u string) error {
	base, err := url.Parse(u)
	if err != nil {
		return err
	}
	switch base.Scheme {
	case "http", "https":
		if base.Host == "" {
			return fmt.Errorf("invalid proxy URL missing host: %s", base.Redacted())
		}
		return nil
	case "file":
		if *base != (url.URL{Scheme: base.Scheme, Path: base.Path, RawPath: base.RawPath}) {
			return fmt.Errorf("invalid file:// proxy URL with non-path elements: %s", base.Redacted())
		}
		return nil
	case "":
		return fmt.Errorf("invalid proxy URL missing scheme: %s", base.Redacted())
	default:
		return fmt.Errorf("invalid proxy URL scheme (must be https, http, file): %s", base.Redacted())
	}
}
