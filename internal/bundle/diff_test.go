package bundle

import (
	"reflect"
	"testing"
)

func TestCompare(t *testing.T) {
	item := func(file string, kind Kind, mod, ver, digest string, size int64) Item {
		return Item{File: file, Kind: kind, Module: mod, Version: ver, Digest: digest, Size: size}
	}
	a := &Manifest{Name: "app", Version: "v1", SumDB: &SumDB{Head: "sum.example\n10\nHASH\n"}, Items: []Item{
		item("x.com/a/@v/v1.0.0.zip", KindZip, "x.com/a", "v1.0.0", "sha256:a1", 100),
		item("x.com/a/@v/v1.0.0.mod", KindMod, "x.com/a", "v1.0.0", "sha256:a1m", 10),
		item("x.com/gone/@v/v0.1.0.zip", KindZip, "x.com/gone", "v0.1.0", "sha256:g", 50),
		item("x.com/two/@v/v1.0.0.zip", KindZip, "x.com/two", "v1.0.0", "sha256:t1", 5),
		item("x.com/two/@v/v1.1.0.zip", KindZip, "x.com/two", "v1.1.0", "sha256:t2", 5),
		item("golang.org/toolchain/@v/v0.0.1-go1.26.8.linux-amd64.zip", KindZip, ToolchainModule, "v0.0.1-go1.26.8.linux-amd64", "sha256:tc", 1000),
		item("images/reg/app:1", KindImage, "reg/app:1", "", "sha256:i1", 3),
	}}
	b := &Manifest{Name: "app", Version: "v2", SumDB: &SumDB{Head: "sum.example\n12\nHASH\n"}, Items: []Item{
		item("x.com/a/@v/v1.1.0.zip", KindZip, "x.com/a", "v1.1.0", "sha256:a2", 120),
		item("x.com/a/@v/v1.0.0.mod", KindMod, "x.com/a", "v1.0.0", "sha256:a1m", 10),
		item("x.com/new/@v/v0.2.0.zip", KindZip, "x.com/new", "v0.2.0", "sha256:n", 7),
		item("x.com/two/@v/v1.0.0.zip", KindZip, "x.com/two", "v1.0.0", "sha256:t1", 5),
		item("golang.org/toolchain/@v/v0.0.1-go1.27.4.linux-amd64.zip", KindZip, ToolchainModule, "v0.0.1-go1.27.4.linux-amd64", "sha256:tc2", 2000),
		item("images/reg/app:1", KindImage, "reg/app:1", "", "sha256:i2", 3),
	}}
	d := Compare(a, b)
	if want := []ModuleChange{{"x.com/a", "v1.0.0", "v1.1.0"}}; !reflect.DeepEqual(d.Changed, want) {
		t.Errorf("changed = %v, want %v", d.Changed, want)
	}
	if want := []ModuleVersion{{"x.com/new", "v0.2.0"}}; !reflect.DeepEqual(d.Added, want) {
		t.Errorf("added = %v, want %v", d.Added, want)
	}
	if want := []ModuleVersion{{"x.com/gone", "v0.1.0"}, {"x.com/two", "v1.1.0"}}; !reflect.DeepEqual(d.Removed, want) {
		t.Errorf("removed = %v, want %v", d.Removed, want)
	}
	if !reflect.DeepEqual(d.ToolchainsAdded, []string{"go1.27.4 linux/amd64"}) {
		t.Errorf("toolchains added = %q", d.ToolchainsAdded)
	}
	if !reflect.DeepEqual(d.ToolchainsRemoved, []string{"go1.26.8 linux/amd64"}) {
		t.Errorf("toolchains removed = %q", d.ToolchainsRemoved)
	}
	if !reflect.DeepEqual(d.ImagesChanged, []string{"reg/app:1"}) {
		t.Errorf("images changed = %q", d.ImagesChanged)
	}
	if d.NewBlobs != 4 || d.NewBytes != 120+7+2000+3 || d.SharedBlobs != 2 || d.DroppedBlobs != 5 {
		t.Errorf("blobs: new %d (%d bytes), shared %d, dropped %d", d.NewBlobs, d.NewBytes, d.SharedBlobs, d.DroppedBlobs)
	}
	if d.SumDBTreeFrom != 10 || d.SumDBTreeTo != 12 {
		t.Errorf("tree %d -> %d", d.SumDBTreeFrom, d.SumDBTreeTo)
	}
	if Compare(a, a).Empty() != true {
		t.Error("a bundle differs from itself")
	}
}
