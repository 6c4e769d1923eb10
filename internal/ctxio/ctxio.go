// Package ctxio makes long copies stop when their context is done.
//
// Invariant: a Reader returns ctx.Err() from the first Read after ctx is
// done, without reading from the underlying reader; until then it is that
// reader. A copy of gigabytes (a bundle file, a decoded zip) therefore stops
// within one buffer of a cancel.
package ctxio

import (
	"context"
	"io"
)

// Reader returns r, stopping with ctx.Err() once ctx is done.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
