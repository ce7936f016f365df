// Package sharedread lets an in-process store hand the manager its own
// copy of a record on a session's load, instead of a copy made for the
// caller as Store.Get must: the manager never writes to a loaded record's
// bytes, and such a store never writes to a stored value either (a write
// stores a new slice).
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
