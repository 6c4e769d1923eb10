package fetch

import "sync/atomic"

// Stats counts what a Client served. All methods are safe for concurrent use;
// the zero value is ready. A nil *Stats ignores updates.
type Stats struct {
	itemsFetched, itemsCached atomic.Int64
	bytesFetched, bytesCached atomic.Int64
	retries                   atomic.Int64
}

// Snapshot is a point-in-time copy of Stats.
type Snapshot struct {
	ItemsFetched int64 `json:"itemsFetched"` // answers downloaded from upstream
	ItemsCached  int64 `json:"itemsCached"`  // answers already present in the cache
	BytesFetched int64 `json:"bytesFetched"`
	BytesCached  int64 `json:"bytesCached"`
	Retries      int64 `json:"retries"` // upstream attempts repeated after a transient failure
}

// Snapshot returns the current counts.
func (s *Stats) Snapshot() Snapshot {
	if s == nil {
		return Snapshot{}
	}
	return Snapshot{
		ItemsFetched: s.itemsFetched.Load(),
		ItemsCached:  s.itemsCached.Load(),
		BytesFetched: s.bytesFetched.Load(),
		BytesCached:  s.bytesCached.Load(),
		Retries:      s.retries.Load(),
	}
}

func (s *Stats) fetched(n int64) {
	if s != nil {
		s.itemsFetched.Add(1)
		s.bytesFetched.Add(n)
	}
}

func (s *Stats) cached(n int64) {
	if s != nil {
		s.itemsCached.Add(1)
		s.bytesCached.Add(n)
	}
}

func (s *Stats) retried() {
	if s != nil {
		s.retries.Add(1)
	}
}
