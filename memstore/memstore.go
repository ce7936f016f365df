// Package memstore is an in-memory [kvsession.Store]: the fastest store, for
// a single process, tests, and development. Records are lost when the
// process exits.
//
// # Expiry
//
// An expired record reads as missing at once. Its memory is reclaimed
// without any background goroutine: each write sweeps the map once enough
// writes have happened since the last sweep (amortised constant cost), and
// [Store.DeleteExpired] sweeps on demand.
//
// # Capabilities
//
// Store implements every optional capability: [kvsession.VersionedStore],
// [kvsession.Toucher], [kvsession.Lister], [kvsession.ExpiredDeleter] and
// [kvsession.UserIndex]. It is also [kvsession.NonBlocking]: its calls
// only take a lock and copy bytes, so the manager puts no deadline on them.
package memstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kvsession/kvsession"
)

var (
	_ kvsession.VersionedStore = (*Store)(nil)
	_ kvsession.Toucher        = (*Store)(nil)
	_ kvsession.Lister         = (*Store)(nil)
	_ kvsession.ExpiredDeleter = (*Store)(nil)
	_ kvsession.UserIndex      = (*Store)(nil)
	_ kvsession.NonBlocking    = (*Store)(nil)
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock that decides expiry. Default: time.Now.
	Now func() time.Time
}

type record struct {
	value     []byte
	expiresAt time.Time
	version   uint64
}

// Store is an in-memory store. It is safe for concurrent use. Create one
// with [New].
type Store struct {
	now func() time.Time

	mu           sync.RWMutex
	records      map[string]record
	users        map[string]map[string]time.Time
	version      uint64
	writesToScan int // writes left before the next sweep
}

// New returns an empty Store. A nil opts means the zero Options.
func New(opts *Options) *Store {
	s := &Store{
		now:          time.Now,
		records:      make(map[string]record),
		users:        make(map[string]map[string]time.Time),
		writesToScan: minSweepInterval,
	}
	if opts != nil && opts.Now != nil {
		s.now = opts.Now
	}
	return s
}

const minSweepInterval = 1024

func expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !now.Before(expiresAt)
}

func notFound(op string) error {
	return fmt.Errorf("memstore: %s: %w", op, kvsession.ErrNotFound)
}

// Get implements [kvsession.Store].
func (s *Store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := ctx.Err(); err != nil {
		return kvsession.Entry{}, fmt.Errorf("memstore: get: %w", err)
	}
	now := s.now()
	s.mu.RLock()
	r, ok := s.records[key]
	s.mu.RUnlock()
	if !ok || expired(r.expiresAt, now) {
		return kvsession.Entry{}, notFound("get")
	}
	// Records are immutable once stored, so copying outside the lock is safe.
	return kvsession.Entry{Value: clone(r.value), ExpiresAt: r.expiresAt, Version: r.version}, nil
}

func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// live reports the record under key if it has not expired. s.mu is held.
func (s *Store) live(key string, now time.Time) (record, bool) {
	r, ok := s.records[key]
	if !ok || expired(r.expiresAt, now) {
		return record{}, false
	}
	return r, true
}

// put stores a record with a fresh version. s.mu is held for writing.
func (s *Store) put(key string, value []byte, expiresAt, now time.Time) {
	s.version++
	s.records[key] = record{value: value, expiresAt: expiresAt, version: s.version}
	s.writesToScan--
	if s.writesToScan <= 0 {
		s.sweep(now)
		s.writesToScan = max(minSweepInterval, len(s.records)/2)
	}
}

// sweep removes expired records and user index entries. s.mu is held for
// writing.
func (s *Store) sweep(now time.Time) int {
	n := 0
	for k, r := range s.records {
		if expired(r.expiresAt, now) {
			delete(s.records, k)
			n++
		}
	}
	for u, keys := range s.users {
		for k, exp := range keys {
			if expired(exp, now) {
				delete(keys, k)
			}
		}
		if len(keys) == 0 {
			delete(s.users, u)
		}
	}
	return n
}

// Set implements [kvsession.Store].
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: set: %w", err)
	}
	v := clone(value)
	now := s.now()
	s.mu.Lock()
	s.put(key, v, expiresAt, now)
	s.mu.Unlock()
	return nil
}

// Delete implements [kvsession.Store].
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete: %w", err)
	}
	s.mu.Lock()
	delete(s.records, key)
	s.mu.Unlock()
	return nil
}

// CompareAndSwap implements [kvsession.VersionedStore].
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: compare and swap: %w", err)
	}
	v := clone(value)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(key, now)
	switch {
	case !ok:
		return notFound("compare and swap")
	case r.version != old:
		current := kvsession.Entry{Value: clone(r.value), ExpiresAt: r.expiresAt, Version: r.version}
		return fmt.Errorf("memstore: compare and swap: %w", &kvsession.ConflictError{Current: current})
	}
	s.put(key, v, expiresAt, now)
	return nil
}

// CompareAndDelete implements [kvsession.VersionedStore].
func (s *Store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: compare and delete: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(key, now)
	switch {
	case !ok:
		return notFound("compare and delete")
	case r.version != old:
		return fmt.Errorf("memstore: compare and delete: %w", kvsession.ErrConflict)
	}
	delete(s.records, key)
	return nil
}

// Touch implements [kvsession.Toucher]. It keeps the record's version.
func (s *Store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: touch: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(key, now)
	if !ok {
		return notFound("touch")
	}
	r.expiresAt = expiresAt
	s.records[key] = r
	return nil
}

// Keys implements [kvsession.Lister]. It walks a snapshot of the keys taken
// when it starts, so fn may call the store.
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: keys: %w", err)
	}
	now := s.now()
	s.mu.RLock()
	keys := make([]string, 0, len(s.records))
	for k, r := range s.records {
		if strings.HasPrefix(k, prefix) && !expired(r.expiresAt, now) {
			keys = append(keys, k)
		}
	}
	s.mu.RUnlock()
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memstore: keys: %w", err)
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteExpired implements [kvsession.ExpiredDeleter].
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: delete expired: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweep(now), nil
}

// AddUserKey implements [kvsession.UserIndex].
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: add user key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.users[user]
	if keys == nil {
		keys = make(map[string]time.Time)
		s.users[user] = keys
	}
	if old, ok := keys[key]; ok && (old.IsZero() || (!expiresAt.IsZero() && old.After(expiresAt))) {
		return nil // keep the later expiry
	}
	keys[key] = expiresAt
	return nil
}

// UserKeys implements [kvsession.UserIndex].
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: user keys: %w", err)
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var keys []string
	for k, exp := range s.users[user] {
		if !expired(exp, now) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex].
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: remove user key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if keys := s.users[user]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(s.users, user)
		}
	}
	return nil
}

// NonBlocking implements [kvsession.NonBlocking]: it reports true, since
// every call of a Store finishes without waiting on I/O.
func (s *Store) NonBlocking() bool { return true }

// Len returns the number of records held, expired ones included until they
// are swept.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.records)
}
