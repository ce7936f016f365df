package rueidisstore

import (
	"sync"
	"sync/atomic"
	"time"
)

// recentWrites remembers the Redis keys that this store has just written,
// so that its own reads of them never get a cached copy older than the
// write. Redis sends the invalidation of a cached key after the reply to
// the write (and, with several connections, on another one), so a read
// right after a write could otherwise still find the older copy.
//
// A key is remembered with a deadline: the write's return plus the cache
// TTL, in Unix milliseconds, as rueidis computes the expiry of a cached copy
// (the start of the read that fetched it plus the TTL, or less where the
// key's own TTL is shorter). A copy whose expiry is later than the deadline
// was fetched after the write returned; one whose expiry is not may be
// older (rueidis keeps milliseconds: a copy fetched in the write's own
// millisecond is in doubt too), and Get reads the server instead. Past the
// deadline every copy fetched before the write has expired, and the key is
// forgotten; it is forgotten sooner once a read has met a copy fetched
// after the write, or one equal to what the server holds after it, since
// the cache then holds nothing older.
type recentWrites struct {
	ttl   time.Duration
	keys  sync.Map // Redis key -> deadline, Unix milliseconds (int64)
	n     atomic.Int64
	limit atomic.Int64 // sweep once n passes it
	sweep sync.Mutex
}

// minSweep is the size below which the set is not swept.
const minSweep = 1024

func newRecentWrites(ttl time.Duration) *recentWrites {
	r := &recentWrites{ttl: ttl}
	r.limit.Store(minSweep)
	return r
}

// add remembers k, written just now.
func (r *recentWrites) add(k string) {
	now := time.Now()
	if _, loaded := r.keys.Swap(k, now.Add(r.ttl).UnixMilli()); !loaded {
		if r.n.Add(1) > r.limit.Load() {
			r.sweepExpired(now.UnixMilli())
		}
	}
}

// deadline returns k's deadline, or false if k was not written within the
// cache TTL.
func (r *recentWrites) deadline(k string) (int64, bool) {
	v, ok := r.keys.Load(k)
	if !ok {
		return 0, false
	}
	d := v.(int64)
	if time.Now().UnixMilli() < d {
		return d, true
	}
	r.forget(k, d)
	return 0, false
}

// forget drops k if its deadline is still d (no write since).
func (r *recentWrites) forget(k string, d int64) {
	if r.keys.CompareAndDelete(k, d) {
		r.n.Add(-1)
	}
}

// sweepExpired forgets the keys whose deadline has passed, and lets the set
// grow to twice what is left (at least minSweep) before the next sweep:
// the work is proportional to the writes, and the memory to the writes of
// the last TTL.
func (r *recentWrites) sweepExpired(now int64) {
	if !r.sweep.TryLock() {
		return // another goroutine is sweeping
	}
	defer r.sweep.Unlock()
	r.keys.Range(func(k, v any) bool {
		if v.(int64) <= now {
			r.forget(k.(string), v.(int64))
		}
		return true
	})
	r.limit.Store(max(minSweep, 2*r.n.Load()))
}
