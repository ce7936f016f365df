package memcachestore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/kvsession/kvsession"
)

var (
	_ kvsession.Store = (*Store)(nil)
)

// DefaultNamespace is the namespace when [Options.Namespace] is empty.
const DefaultNamespace = "kvsession:"

// DefaultPrefix is the old name of [DefaultNamespace].
//
// Deprecated: use DefaultNamespace.
const DefaultPrefix = DefaultNamespace

// maxNamespace leaves room for the encoded key: "s:" and 43 base64 bytes.
const maxNamespace = 250 - 2 - 43

// DefaultMaxUserKeys is the cap on the entries of one user's index when
// [Options.MaxUserKeys] is 0.
const DefaultMaxUserKeys = 1000

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Namespace starts every memcached key the store uses, so that
	// several stores can share one memcached. It is the store's own, apart
	// from a Manager's Config.KeyPrefix (which is part of the store key,
	// and so of what is hashed). It must be at most 205 bytes with no
	// spaces or control characters. Default: [DefaultNamespace].
	Namespace string

	// Prefix is the old name of Namespace. Setting both is an error.
	//
	// Deprecated: use Namespace.
	Prefix string

	// MaxUserKeys caps the entries of one user's index (one memcached
	// item). When an AddUserKey would go past it, the entries that expire
	// first are dropped and their sessions deleted, so that a login never
	// fails because the index is full and every live session of a user
	// stays in it (see "User index" in the package documentation).
	// It must not be negative. Default: DefaultMaxUserKeys.
	MaxUserKeys int
}

// Store is a store on memcached. It is safe for concurrent use. Create one
// with [New].
type Store struct {
	c        *memcache.Client
	ns       string // Options.Namespace
	maxUsers int    // cap on the entries of a user's index
}

// Item flags: what an item holds.
const (
	flagRecord    = 1 // expiry (8 bytes) + value
	flagTombstone = 2 // a record removed by CompareAndDelete
	flagUsers     = 3 // a user's index
)

const headerSize = 8

// New returns a Store that uses client. A nil opts means the zero Options.
// It returns an error, and no Store, if client is nil or an option is
// invalid: a Namespace longer than 205 bytes or holding a space or a control
// character (memcached keys cannot hold them), or a negative MaxUserKeys.
// New makes no network call.
//
// Set client.MaxIdleConns to at least the peak number of concurrent
// requests: gomemcache keeps 2 idle connections by default and otherwise
// opens and closes a connection per call.
func New(client *memcache.Client, opts *Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("memcachestore: new: nil *memcache.Client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	s := &Store{c: client, ns: DefaultNamespace, maxUsers: DefaultMaxUserKeys}
	switch {
	case o.Prefix != "" && o.Namespace != "":
		return nil, fmt.Errorf("memcachestore: new: both Namespace %q and its deprecated alias Prefix %q are set", o.Namespace, o.Prefix)
	case o.Prefix != "":
		s.ns = o.Prefix
	case o.Namespace != "":
		s.ns = o.Namespace
	}
	if len(s.ns) > maxNamespace {
		return nil, fmt.Errorf("memcachestore: new: namespace of %d bytes is longer than %d", len(s.ns), maxNamespace)
	}
	for i := 0; i < len(s.ns); i++ {
		if b := s.ns[i]; b <= ' ' || b == 0x7f {
			return nil, fmt.Errorf("memcachestore: new: namespace %q holds a space or control character at byte %d", s.ns, i)
		}
	}
	switch {
	case o.MaxUserKeys < 0:
		return nil, fmt.Errorf("memcachestore: new: MaxUserKeys %d is negative", o.MaxUserKeys)
	case o.MaxUserKeys > 0:
		s.maxUsers = o.MaxUserKeys
	}
	return s, nil
}

func (s *Store) itemKey(kind, key string) string {
	sum := sha256.Sum256([]byte(key))
	return s.ns + kind + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Store) recordKey(key string) string { return s.itemKey("s:", key) }
func (s *Store) userKey(user string) string  { return s.itemKey("u:", user) }

// maxRelative is the longest expiration memcached reads as relative
// seconds; above it, an expiration is an absolute Unix time.
const maxRelative = 30 * 24 * 60 * 60

// expiration converts an expiry to memcached's Expiration field for an item
// stored at now. It never makes memcached drop the item before expiresAt:
// it rounds up to whole seconds and adds one, as memcached's clock ticks
// once a second. It reports gone if expiresAt is not after now: the item
// must read as missing at once. Expiries past the reach of an int32 Unix
// time get 0 (no memcached expiry); reads still expire them.
func expiration(expiresAt, now time.Time) (exp int32, gone bool) {
	if expiresAt.IsZero() {
		return 0, false
	}
	d := expiresAt.Sub(now)
	if d <= 0 {
		return 0, true
	}
	secs := (d+time.Second-1)/time.Second + 1
	if secs <= maxRelative {
		return int32(secs), false
	}
	abs := expiresAt.Unix() + 2 // +1 rounds the fraction up, +1 for the tick
	if abs > math.MaxInt32 {
		return 0, false
	}
	return int32(abs), false
}

// millis is the stored form of an expiry: Unix milliseconds, 0 for none.
// Instants at or before the epoch become 1, so they stay expired.
func millis(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(max(t.UnixMilli(), 1))
}

func expired(ms uint64, now time.Time) bool { return ms != 0 && int64(ms) <= now.UnixMilli() }

func encodeRecord(value []byte, expiresAt time.Time) []byte {
	b := make([]byte, headerSize+len(value))
	binary.BigEndian.PutUint64(b, millis(expiresAt))
	copy(b[headerSize:], value)
	return b
}

// staleConn reports whether err says that the connection broke, as a
// pooled connection to a restarted memcached does on its next use: the
// call may be retried on a new connection.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed)
}

// call runs fn, one memcached call, after checking ctx, and again on a new
// connection while it fails because a pooled connection was stale: at most
// once per idle connection the client may hold, plus one.
func (s *Store) call(ctx context.Context, fn func() error) error {
	retries := s.c.MaxIdleConns
	if retries <= 0 {
		retries = memcache.DefaultMaxIdleConns
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := fn()
		if err == nil || attempt >= retries || !staleConn(err) {
			return err
		}
	}
}

func (s *Store) getItem(ctx context.Context, k string) (*memcache.Item, error) {
	var it *memcache.Item
	err := s.call(ctx, func() error {
		var err error
		it, err = s.c.Get(k)
		return err
	})
	return it, err
}

// errCorrupt marks an item that the store did not write as a record: it
// reads as missing and the manager reports it as corrupt.
var errCorrupt = fmt.Errorf("memcached item: %w", kvsession.ErrCorrupt)

// live reads the live record under key. It returns an error wrapping
// ErrNotFound if there is none (missing, expired, deleted or corrupt).
func (s *Store) live(ctx context.Context, key string) (*memcache.Item, uint64, error) {
	it, err := s.getItem(ctx, s.recordKey(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, 0, kvsession.ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	if it.Flags != flagRecord || len(it.Value) < headerSize {
		if it.Flags == flagTombstone {
			return nil, 0, kvsession.ErrNotFound
		}
		return nil, 0, fmt.Errorf("%w: %w", errCorrupt, kvsession.ErrNotFound)
	}
	ms := binary.BigEndian.Uint64(it.Value)
	if ms > math.MaxInt64 {
		return nil, 0, fmt.Errorf("%w: %w", errCorrupt, kvsession.ErrNotFound)
	}
	if expired(ms, time.Now()) {
		return nil, 0, kvsession.ErrNotFound
	}
	if it.CasID == 0 {
		return nil, 0, errors.New("memcached returned no CAS unique: is it running with -C (CAS disabled)?")
	}
	return it, ms, nil
}

// Get implements [kvsession.Store]. An item under the record's key that
// the store did not write reads as missing.
func (s *Store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := ctx.Err(); err != nil {
		return kvsession.Entry{}, fmt.Errorf("memcachestore: get: %w", err)
	}
	it, ms, err := s.live(ctx, key)
	if err != nil {
		return kvsession.Entry{}, fmt.Errorf("memcachestore: get: %w", err)
	}
	return entry(it, ms), nil
}

// entry makes an Entry of a live record item. The item's value is the
// client's own fresh buffer, so the Entry may keep it.
func entry(it *memcache.Item, ms uint64) kvsession.Entry {
	e := kvsession.Entry{Value: it.Value[headerSize:len(it.Value):len(it.Value)], Version: it.CasID}
	if ms != 0 {
		e.ExpiresAt = time.UnixMilli(int64(ms))
	}
	return e
}

// Set implements [kvsession.Store]. An expiresAt that has passed deletes
// the record.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachestore: set: %w", err)
	}
	exp, gone := expiration(expiresAt, time.Now())
	k := s.recordKey(key)
	var err error
	if gone {
		err = s.del(ctx, k)
	} else {
		it := &memcache.Item{Key: k, Value: encodeRecord(value, expiresAt), Flags: flagRecord, Expiration: exp}
		err = s.call(ctx, func() error { return s.c.Set(it) })
	}
	if err != nil {
		return fmt.Errorf("memcachestore: set: %w", err)
	}
	return nil
}

func (s *Store) del(ctx context.Context, k string) error {
	err := s.call(ctx, func() error { return s.c.Delete(k) })
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return err
}

// Delete implements [kvsession.Store].
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachestore: delete: %w", err)
	}
	if err := s.del(ctx, s.recordKey(key)); err != nil {
		return fmt.Errorf("memcachestore: delete: %w", err)
	}
	return nil
}

// tombstone is an item that replaces a record with cas and expires at
// once: memcached reads a negative expiration as "already expired".
func tombstone(k string, cas uint64) *memcache.Item {
	return &memcache.Item{Key: k, Value: []byte{}, Flags: flagTombstone, Expiration: -1, CasID: cas}
}

// cas stores it if the item's CAS unique is still it.CasID, and maps
// memcached's answers to the store's errors.
func (s *Store) cas(ctx context.Context, it *memcache.Item) error {
	err := s.call(ctx, func() error { return s.c.CompareAndSwap(it) })
	switch {
	case errors.Is(err, memcache.ErrCASConflict):
		return kvsession.ErrConflict
	case errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, memcache.ErrNotStored):
		return kvsession.ErrNotFound
	}
	return err
}

// CompareAndSwap implements [kvsession.Store]. It reads the record
// and then writes it with memcached's cas command: two round trips. An
// expiresAt that has passed deletes the record, under the same condition.
// When that read finds another version, the error is a
// *kvsession.ConflictError holding the record it read.
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachestore: compare and swap: %w", err)
	}
	if err := s.compareAndSwap(ctx, key, value, expiresAt, old); err != nil {
		return fmt.Errorf("memcachestore: compare and swap: %w", err)
	}
	return nil
}

func (s *Store) compareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	it, ms, err := s.live(ctx, key)
	if err != nil {
		return err
	}
	if it.CasID != old {
		return &kvsession.ConflictError{Current: entry(it, ms)}
	}
	exp, gone := expiration(expiresAt, time.Now())
	if gone {
		return s.cas(ctx, tombstone(it.Key, old))
	}
	return s.cas(ctx, &memcache.Item{Key: it.Key, Value: encodeRecord(value, expiresAt), Flags: flagRecord, Expiration: exp, CasID: old})
}

// CompareAndDelete implements [kvsession.Store]. Memcached has no
// conditional delete: it replaces the record, with cas, by a tombstone that
// expires at once. See the package documentation.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachestore: compare and delete: %w", err)
	}
	err := func() error {
		it, _, err := s.live(ctx, key)
		if err != nil {
			return err
		}
		if it.CasID != old {
			return kvsession.ErrConflict
		}
		return s.cas(ctx, tombstone(it.Key, old))
	}()
	if err != nil {
		return fmt.Errorf("memcachestore: compare and delete: %w", err)
	}
	return nil
}

// touchAttempts bounds the read-cas loop of Touch.
const touchAttempts = 16

// Touch implements [kvsession.Store]. It rewrites the item with cas,
// with the new expiry in its header, so it changes the record's version.
// An expiresAt that has passed deletes the record.
func (s *Store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachestore: touch: %w", err)
	}
	for attempt := 1; ; attempt++ {
		err := s.touch(ctx, key, expiresAt)
		if !errors.Is(err, kvsession.ErrConflict) {
			if err != nil {
				return fmt.Errorf("memcachestore: touch: %w", err)
			}
			return nil
		}
		if attempt == touchAttempts {
			return fmt.Errorf("memcachestore: touch: the record changed under each of %d attempts", touchAttempts)
		}
		if err := backoff(ctx, attempt); err != nil {
			return fmt.Errorf("memcachestore: touch: %w", err)
		}
	}
}

func (s *Store) touch(ctx context.Context, key string, expiresAt time.Time) error {
	it, _, err := s.live(ctx, key)
	if err != nil {
		return err
	}
	exp, gone := expiration(expiresAt, time.Now())
	if gone {
		return s.cas(ctx, tombstone(it.Key, it.CasID))
	}
	binary.BigEndian.PutUint64(it.Value, millis(expiresAt)) // it.Value is ours: gomemcache allocated it
	it.Expiration = exp
	return s.cas(ctx, it)
}

// backoff waits a short random time that grows with attempt, or until ctx
// is done.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(attempt, 10))*int64(time.Millisecond) + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
