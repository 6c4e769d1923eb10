package ocistore

import (
	"context"
	"testing"

	"github.com/ferry-dev/ferry/internal/store/ocistore/ocitest"
	"github.com/ferry-dev/ferry/internal/store/storetest"
)

// TestDeltaAndPrune: the registry's own garbage collection, run after the
// base is pruned, keeps the blobs the delta reads from it.
func TestDeltaAndPrune(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	st, err := Open(context.Background(), reg.Host+"/"+repoPath, Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Delta(t, st, func() error { return reg.GC(context.Background()) })
}
