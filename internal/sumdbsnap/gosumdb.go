package sumdbsnap

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// GoRootKey returns the built-in verifier key of the checksum database named
// name, read from a Go installation's source
// (GOROOT/src/cmd/go/internal/modfetch/key.go, the knownGOSUMDB map),
// or an error if name is not there.
func GoRootKey(goroot, name string) (string, error) {
	file := filepath.Join(goroot, "src", "cmd", "go", "internal", "modfetch", "key.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return "", fmt.Errorf("reading checksum database keys: %w", err)
	}
	found := false
	key := ""
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, id := range vs.Names {
			if id.Name != "knownGOSUMDB" || i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.CompositeLit)
			if !ok {
				continue
			}
			found = true
			for _, elt := range lit.Elts {
				kv, ok := elt.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				k, v := stringLit(kv.Key), stringLit(kv.Value)
				if k == name && v != "" {
					key = v
				}
			}
		}
		return false
	})
	if !found {
		return "", fmt.Errorf("reading checksum database keys: no knownGOSUMDB map in %s", file)
	}
	if key == "" {
		return "", fmt.Errorf("checksum database %s has no built-in key in %s", name, file)
	}
	v, err := note.NewVerifier(key)
	if err != nil || v.Name() != name {
		return "", fmt.Errorf("checksum database %s: invalid built-in key in %s", name, file)
	}
	return key, nil
}

func stringLit(e ast.Expr) string {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		return ""
	}
	return s
}

// ParseGOSUMDB splits a GOSUMDB value ("name", "name+hash+key", "key url",
// "name url") into the database name, the verifier key ("" if only a name is
// given) and the URL ("" if none). "off" and malformed values are errors.
func ParseGOSUMDB(v string) (name, key, url string, err error) {
	f := strings.Fields(v)
	switch {
	case len(f) == 0:
		return "", "", "", errors.New("parsing GOSUMDB: empty")
	case len(f) > 2:
		return "", "", "", fmt.Errorf("parsing GOSUMDB %q: too many fields", v)
	case f[0] == "off":
		return "", "", "", errors.New("GOSUMDB=off: the checksum database is disabled")
	}
	if len(f) == 2 {
		url = f[1]
	}
	if strings.Contains(f[0], "+") {
		verifier, err := note.NewVerifier(f[0])
		if err != nil {
			return "", "", "", fmt.Errorf("parsing GOSUMDB %q: invalid verifier key: %w", v, err)
		}
		return verifier.Name(), f[0], url, nil
	}
	return f[0], "", url, nil
}

// HTTPRemote is a Remote reading a checksum database over HTTP from Base,
// e.g. "<proxy URL>/sumdb/<name>" or the database's own URL.
// It retries network errors and 5xx answers (Retries extra attempts), never
// 404/410, which it reports as errors wrapping fs.ErrNotExist.
type HTTPRemote struct {
	Client  *http.Client // nil means http.DefaultClient
	Base    string
	Retries int
}

// ReadRemote implements Remote.
func (r *HTTPRemote) ReadRemote(ctx context.Context, path string) ([]byte, error) {
	url := strings.TrimSuffix(r.Base, "/") + path
	var last error
	for attempt := 0; attempt <= r.Retries; attempt++ {
		data, retry, err := r.get(ctx, url)
		if err == nil || !retry || ctx.Err() != nil {
			return data, err
		}
		last = err
	}
	return nil, last
}

func (r *HTTPRemote) get(ctx context.Context, url string) (data []byte, retry bool, err error) {
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("reading %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, false, fmt.Errorf("reading %s: %s: %w", url, resp.Status, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, resp.StatusCode >= 500, fmt.Errorf("reading %s: %s", url, resp.Status)
	case err != nil:
		return nil, true, fmt.Errorf("reading %s: %w", url, err)
	}
	return data, false, nil
}
