package web

import (
	"context"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chromium returns the path of a Chromium binary. Outside CI the test is
// skipped when there is none; in CI (CI=true) it must be installed.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; CI must install it (Debian package chromium)")
	}
	t.Skip("chromium not found (apt-get install chromium)")
	return ""
}

// runChromium runs headless Chromium with args. The deadline only keeps a
// wedged browser from hanging the test; nothing asserts on time.
//
// With noJS, JavaScript is blocked by the profile's content setting (what a
// user who turned JavaScript off has). --blink-settings=scriptEnabled=false
// cannot be used: headless Chromium then writes neither --dump-dom nor
// --screenshot output, and --disable-javascript does not disable it.
func runChromium(t *testing.T, bin string, noJS bool, args ...string) []byte {
	t.Helper()
	profile := t.TempDir()
	if noJS {
		if err := os.MkdirAll(filepath.Join(profile, "Default"), 0o777); err != nil {
			t.Fatal(err)
		}
		prefs := `{"profile":{"default_content_setting_values":{"javascript":2}}}`
		if err := os.WriteFile(filepath.Join(profile, "Default", "Preferences"), []byte(prefs), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--hide-scrollbars", "--user-data-dir=" + profile,
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// artifactDir is where screenshots go: a test temp dir, copied to
// $FERRY_ARTIFACTS/web when that is set.
func saveArtifact(t *testing.T, src string) {
	t.Helper()
	dir := os.Getenv("FERRY_ARTIFACTS")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, "web")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o666); err != nil {
		t.Fatal(err)
	}
}

// checkScreenshot decodes a PNG and checks it has the window's size and
// is not blank: a rendered page has many distinct colours (anti-aliased text).
func checkScreenshot(t *testing.T, file string, w, h int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("screenshot not written: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", file, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("screenshot %s is %v, want %dx%d", file, b, w, h)
	}
	colors := map[[4]uint32]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 2 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
			r, g, b, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, b, a}] = true
		}
	}
	if len(colors) < 20 {
		t.Errorf("screenshot %s looks blank: %d colours", file, len(colors))
	}
}

func TestChromium(t *testing.T) {
	bin := chromium(t)
	src := sampleSource()
	// Enough modules for a second page.
	big := bigSource(150)
	src.mods = append(src.mods, big.mods...)
	srv := httptest.NewServer(Handler(src))
	defer srv.Close()
	dir := t.TempDir()

	for _, shot := range []struct {
		name, path string
		w, h       int
	}{
		{"index-phone.png", "/", 390, 844},
		{"index-desktop.png", "/", 1280, 900},
		{"search-phone.png", "/?q=spf13", 390, 844},
		{"module-phone.png", "/mod/" + longPath, 390, 844},
		{"module-desktop.png", "/mod/github.com/spf13/cobra", 1280, 900},
	} {
		t.Run(shot.name, func(t *testing.T) {
			file := filepath.Join(dir, shot.name)
			runChromium(t, bin, false, "--window-size="+strconv.Itoa(shot.w)+","+strconv.Itoa(shot.h),
				"--screenshot="+file, srv.URL+shot.path)
			checkScreenshot(t, file, shot.w, shot.h)
			saveArtifact(t, file)
		})
	}

	// The whole page on a phone, down to the bundles table (rendered as
	// cards at this width), with JavaScript disabled.
	small := httptest.NewServer(Handler(sampleSource()))
	defer small.Close()
	t.Run("full-phone-nojs.png", func(t *testing.T) {
		file := filepath.Join(dir, "full-phone-nojs.png")
		runChromium(t, bin, true, "--window-size=390,2400",
			"--screenshot="+file, small.URL+"/")
		checkScreenshot(t, file, 390, 2400)
		saveArtifact(t, file)
	})

	t.Run("full-desktop.png", func(t *testing.T) {
		file := filepath.Join(dir, "full-desktop.png")
		runChromium(t, bin, false, "--window-size=1280,1700", "--screenshot="+file, small.URL+"/")
		checkScreenshot(t, file, 1280, 1700)
		saveArtifact(t, file)
	})

	t.Run("dump-dom without JavaScript", func(t *testing.T) {
		// First prove that JavaScript is really off in this browser.
		probe := "data:text/html,<p id=x>static</p><script>document.getElementById('x').textContent='js-ran'</script>"
		if dom := string(runChromium(t, bin, true, "--dump-dom", probe)); !strings.Contains(dom, ">static<") {
			t.Fatalf("JavaScript was not disabled: %s", dom)
		}
		dom := string(runChromium(t, bin, true, "--window-size=390,844", "--dump-dom", small.URL+"/"))
		if strings.Contains(dom, "<script") {
			t.Errorf("page has a script element")
		}
		for _, want := range []string{
			`<a href="/mod/golang.org/x/mod">golang.org/<wbr>x/<wbr>mod</a>`,
			"go get github.com/spf13/cobra@v1.10.2",
			`<input id="q" name="q" type="search"`,
			"go1.27.3", "svc",
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("DOM without JavaScript lacks %q", want)
			}
		}
		dom = string(runChromium(t, bin, true, "--dump-dom", small.URL+"/?q=cobra"))
		if !strings.Contains(dom, "github.com/spf13/cobra") || strings.Contains(dom, "golang.org/x/mod@") {
			t.Errorf("search without JavaScript does not filter")
		}
	})
}
