package ctxio_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/ctxio"
)

func TestReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := strings.NewReader("0123456789")
	r := ctxio.Reader(ctx, src)
	buf := make([]byte, 4)
	if n, err := r.Read(buf); n != 4 || err != nil || string(buf) != "0123" {
		t.Fatalf("Read = %d, %v, %q", n, err, buf[:n])
	}
	cancel()
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %d, %v; want 0, context.Canceled", n, err)
	}
	if rest, _ := io.ReadAll(src); string(rest) != "456789" {
		t.Errorf("the underlying reader was read after the cancel: %q left", rest)
	}
}
