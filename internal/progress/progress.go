// Package progress draws progress bars for ferry's long-running work (bytes
// and items, already present versus fetched) on top of
// github.com/vbauerster/mpb/v8.
//
// Invariants:
//
//   - A disabled Progress writes nothing at all; callers print at most a final
//     summary line themselves (see Summary). Use Enabled to decide: bars are
//     only for terminals and never in --json mode.
//   - Every method is safe for concurrent use, and every method of a nil or
//     disabled *Progress or *Bar is a no-op, so callers need no conditionals.
//   - Wait completes any bar still running, so it never blocks forever on a
//     bar the caller forgot to finish. A Progress cannot be used after Wait.
//   - This package imports nothing of ferry: counters come in as functions.
package progress

import (
	"fmt"
	"io"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Enabled reports whether progress bars should be drawn on w: only when w is
// a terminal and the output is not machine-readable JSON.
func Enabled(w io.Writer, jsonMode bool) bool {
	if jsonMode {
		return false
	}
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Progress is a set of bars drawn together on one writer.
type Progress struct {
	p    *mpb.Progress // nil when disabled
	mu   sync.Mutex
	bars []*Bar
	done bool
}

// New returns a Progress drawing on w (whether or not it is a terminal), or a
// silent one when enabled is false; see Enabled.
func New(w io.Writer, enabled bool) *Progress {
	if !enabled {
		return &Progress{}
	}
	return &Progress{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(80), mpb.WithAutoRefresh())}
}

// Bar is one line of a Progress.
type Bar struct {
	b *mpb.Bar // nil when disabled
}

func (p *Progress) add(total int64, builder mpb.BarFillerBuilder, opts ...mpb.BarOption) *Bar {
	if p == nil || p.p == nil {
		return &Bar{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return &Bar{}
	}
	b := &Bar{b: p.p.New(total, builder, opts...)}
	p.bars = append(p.bars, b)
	return b
}

// Bar adds a byte-counting bar. totalBytes may be 0 when the total is unknown
// or still growing (see SetTotal); the bar then shows only what was done.
func (p *Progress) Bar(name string, totalBytes int64) *Bar {
	return p.add(totalBytes, mpb.BarStyle(), mpb.BarWidth(30),
		bytesDecorators(name),
		mpb.AppendDecorators(decor.OnComplete(decor.Percentage(decor.WC{W: 5}), "done")),
	)
}

// bytesDecorators shows a bar's name and its bytes done (of the total, if known).
func bytesDecorators(name string) mpb.BarOption {
	return mpb.PrependDecorators(
		decor.Name(name, decor.WCSyncSpaceR),
		decor.Any(func(s decor.Statistics) string {
			if s.Total <= 0 || s.Total < s.Current {
				return HumanBytes(s.Current)
			}
			return HumanBytes(s.Current) + " / " + HumanBytes(s.Total)
		}, decor.WCSyncSpace),
	)
}

// BarNote adds a byte-counting bar like Bar, followed by note(), which is
// read at every redraw (for example what was sent versus already present).
func (p *Progress) BarNote(name string, totalBytes int64, note func() string) *Bar {
	return p.add(totalBytes, mpb.BarStyle(), mpb.BarWidth(30),
		bytesDecorators(name),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return note() })),
	)
}

// Counter adds a line that shows live counts of items and bytes fetched
// versus already present (cached), read from counts at every redraw.
func (p *Progress) Counter(name string, counts func() (items, bytes, cachedItems, cachedBytes int64)) *Bar {
	return p.add(0, mpb.NopStyle(),
		mpb.PrependDecorators(
			decor.Name(name, decor.WCSyncSpaceR),
			decor.Any(func(decor.Statistics) string { return Summary(counts()) }),
		),
	)
}

// Add records n more bytes (or items) done.
func (b *Bar) Add(n int64) {
	if b != nil && b.b != nil && n > 0 {
		b.b.IncrInt64(n)
	}
}

// SetTotal changes the total, for work whose size becomes known or grows.
func (b *Bar) SetTotal(n int64) {
	if b != nil && b.b != nil && n >= 0 {
		b.b.SetTotal(n, false)
	}
}

// Done marks the bar complete at its current count.
func (b *Bar) Done() {
	if b != nil && b.b != nil {
		b.b.SetTotal(-1, true)
	}
}

// Wait completes every bar still running, draws the final state and stops.
func (p *Progress) Wait() {
	if p == nil || p.p == nil {
		return
	}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	bars := p.bars
	p.mu.Unlock()
	for _, b := range bars {
		b.Done()
	}
	p.p.Wait()
}

// Summary formats counts as "N fetched (X), M already present (Y)", for bars
// and for the one summary line a caller may print when bars are disabled.
func Summary(items, bytes, cachedItems, cachedBytes int64) string {
	return fmt.Sprintf("%d fetched (%s), %d already present (%s)",
		items, HumanBytes(bytes), cachedItems, HumanBytes(cachedBytes))
}

// HumanBytes formats n with binary units: "512 B", "1.5 KiB", "70.3 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
