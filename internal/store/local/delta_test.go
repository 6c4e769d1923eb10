package local

import (
	"testing"

	"github.com/ferry-dev/ferry/internal/store/storetest"
)

func TestDeltaAndPrune(t *testing.T) {
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.Delta(t, st, nil)
}
