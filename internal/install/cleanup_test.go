package install

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFailureAfterCommitKeepsInstall: a first install that fails after its
// commit (here: the go env file cannot be written) is installed all the
// same: the prefix is not cleaned up under the links, ferry state lists
// the bundle, and a rerun only finishes the go env step.
func TestFailureAfterCommitKeepsInstall(t *testing.T) {
	db := newSumDB(t)
	prefix := filepath.Join(t.TempDir(), "prefix")
	opt := options(t, prefix)
	good := opt.GoEnvFile
	opt.GoEnvFile = t.TempDir() // a directory: reading it as the go env file fails
	if _, err := Install(context.Background(), firstBundle(t, db), opt); err == nil {
		t.Fatal("install with an unwritable go env file succeeded")
	}
	st, err := ReadState(prefix)
	if err != nil || len(st.Bundles) != 1 {
		t.Fatalf("state after the failed go env step: %+v, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(prefix, "mod", "example.com", "a", "@v", "list")); err != nil {
		t.Errorf("PREFIX/mod does not resolve: %v", err)
	}
	if _, err := os.Stat(filepath.Join(prefix, "go", "bin", "go")); err != nil {
		t.Errorf("PREFIX/go does not resolve: %v", err)
	}
	opt.GoEnvFile = good
	rep, err := Install(context.Background(), firstBundle(t, db), opt)
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if !strings.Contains(readFile(t, good), "GOPROXY=") {
		t.Errorf("rerun did not point the go env file at the store: report %+v", rep)
	}
}

// signalHandler sends on ch when a record's message contains substr.
type signalHandler struct {
	slog.Handler
	substr string
	once   *sync.Once
	ch     chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}

// TestFailedFirstInstallKeepsLockForWaiter: two installs into a fresh
// prefix, the first fails (as on SIGINT) while the second waits for the
// lock. The first removes what it staged, lock file included, before it
// unlocks; the second then installs, and still excludes a third.
func TestFailedFirstInstallKeepsLockForWaiter(t *testing.T) {
	db := newSumDB(t)
	prefix := filepath.Join(t.TempDir(), "fresh")
	opt := options(t, prefix)

	// The first install blocks in its first read until told to fail.
	ctxA, cancelA := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a := firstBundle(t, db)
	a.onOpen = func() { once.Do(func() { close(started) }); <-release }
	errA := make(chan error, 1)
	go func() { _, err := Install(ctxA, a, opt); errA <- err }()
	<-started

	// The second waits for the lock.
	waiting := make(chan struct{})
	optB := opt
	optB.Log = slog.New(signalHandler{Handler: slog.DiscardHandler, substr: "waiting for another", once: new(sync.Once), ch: waiting})
	hold := make(chan struct{})
	optB.Hook = func(step string) {
		if step == "staged" {
			<-hold
		}
	}
	b := newBuilder("second")
	b.module(t, "example.com/b", "v1.0.0", ".info", ".mod", ".zip")
	errB := make(chan error, 1)
	go func() { _, err := Install(context.Background(), b.source(), optB); errB <- err }()
	<-waiting

	cancelA()
	close(release)
	if err := <-errA; err == nil {
		t.Fatal("the cancelled install succeeded")
	}
	// While the second holds the lock (paused at a step), a third cannot
	// take it.
	select {
	case err := <-errB:
		t.Fatalf("the waiting install ended before it was let go: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	ctxC, cancelC := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelC()
	if p, err := Lock(ctxC, prefix, nil); err == nil {
		p.Close()
		t.Error("a third process took the lock while the second held it")
	}
	close(hold)
	if err := <-errB; err != nil {
		t.Fatalf("the install that waited failed: %v", err)
	}
	if st, err := ReadState(prefix); err != nil || len(st.Bundles) != 1 || st.Bundles[0].Name != "second" {
		t.Errorf("state = %+v, %v", st, err)
	}
}

// legacyPrefix installs src and rewrites the prefix into the layout of
// ferry before generations held their state: PREFIX/mod and PREFIX/go
// straight into .ferry/gen/000001 and .ferry/toolchains, the state in
// .ferry/state.json.
func legacyPrefix(t *testing.T, src *memSource, opt Options) {
	t.Helper()
	if _, err := Install(context.Background(), src, opt); err != nil {
		t.Fatal(err)
	}
	pre := func(p string) string { return filepath.Join(opt.Prefix, filepath.FromSlash(p)) }
	tcName, err := os.Readlink(pre(".ferry/gen/000001/go"))
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return os.Rename(pre(".ferry/gen/000001/state.json"), pre(".ferry/state.json")) },
		func() error { return os.Rename(pre(".ferry/gen/000001/mod"), pre(".ferry/gen/tree")) },
		func() error { return os.RemoveAll(pre(".ferry/gen/000001")) },
		func() error { return os.Rename(pre(".ferry/gen/tree"), pre(".ferry/gen/000001")) },
		func() error { return os.Remove(pre(".ferry/current")) },
		func() error { return os.Remove(pre("mod")) },
		func() error { return os.Symlink(".ferry/gen/000001", pre("mod")) },
		func() error { return os.Remove(pre("go")) },
		func() error { return os.Symlink(".ferry/toolchains/"+filepath.Base(tcName), pre("go")) },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLegacyPrefixMoves: a prefix laid out by an earlier ferry is read as
// it is (ferry state), and the next install moves it to generations, also
// when that install is interrupted between its commit and the link swaps.
func TestLegacyPrefixMoves(t *testing.T) {
	db := newSumDB(t)
	for _, interrupt := range []bool{false, true} {
		prefix := filepath.Join(t.TempDir(), "legacy")
		opt := options(t, prefix)
		legacyPrefix(t, firstBundle(t, db), opt)
		if st, err := ReadState(prefix); err != nil || len(st.Bundles) != 1 {
			t.Fatalf("state of the legacy prefix: %+v, %v", st, err)
		}
		if g, err := CurrentGeneration(prefix); g != "000001" || err != nil {
			t.Fatalf("current generation of the legacy prefix: %q, %v", g, err)
		}
		if _, err := Rollback(context.Background(), prefix, "", nil); err == nil {
			t.Error("rollback of a legacy prefix with one bundle succeeded")
		}

		b := newBuilder("second")
		b.module(t, "example.com/b", "v1.0.0", ".info", ".mod", ".zip")
		b.toolchain(t, "go1.27.1", "linux/amd64", nil)
		o := opt
		if interrupt {
			// A panic unwinds like a kill would stop: nothing after the
			// commit runs, and nothing committed is undone.
			o.Hook = func(step string) {
				if step == "committed" {
					panic("interrupted")
				}
			}
			func() {
				defer func() { recover() }()
				Install(context.Background(), b.source(), o)
			}()
			if target, _ := os.Readlink(filepath.Join(prefix, "mod")); target != ".ferry/gen/000001" {
				t.Fatalf("the interruption came too late: PREFIX/mod -> %s", target)
			}
			// The next lock finishes the move.
			p, err := Lock(context.Background(), prefix, nil)
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
		} else if _, err := Install(context.Background(), b.source(), o); err != nil {
			t.Fatal(err)
		}
		for link, want := range map[string]string{"mod": ".ferry/current/mod", "go": ".ferry/current/go", ".ferry/current": "gen/000002"} {
			if target, _ := os.Readlink(filepath.Join(prefix, link)); target != want {
				t.Errorf("interrupted=%v: %s -> %q, want %q", interrupt, link, target, want)
			}
		}
		if _, err := os.Stat(filepath.Join(prefix, ".ferry/state.json")); err == nil {
			t.Errorf("interrupted=%v: the legacy state file is still there", interrupt)
		}
		st, err := ReadState(prefix)
		if err != nil || len(st.Bundles) != 2 {
			t.Errorf("interrupted=%v: state = %+v, %v", interrupt, st, err)
		}
		for _, f := range []string{"mod/example.com/a/@v/v1.0.0.zip", "mod/example.com/b/@v/v1.0.0.zip", "go/bin/go"} {
			if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
				t.Errorf("interrupted=%v: %v", interrupt, err)
			}
		}
		if v := readFile(t, filepath.Join(prefix, "go/VERSION")); v != "go1.27.1\n" {
			t.Errorf("interrupted=%v: PREFIX/go/VERSION = %q", interrupt, v)
		}
	}
}
