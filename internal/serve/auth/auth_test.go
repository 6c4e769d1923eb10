package auth

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferry-dev/ferry/internal/serve/accesslog"
)

const (
	testToken = "s3cret-token-for-ci"
	alicePass = "correct-horse-battery-staple"
)

func bcryptHash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testChecker loads a file with a token "ci" and a user "alice".
func testChecker(t *testing.T) *Checker {
	t.Helper()
	c, err := Load(writeFile(t, "# ferry serve credentials\n\n"+
		"token ci "+HashToken(testToken)+"\n"+
		"  # indented comment\n"+
		"user alice "+bcryptHash(t, alicePass)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHashToken(t *testing.T) {
	// sha256("abc"), a published test vector.
	if got, want := HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Fatalf("HashToken(abc) = %s, want %s", got, want)
	}
}

func TestMiddleware(t *testing.T) {
	c := testChecker(t)
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	h := accesslog.Middleware(log, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()

	type req struct {
		name, method, path string
		set                func(*http.Request)
		want               int
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(u, p) }
	}
	for _, tc := range []req{
		{"token ok", "GET", "/mod/@v/list", bearer(testToken), 200},
		{"token lower-case scheme", "GET", "/x", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+testToken) }, 200},
		{"token wrong", "GET", "/x", bearer(testToken + "x"), 401},
		{"token empty", "GET", "/x", bearer(""), 401},
		{"token is a hash", "GET", "/x", bearer(HashToken(testToken)), 401},
		{"missing", "GET", "/x", nil, 401},
		{"missing HEAD", "HEAD", "/x", nil, 401},
		{"unknown scheme", "GET", "/x", func(r *http.Request) { r.Header.Set("Authorization", "Digest abc") }, 401},
		{"basic ok", "GET", "/x", basic("alice", alicePass), 200},
		{"basic wrong password", "GET", "/x", basic("alice", alicePass+"!"), 401},
		{"basic unknown user", "GET", "/x", basic("bob", alicePass), 401},
		{"basic garbage", "GET", "/x", func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }, 401},
		{"token as basic password", "GET", "/x", basic("ci", testToken), 200},
		{"token as basic password, other name", "GET", "/x", basic("alice", testToken), 401},
		{"healthz exempt", "GET", "/healthz", nil, 200},
		{"readyz exempt", "HEAD", "/readyz", nil, 200},
		{"healthz POST not exempt", "POST", "/healthz", nil, 401},
		{"healthz subpath not exempt", "GET", "/healthz/x", nil, 401},
		{"metrics not exempt", "GET", "/metrics", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.set != nil {
				tc.set(r)
			}
			// Twice: the second basic-auth check is answered from memory.
			for range 2 {
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.want, body)
				}
				if tc.want == 401 {
					if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="ferry"` {
						t.Errorf("WWW-Authenticate = %q", got)
					}
					if strings.Contains(string(body), "ok ") {
						t.Errorf("handler reached without credentials: %s", body)
					}
				}
			}
		})
	}
	srv.Close()
	logs := logBuf.String()
	if !strings.Contains(logs, "user=alice") || !strings.Contains(logs, "user=ci") {
		t.Errorf("access log does not name the users:\n%s", logs)
	}
	for _, secret := range []string{testToken, alicePass} {
		if strings.Contains(logs, secret) {
			t.Errorf("secret %q in the access log", secret)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	good := HashToken("x")
	hash := bcryptHash(t, "pw")
	for _, tc := range []struct {
		name, content, want string
	}{
		{"too few fields", "# c\ntoken ci\n", ":2: "},
		{"too many fields", "token ci " + good + " extra\n", ":1: "},
		{"unknown kind", "\n\nkey ci " + good + "\n", `:3: unknown entry kind "key"`},
		{"short token", "token ci abcd\n", `:1: token "ci": want 64 hex digits`},
		{"non-hex token", "token ci " + strings.Repeat("zz", 32) + "\n", ":1: "},
		{"plain password", "user alice hunter2\n", `:1: user "alice": not a bcrypt hash`},
		{"duplicate", "user alice " + hash + "\ntoken alice " + good + "\n", `:2: name "alice" already used on line 1`},
		{"colon in name", "user a:b " + hash + "\n", `:1: name "a:b" contains ':'`},
		{"empty", "# nothing\n\n", "has no entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.content)
			_, err := Load(p)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name %s and %q", err, p, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Load of a missing file: %v", err)
	}
}
