package bundle

import (
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/semver"
)

// Diff is what bundle B adds, removes and changes against bundle A, from
// their manifests alone.
type Diff struct {
	A, B NameVersion `json:"-"`
	// Modules: versions only in B, only in A, and module paths whose only
	// version moved (A's highest version to B's highest).
	Added   []ModuleVersion `json:"added,omitempty"`
	Removed []ModuleVersion `json:"removed,omitempty"`
	Changed []ModuleChange  `json:"changed,omitempty"`
	// Toolchains (goX.Y.Z GOOS/GOARCH) only in B, only in A.
	ToolchainsAdded   []string `json:"toolchainsAdded,omitempty"`
	ToolchainsRemoved []string `json:"toolchainsRemoved,omitempty"`
	// Images (by reference) only in B, only in A, and those whose digest changed.
	ImagesAdded   []string `json:"imagesAdded,omitempty"`
	ImagesRemoved []string `json:"imagesRemoved,omitempty"`
	ImagesChanged []string `json:"imagesChanged,omitempty"`
	// Blobs: what a delta of B against A would carry, and what B drops.
	NewBlobs      int   `json:"newBlobs"`
	NewBytes      int64 `json:"newBytes"`
	DroppedBlobs  int   `json:"droppedBlobs"`
	DroppedBytes  int64 `json:"droppedBytes"`
	SharedBlobs   int   `json:"sharedBlobs"`
	SumDBTreeFrom int64 `json:"sumdbTreeFrom,omitempty"`
	SumDBTreeTo   int64 `json:"sumdbTreeTo,omitempty"`
}

// NameVersion names a bundle.
type NameVersion struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// ModuleVersion is one module version.
type ModuleVersion struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

// ModuleChange is a module whose version moved.
type ModuleChange struct {
	Path string `json:"path"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Empty reports whether the two bundles carry the same things.
func (d *Diff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.Changed)+len(d.ToolchainsAdded)+len(d.ToolchainsRemoved)+
		len(d.ImagesAdded)+len(d.ImagesRemoved)+len(d.ImagesChanged)+d.NewBlobs+d.DroppedBlobs == 0
}

// Compare computes what b adds, removes and changes against a. A module
// version counts when the bundle carries its zip (a .mod alone only serves
// module graph pruning); a path with exactly one such version on each side,
// and different ones, is reported as changed rather than added and removed.
func Compare(a, b *Manifest) *Diff {
	d := &Diff{A: NameVersion{a.Name, a.Version}, B: NameVersion{b.Name, b.Version}}
	ma, ta := contents(a)
	mb, tb := contents(b)
	for p, vb := range mb {
		va := ma[p]
		if len(va) == 1 && len(vb) == 1 && va[0] != vb[0] {
			d.Changed = append(d.Changed, ModuleChange{Path: p, From: va[0], To: vb[0]})
			continue
		}
		for _, v := range vb {
			if !contains(va, v) {
				d.Added = append(d.Added, ModuleVersion{p, v})
			}
		}
	}
	for p, va := range ma {
		vb := mb[p]
		if len(va) == 1 && len(vb) == 1 && va[0] != vb[0] {
			continue
		}
		for _, v := range va {
			if !contains(vb, v) {
				d.Removed = append(d.Removed, ModuleVersion{p, v})
			}
		}
	}
	d.ToolchainsAdded, d.ToolchainsRemoved = setDiff(tb, ta), setDiff(ta, tb)
	ia, ib := images(a), images(b)
	for ref, dg := range ib {
		if old, ok := ia[ref]; !ok {
			d.ImagesAdded = append(d.ImagesAdded, ref)
		} else if old != dg {
			d.ImagesChanged = append(d.ImagesChanged, ref)
		}
	}
	for ref := range ia {
		if _, ok := ib[ref]; !ok {
			d.ImagesRemoved = append(d.ImagesRemoved, ref)
		}
	}

	ba, bb := blobSizes(a), blobSizes(b)
	for dg, n := range bb {
		if _, ok := ba[dg]; ok {
			d.SharedBlobs++
		} else {
			d.NewBlobs++
			d.NewBytes += n
		}
	}
	for dg, n := range ba {
		if _, ok := bb[dg]; !ok {
			d.DroppedBlobs++
			d.DroppedBytes += n
		}
	}
	d.SumDBTreeFrom, d.SumDBTreeTo = treeSize(a), treeSize(b)

	sort.Slice(d.Added, func(i, j int) bool { return lessMV(d.Added[i], d.Added[j]) })
	sort.Slice(d.Removed, func(i, j int) bool { return lessMV(d.Removed[i], d.Removed[j]) })
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].Path < d.Changed[j].Path })
	for _, s := range [][]string{d.ImagesAdded, d.ImagesRemoved, d.ImagesChanged} {
		sort.Strings(s)
	}
	return d
}

// contents returns the module versions whose zips m carries (path ->
// sorted versions) and its toolchains as "goX.Y.Z GOOS/GOARCH".
func contents(m *Manifest) (map[string][]string, []string) {
	mods := map[string][]string{}
	var tcs []string
	for _, it := range m.Items {
		if it.Kind != KindZip || it.Module == "" {
			continue
		}
		if it.Module == ToolchainModule {
			// v0.0.1-go1.26.8.linux-amd64 -> go1.26.8, linux/amd64
			v, plat := it.Version, it.Platform
			if i := strings.LastIndex(v, "-go"); i >= 0 {
				v = v[i+1:]
			}
			if i := strings.LastIndex(v, "."); i >= 0 {
				if plat == "" {
					plat = strings.Replace(v[i+1:], "-", "/", 1)
				}
				v = v[:i]
			}
			tcs = append(tcs, v+" "+plat)
			continue
		}
		if !contains(mods[it.Module], it.Version) {
			mods[it.Module] = append(mods[it.Module], it.Version)
		}
	}
	for _, vs := range mods {
		semver.Sort(vs)
	}
	sort.Strings(tcs)
	return mods, tcs
}

// images returns image reference -> digest for the images m carries.
func images(m *Manifest) map[string]string {
	out := map[string]string{}
	for _, it := range m.Items {
		if it.Kind == KindImage && it.Module != "" {
			out[it.Module] = it.Digest
		}
	}
	return out
}

func blobSizes(m *Manifest) map[string]int64 {
	out := make(map[string]int64, len(m.Items))
	for _, it := range m.Items {
		out[it.Digest] = it.Size
	}
	return out
}

// treeSize is the size of the checksum database tree m's head signs.
func treeSize(m *Manifest) int64 {
	if m.SumDB == nil {
		return 0
	}
	lines := strings.SplitN(m.SumDB.Head, "\n", 3)
	if len(lines) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(lines[1], 10, 64)
	return n
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// setDiff returns the elements of a not in b.
func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func lessMV(a, b ModuleVersion) bool {
	if a.Path != b.Path {
		return a.Path < b.Path
	}
	return semver.Compare(a.Version, b.Version) < 0
}
