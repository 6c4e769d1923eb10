package bundle

import (
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// ToolchainModule is the module path the go command downloads Go toolchains as.
const ToolchainModule = "golang.org/toolchain"

// VersionList is the content of <module>/@v/list for the versions a store
// holds of module mod, as ferry answers it wherever it serves a store
// (install's file:// directory, serve): valid semantic versions, each once,
// semver-sorted, one per line; pseudo-versions are left out as upstream
// proxies do, except for the toolchain module. It also returns the listed
// versions.
func VersionList(mod string, versions []string) ([]byte, []string) {
	seen := make(map[string]bool, len(versions))
	var list []string
	for _, v := range versions {
		if !semver.IsValid(v) || seen[v] || (mod != ToolchainModule && module.IsPseudoVersion(v)) {
			continue
		}
		seen[v] = true
		list = append(list, v)
	}
	semver.Sort(list)
	var b strings.Builder
	for _, v := range list {
		b.WriteString(v + "\n")
	}
	return []byte(b.String()), list
}
