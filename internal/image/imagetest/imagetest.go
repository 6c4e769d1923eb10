// Package imagetest holds a small real Go service that tests of ferry's
// image builds compile, run and probe: an HTTP server whose answer names a
// module it depends on, the time zone it could load and whether it found CA
// certificates, and a `probe` subcommand that GETs the server on localhost
// and exits 0 only on the right answer.
//
// Invariants: the service has exactly one dependency, GreetModule (serve it
// with internal/modtest); its source is fixed text, so builds of it are
// reproducible; nothing here touches the network or the environment.
package imagetest

import (
	"os"
	"path/filepath"

	"github.com/ferry-dev/ferry/internal/modtest"
)

// GreetModule is the service's one dependency.
func GreetModule() modtest.Module {
	return modtest.Module{Path: "example.com/greet", Version: "v1.0.0", Files: map[string]string{
		"go.mod":   "module example.com/greet\n\ngo 1.21\n",
		"greet.go": "// Package greet says hello.\npackage greet\n\nfunc Hello() string { return \"hello from greet v1.0.0\" }\n",
	}}
}

// ModulePath is the service's module path.
const ModulePath = "example.com/svc"

// Files returns the service module: the command at the root (binary "svc")
// and a library package lib/ (not a command). go.sum is left for the test
// to make (go mod tidy against a modtest server).
func Files() map[string]string {
	return map[string]string{
		"go.mod":     "module " + ModulePath + "\n\ngo 1.22\n\nrequire example.com/greet v1.0.0\n",
		"main.go":    serviceSource,
		"lib/lib.go": "// Package lib is not a command.\npackage lib\n\nconst Name = \"lib\"\n",
	}
}

// Write writes Files into dir.
func Write(dir string) error {
	for name, data := range Files() {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WantAnswer is what a correct image's server answers (then " uid:N").
const WantAnswer = "hello from greet v1.0.0 tz:Europe/Paris certs:ok"

const serviceSource = `// Command svc is a small HTTP service for ferry's image tests.
//
//	svc         serve on $SVC_ADDR (default 127.0.0.1:8080)
//	svc probe   GET the server, print its answer, exit 0 if it is right
package main

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"example.com/greet"
)

func addr() string {
	if a := os.Getenv("SVC_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:8080"
}

// answer says what this process can do: the dependency's greeting, a time
// zone loaded from the zoneinfo data, whether the system CA pool has
// certificates, and the user it runs as.
func answer() string {
	tz := "tz:none"
	if loc, err := time.LoadLocation("Europe/Paris"); err == nil {
		tz = "tz:" + loc.String()
	}
	certs := "certs:none"
	if pool, err := x509.SystemCertPool(); err == nil && len(pool.Subjects()) > 0 {
		certs = "certs:ok"
	}
	return fmt.Sprintf("%s %s %s uid:%d", greet.Hello(), tz, certs, os.Getuid())
}

func probe() int {
	want := answer()
	var last string
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + addr() + "/")
		if err != nil {
			last = err.Error()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := strings.TrimSpace(string(body))
		fmt.Println(got)
		if err != nil || resp.StatusCode != 200 || got != want ||
			!strings.Contains(got, "tz:Europe/Paris") || !strings.Contains(got, "certs:ok") {
			fmt.Fprintf(os.Stderr, "probe: got %q (status %d), want %q\n", got, resp.StatusCode, want)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "probe: no answer:", last)
	return 1
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probe())
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, answer())
	})
	if err := http.ListenAndServe(addr(), nil); err != nil {
		fmt.Fprintln(os.Stderr, "svc:", err)
		os.Exit(1)
	}
}
`
