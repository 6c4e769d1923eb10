package main

import (
	"sync"

	"github.com/ferry-dev/ferry/internal/fetch"
	"github.com/ferry-dev/ferry/internal/progress"
)

// progressUI shows one bar per phase of a long command on a terminal, and
// nothing otherwise (or with --json / --quiet).
type progressUI struct {
	mu    sync.Mutex
	p     *progress.Progress
	bar   *progress.Bar
	stats *fetch.Stats
	done  int64
}

func (a *app) newProgress() *progressUI {
	enabled := !a.quiet && progress.Enabled(a.stderr, a.json)
	return &progressUI{p: progress.New(a.stderr, enabled)}
}

// phase starts a new bar; total 0 means unknown.
func (u *progressUI) phase(name string, total int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bar != nil {
		u.bar.Done()
	}
	u.done = 0
	if total == 0 && u.stats != nil {
		// Work driven by downloads: show what was fetched and what was
		// already present.
		st := u.stats
		u.bar = u.p.Counter(name, func() (int64, int64, int64, int64) {
			s := st.Snapshot()
			return s.ItemsFetched, s.BytesFetched, s.ItemsCached, s.BytesCached
		})
		return
	}
	u.bar = u.p.Bar(name, total)
}

func (u *progressUI) add(n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bar != nil {
		u.bar.Add(n)
		u.done += n
	}
}

func (u *progressUI) set(done int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bar != nil && done > u.done {
		u.bar.Add(done - u.done)
		u.done = done
	}
}

func (u *progressUI) finish() {
	u.mu.Lock()
	if u.bar != nil {
		u.bar.Done()
		u.bar = nil
	}
	u.mu.Unlock()
	u.p.Wait()
}
