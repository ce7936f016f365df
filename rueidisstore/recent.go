package rueidisstore

import (
	"sync"
	"sync/atomic"
	"time"
)

// recentWrites remembers, for a while, the Redis keys that this store has
// written, so that its own reads of them skip the client-side cache: Redis
// sends the invalidation of a cached key after the reply to the write (and,
// with several connections, on another one), so a read right after a
// write could otherwise still find the older copy. A key is remembered for
// the cache TTL after each write: by then every copy read before the write
// has expired, invalidated or not.
type recentWrites struct {
	ttl   time.Duration
	epoch time.Time // monotonic base of the deadlines
	keys  sync.Map  // Redis key -> deadline, nanoseconds since epoch (int64)
	n     atomic.Int64
	limit atomic.Int64 // sweep once n passes it
	sweep sync.Mutex
}

// minSweep is the size below which the set is not swept.
const minSweep = 1024

func newRecentWrites(ttl time.Duration) *recentWrites {
	r := &recentWrites{ttl: ttl, epoch: time.Now()}
	r.limit.Store(minSweep)
	return r
}

func (r *recentWrites) now() int64 { return int64(time.Since(r.epoch)) }

// add remembers k until the TTL has passed from now.
func (r *recentWrites) add(k string) {
	now := r.now()
	if _, loaded := r.keys.Swap(k, now+int64(r.ttl)); !loaded {
		if r.n.Add(1) > r.limit.Load() {
			r.sweepExpired(now)
		}
	}
}

// has reports whether k was written less than the TTL ago.
func (r *recentWrites) has(k string) bool {
	v, ok := r.keys.Load(k)
	if !ok {
		return false
	}
	if r.now() < v.(int64) {
		return true
	}
	if r.keys.CompareAndDelete(k, v) {
		r.n.Add(-1)
	}
	return false
}

// sweepExpired forgets the keys whose time has passed, and lets the set
// grow to twice what is left (at least minSweep) before the next sweep:
// the work is proportional to the writes, and the memory to the writes of
// the last TTL.
func (r *recentWrites) sweepExpired(now int64) {
	if !r.sweep.TryLock() {
		return // another goroutine is sweeping
	}
	defer r.sweep.Unlock()
	r.keys.Range(func(k, v any) bool {
		if v.(int64) <= now && r.keys.CompareAndDelete(k, v) {
			r.n.Add(-1)
		}
		return true
	})
	r.limit.Store(max(minSweep, 2*r.n.Load()))
}
