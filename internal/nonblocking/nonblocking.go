// Package nonblocking records which store types never wait on I/O, so that
// the manager can skip the store timeout's timer for them.
//
// A store registers a check for its own concrete type, never a method: a
// wrapper that embeds such a store (metrics, tracing, a fault injector) is
// another type, so it keeps the timeout without having to remember to
// override anything.
package nonblocking

import "sync"

var (
	mu     sync.RWMutex
	checks []func(store any) bool
)

// Register adds is, which reports whether a store is of the registering
// package's non-blocking type. Call it from an init function.
func Register(is func(store any) bool) {
	mu.Lock()
	checks = append(checks, is)
	mu.Unlock()
}

// Is reports whether store is of a registered non-blocking type.
func Is(store any) bool {
	mu.RLock()
	defer mu.RUnlock()
	for _, is := range checks {
		if is(store) {
			return true
		}
	}
	return false
}
