package install

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRollbackFinishesInterrupted: a rollback killed after it wrote the
// state but before it swapped PREFIX/mod is finished by running it again.
func TestRollbackFinishesInterrupted(t *testing.T) {
	ctx := context.Background()
	prefix := t.TempDir()
	for i, name := range []string{"one", "two"} {
		b := newBuilder(name)
		b.module(t, "example.com/"+name, "v1.0.0", ".mod", ".info", ".zip")
		if _, err := Install(ctx, b.source(), Options{Prefix: prefix, GoEnvFile: "-"}); err != nil {
			t.Fatalf("install %d: %v", i, err)
		}
	}
	st, err := ReadState(prefix)
	if err != nil || len(st.Bundles) != 2 {
		t.Fatalf("state: %+v, %v", st, err)
	}
	// The interrupted rollback: state written, link not swapped.
	first := st.Bundles[0]
	st.Bundles = st.Bundles[:1]
	if err := writeState(prefix, st); err != nil {
		t.Fatal(err)
	}
	rep, err := Rollback(ctx, prefix, first.Generation, nil)
	if err != nil {
		t.Fatalf("finishing the rollback: %v", err)
	}
	if rep.Generation != first.Generation {
		t.Errorf("rolled back to generation %s, want %s", rep.Generation, first.Generation)
	}
	target, _ := os.Readlink(filepath.Join(prefix, "mod"))
	if filepath.Base(target) != first.Generation {
		t.Errorf("PREFIX/mod -> %s, want generation %s", target, first.Generation)
	}
	if _, err := os.Stat(filepath.Join(prefix, "mod", "example.com", "two")); err == nil {
		t.Error("the rolled-back store still has the second bundle's module")
	}
	// Now it is done: nothing left to roll back to that point.
	if _, err := Rollback(ctx, prefix, first.Generation, nil); err == nil || !strings.Contains(err.Error(), "nothing to roll back") {
		t.Errorf("second rollback: %v", err)
	}
}
