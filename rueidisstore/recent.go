package rueidisstore

import (
	"sync"
	"sync/atomic"
	"time"
)

// recentWrites remembers the Redis keys that this store has just written,
// so that its own reads of them never get a cached copy older than the
// write, and so that a session written on every request is not cached at
// all (caching it would cost Redis a tracked read and an invalidation per
// request, for no hit).
//
// Redis sends the invalidation of a cached key after the reply to the write
// (and, with several connections, on another one), so a read right after a
// write could otherwise still find the older copy. A key is remembered with
// a deadline: the write's return plus the cache TTL, in Unix milliseconds,
// as rueidis computes the expiry of a cached copy (the start of the read
// that fetched it plus the TTL, or less where the key's own TTL is
// shorter). Past the deadline every copy fetched before the write has
// expired, and the key is forgotten.
//
// Until then, the first read after a write goes to the server, uncached. A
// later one (a session read more than once between writes) uses the cache,
// checked: a copy whose expiry is later than the deadline was fetched after
// the write returned; one whose expiry is not may be older (rueidis keeps
// milliseconds: a copy fetched in the write's own millisecond is in doubt
// too), and is served only if it equals what the server holds now. Once a
// copy passes, the cache holds nothing older, and the key is forgotten.
type recentWrites struct {
	ttl   time.Duration
	keys  sync.Map // Redis key -> *recentWrite
	n     atomic.Int64
	limit atomic.Int64 // sweep once n passes it
	sweep sync.Mutex
}

// recentWrite is the last write of one key.
type recentWrite struct {
	deadline int64        // Unix milliseconds
	reads    atomic.Int32 // reads since the write
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
	if _, loaded := r.keys.Swap(k, &recentWrite{deadline: now.Add(r.ttl).UnixMilli()}); !loaded {
		if r.n.Add(1) > r.limit.Load() {
			r.sweepExpired(now.UnixMilli())
		}
	}
}

// get returns k's last write, or nil if k was not written within the cache
// TTL.
func (r *recentWrites) get(k string) *recentWrite {
	v, ok := r.keys.Load(k)
	if !ok {
		return nil
	}
	w := v.(*recentWrite)
	if time.Now().UnixMilli() < w.deadline {
		return w
	}
	r.forget(k, w)
	return nil
}

// forget drops k if w is still its last write.
func (r *recentWrites) forget(k string, w *recentWrite) {
	if r.keys.CompareAndDelete(k, w) {
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
		if w := v.(*recentWrite); w.deadline <= now {
			r.forget(k.(string), w)
		}
		return true
	})
	r.limit.Store(max(minSweep, 2*r.n.Load()))
}
