package pack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"golang.org/x/mod/module"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// toolchainModule is the module path the go command downloads toolchains as.
const toolchainModule = "golang.org/toolchain"

var toolchainRE = regexp.MustCompile(`^go1(\.[0-9]+){1,2}((rc|beta)[0-9]+)?$`)

// validToolchain reports whether v looks like a Go release name (go1.26.8, go1.27rc1).
func validToolchain(v string) bool { return toolchainRE.MatchString(v) }

// toolchainVersion is the module version of toolchain goV for a platform.
func toolchainVersion(goV, platform string) string {
	return "v0.0.1-" + goV + "." + strings.ReplaceAll(platform, "/", "-")
}

// toolchainPlatform extracts GOOS/GOARCH from a toolchain module version.
func toolchainPlatform(ver string) string {
	i := strings.LastIndexByte(ver, '.')
	if i < 0 {
		return ""
	}
	return strings.Replace(ver[i+1:], "-", "/", 1)
}

// fetcher is what pack needs from the upstream proxy client.
type fetcher interface {
	Get(ctx context.Context, path string) ([]byte, error)
	GetFile(ctx context.Context, path string) (string, error)
}

// fetchToolchain adds the zip, .mod and .info of toolchain goV for each
// platform, and the linux/amd64 metadata the go command stats when it checks
// that a toolchain version exists.
func fetchToolchain(ctx context.Context, f fetcher, goV string, platforms []string, out map[string]*file) error {
	plats := append([]string(nil), platforms...)
	wantMeta := map[string]bool{"linux/amd64": true}
	for _, p := range platforms {
		wantMeta[p] = true
	}
	for p := range wantMeta {
		found := false
		for _, q := range plats {
			found = found || q == p
		}
		if !found {
			plats = append(plats, p)
		}
	}
	for _, plat := range plats {
		ver := toolchainVersion(goV, plat)
		ev, err := module.EscapeVersion(ver)
		if err != nil {
			return fmt.Errorf("toolchain %s for %s: %w", goV, plat, err)
		}
		base := toolchainModule + "/@v/" + ev
		withZip := false
		for _, p := range platforms {
			withZip = withZip || p == plat
		}
		for _, ext := range []string{".info", ".mod"} {
			if _, ok := out[base+ext]; ok {
				continue
			}
			data, err := f.Get(ctx, base+ext)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("unknown toolchain %s for %s: the module proxy has no %s@%s", goV, plat, toolchainModule, ver)
				}
				return fmt.Errorf("fetching toolchain %s for %s: %w", goV, plat, err)
			}
			kind := bundle.KindInfo
			if ext == ".mod" {
				kind = bundle.KindMod
			}
			out[base+ext] = &file{Item: bundle.Item{File: base + ext, Kind: kind, Module: toolchainModule, Version: ver}, data: data}
		}
		if !withZip {
			continue
		}
		if _, ok := out[base+".zip"]; ok {
			continue
		}
		path, err := f.GetFile(ctx, base+".zip")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("unknown toolchain %s for %s: the module proxy has no %s@%s", goV, plat, toolchainModule, ver)
			}
			return fmt.Errorf("fetching toolchain %s for %s: %w", goV, plat, err)
		}
		out[base+".zip"] = &file{Item: bundle.Item{File: base + ".zip", Kind: bundle.KindZip, Module: toolchainModule, Version: ver, Platform: plat}, src: path}
	}
	return nil
}
