package accesslog

import (
	"io"
	"sync"
	"time"
)

// Sizes and period of a Writer.
const (
	// flushInterval is the longest a record waits in memory.
	flushInterval = 100 * time.Millisecond
	// flushSize of pending bytes wakes the writing goroutine early.
	flushSize = 64 << 10
	// maxPending bytes make Write wait for the writing goroutine
	// (back-pressure rather than unbounded memory or lost records).
	maxPending = 4 << 20
)

// Writer is an io.Writer for log records (one whole record per Write, as
// log/slog's handlers do) that keeps the underlying writer's I/O off the
// caller's path: Write copies the record into memory and returns, and one
// goroutine writes what is pending to the underlying writer, in order, at
// least every 100 ms. With a Writer under the access log, a request costs a
// memory copy instead of a write(2) made while holding the log handler's
// lock, for which every other request would wait.
//
// Write waits only while 4 MiB are pending (the underlying writer is slower
// than the records come). Close writes what is pending and stops the
// goroutine; a Write after Close goes straight to the underlying writer.
// Records still pending when the process dies without Close (SIGKILL) are
// lost: at most the last 100 ms.
type Writer struct {
	w io.Writer

	mu      sync.Mutex
	drained sync.Cond // broadcast when pending is taken by the goroutine
	pending []byte
	closed  bool
	err     error // first error of the underlying writer

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// NewWriter returns a Writer over w and starts its goroutine; call Close.
func NewWriter(w io.Writer) *Writer {
	b := &Writer{
		w:    w,
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	b.drained.L = &b.mu
	go b.run()
	return b
}

// Write copies p to the pending records.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) >= maxPending && !b.closed {
		b.drained.Wait()
	}
	if b.closed {
		return b.w.Write(p)
	}
	b.pending = append(b.pending, p...)
	if len(b.pending) >= flushSize {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Close writes the pending records, stops the goroutine and returns the
// first error the underlying writer returned, if any.
func (b *Writer) Close() error {
	b.mu.Lock()
	if b.closed {
		defer b.mu.Unlock()
		return b.err
	}
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) > 0 {
		if _, err := b.w.Write(b.pending); err != nil && b.err == nil {
			b.err = err
		}
	}
	b.pending = nil
	b.closed = true
	b.drained.Broadcast()
	return b.err
}

func (b *Writer) run() {
	defer close(b.done)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	var spare []byte
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.kick:
		}
		spare = b.flush(spare)
	}
}

// flush takes the pending records, leaving spare (emptied) in their place,
// writes them and returns their buffer for the next call.
func (b *Writer) flush(spare []byte) []byte {
	b.mu.Lock()
	data := b.pending
	b.pending = spare[:0]
	b.drained.Broadcast()
	b.mu.Unlock()
	if len(data) == 0 {
		return data
	}
	if _, err := b.w.Write(data); err != nil {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	if cap(data) > maxPending/4 {
		return nil // a burst: do not keep its buffer
	}
	return data
}
