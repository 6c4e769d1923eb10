package sumdbsnap

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/modtest"
)

// TestUpstream builds and verifies a snapshot of the real checksum database
// of `go env GOSUMDB`, read through the first proxy of `go env GOPROXY`, with
// the key built into the local Go installation. It is skipped when the
// network is unreachable, unless CI=true.
func TestUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the network")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "env", "GOROOT", "GOPROXY", "GOSUMDB").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(f) != 3 {
		t.Fatalf("go env: %q", out)
	}
	goroot, goproxy, gosumdb := f[0], f[1], f[2]
	proxy, _, _ := strings.Cut(strings.SplitN(goproxy, "|", 2)[0], ",")
	if proxy == "" || proxy == "direct" || proxy == "off" || strings.HasPrefix(proxy, "file:") {
		t.Skipf("GOPROXY %q has no HTTP proxy first", goproxy)
	}
	name, key, _, err := ParseGOSUMDB(gosumdb)
	if err != nil {
		t.Skipf("GOSUMDB %q: %v", gosumdb, err)
	}
	if key == "" {
		if key, err = GoRootKey(goroot, name); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(proxy)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(u.Hostname(), portOf(u)), 20*time.Second); err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("network unreachable: %v", err)
		}
		t.Fatalf("network unreachable: %v", err)
	} else {
		c.Close()
	}

	// Hashes from the real go command, which verifies them itself.
	mods := []string{"golang.org/x/mod@v0.20.0", "golang.org/x/sync@v0.8.0", "golang.org/x/text@v0.17.0"}
	env := append(modtest.GoEnv(t, nil), "GOPROXY="+goproxy, "GOSUMDB="+gosumdb)
	var wants []Want
	for attempt := 1; ; attempt++ {
		cmd := exec.Command("go", append([]string{"mod", "download", "-json"}, mods...)...)
		cmd.Dir = t.TempDir()
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil && attempt < 3 {
			t.Logf("go mod download (attempt %d): %v\n%s", attempt, err, out)
			continue
		}
		if err != nil {
			t.Fatalf("go mod download: %v\n%s", err, out)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for {
			var m struct{ Path, Version, Sum, GoModSum string }
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			wants = append(wants, Want{Path: m.Path, Version: m.Version, ZipHash: m.Sum, ModHash: m.GoModSum})
		}
		break
	}
	if len(wants) != len(mods) {
		t.Fatalf("go mod download gave %d modules, want %d", len(wants), len(mods))
	}

	remote := &HTTPRemote{
		Client:  &http.Client{Timeout: 2 * time.Minute},
		Base:    strings.TrimSuffix(proxy, "/") + "/sumdb/" + name,
		Retries: 4,
	}
	snap, err := Build(context.Background(), name, key, remote, wants, 3)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Logf("snapshot of %s: %d files", name, len(snap.Files))
	if errs := Verify(context.Background(), key, snap, wants); len(errs) != 0 {
		t.Errorf("Verify: %v", errs)
	}
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}
