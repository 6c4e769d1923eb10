package install

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestRollbackSwitchesGeneration: a rollback makes the generation of an
// earlier install current again, with its store, toolchain and state; an
// install after it builds on that generation.
func TestRollbackSwitchesGeneration(t *testing.T) {
	ctx := context.Background()
	prefix := t.TempDir()
	install := func(name, goVersion string) {
		t.Helper()
		b := newBuilder(name)
		b.module(t, "example.com/"+name, "v1.0.0", ".mod", ".info", ".zip")
		b.toolchain(t, goVersion, "linux/amd64", nil)
		b.m.Toolchains = []string{goVersion}
		if _, err := Install(ctx, b.source(), Options{Prefix: prefix, GoEnvFile: "-", Platform: "linux/amd64"}); err != nil {
			t.Fatalf("install %s: %v", name, err)
		}
	}
	install("one", "go1.26.1")
	install("two", "go1.26.2")
	rep, err := Rollback(ctx, prefix, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Generation != "000001" || rep.From != "000002" || len(rep.Dropped) != 1 || rep.Dropped[0].Name != "two" || rep.Toolchain != "go1.26.1" {
		t.Errorf("report = %+v", rep)
	}
	if cur, err := CurrentGeneration(prefix); cur != "000001" || err != nil {
		t.Errorf("current generation = %q, %v", cur, err)
	}
	if _, err := os.Stat(filepath.Join(prefix, "mod", "example.com", "two")); err == nil {
		t.Error("the rolled-back store still has the second bundle's module")
	}
	if v := readFile(t, filepath.Join(prefix, "go", "VERSION")); v != "go1.26.1\n" {
		t.Errorf("PREFIX/go/VERSION = %q", v)
	}
	st, err := ReadState(prefix)
	if err != nil || len(st.Bundles) != 1 || st.Bundles[0].Name != "one" {
		t.Errorf("state = %+v, %v", st, err)
	}

	// The next lock removes the generation rolled back from; installing
	// again builds on generation 1 and keeps that for rollback.
	if p, err := Lock(ctx, prefix, nil); err != nil {
		t.Fatal(err)
	} else {
		p.Close()
	}
	if _, err := os.Stat(filepath.Join(prefix, ".ferry/gen/000002")); err == nil {
		t.Error("generation 2 (rolled back from) was kept")
	}
	install("two", "go1.26.2")
	if cur, _ := CurrentGeneration(prefix); cur != "000002" {
		t.Errorf("current generation = %q, want 000002", cur)
	}
	if rep, err := Rollback(ctx, prefix, "one", nil); err != nil || rep.Generation != "000001" {
		t.Errorf("rollback to one: %+v, %v", rep, err)
	}
}
