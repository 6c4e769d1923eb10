//go:build unix

package local_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ferry-dev/ferry/internal/bundle"
	"github.com/ferry-dev/ferry/internal/serve/testbundle"
	"github.com/ferry-dev/ferry/internal/store"
	"github.com/ferry-dev/ferry/internal/store/local"
)

// The helper process (TestHelperProcess) is this test binary run again
// with these variables set. It opens the store in $FERRY_LOCAL_STORE, imports
// each bundle of $FERRY_LOCAL_IMPORT (a list, os.PathListSeparator), then
// prunes $FERRY_LOCAL_PRUNE (a bundle digest) if set. With
// $FERRY_LOCAL_KILL_AT = STEP or STEP#N it kills itself with SIGKILL when the
// store's hook reports STEP (for the Nth time). $FERRY_LOCAL_UMASK (octal)
// sets its umask first. $FERRY_LOCAL_SERVE=1 instead only reads the store
// (serveStore) and prints what it serves.
const (
	envHelper = "FERRY_LOCAL_HELPER"
	envStore  = "FERRY_LOCAL_STORE"
	envImport = "FERRY_LOCAL_IMPORT"
	envPrune  = "FERRY_LOCAL_PRUNE"
	envKillAt = "FERRY_LOCAL_KILL_AT"
	envUmask  = "FERRY_LOCAL_UMASK"
	envServe  = "FERRY_LOCAL_SERVE"
)

func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("run by other tests as a separate process")
	}
	if u := os.Getenv(envUmask); u != "" {
		n, err := strconv.ParseUint(u, 8, 32)
		if err != nil {
			t.Fatal(err)
		}
		syscall.Umask(int(n)) // a process of its own: nothing else runs
	}
	ctx := context.Background()
	if os.Getenv(envServe) == "1" {
		st, err := local.Open(os.Getenv(envStore))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		got, err := serveStore(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		for p, d := range got {
			fmt.Printf("served %s %s\n", p, d)
		}
		return
	}
	var hook func(string)
	if at := os.Getenv(envKillAt); at != "" {
		step, nth := at, 1
		if s, n, ok := strings.Cut(at, "#"); ok {
			step = s
			var err error
			if nth, err = strconv.Atoi(n); err != nil {
				t.Fatal(err)
			}
		}
		seen := 0
		hook = func(name string) {
			if name != step {
				return
			}
			if seen++; seen == nth {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}
	st, err := local.OpenWith(os.Getenv(envStore), local.Options{Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if list := os.Getenv(envImport); list != "" {
		for _, p := range filepath.SplitList(list) {
			r, err := bundle.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			err = st.ImportChecked(ctx, r, store.BundleInfo{})
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := os.Getenv(envPrune); d != "" {
		if _, err := st.Prune(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
}

// helper runs the helper process with the variables env and returns how it ended.
func helper(t *testing.T, env ...string) (*os.ProcessState, string) {
	t.Helper()
	return helperAs(t, os.Args[0], nil, env...)
}

func helperAs(t *testing.T, exe string, attr *syscall.SysProcAttr, env ...string) (*os.ProcessState, string) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), envHelper+"=1"), env...)
	cmd.Dir = filepath.Dir(exe)
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running the helper process: %v", err)
	}
	return cmd.ProcessState, string(out)
}

func killedBySIGKILL(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestImportKilledAtEveryStep: an import killed (SIGKILL) at each step
// boundary, into a store that holds a bundle, leaves the store exactly as
// it was (before the new index.json is in place) or exactly as a finished
// import leaves it (after): the same list, every listed bundle's blobs and
// decoded files whole, the same answers from a server. A rerun finishes and
// leaves nothing behind.
func TestImportKilledAtEveryStep(t *testing.T) {
	f := newKillFixture(t)
	steps := append(local.ImportSteps(), local.StepImportFileRenamed+"#2")
	for _, c := range []struct{ name, bundle string }{{"full", f.full}, {"delta", f.delta}} {
		for _, step := range steps {
			t.Run(c.name+"/"+step, func(t *testing.T) {
				ctx := context.Background()
				dir := filepath.Join(t.TempDir(), "store")
				st, err := local.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				testbundle.Import(t, st, f.base)
				st.Close()
				before := readState(t, dir, f.all)
				if !maps.Equal(before.served, want(t, f.all, f.base)) {
					t.Fatalf("the base is served as %v", before.served)
				}
				ps, out := helper(t, envStore+"="+dir, envImport+"="+c.bundle, envKillAt+"="+step)
				if !killedBySIGKILL(ps) {
					t.Fatalf("the import did not die at %s: %v\n%s", step, ps, out)
				}
				after := readState(t, dir, f.all)
				newState := strings.HasPrefix(step, local.StepImportListed)
				switch {
				case !newState:
					if !sameList(after.list, before.list) || !maps.Equal(after.served, before.served) {
						t.Fatalf("killed at %s: list %v, served %v; want the old state %v, %v", step, digests(after.list), after.served, digests(before.list), before.served)
					}
				default:
					d := open(t, c.bundle).Digest()
					if len(after.list) != 2 || !sameList(after.list[:1], before.list) || after.list[1].Digest != d {
						t.Fatalf("killed at %s: list %v, want %v and %s", step, digests(after.list), digests(before.list), d)
					}
					if w := want(t, f.all, f.base, c.bundle); !maps.Equal(after.served, w) {
						t.Fatalf("killed at %s: served %v, want %v", step, after.served, w)
					}
				}
				// A rerun finishes.
				st, err = local.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				r := open(t, c.bundle)
				if err := st.ImportChecked(ctx, r, store.BundleInfo{}); err != nil {
					t.Fatal(err)
				}
				st.Close()
				final := readState(t, dir, f.all)
				if len(final.list) != 2 || !sameList(final.list[:1], before.list) || final.list[1].Digest != r.Digest() {
					t.Fatalf("after the rerun: list %v", digests(final.list))
				}
				if w := want(t, f.all, f.base, c.bundle); !maps.Equal(final.served, w) {
					t.Fatalf("after the rerun: served %v, want %v", final.served, w)
				}
				checkTidy(t, dir)
			})
		}
	}
}

// TestPruneKilledAtEveryStep: a prune of a base whose delta stays, killed
// at each step boundary, leaves the old state (both listed, until the new
// index.json is in place) or the new one (only the delta, which still reads
// what it left to its base). A rerun (which finds nothing to prune once the
// base is unlisted) removes what the killed one left.
func TestPruneKilledAtEveryStep(t *testing.T) {
	f := newKillFixture(t)
	steps := append(local.PruneSteps(), local.StepPruneBlobKept+"#2")
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "store")
			st, err := local.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			base := testbundle.Import(t, st, f.base)
			testbundle.Import(t, st, f.delta)
			st.Close()
			before := readState(t, dir, f.all)
			ps, out := helper(t, envStore+"="+dir, envPrune+"="+base, envKillAt+"="+step)
			if !killedBySIGKILL(ps) {
				t.Fatalf("the prune did not die at %s: %v\n%s", step, ps, out)
			}
			after := readState(t, dir, f.all)
			oldState := slices.Contains([]string{local.StepPruneLocked, local.StepPruneTempsRemoved, local.StepPruneBlobKept,
				local.StepPruneBlobKept + "#2", local.StepPruneIndexWritten}, step)
			if oldState {
				if !sameList(after.list, before.list) || !maps.Equal(after.served, before.served) {
					t.Fatalf("killed at %s: list %v, served %v; want the old state", step, digests(after.list), after.served)
				}
			} else {
				if !sameList(after.list, before.list[1:]) {
					t.Fatalf("killed at %s: list %v, want %v", step, digests(after.list), digests(before.list[1:]))
				}
				if w := want(t, f.all, f.delta); !maps.Equal(after.served, w) {
					t.Fatalf("killed at %s: served %v, want %v", step, after.served, w)
				}
			}
			st, err = local.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Prune(ctx, base)
			st.Close()
			if err != nil && (oldState || !errors.Is(err, fs.ErrNotExist)) {
				t.Fatalf("rerun of the prune: %v", err)
			}
			final := readState(t, dir, f.all)
			if !sameList(final.list, before.list[1:]) || !maps.Equal(final.served, want(t, f.all, f.delta)) {
				t.Fatalf("after the rerun: list %v, served %v", digests(final.list), final.served)
			}
			checkTidy(t, dir)
		})
	}
}
