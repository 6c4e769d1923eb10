package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
)

func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&statusError{status: 503}, true},
		{&statusError{status: 500}, true},
		{&statusError{status: 404}, false},
		{&statusError{status: 401}, false},
		{fmt.Errorf("put: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("put: %w", syscall.ECONNRESET), true},
		{&net.OpError{Op: "read", Err: timeoutErr{}}, true},
		{errors.New(`Put "http://x": http: ContentLength=100 with Body length 0`), true},
		{&sourceError{io.ErrUnexpectedEOF}, false},
		{fmt.Errorf("x: %w", context.Canceled), false},
		{errors.New("something else"), false},
	} {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
