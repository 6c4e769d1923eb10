package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Platform is one target of a build: a linux GOARCH and, for arm and amd64,
// the variant that selects GOARM or GOAMD64.
type Platform struct {
	OS      string `json:"os"`
	Arch    string `json:"architecture"`
	Variant string `json:"variant,omitempty"`
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// oci returns the platform of the image descriptor and config.
func (p Platform) oci() *v1.Platform {
	return &v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant}
}

// goEnv returns the go command's environment for this platform. Unused
// variant variables are set empty so the caller's environment cannot leak in.
func (p Platform) goEnv() []string {
	env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Arch, "GOARM=", "GOAMD64="}
	switch p.Arch {
	case "arm":
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	case "amd64":
		if p.Variant != "" {
			env = append(env, "GOAMD64="+p.Variant)
		}
	}
	return env
}

// linuxArches are the GOARCH values the go command supports for linux, with
// the variants an image platform may name for each. The go command in use
// is asked too (go tool dist list), so a toolchain that lacks a port is
// caught before compiling.
var linuxArches = map[string][]string{
	"386": nil, "amd64": {"v1", "v2", "v3", "v4"}, "arm": {"v5", "v6", "v7"}, "arm64": {"v8"},
	"loong64": nil, "mips": nil, "mips64": nil, "mips64le": nil, "mipsle": nil,
	"ppc64": nil, "ppc64le": nil, "riscv64": nil, "s390x": nil,
}

// ParsePlatform parses "linux/ARCH[/VARIANT]". Only linux images are built.
// linux/arm without a variant means v7 (the go command's default GOARM);
// linux/arm64/v8 is written linux/arm64.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64", s)
	}
	p := Platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if p.OS != "linux" {
		return Platform{}, fmt.Errorf("platform %q: unknown image platform: only linux images can be built", s)
	}
	variants, ok := linuxArches[p.Arch]
	if !ok {
		return Platform{}, fmt.Errorf("platform %q: unknown platform: GOARCH %q is not a linux port of Go", s, p.Arch)
	}
	if p.Variant != "" {
		found := false
		for _, v := range variants {
			found = found || v == p.Variant
		}
		if !found {
			return Platform{}, fmt.Errorf("platform %q: unknown variant %q for %s (known: %s)", s, p.Variant, p.Arch, strings.Join(variants, ","))
		}
	}
	switch {
	case p.Arch == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Arch == "arm64" && p.Variant == "v8":
		p.Variant = ""
	}
	return p, nil
}

// ParsePlatforms parses a list of platforms, dropping duplicates and keeping
// the order given.
func ParsePlatforms(list []string) ([]Platform, error) {
	var out []Platform
	seen := map[Platform]bool{}
	for _, s := range list {
		p, err := ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platform given")
	}
	return out, nil
}

// matches reports whether an image platform (from a base index or config)
// is p. An empty variant matches the default one (arm64 v8, arm v7, amd64 v1).
func (p Platform) matches(o *v1.Platform) bool {
	if o == nil || o.OS != p.OS || o.Architecture != p.Arch {
		return false
	}
	norm := func(v string) string {
		if v != "" {
			return v
		}
		switch p.Arch {
		case "arm64":
			return "v8"
		case "arm":
			return "v7"
		case "amd64":
			return "v1"
		}
		return ""
	}
	return norm(o.Variant) == norm(p.Variant)
}

// Tag is the parsed --tag NAME:VERSION.
type Tag struct {
	Name    string // as given, without :VERSION
	Version string
}

func (t Tag) String() string { return t.Name + ":" + t.Version }

// ParseTag parses NAME:VERSION, where NAME is an image repository name
// (optionally with a registry host) and VERSION is a tag.
func ParseTag(s string) (Tag, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.Contains(s[i:], "/") || strings.Contains(s, "@") {
		return Tag{}, fmt.Errorf("tag %q: want NAME:VERSION, e.g. myservice:1.2.3", s)
	}
	t := Tag{Name: s[:i], Version: s[i+1:]}
	if t.Name == "" || t.Version == "" {
		return Tag{}, fmt.Errorf("tag %q: want NAME:VERSION, e.g. myservice:1.2.3", s)
	}
	if _, err := name.NewTag(s, name.WeakValidation); err != nil {
		return Tag{}, fmt.Errorf("tag %q: %v", s, err)
	}
	return t, nil
}

// OutputKind is where an image goes.
type OutputKind string

const (
	OutputLayout OutputKind = "oci" // an OCI image layout directory
	OutputTar    OutputKind = "tar" // an OCI layout tar that docker load also reads
)

// Output is a parsed -o oci:DIR or -o tar:FILE.
type Output struct {
	Kind OutputKind `json:"kind"`
	Path string     `json:"path"`
}

func (o Output) String() string { return string(o.Kind) + ":" + o.Path }

// ParseOutput parses oci:DIR or tar:FILE.
func ParseOutput(s string) (Output, error) {
	kind, p, ok := strings.Cut(s, ":")
	if !ok || p == "" || (kind != string(OutputLayout) && kind != string(OutputTar)) {
		return Output{}, fmt.Errorf("output %q: want oci:DIR or tar:FILE", s)
	}
	return Output{Kind: OutputKind(kind), Path: filepath.Clean(p)}, nil
}

// Base is a parsed --base.
type Base struct {
	Scratch bool
	Layout  string // oci:DIR
	RefName string // oci:DIR:REF, the ref.name to choose in the layout
	Ref     string // a registry reference
}

func (b Base) String() string {
	switch {
	case b.Scratch:
		return "scratch"
	case b.Layout != "" && b.RefName != "":
		return "oci:" + b.Layout + ":" + b.RefName
	case b.Layout != "":
		return "oci:" + b.Layout
	}
	return b.Ref
}

// ParseBase parses scratch (or ""), oci:DIR, oci:DIR:REF or a registry
// reference. For oci:X:Y, the whole of X:Y is the directory if it is one,
// else the longest X that is a directory, and Y the ref.name.
func ParseBase(s string) (Base, error) {
	switch {
	case s == "" || s == "scratch":
		return Base{Scratch: true}, nil
	case strings.HasPrefix(s, "oci:"):
		p := strings.TrimPrefix(s, "oci:")
		if p == "" {
			return Base{}, fmt.Errorf("base %q: want oci:DIR", s)
		}
		if !isDir(p) {
			// The longest prefix before a colon that is a directory.
			for i := strings.LastIndexByte(p, ':'); i > 0; i = strings.LastIndexByte(p[:i], ':') {
				if isDir(p[:i]) && p[i+1:] != "" {
					return Base{Layout: filepath.Clean(p[:i]), RefName: p[i+1:]}, nil
				}
			}
		}
		return Base{Layout: filepath.Clean(p)}, nil
	}
	if _, err := name.ParseReference(s, name.WeakValidation); err != nil {
		return Base{}, fmt.Errorf("base %q: not scratch, oci:DIR or an image reference: %v", s, err)
	}
	return Base{Ref: s}, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// isRootUser reports whether a config User runs as root: empty (the
// runtime's default), "root", "0", or either with a group.
func isRootUser(u string) bool {
	user, _, _ := strings.Cut(u, ":")
	return user == "" || user == "root" || strings.TrimLeft(user, "0") == "" && user != ""
}

// normalizeUser turns a bare numeric UID into UID:UID, so the runtime does
// not fall back to group 0 when the image has no /etc/passwd.
func normalizeUser(u string) string {
	if u == "" || strings.Contains(u, ":") {
		return u
	}
	for _, c := range u {
		if c < '0' || c > '9' {
			return u
		}
	}
	return u + ":" + u
}
