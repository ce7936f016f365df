// Package sharedread lets a store hand the manager a record's bytes on a
// session's load without the copy that Store.Get makes for its caller:
// memstore its stored value itself (a write stores a new slice, never
// changes one), the Redis stores the reply's string. The manager never
// writes to a loaded record's bytes nor hands them on.
//
// As with package nonblocking, a store registers a lookup for its own
// concrete type: a wrapper that embeds such a store is another type, and
// keeps the copying Get that the Store contract promises to every caller.
package sharedread

import (
	"context"
	"sync"
	"time"
)

// Get is a store's read that returns the stored bytes themselves, which
// the caller must never write to, with the record's expiry and version as
// Store.Get gives them; a missing record gives Store.Get's error.
type Get func(ctx context.Context, key string) (value []byte, expiresAt time.Time, version uint64, err error)

var (
	mu      sync.RWMutex
	lookups []func(store any) Get
)

// Register adds lookup, which returns the shared read of a store of the
// registering package's type, or nil for any other store. Call it from an
// init function.
func Register(lookup func(store any) Get) {
	mu.Lock()
	lookups = append(lookups, lookup)
	mu.Unlock()
}

// For returns the shared read of store, or nil if its type registered none.
func For(store any) Get {
	mu.RLock()
	defer mu.RUnlock()
	for _, lookup := range lookups {
		if get := lookup(store); get != nil {
			return get
		}
	}
	return nil
}
