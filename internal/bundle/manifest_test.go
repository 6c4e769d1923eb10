package bundle

import (
	"strings"
	"testing"
)

const (
	testH1  = "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	testHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// validManifest returns a manifest with one item of every kind (and a
// toolchain, an uppercase module path, an encoded zip and a referrer), which
// Check accepts.
func validManifest() *Manifest {
	d := "sha256:" + testHex
	return &Manifest{
		SchemaVersion: SchemaVersion,
		Toolchains:    []string{"go1.26.8", "go1.27rc1", "go1.25beta2", "go1.24"},
		SumDB:         &SumDB{Name: "sum.example.com", Key: "k", Head: "h"},
		Items: []Item{
			{File: "example.com/m/@v/v1.0.0.info", Kind: KindInfo, Module: "example.com/m", Version: "v1.0.0", Digest: d},
			{File: "example.com/m/@v/v1.0.0.mod", Kind: KindMod, Module: "example.com/m", Version: "v1.0.0", Digest: d, Hash: testH1},
			{File: "example.com/m/@v/v1.0.0.zip", Kind: KindZip, Module: "example.com/m", Version: "v1.0.0", Digest: d, Hash: testH1, NoSumDB: true},
			{File: "example.com/!upper/@v/v0.2.0-!r!c.1.zip", Kind: KindZip, Module: "example.com/Upper", Version: "v0.2.0-RC.1", Digest: d, Hash: testH1,
				Encoding: EncodingZstd, FileDigest: d, FileSize: 3},
			{File: "example.com/m/@v/v2.0.0+incompatible.mod", Kind: KindMod, Module: "example.com/m", Version: "v2.0.0+incompatible", Digest: d},
			{File: "gopkg.in/yaml.v3/@v/v3.0.1.mod", Kind: KindMod, Module: "gopkg.in/yaml.v3", Version: "v3.0.1", Digest: d},
			{File: "golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip", Kind: KindZip, Module: "golang.org/toolchain",
				Version: "v0.0.1-go1.26.8.linux-amd64", Platform: "linux/amd64", Digest: d, Hash: testH1},
			{File: "golang.org/toolchain/@v/v0.0.1-go1.27rc1.windows-arm64.zip", Kind: KindZip, Module: "golang.org/toolchain",
				Version: "v0.0.1-go1.27rc1.windows-arm64", Platform: "windows/arm64", Digest: d},
			{File: "golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.mod", Kind: KindMod, Module: "golang.org/toolchain",
				Version: "v0.0.1-go1.26.8.linux-amd64", Digest: d},
			{File: "sumdb/sum.example.com/latest", Kind: KindSumDB, Digest: d},
			{File: "sumdb/sum.example.com/lookup/example.com/!upper@v0.2.0-!r!c.1", Kind: KindSumDB, Digest: d},
			{File: "sumdb/sum.example.com/tile/8/0/x001/234.p/5", Kind: KindSumDB, Digest: d},
			{File: "sumdb/sum.example.com/tile/8/data/000", Kind: KindSumDB, Digest: d},
			{File: "images/registry.example:5000/team/app:1.0", Kind: KindImage, Module: "registry.example:5000/team/app:1.0", Digest: d},
			{File: "images/@" + d, Kind: KindImage, Digest: d},
			{File: "oci/blobs/sha256/" + testHex, Kind: KindOCI, Digest: d, MediaType: "application/vnd.oci.image.layer.v1.tar"},
		},
	}
}

func TestCheckAcceptsEveryKind(t *testing.T) {
	m := validManifest()
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckRefuses covers issue 12 items 2 and 6: every item whose kind,
// module, version or platform disagrees with its file, and every path or
// name install refuses, is refused by the one validation every reader runs.
func TestCheckRefuses(t *testing.T) {
	const (
		info = 0 // indexes into validManifest().Items
		mod  = 1
		zip  = 2
		up   = 3
		tc   = 6
		sum  = 9
		img  = 13
		ref  = 14
		oci  = 15
	)
	cases := []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		// Item 2: kind relabelling.
		{"zip as info", func(m *Manifest) { m.Items[zip].Kind = KindInfo }, `kind "info", but a .zip file is a "zip" item`},
		{"zip as mod", func(m *Manifest) { m.Items[zip].Kind = KindMod }, `a .zip file is a "zip" item`},
		{"toolchain as info", func(m *Manifest) { m.Items[tc].Kind = KindInfo }, `a .zip file is a "zip" item`},
		{"mod as info", func(m *Manifest) { m.Items[mod].Kind = KindInfo }, `a .mod file is a "mod" item`},
		{"info as zip", func(m *Manifest) { m.Items[info].Kind = KindZip }, `a .info file is a "info" item`},
		{"zip as sumdb", func(m *Manifest) { m.Items[zip].Kind = KindSumDB }, `is a "zip" item`},
		{"zip as image", func(m *Manifest) { m.Items[zip].Kind = KindImage }, `is a "zip" item`},
		{"zip as oci", func(m *Manifest) { m.Items[zip].Kind = KindOCI }, `is a "zip" item`},
		{"zip without kind", func(m *Manifest) { m.Items[zip].Kind = "" }, `kind ""`},
		{"unknown kind", func(m *Manifest) { m.Items[zip].Kind = "source" }, `kind "source"`},
		{"sumdb as info", func(m *Manifest) { m.Items[sum].Kind = KindInfo }, `is a "sumdb" item`},
		{"image as oci", func(m *Manifest) { m.Items[img].Kind = KindOCI }, `is a "image" item`},
		{"oci as image", func(m *Manifest) { m.Items[oci].Kind = KindImage }, `is a "oci" item`},
		{"zip of another module", func(m *Manifest) { m.Items[zip].Module = "example.com/other" }, `module example.com/other version v1.0.0 is at example.com/other/@v/v1.0.0.zip`},
		{"zip of another version", func(m *Manifest) { m.Items[zip].Version = "v1.0.1" }, `is at example.com/m/@v/v1.0.1.zip`},
		{"zip without module", func(m *Manifest) { m.Items[zip].Module = "" }, `module path ""`},
		{"unescaped upper case", func(m *Manifest) { m.Items[up].File = "example.com/Upper/@v/v0.2.0-!r!c.1.zip" }, `example.com/!upper/@v/v0.2.0-!r!c.1.zip`},
		{"not a semantic version", func(m *Manifest) {
			m.Items[zip].Version, m.Items[zip].File = "master", "example.com/m/@v/master.zip"
		}, `not a semantic version`},
		{"toolchain for another platform", func(m *Manifest) { m.Items[tc].Platform = "linux/arm64" }, `platform "linux/arm64", but toolchain v0.0.1-go1.26.8.linux-amd64 is for linux/amd64`},
		{"toolchain without platform", func(m *Manifest) { m.Items[tc].Platform = "" }, `platform "", but toolchain`},
		{"platform on a module zip", func(m *Manifest) { m.Items[zip].Platform = "linux/amd64" }, `platform "linux/amd64" on an item that is not a toolchain zip`},
		{"toolchain version not a release", func(m *Manifest) {
			m.Items[tc].Version = "v0.0.1-go1.26.8-custom.linux-amd64"
			m.Items[tc].File = "golang.org/toolchain/@v/v0.0.1-go1.26.8-custom.linux-amd64.zip"
		}, `not a Go toolchain version`},
		{"h1 on an info item", func(m *Manifest) { m.Items[info].Hash = testH1 }, `h1: hash on a "info" item`},
		{"malformed h1", func(m *Manifest) { m.Items[zip].Hash = "h1:xyz" }, `invalid h1: hash "h1:xyz"`},
		{"sumdb of another database", func(m *Manifest) { m.Items[sum].File = "sumdb/sum.other/latest" }, `not under sumdb/sum.example.com/`},
		{"sumdb without snapshot", func(m *Manifest) { m.SumDB = nil }, `no sumdb section`},
		{"sumdb unknown file", func(m *Manifest) { m.Items[sum].File = "sumdb/sum.example.com/supported" }, `not a checksum database file`},
		{"sumdb bad tile", func(m *Manifest) { m.Items[sum].File = "sumdb/sum.example.com/tile/8/0/1" }, `not a checksum database file`},
		{"sumdb bad lookup", func(m *Manifest) { m.Items[sum].File = "sumdb/sum.example.com/lookup/example.com/Upper@v1.0.0" }, `not a checksum database file`},
		{"sumdb item with module", func(m *Manifest) { m.Items[sum].Module = "example.com/m" }, `module or version on a "sumdb" item`},
		{"oci of another digest", func(m *Manifest) { m.Items[oci].File = "oci/blobs/sha256/" + strings.Repeat("f", 64) }, `oci/blobs/sha256/` + testHex},
		{"oci elsewhere", func(m *Manifest) { m.Items[oci].File = "oci/index.json" }, `oci/blobs/sha256/` + testHex},
		{"image of another reference", func(m *Manifest) { m.Items[img].Module = "registry.example:5000/team/app:2.0" }, `images/registry.example:5000/team/app:2.0`},
		{"referrer of another digest", func(m *Manifest) { m.Items[ref].File = "images/@sha256:" + strings.Repeat("f", 64) }, `images/@sha256:` + testHex},
		{"not a ferry file", func(m *Manifest) { m.Items[zip].File = "example.com/m/v1.0.0.zip" }, `not a file ferry carries`},
		{"proxy list file", func(m *Manifest) { m.Items[zip].File = "example.com/m/@v/list" }, `not a file ferry carries`},

		// Item 6: paths install refuses, and ferry's own metadata.
		{"dot-dot", func(m *Manifest) { m.Items[info].File = "../x/@v/v1.0.0.info" }, `".." path element`},
		{"inner dot-dot", func(m *Manifest) { m.Items[info].File = "example.com/m/../../@v/v1.0.0.info" }, `".." path element`},
		{"dot", func(m *Manifest) { m.Items[info].File = "example.com/./m/@v/v1.0.0.info" }, `"." path element`},
		{"absolute", func(m *Manifest) { m.Items[info].File = "/etc/passwd" }, `absolute path`},
		{"backslash", func(m *Manifest) { m.Items[info].File = `example.com\m/@v/v1.0.0.info` }, `backslash`},
		{"NUL", func(m *Manifest) { m.Items[info].File = "example.com/m\x00/@v/v1.0.0.info" }, `control character`},
		{"newline", func(m *Manifest) { m.Items[img].File = "images/a\nb"; m.Items[img].Module = "a\nb" }, `control character`},
		{"empty element", func(m *Manifest) { m.Items[info].File = "example.com//m/@v/v1.0.0.info" }, `empty path element`},
		{"trailing slash", func(m *Manifest) { m.Items[img].File = "images/a/"; m.Items[img].Module = "a/" }, `empty path element`},
		{"volume", func(m *Manifest) { m.Items[info].File = "C:/x/@v/v1.0.0.info" }, `volume name`},
		{"invalid UTF-8", func(m *Manifest) { m.Items[img].File = "images/a\xff"; m.Items[img].Module = "a\xff" }, `not valid UTF-8`},
		{"dot-dot module path", func(m *Manifest) {
			m.Items[info].Module, m.Items[info].File = "..", "../@v/v1.0.0.info"
		}, `".." path element`},
		{"dot-dot module path element", func(m *Manifest) {
			m.Items[info].Module, m.Items[info].File = "example.com/..", "example.com/../@v/v1.0.0.info"
		}, `".." path element`},
		{"ferry blobs", func(m *Manifest) { m.Items[info].File = ".blobs/sha256/" + testHex }, `ferry's own metadata`},
		{"ferry state", func(m *Manifest) { m.Items[info].File = ".ferry/state.json" }, `ferry's own metadata`},
		{"hidden element", func(m *Manifest) { m.Items[img].File = "images/a/.b"; m.Items[img].Module = "a/.b" }, `ferry's own metadata`},
		{"toolchain name with a path", func(m *Manifest) { m.Toolchains = []string{"../../bin"} }, `toolchain "../../bin" is not a Go release name`},
		{"toolchain name with a platform", func(m *Manifest) { m.Toolchains = []string{"go1.26.8.linux-amd64"} }, `not a Go release name`},
		{"toolchain name with a suffix", func(m *Manifest) { m.Toolchains = []string{"go1.26.8-custom"} }, `not a Go release name`},
		{"toolchain name without go", func(m *Manifest) { m.Toolchains = []string{"1.26.8"} }, `not a Go release name`},
		{"toolchain name with a leading zero", func(m *Manifest) { m.Toolchains = []string{"go1.026"} }, `not a Go release name`},
		{"toolchain name rc of a patch", func(m *Manifest) { m.Toolchains = []string{"go1.26.1rc1"} }, `not a Go release name`},
		{"toolchain name alpha", func(m *Manifest) { m.Toolchains = []string{"go1.26alpha1"} }, `not a Go release name`},
		{"sumdb name with a path", func(m *Manifest) { m.SumDB.Name = "../x" }, `checksum database name "../x"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := validManifest()
			c.edit(m)
			err := m.Check()
			if err == nil {
				t.Fatalf("Check accepted the manifest; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Check: %v\nwant an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	for file, want := range map[string]Kind{
		"example.com/m/@v/v1.0.0.info":                            KindInfo,
		"example.com/m/@v/v1.0.0.mod":                             KindMod,
		"example.com/m/@v/v1.0.0.zip":                             KindZip,
		"golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip": KindZip,
		"sumdb/sum.golang.org/latest":                             KindSumDB,
		"images/alpine:3":                                         KindImage,
		"oci/blobs/sha256/" + testHex:                             KindOCI,
		"example.com/m/@v/list":                                   "",
		"example.com/m":                                           "",
		"":                                                        "",
	} {
		got, err := KindOf(file)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("KindOf(%q) = %q, %v; want %q", file, got, err, want)
		}
	}
}
