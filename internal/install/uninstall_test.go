package install

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/goenv"
)

// TestUninstall: uninstall puts back the go env values install replaced
// (a set value, and an unset key as unset), keeps every other line, and
// removes everything install made, the prefix directory included.
func TestUninstall(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, before string
		want         map[string]string // after uninstall; "" key absent means unset
	}{
		{"proxy set before", "GOFLAGS=-mod=mod\nGOPROXY=https://proxy.corp.example\n", map[string]string{"GOFLAGS": "-mod=mod", "GOPROXY": "https://proxy.corp.example"}},
		{"proxy unset before", "GOFLAGS=-mod=mod\n", map[string]string{"GOFLAGS": "-mod=mod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newSumDB(t)
			prefix := filepath.Join(t.TempDir(), "prefix")
			opt := options(t, prefix)
			os.MkdirAll(filepath.Dir(opt.GoEnvFile), 0o755)
			os.WriteFile(opt.GoEnvFile, []byte(tc.before), 0o644)
			if _, err := Install(ctx, firstBundle(t, db), opt); err != nil {
				t.Fatal(err)
			}
			b := newBuilder("second")
			b.module(t, "example.com/b", "v1.0.0", ".info", ".mod", ".zip")
			if _, err := Install(ctx, b.source(), opt); err != nil {
				t.Fatal(err)
			}
			if env, _ := goenv.Read(opt.GoEnvFile); !strings.HasPrefix(env["GOPROXY"], "file://") {
				t.Fatalf("install did not set GOPROXY: %v", env)
			}
			rep, err := Uninstall(ctx, prefix, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Removed) != 2 || len(rep.Warnings) != 0 {
				t.Errorf("report = %+v", rep)
			}
			env, _ := goenv.Read(opt.GoEnvFile)
			if len(env) != len(tc.want) {
				t.Errorf("go env after uninstall = %v, want %v", env, tc.want)
			}
			for k, v := range tc.want {
				if env[k] != v {
					t.Errorf("go env %s = %q, want %q", k, env[k], v)
				}
			}
			if _, err := os.Lstat(prefix); err == nil {
				ents, _ := os.ReadDir(prefix)
				t.Errorf("the prefix is still there: %v", ents)
			}
			if _, err := Uninstall(ctx, prefix, nil); err == nil {
				t.Error("a second uninstall succeeded")
			}
		})
	}
}

// TestUninstallKeepsUserChanges: a go env value the user changed after
// the install is left as it is, with a warning; a prefix directory that
// holds other files stays.
func TestUninstallKeepsUserChanges(t *testing.T) {
	ctx := context.Background()
	db := newSumDB(t)
	prefix := t.TempDir()
	os.WriteFile(filepath.Join(prefix, "notes.txt"), []byte("mine"), 0o644)
	opt := options(t, prefix)
	if _, err := Install(ctx, firstBundle(t, db), opt); err != nil {
		t.Fatal(err)
	}
	if _, err := goenv.Set(opt.GoEnvFile, map[string]string{"GOPROXY": "https://elsewhere.example"}); err != nil {
		t.Fatal(err)
	}
	rep, err := Uninstall(ctx, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "GOPROXY") {
		t.Errorf("warnings = %v", rep.Warnings)
	}
	if env, _ := goenv.Read(opt.GoEnvFile); env["GOPROXY"] != "https://elsewhere.example" {
		t.Errorf("GOPROXY = %q", env["GOPROXY"])
	}
	ents, _ := os.ReadDir(prefix)
	if len(ents) != 1 || ents[0].Name() != "notes.txt" {
		t.Errorf("prefix holds %v, want only notes.txt", ents)
	}
}

// TestRollbackPastFirstUninstalls: rollback with one bundle installed goes
// back to before it: nothing installed, the go env as it was.
func TestRollbackPastFirstUninstalls(t *testing.T) {
	ctx := context.Background()
	db := newSumDB(t)
	prefix := filepath.Join(t.TempDir(), "prefix")
	opt := options(t, prefix)
	if _, err := Install(ctx, firstBundle(t, db), opt); err != nil {
		t.Fatal(err)
	}
	rep, err := Rollback(ctx, prefix, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Uninstalled == nil || len(rep.Dropped) != 1 {
		t.Errorf("report = %+v", rep)
	}
	if _, err := os.Lstat(prefix); err == nil {
		t.Error("the prefix is still there")
	}
	if env, _ := goenv.Read(opt.GoEnvFile); env["GOPROXY"] != "" {
		t.Errorf("GOPROXY = %q after rolling back past the first install", env["GOPROXY"])
	}
}
