package image

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// SBOMMediaType is the media type (and artifact type) of the SBOM.
const SBOMMediaType = "application/spdx+json"

// SPDX 2.3 document, the subset ferry writes.
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	Supplier              string            `json:"supplier,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Comment               string            `json:"comment,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^a-zA-Z0-9.-]+`)

// makeSBOM returns the SPDX 2.3 JSON document of the Go modules compiled
// into bins (all for one platform): one package per binary (the
// application), its main module, every dependency module (replacements
// noted) and the standard library. Everything in it is derived from the
// binaries' build info, the name and the time, so it is reproducible.
func makeSBOM(imageName string, p Platform, bins []*binary, created time.Time) ([]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", imageName, p)
	for _, b := range bins {
		s := sha256.Sum256(b.Data)
		fmt.Fprintf(h, "%s %x\n", b.Name, s)
	}
	doc := spdxDoc{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              imageName + " " + p.String(),
		DocumentNamespace: fmt.Sprintf("urn:ferry:spdx:sha256:%x", h.Sum(nil)),
		CreationInfo: spdxCreation{
			Created:  created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: ferry"},
		},
	}
	type modKey struct{ path, version string }
	ids := map[modKey]string{}
	used := map[string]bool{}
	var mods []spdxPackage
	addMod := func(m *debug.Module, purpose string) string {
		v := m.Version
		comment := ""
		if m.Replace != nil {
			comment = fmt.Sprintf("replaced by %s %s", m.Replace.Path, m.Replace.Version)
			if m.Replace.Sum != "" {
				comment += " " + m.Replace.Sum
			}
		} else if m.Sum != "" {
			comment = "go.sum " + m.Sum
		}
		k := modKey{m.Path, v}
		if id, ok := ids[k]; ok {
			return id
		}
		id := fmt.Sprintf("SPDXRef-Package-go-module-%s-%s", spdxIDUnsafe.ReplaceAllString(m.Path, "-"), spdxIDUnsafe.ReplaceAllString(v, "-"))
		if used[id] {
			id += fmt.Sprintf("-%x", sha256.Sum256([]byte(m.Path+"@"+v)))[:13]
		}
		ids[k], used[id] = id, true
		pkg := spdxPackage{
			SPDXID: id, Name: m.Path, VersionInfo: v, DownloadLocation: "NOASSERTION",
			Supplier: "NOASSERTION", PrimaryPackagePurpose: purpose, Comment: comment,
		}
		purl := "pkg:golang/" + m.Path
		if v != "" && v != "(devel)" {
			purl += "@" + v
		}
		pkg.ExternalRefs = []spdxExternalRef{{"PACKAGE-MANAGER", "purl", purl}}
		mods = append(mods, pkg)
		return id
	}
	var apps []spdxPackage
	var rels []spdxRelationship
	for _, b := range bins {
		appID := "SPDXRef-Package-binary-" + spdxIDUnsafe.ReplaceAllString(b.Name, "-")
		apps = append(apps, spdxPackage{
			SPDXID: appID, Name: b.Name, DownloadLocation: "NOASSERTION", Supplier: "NOASSERTION",
			PrimaryPackagePurpose: "APPLICATION",
			Comment:               fmt.Sprintf("/usr/local/bin/%s, built from %s with %s", b.Name, b.ImportPath, b.Info.GoVersion),
		})
		rels = append(rels, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", appID})
		mainID := addMod(&b.Info.Main, "SOURCE")
		rels = append(rels, spdxRelationship{appID, "GENERATED_FROM", mainID})
		std := debug.Module{Path: "stdlib", Version: b.Info.GoVersion}
		rels = append(rels, spdxRelationship{appID, "CONTAINS", addMod(&std, "LIBRARY")})
		for _, d := range b.Info.Deps {
			rels = append(rels, spdxRelationship{appID, "CONTAINS", addMod(d, "LIBRARY")})
		}
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].SPDXID < mods[j].SPDXID })
	sort.Slice(rels, func(i, j int) bool {
		a, b := rels[i], rels[j]
		return a.Element+"\x00"+a.Type+"\x00"+a.Related < b.Element+"\x00"+b.Type+"\x00"+b.Related
	})
	doc.Packages = append(apps, mods...)
	doc.Relationships = dedupeRels(rels)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func dedupeRels(rs []spdxRelationship) []spdxRelationship {
	var out []spdxRelationship
	for i, r := range rs {
		if i == 0 || r != rs[i-1] {
			out = append(out, r)
		}
	}
	return out
}

// SBOMModules returns "path@version" of every Go module an SPDX document
// made by ferry lists (for tests and reports).
func SBOMModules(doc []byte) ([]string, error) {
	var d spdxDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("parsing SPDX document: %w", err)
	}
	var out []string
	for _, p := range d.Packages {
		if strings.HasPrefix(p.SPDXID, "SPDXRef-Package-go-module-") {
			out = append(out, p.Name+"@"+p.VersionInfo)
		}
	}
	return out, nil
}
