package push

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Target is where images go: a registry and an optional repository prefix
// under which every image's repository is placed.
type Target struct {
	Registry name.Registry
	Prefix   string // "" or path components joined by "/", no leading or trailing "/"
	opts     []name.Option
}

// ParseTarget parses REGISTRY[/PREFIX], for example "registry.example:5000"
// or "registry.example/team/images". The first component is always the
// registry host. plainHTTP allows the registry to be reached over http.
func ParseTarget(s string, plainHTTP bool) (Target, error) {
	if strings.Contains(s, "://") {
		return Target{}, fmt.Errorf("registry %q: give REGISTRY[/PREFIX] without a scheme (use --plain-http for http)", s)
	}
	trimmed := strings.TrimSuffix(s, "/")
	host, prefix, _ := strings.Cut(trimmed, "/")
	if host == "" {
		return Target{}, fmt.Errorf("registry %q: no registry host", s)
	}
	opts := []name.Option{name.StrictValidation}
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return Target{}, fmt.Errorf("registry %q: %v", s, err)
	}
	if reg.RegistryStr() != host {
		// go-containerregistry rewrites the default registry's short host name; say exactly where images go.
		return Target{}, fmt.Errorf("registry %q: give the registry host as the registry names itself (%s)", s, reg.RegistryStr())
	}
	t := Target{Registry: reg, Prefix: prefix, opts: opts}
	if prefix != "" {
		if slices.Contains(strings.Split(prefix, "/"), "") {
			return Target{}, fmt.Errorf("registry %q: prefix %q has an empty path component", s, prefix)
		}
		if _, err := name.NewRepository(host+"/"+prefix, opts...); err != nil {
			return Target{}, fmt.Errorf("registry %q: prefix %q: %v", s, prefix, err)
		}
	}
	return t, nil
}

// String returns REGISTRY[/PREFIX].
func (t Target) String() string {
	if t.Prefix == "" {
		return t.Registry.RegistryStr()
	}
	return t.Registry.RegistryStr() + "/" + t.Prefix
}

// Ref maps an image name "NAME[:TAG]" of a source to its place in the
// target: REGISTRY/PREFIX/NAME:TAG. A registry host at the start of NAME (a
// first component with a "." or ":", or "localhost") is dropped; a missing
// tag is "latest". Names with a digest are refused: a pushed image needs a tag.
func (t Target) Ref(image string) (name.Tag, error) {
	repo, tag, err := SplitName(image)
	if err != nil {
		return name.Tag{}, err
	}
	path := repo
	if t.Prefix != "" {
		path = t.Prefix + "/" + repo
	}
	ref, err := name.NewTag(t.Registry.RegistryStr()+"/"+path+":"+tag, t.opts...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image %q: %v", image, err)
	}
	return ref, nil
}

// SplitName splits "[HOST/]NAME[:TAG]" into NAME (host dropped) and TAG
// ("latest" if none). It checks only the shape; Target.Ref checks the
// characters.
func SplitName(image string) (repo, tag string, err error) {
	if image == "" {
		return "", "", fmt.Errorf("empty image name")
	}
	if strings.Contains(image, "@") {
		return "", "", fmt.Errorf("image %q: a name with a digest cannot be pushed to a tag; give NAME:TAG", image)
	}
	rest := image
	if first, after, ok := strings.Cut(rest, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		rest = after
	}
	repo, tag = rest, "latest"
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		repo, tag = rest[:i], rest[i+1:]
		if tag == "" {
			return "", "", fmt.Errorf("image %q: empty tag", image)
		}
	}
	if repo == "" || strings.HasPrefix(repo, "/") || strings.HasSuffix(repo, "/") || strings.Contains(repo, "//") {
		return "", "", fmt.Errorf("image %q: invalid name", image)
	}
	return repo, tag, nil
}
