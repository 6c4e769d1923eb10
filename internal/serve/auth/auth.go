// Package auth is the optional access control of `ferry serve`: bearer
// tokens and HTTP basic auth from a file of hashed secrets, and TLS from
// certificate and key files.
//
// The auth file has one entry per line; blank lines and lines starting
// with '#' are ignored:
//
//	token <name> <sha256 hex of the token>   # Authorization: Bearer <token>
//	user  <name> <bcrypt hash>               # HTTP basic auth
//
// Invariants:
//   - The file holds only hashes; no secret is ever stored or logged.
//   - Every request except GET/HEAD of /healthz and /readyz must carry valid
//     credentials, otherwise it gets 401 with
//     `WWW-Authenticate: Basic realm="ferry"` and never reaches the handler.
//     Access is read-only: there is no role that allows more than reading
//     (what a handler does with the request is its own business).
//   - Tokens are compared in constant time against every token entry.
//     A token also works as the password of HTTP basic auth with the
//     token's name as user name, so tools that only speak basic auth
//     (the go command's netrc support) can use tokens.
//   - A name is unique across all entries of a file.
//   - Successful bcrypt checks are remembered (as a SHA-256 of user and
//     password, in memory, bounded) so that a go command making hundreds of
//     requests does not pay bcrypt's cost on each; failures are never
//     remembered.
//   - The go command sends netrc credentials only over https, matching the
//     netrc "machine" against host:port as written in GOPROXY; serve with
//     TLSConfig for GOAUTH/netrc to work.
package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferry-dev/ferry/internal/serve/accesslog"
)

// maxRemembered bounds the cache of successful basic-auth checks.
const maxRemembered = 4096

// Checker decides whether a request carries valid credentials.
// It is safe for concurrent use.
type Checker struct {
	tokens []token
	users  map[string][]byte // name -> bcrypt hash
	dummy  []byte            // bcrypt hash compared against for unknown users, nil if no users

	mu sync.Mutex
	ok map[[sha256.Size]byte]string // sha256(user \x00 password) -> user
}

type token struct {
	name string
	sum  [sha256.Size]byte
}

// HashToken returns the hex SHA-256 of token, as written in a "token" line.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Load reads the auth file at path.
func Load(path string) (*Checker, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading auth file: %w", err)
	}
	defer f.Close()
	c := &Checker{users: map[string][]byte{}, ok: map[[sha256.Size]byte]string{}}
	names := map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", path, n, fmt.Sprintf(format, args...))
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, bad("want \"token NAME SHA256-HEX\" or \"user NAME BCRYPT-HASH\", got %d fields", len(fields))
		}
		kind, name, secret := fields[0], fields[1], fields[2]
		if prev, dup := names[name]; dup {
			return nil, bad("name %q already used on line %d", name, prev)
		}
		if strings.ContainsAny(name, ":") {
			return nil, bad("name %q contains ':'", name)
		}
		switch kind {
		case "token":
			b, err := hex.DecodeString(secret)
			if err != nil || len(b) != sha256.Size {
				return nil, bad("token %q: want 64 hex digits of SHA-256 (see `ferry serve token`), got %q", name, abbreviate(secret))
			}
			t := token{name: name}
			copy(t.sum[:], b)
			c.tokens = append(c.tokens, t)
		case "user":
			if _, err := bcrypt.Cost([]byte(secret)); err != nil {
				return nil, bad("user %q: not a bcrypt hash: %v", name, err)
			}
			c.users[name] = []byte(secret)
		default:
			return nil, bad("unknown entry kind %q (want token or user)", kind)
		}
		names[name] = n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading auth file %s: %w", path, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("auth file %s has no entries: every request would be refused", path)
	}
	// Unknown users are checked against a real user's hash, so response
	// time does not tell which user names exist. (No hash is generated
	// here: a hash's cost comes from the file and may be high.)
	for _, name := range slices.Sorted(maps.Keys(c.users)) {
		c.dummy = c.users[name]
		break
	}
	return c, nil
}

func abbreviate(s string) string {
	if len(s) > 16 {
		return s[:16] + "..."
	}
	return s
}

// exempt reports whether r needs no credentials: health checks of load
// balancers and orchestrators.
func exempt(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == "/healthz" || r.URL.Path == "/readyz")
}

// Middleware refuses requests without valid credentials with 401 and
// passes the others to next, after recording the user name with
// accesslog.SetUser.
func (c *Checker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if exempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		user, err := c.Check(r)
		if err != nil {
			w.Header().Add("WWW-Authenticate", `Basic realm="ferry"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="ferry"`)
			http.Error(w, "401 unauthorized: "+err.Error(), http.StatusUnauthorized)
			return
		}
		accesslog.SetUser(r.Context(), user)
		next.ServeHTTP(w, r)
	})
}

// Errors Check returns.
var (
	ErrNoCredentials  = errors.New("no credentials (send Authorization: Bearer TOKEN or basic auth)")
	ErrBadCredentials = errors.New("wrong credentials")
)

// Check returns the name of the entry whose credentials r carries, or
// ErrNoCredentials or ErrBadCredentials.
func (c *Checker) Check(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrNoCredentials
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if name, ok := c.checkToken(strings.TrimSpace(rest)); ok {
			return name, nil
		}
		return "", ErrBadCredentials
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "", ErrBadCredentials
		}
		if c.checkBasic(user, pass) {
			return user, nil
		}
		return "", ErrBadCredentials
	}
	return "", ErrBadCredentials
}

// checkToken compares the hash of tok with every token entry in constant time.
func (c *Checker) checkToken(tok string) (string, bool) {
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i := range c.tokens {
		if subtle.ConstantTimeCompare(sum[:], c.tokens[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 || tok == "" {
		return "", false
	}
	return c.tokens[found].name, true
}

func (c *Checker) checkBasic(user, pass string) bool {
	if name, ok := c.checkToken(pass); ok {
		return subtle.ConstantTimeCompare([]byte(name), []byte(user)) == 1
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	c.mu.Lock()
	known, hit := c.ok[key]
	c.mu.Unlock()
	if hit {
		return known == user
	}
	hash, exists := c.users[user]
	if !exists {
		if c.dummy != nil {
			bcrypt.CompareHashAndPassword(c.dummy, []byte(pass))
		}
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	c.mu.Lock()
	if len(c.ok) >= maxRemembered {
		clear(c.ok)
	}
	c.ok[key] = user
	c.mu.Unlock()
	return true
}
