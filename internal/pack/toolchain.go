package pack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/mod/module"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/fetch"
)

// toolchainModule is the module path the go command downloads toolchains as.
const toolchainModule = bundle.ToolchainModule

// existencePlatform is the platform whose toolchain metadata the go command
// stats to decide whether a Go version exists, whatever the host.
const existencePlatform = "linux/amd64"

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

// refused reports whether the proxy answered a path with a client error
// (404, 410, or a mirror's 403 "not available"): retrying cannot help.
func refused(err error) bool {
	var se *fetch.StatusError
	return errors.As(err, &se) && se.Status >= 400 && se.Status < 500
}

// fetchToolchain adds the zip, .mod and .info of toolchain goV for each
// platform, and the linux/amd64 metadata the go command stats when it checks
// that a toolchain version exists. A version the proxy does not have for
// linux/amd64 is unknown: an error. A platform the proxy refuses is returned
// as missing, so pack can say what will not work offline.
func fetchToolchain(ctx context.Context, f fetcher, goV string, platforms []string, out map[string]*file) ([]bundle.Missing, error) {
	plats := []string{existencePlatform}
	for _, p := range platforms {
		if p != existencePlatform {
			plats = append(plats, p)
		}
	}
	var missing []bundle.Missing
	for _, plat := range plats {
		ver := toolchainVersion(goV, plat)
		ev, err := module.EscapeVersion(ver)
		if err != nil {
			return nil, fmt.Errorf("toolchain %s for %s: %w", goV, plat, err)
		}
		base := toolchainModule + "/@v/" + ev
		withZip := false
		for _, p := range platforms {
			withZip = withZip || p == plat
		}
		exts := []string{".info", ".mod"}
		if withZip {
			exts = append(exts, ".zip")
		}
		for _, ext := range exts {
			if _, ok := out[base+ext]; ok {
				continue
			}
			it := bundle.Item{File: base + ext, Module: toolchainModule, Version: ver}
			var fl *file
			if ext == ".zip" {
				it.Kind, it.Platform = bundle.KindZip, plat
				var path string
				if path, err = f.GetFile(ctx, base+ext); err == nil {
					fl = &file{Item: it, src: path}
				}
			} else {
				it.Kind = bundle.KindInfo
				if ext == ".mod" {
					it.Kind = bundle.KindMod
				}
				var data []byte
				if data, err = f.Get(ctx, base+ext); err == nil {
					fl = &file{Item: it, data: data}
				}
			}
			switch {
			case err == nil:
				out[base+ext] = fl
				continue
			case !refused(err):
				return nil, fmt.Errorf("fetching toolchain %s for %s: %w", goV, plat, err)
			case plat == existencePlatform:
				return nil, fmt.Errorf("unknown toolchain %s: the module proxy has no %s@%s: %w", goV, toolchainModule, ver, err)
			}
			missing = append(missing, bundle.Missing{
				Module: toolchainModule, Version: ver, File: ext, Reason: err.Error(),
				Impact: fmt.Sprintf("GOTOOLCHAIN=%s will not work offline on %s (cross-builds for %s still work)", goV, plat, plat),
			})
			break
		}
	}
	return missing, nil
}
