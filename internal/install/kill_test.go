package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
)

// The helper process of TestKillAtEveryStep: it installs the bundle
// FERRY_KILL_BUNDLE into FERRY_KILL_PREFIX and kills itself with SIGKILL
// when the install reaches step FERRY_KILL_STEP.
func TestKillHelper(t *testing.T) {
	step := os.Getenv("FERRY_KILL_STEP")
	if step == "" {
		t.Skip("helper process of TestKillAtEveryStep")
	}
	r, err := bundle.Open(os.Getenv("FERRY_KILL_BUNDLE"))
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Prefix: os.Getenv("FERRY_KILL_PREFIX"), GoEnvFile: os.Getenv("FERRY_KILL_GOENV"), Platform: "linux/amd64", Jobs: 2}
	opt.Hook = func(s string) {
		if s == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	if _, err := Install(context.Background(), r, opt); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("install finished without reaching step %q", step)
}

// prefixView is what users of a prefix see: the go command (the store
// under PREFIX/mod, the toolchain at PREFIX/go), ferry state, and the go
// env file.
type prefixView struct {
	State     []string          // manifest digest and toolchain of each installed bundle
	Store     map[string]string // file under PREFIX/mod -> sha256
	Toolchain string            // PREFIX/go/VERSION
	GoEnv     string
}

func viewPrefix(t *testing.T, prefix, goEnv string) prefixView {
	t.Helper()
	v := prefixView{Store: map[string]string{}}
	st, err := ReadState(prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range st.Bundles {
		v.State = append(v.State, b.ManifestDigest+" "+b.ToolchainDir)
	}
	root := filepath.Join(prefix, "mod")
	err = filepath.WalkDir(root+"/", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(data)
		rel, _ := filepath.Rel(root, p)
		v.Store[rel] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(prefix, "go", "VERSION")); err == nil {
		v.Toolchain = string(data)
	}
	if data, err := os.ReadFile(goEnv); err == nil {
		v.GoEnv = strings.ReplaceAll(string(data), prefix, "PREFIX")
	}
	return v
}

func (v prefixView) String() string {
	return fmt.Sprintf("state %v, %d store files, toolchain %q", v.State, len(v.Store), strings.TrimSpace(v.Toolchain))
}

func (v prefixView) equal(w prefixView) bool {
	if !slices.Equal(v.State, w.State) || v.Toolchain != w.Toolchain || v.GoEnv != w.GoEnv || len(v.Store) != len(w.Store) {
		return false
	}
	for k, h := range v.Store {
		if w.Store[k] != h {
			return false
		}
	}
	return true
}

// leftovers lists names a finished install must not leave: staging names.
func leftovers(t *testing.T, prefix string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(prefix, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// TestKillAtEveryStep kills an install (SIGKILL, in a child process) at
// every step boundary, into a fresh prefix and into one that holds an
// earlier bundle: the prefix is then exactly at its old state or at the new
// one, as the go command, ferry state and the go env file see it, and
// installing again finishes the job and leaves nothing staged behind.
func TestKillAtEveryStep(t *testing.T) {
	ctx := context.Background()
	db := newSumDB(t)
	dir := t.TempDir()
	write := func(name string, src *memSource) string {
		p := filepath.Join(dir, name+".ferry")
		if _, err := bundle.Write(ctx, p, src.m, bundle.MemSource(src.blobs), bundle.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := write("v1", firstBundle(t, db))
	b := newBuilder("second")
	b.module(t, "example.com/a", "v1.2.0", ".info", ".mod", ".zip")
	b.module(t, "example.com/b", "v0.1.0", ".info", ".mod", ".zip")
	b.toolchain(t, "go1.27.1", "linux/amd64", nil)
	b.snapshot(t, db, 30, []string{"example.com/a@v1.2.0"}, nil)
	v2 := write("v2", b.source())

	install := func(prefix, goEnv, path string, hook func(string)) {
		t.Helper()
		r, err := bundle.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := Install(ctx, r, Options{Prefix: prefix, GoEnvFile: goEnv, Platform: "linux/amd64", Jobs: 2, Hook: hook}); err != nil {
			t.Fatal(err)
		}
	}

	// The views to expect, and the steps an install goes through.
	empty := viewPrefix(t, filepath.Join(dir, "none"), filepath.Join(dir, "none"))
	ref, refEnv := filepath.Join(dir, "ref"), filepath.Join(dir, "ref.env")
	install(ref, refEnv, v1, nil)
	afterV1 := viewPrefix(t, ref, refEnv)
	var steps []string
	install(ref, refEnv, v2, func(s string) { steps = append(steps, s) })
	afterV2 := viewPrefix(t, ref, refEnv)
	if len(steps) < 5 {
		t.Fatalf("install reported steps %v", steps)
	}
	refFresh, refFreshEnv := filepath.Join(dir, "ref-fresh"), filepath.Join(dir, "ref-fresh.env")
	install(refFresh, refFreshEnv, v2, nil)
	freshV2 := viewPrefix(t, refFresh, refFreshEnv)

	for _, tc := range []struct {
		name      string
		before    func(prefix, goEnv string)
		old, want prefixView
	}{
		{"fresh", func(string, string) {}, empty, freshV2},
		{"upgrade", func(prefix, goEnv string) { install(prefix, goEnv, v1, nil) }, afterV1, afterV2},
	} {
		for _, step := range steps {
			t.Run(tc.name+"/"+step, func(t *testing.T) {
				prefix, goEnv := filepath.Join(t.TempDir(), "prefix"), filepath.Join(t.TempDir(), "go.env")
				tc.before(prefix, goEnv)
				cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
				cmd.Env = append(os.Environ(), "FERRY_KILL_STEP="+step, "FERRY_KILL_BUNDLE="+v2,
					"FERRY_KILL_PREFIX="+prefix, "FERRY_KILL_GOENV="+goEnv)
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("the helper did not die by SIGKILL at %s: %v\n%s", step, err, out)
				}
				// The prefix is one of the two states. The go env file is
				// written after the commit, by its own rename: it is old
				// or new on its own (only a first install changes it).
				got := viewPrefix(t, prefix, goEnv)
				old, want := tc.old, tc.want
				env := got.GoEnv
				got.GoEnv, old.GoEnv, want.GoEnv = "", "", ""
				if !got.equal(old) && !got.equal(want) {
					t.Fatalf("after a kill at %s the prefix is neither the old state (%v) nor the new one (%v): %v", step, old, want, got)
				}
				if env != tc.old.GoEnv && env != tc.want.GoEnv {
					t.Fatalf("after a kill at %s the go env file is %q", step, env)
				}
				install(prefix, goEnv, v2, nil)
				if got := viewPrefix(t, prefix, goEnv); !got.equal(tc.want) {
					t.Errorf("after the rerun: %v, want %v", got, tc.want)
				}
				if l := leftovers(t, prefix); len(l) > 0 {
					t.Errorf("the rerun left staging files: %v", l)
				}
			})
		}
	}
}
