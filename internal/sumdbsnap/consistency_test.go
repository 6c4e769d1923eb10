package sumdbsnap

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb"

	"github.com/ferry-dev/ferry/internal/modtest"
)

// clientFrom looks want up with a sumdb.Client that holds latest as its
// verified tree head and reads nothing but snap's files.
func clientFrom(snap *Snapshot, latest []byte, w Want) error {
	ops := &offlineOps{ctx: context.Background(), name: snap.Name, key: snap.Key, files: snap.Files, latest: latest}
	err := compare(sumdb.NewClient(ops), w, "snapshot")
	if msg := ops.securityError(); msg != "" {
		return fmt.Errorf("security error: %s", oneLine(msg))
	}
	return err
}

// TestConsistency: a client that verified against an earlier snapshot (its
// latest is T1) accepts a later snapshot (T2) only if the later one carries
// the tiles proving T1 ⊂ T2.
func TestConsistency(t *testing.T) {
	s, wants := fixture(t)
	snap1 := mustBuild(t, s, wants)

	// The database grows by more than a tile after the first pack.
	var more []modtest.Module
	for i := range 300 {
		more = append(more, mod(fmt.Sprintf("example.com/later%d", i), "v1.0.0"))
	}
	more = append(more, mod("example.com/late", "v1.0.0"))
	s.Add(more...)
	lateWants := wantsFor(t, s, []string{"example.com/late@v1.0.0"})

	plain := mustBuild(t, s, lateWants)
	if err := clientFrom(plain, snap1.Head, lateWants[0]); err == nil {
		t.Fatal("a client holding T1 verified a snapshot without consistency tiles: the test proves nothing")
	}

	snap2 := mustBuild(t, s, lateWants)
	before := len(snap2.Files)
	if err := snap2.AddConsistency(context.Background(), remote(s), [][]byte{snap1.Head}); err != nil {
		t.Fatalf("AddConsistency: %v", err)
	}
	t.Logf("consistency with T1 added %d tiles", len(snap2.Files)-before)
	if err := clientFrom(snap2, snap1.Head, lateWants[0]); err != nil {
		t.Fatalf("client holding T1: %v", err)
	}
	if err := clientFrom(snap2, nil, lateWants[0]); err != nil {
		t.Fatalf("fresh client: %v", err)
	}
	if err := snap2.CheckConsistency([][]byte{snap1.Head}); err != nil {
		t.Errorf("CheckConsistency: %v", err)
	}
	if err := plain.CheckConsistency([][]byte{snap1.Head}); err == nil {
		t.Error("CheckConsistency of a snapshot without the tiles: no error")
	}

	// A server merging both snapshots (tiles a union, each lookup as its
	// snapshot has it): a client that moved to T2 still proves the records
	// only the first snapshot has, wrapped with T1.
	union := &Snapshot{Name: snap2.Name, Key: snap2.Key, Head: snap2.Head, Files: map[string][]byte{}}
	for _, sn := range []*Snapshot{snap1, snap2} {
		for f, data := range sn.Files {
			if _, ok := union.Files[f]; !ok {
				union.Files[f] = data
			}
		}
	}
	for _, w := range wants {
		if err := clientFrom(union, snap2.Head, w); err != nil {
			t.Errorf("client holding T2, record of the first snapshot: %v", err)
		}
	}

	// An earlier head newer than the snapshot, or signed by another key, is refused.
	if err := snap1.AddConsistency(context.Background(), remote(s), [][]byte{snap2.Head}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("AddConsistency with a newer head: %v", err)
	}
	other := modtest.NewServer(t, mod("example.com/x", "v1.0.0"))
	otherSnap := mustBuild(t, other, wantsFor(t, other, []string{"example.com/x@v1.0.0"}))
	if err := snap2.AddConsistency(context.Background(), remote(s), [][]byte{otherSnap.Head}); err == nil {
		t.Error("AddConsistency with a head of another key: no error")
	}
}
