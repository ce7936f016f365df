// Package memstore is an in-memory [kvsession.Store]: the fastest store, for
// a single process, tests, and development. Records are lost when the
// process exits.
//
// # Expiry
//
// An expired record reads as missing at once. Its memory is reclaimed
// without any background goroutine: each write sweeps the expired records
// once enough writes have happened since the last sweep (amortised
// constant cost), and [Store.DeleteExpired] sweeps on demand.
//
// # Bounds and what a session costs
//
// Every new session is a record, and anyone can create sessions, so a
// Store is bounded: by default it holds at most [DefaultMaxRecords]
// (1,000,000) records, and [Options.MaxRecords] and [Options.MaxBytes]
// change the bounds. A write that takes a Store past a bound evicts, until
// it is back within it, the records that expire soonest: expired ones
// first, then the earliest expiries; records that never expire go last,
// the oldest of them first. A write never
// evicts the record it stores, and rewriting or refreshing a record evicts
// nothing unless the record grows past MaxBytes. Each eviction costs
// O(log n), through a heap ordered by expiry.
//
// An evicted session is logged out: with the manager's idle timeout, the
// sessions idle the longest go first, and without it the oldest. The user
// index keeps the entries of evicted sessions until their expiry, and
// [kvsession.Manager.UserSessions] drops them as stale.
//
// An anonymous session (one small value, a browser's user agent: 190 bytes
// of key and value) costs the Store about 350 bytes of live heap at 100,000
// sessions and 370 bytes at 1,000,000 (measured with
// BenchmarkSessionMemory, go1.26, amd64); more data costs its size. So
// the default bound keeps such sessions to about 370 MB of live heap, which
// the garbage collector may double at the default GOGC. Size the bound to
// the memory the process may use, or use an external store (Redis, SQL)
// for more sessions.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract and both optional
// capabilities, [kvsession.Lister] and [kvsession.ExpiredDeleter]. Its
// calls only take a lock and copy bytes, so a [kvsession.Manager] on a
// *Store itself puts no store-timeout deadline (a timer) on them. A type
// that wraps or embeds a *Store is another type: the manager bounds its
// calls as it bounds any store's.
package memstore

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/nonblocking"
	"github.com/kvsession/kvsession/internal/sharedread"
)

var (
	_ kvsession.Store          = (*Store)(nil)
	_ kvsession.Lister         = (*Store)(nil)
	_ kvsession.ExpiredDeleter = (*Store)(nil)
)

func init() {
	// Only *Store itself: a wrapper is another type and keeps the timeout.
	nonblocking.Register(func(store any) bool { _, ok := store.(*Store); return ok })
	// A session's load reads the stored value itself: see getShared.
	sharedread.Register(func(store any) sharedread.Get {
		if s, ok := store.(*Store); ok {
			return s.getShared
		}
		return nil
	})
}

// DefaultMaxRecords is the number of records a Store holds at most when
// [Options.MaxRecords] is zero: about 370 MB of live heap for anonymous
// sessions (see the package documentation).
const DefaultMaxRecords = 1_000_000

// RecordOverhead is what a record costs a Store beyond the bytes of its key
// and value (its map slot, its place in the expiry heap), as
// [Options.MaxBytes] counts it: an estimate, measured at a million records
// on a 64-bit platform.
const RecordOverhead = 250

// Options configure a Store. The zero value is ready to use. Every value
// of every field is valid.
type Options struct {
	// Now is the clock that decides expiry. Default: time.Now.
	Now func() time.Time

	// MaxRecords is the largest number of records the Store holds: a
	// write of a new key beyond it evicts the records that expire
	// soonest (see Bounds in the package documentation). Zero means
	// DefaultMaxRecords; a negative value means no bound.
	MaxRecords int

	// MaxBytes bounds the memory the records take, counted as the bytes
	// of each key and value plus RecordOverhead: a write beyond it
	// evicts the records that expire soonest, and a write of one record
	// larger than MaxBytes fails. Zero or a negative value means no
	// bound. Keep it well above the manager's Config.MaxRecordBytes.
	MaxBytes int64
}

// record is the stored form of a key, and its place in the expiry heap:
// one allocation per key. Its value is never written to once stored (a
// write replaces it), and its fields change only under Store.mu held for
// writing.
//
// Its deadline is at most its expiry: a write that makes a record expire
// later leaves it where it is in the heap, and the eviction that finds it
// on top of the heap moves it to its place first.
type record struct {
	value     []byte
	expiresAt time.Time
	version   uint64
	key       string
	deadline  int64   // Unix nanoseconds, math.MaxInt64 for a record that never expires
	seq       uint64  // orders equal deadlines: the record placed first comes first
	index     int     // position in Store.heap
	next      *record // the next record whose key has the same hash
}

// size is what a record counts against Options.MaxBytes.
func size(key string, value []byte) int64 {
	return int64(len(key)) + int64(len(value)) + RecordOverhead
}

// Store is an in-memory store. It is safe for concurrent use. Create one
// with [New].
type Store struct {
	now        func() time.Time
	maxRecords int
	maxBytes   int64

	mu sync.RWMutex
	// records holds every record under the hash of its key (seed), the
	// records of keys of equal hashes chained by record.next. Keyed by a
	// number, the map compares, grows and rehashes without reading a
	// key's bytes, which at a million sessions are a cache miss each.
	records      map[uint64]*record
	count        int // the records held
	seed         maphash.Seed
	hashMask     uint64    // all ones; fewer bits in tests, to make keys collide
	heap         []*record // every record, soonest deadline first: a binary min-heap
	seq          uint64    // the last record.seq given
	bytes        int64     // the records' sizes, summed
	users        map[string]map[string]time.Time
	version      uint64
	writesToScan int // writes left before the next sweep
}

// New returns an empty Store. A nil opts means the zero Options.
func New(opts *Options) *Store {
	s := &Store{
		now:          time.Now,
		maxRecords:   DefaultMaxRecords,
		maxBytes:     math.MaxInt64,
		records:      make(map[uint64]*record),
		seed:         maphash.MakeSeed(),
		hashMask:     math.MaxUint64,
		users:        make(map[string]map[string]time.Time),
		writesToScan: minSweepInterval,
	}
	if opts != nil {
		if opts.Now != nil {
			s.now = opts.Now
		}
		switch {
		case opts.MaxRecords < 0:
			s.maxRecords = math.MaxInt
		case opts.MaxRecords > 0:
			s.maxRecords = opts.MaxRecords
		}
		if opts.MaxBytes > 0 {
			s.maxBytes = opts.MaxBytes
		}
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
	value, expiresAt, version, err := s.getShared(ctx, key)
	if err != nil {
		return kvsession.Entry{}, err
	}
	// A stored value is never written to, so copying outside the lock is safe.
	return kvsession.Entry{Value: clone(value), ExpiresAt: expiresAt, Version: version}, nil
}

// getShared is Get without the copy: it returns the stored value itself,
// which a write replaces and nothing writes to. The manager reads a
// session's record with it (package sharedread), never writing to it.
func (s *Store) getShared(ctx context.Context, key string) (value []byte, expiresAt time.Time, version uint64, err error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("memstore: get: %w", err)
	}
	now := s.now()
	s.mu.RLock()
	r := s.find(key)
	ok := r != nil
	if ok {
		value, expiresAt, version = r.value, r.expiresAt, r.version
	}
	s.mu.RUnlock()
	if !ok || expired(expiresAt, now) {
		return nil, time.Time{}, 0, notFound("get")
	}
	return value, expiresAt, version, nil
}

func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// hash returns the map key of the records under key.
func (s *Store) hash(key string) uint64 { return maphash.String(s.seed, key) & s.hashMask }

// find returns the record under key, or nil. s.mu is held.
func (s *Store) find(key string) *record {
	for r := s.records[s.hash(key)]; r != nil; r = r.next {
		if r.key == key {
			return r
		}
	}
	return nil
}

// insert adds r, whose key is not held. s.mu is held for writing.
func (s *Store) insert(r *record) {
	h := s.hash(r.key)
	r.next = s.records[h]
	s.records[h] = r
	s.count++
}

// unlink removes r from the records. s.mu is held for writing.
func (s *Store) unlink(r *record) {
	h := s.hash(r.key)
	switch first := s.records[h]; {
	case first == r && r.next == nil:
		delete(s.records, h)
	case first == r:
		s.records[h] = r.next
	default:
		p := first
		for p.next != r {
			p = p.next
		}
		p.next = r.next
	}
	r.next = nil
	s.count--
}

// live reports the record under key if it has not expired. s.mu is held.
func (s *Store) live(key string, now time.Time) (*record, bool) {
	r := s.find(key)
	if r == nil || expired(r.expiresAt, now) {
		return nil, false
	}
	return r, true
}

// fits returns an error if a record of key and value could never be held
// under Options.MaxBytes.
func (s *Store) fits(op, key string, value []byte) error {
	if size := size(key, value); size > s.maxBytes {
		return fmt.Errorf("memstore: %s: a record of %d bytes (with its key and overhead) is larger than MaxBytes, %d", op, size, s.maxBytes)
	}
	return nil
}

// deadline returns the heap key of an expiry.
func deadline(expiresAt time.Time) int64 {
	const maxSec = math.MaxInt64/int64(time.Second) - 1
	switch sec := expiresAt.Unix(); {
	case expiresAt.IsZero():
		return math.MaxInt64
	case sec > maxSec:
		return math.MaxInt64 - 1 // after 2262: later than any other, before never
	case sec < -maxSec:
		return math.MinInt64
	}
	return expiresAt.UnixNano()
}

// over reports whether the records exceed a bound. s.mu is held.
func (s *Store) over() bool {
	return s.count > s.maxRecords || s.bytes > s.maxBytes
}

// put stores value under key with a fresh version, evicting others if it
// exceeds a bound; the caller checked that it fits, and passes r, the
// record stored under key, or nil. s.mu is held for writing.
func (s *Store) put(key string, value []byte, expiresAt, now time.Time, r *record) {
	s.version++
	ok := r != nil
	if ok {
		s.bytes += int64(len(value)) - int64(len(r.value))
		r.value, r.version = value, s.version
		s.sooner(r, expiresAt)
		r.expiresAt = expiresAt
	} else {
		r = &record{value: value, expiresAt: expiresAt, version: s.version, key: key, deadline: deadline(expiresAt)}
		s.bytes += size(key, value)
		s.insert(r)
	}
	switch {
	case s.over():
		// Keep r out of the heap while others make room: a write never
		// evicts the record it stores.
		if ok {
			s.remove(r.index)
		}
		for s.over() && len(s.heap) > 0 {
			s.evict()
		}
		s.push(r)
	case !ok:
		s.push(r)
	}
	s.writesToScan--
	if s.writesToScan <= 0 {
		s.sweep(now)
		s.writesToScan = max(minSweepInterval, s.count/2)
	}
}

// sooner moves r up the heap if it now expires at expiresAt, sooner than
// its deadline. A later expiry leaves r in place (see record). s.mu is
// held for writing.
func (s *Store) sooner(r *record, expiresAt time.Time) {
	if d := deadline(expiresAt); d < r.deadline {
		r.deadline = d
		s.up(r.index)
	}
}

// evict removes the record that expires soonest, the oldest first among
// equals. s.mu is held for writing, and the heap is not empty.
func (s *Store) evict() {
	for s.refresh() {
	}
	s.drop(s.heap[0])
}

// refresh moves the record on top of the heap to its place if it expires
// later than its deadline, and reports whether it did. s.mu is held for
// writing, and the heap is not empty.
func (s *Store) refresh() bool {
	r := s.heap[0]
	d := deadline(r.expiresAt)
	if d == r.deadline {
		return false
	}
	s.seq++
	r.deadline, r.seq = d, s.seq
	s.down(0)
	return true
}

// drop removes the record r. s.mu is held for writing.
func (s *Store) drop(r *record) {
	s.unlink(r)
	s.remove(r.index)
	s.bytes -= size(r.key, r.value)
}

// sweep removes expired records and user index entries. s.mu is held for
// writing.
func (s *Store) sweep(now time.Time) int {
	n := 0
	// A record expires no sooner than its deadline: once the top
	// record's deadline is still ahead, no record has expired.
	for limit := deadline(now); len(s.heap) > 0 && s.heap[0].deadline <= limit; {
		if s.refresh() {
			continue
		}
		r := s.heap[0]
		if !expired(r.expiresAt, now) {
			break // every other record expires later
		}
		s.drop(r)
		n++
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
	if err := s.fits("set", key, value); err != nil {
		return err
	}
	v := clone(value)
	now := s.now()
	s.mu.Lock()
	s.put(key, v, expiresAt, now, s.find(key))
	s.mu.Unlock()
	return nil
}

// Delete implements [kvsession.Store].
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete: %w", err)
	}
	s.mu.Lock()
	if r := s.find(key); r != nil {
		s.drop(r)
	}
	s.mu.Unlock()
	return nil
}

// CompareAndSwap implements [kvsession.Store].
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: compare and swap: %w", err)
	}
	if err := s.fits("compare and swap", key, value); err != nil {
		return err
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
	s.put(key, v, expiresAt, now, r)
	return nil
}

// CompareAndDelete implements [kvsession.Store].
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
	s.drop(r)
	return nil
}

// Touch implements [kvsession.Store]. It keeps the record's version.
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
	s.sooner(r, expiresAt)
	r.expiresAt = expiresAt
	return nil
}

// Keys implements [kvsession.Lister]. It walks a snapshot of the keys taken
// when it starts, so fn may call the store. It reports expired records too,
// until a sweep drops them (DeleteExpired, or the one that writes run now
// and then).
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: keys: %w", err)
	}
	s.mu.RLock()
	keys := make([]string, 0, s.count)
	for _, r := range s.records {
		for ; r != nil; r = r.next {
			if strings.HasPrefix(r.key, prefix) {
				keys = append(keys, r.key)
			}
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

// DeleteExpired implements [kvsession.ExpiredDeleter]. It sweeps in one
// batch, under the store's lock, and then reports its count to ctx's
// progress function ([kvsession.WithSweepProgress]) if it removed records.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: delete expired: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	n := s.sweep(now)
	s.mu.Unlock()
	if n > 0 {
		kvsession.ReportSweepProgress(ctx, n)
	}
	return n, nil
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

// Len returns the number of records held, expired ones included until they
// are swept or evicted.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

// The expiry heap: a binary min-heap of the records by deadline, then by
// seq, each record knowing its index. s.mu is held for writing by
// every caller.

func (s *Store) less(i, j int) bool {
	a, b := s.heap[i], s.heap[j]
	return a.deadline < b.deadline || a.deadline == b.deadline && a.seq < b.seq
}

func (s *Store) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].index = i
	s.heap[j].index = j
}

func (s *Store) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			return
		}
		s.swap(i, parent)
		i = parent
	}
}

// down moves the record at i down to its place and reports whether it
// moved.
func (s *Store) down(i int) bool {
	start := i
	for {
		child := 2*i + 1
		if child >= len(s.heap) {
			break
		}
		if right := child + 1; right < len(s.heap) && s.less(right, child) {
			child = right
		}
		if !s.less(child, i) {
			break
		}
		s.swap(i, child)
		i = child
	}
	return i > start
}

func (s *Store) push(r *record) {
	s.seq++
	r.seq, r.index = s.seq, len(s.heap)
	s.heap = append(s.heap, r)
	s.up(r.index)
}

func (s *Store) remove(i int) {
	last := len(s.heap) - 1
	if i != last {
		s.swap(i, last)
	}
	s.heap[last] = nil
	s.heap = s.heap[:last]
	if i != last && !s.down(i) {
		s.up(i)
	}
	// Give back the memory of a heap that shrank after a flood.
	if c := cap(s.heap); c > 1024 && len(s.heap) < c/4 {
		s.heap = append(make([]*record, 0, 2*len(s.heap)), s.heap...)
	}
}
