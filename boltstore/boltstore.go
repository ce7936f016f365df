package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/kvsession/kvsession"
)

var (
	_ kvsession.Store          = (*Store)(nil)
	_ kvsession.Lister         = (*Store)(nil)
	_ kvsession.ExpiredDeleter = (*Store)(nil)
)

// DefaultBucket is the name of the top-level bucket when [Options.Bucket] is
// empty.
const DefaultBucket = "kvsession"

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Bucket is the name of the top-level bucket that holds the store's
	// buckets, so that several stores (or other data) can share one file.
	// Default: DefaultBucket.
	Bucket string

	// Now is the clock that decides expiry. Default: time.Now.
	Now func() time.Time
}

// Store is a store in a bbolt database. It is safe for concurrent use.
// Create one with [New].
type Store struct {
	db   *bbolt.DB
	top  []byte
	now  func() time.Time
	turn chan struct{} // holds a token while one of the store's writes runs
}

var (
	recordsName = []byte("records")
	usersName   = []byte("users")
	expiryName  = []byte("expiry")
)

const (
	formatV1   = 1
	headerSize = 1 + 8 + 8 // format, expiresAt, version

	kindRecord = 'r'
	kindUser   = 'u'
)

// New returns a Store that keeps its records in db, creating its buckets if
// they are missing (unless db is read-only). A nil opts means the zero
// Options.
func New(db *bbolt.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("boltstore: new: nil *bbolt.DB")
	}
	s := &Store{db: db, top: []byte(DefaultBucket), now: time.Now, turn: make(chan struct{}, 1)}
	if opts != nil {
		if opts.Bucket != "" {
			s.top = []byte(opts.Bucket)
		}
		if opts.Now != nil {
			s.now = opts.Now
		}
	}
	if len(s.top) > bbolt.MaxKeySize {
		return nil, fmt.Errorf("boltstore: new: bucket name of %d bytes is too long", len(s.top))
	}
	if db.IsReadOnly() {
		return s, nil
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := s.buckets(tx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("boltstore: new: %w", err)
	}
	return s, nil
}

type buckets struct {
	records, users, expiry *bbolt.Bucket
}

// buckets returns the store's buckets, creating them in a writable
// transaction. In a read-only one, missing buckets are nil.
func (s *Store) buckets(tx *bbolt.Tx) (buckets, error) {
	if !tx.Writable() {
		top := tx.Bucket(s.top)
		if top == nil {
			return buckets{}, nil
		}
		return buckets{top.Bucket(recordsName), top.Bucket(usersName), top.Bucket(expiryName)}, nil
	}
	top, err := tx.CreateBucketIfNotExists(s.top)
	if err != nil {
		return buckets{}, err
	}
	var b buckets
	for _, p := range []struct {
		b    **bbolt.Bucket
		name []byte
	}{{&b.records, recordsName}, {&b.users, usersName}, {&b.expiry, expiryName}} {
		if *p.b, err = top.CreateBucketIfNotExists(p.name); err != nil {
			return buckets{}, err
		}
	}
	return b, nil
}

func (s *Store) view(fn func(b buckets) error) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		b, err := s.buckets(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

// update runs fn in a write transaction of its own, once it is the
// store's turn to write and bbolt's write lock is free. bbolt waits for
// its lock without a context, so the transaction runs in a goroutine and
// update waits for it within ctx: if ctx ends before fn has started,
// update returns ctx's error at once and fn never runs (the goroutine gives
// up as soon as it gets the lock); once fn has started, its transaction
// runs to its end and update returns its result. The store's writes take
// turns (s.turn, waited for within ctx, in order), so at most one such
// goroutine waits for bbolt's lock at a time.
func (s *Store) update(ctx context.Context, fn func(b buckets) error) error {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	var (
		mu                 sync.Mutex
		started, abandoned bool
	)
	type outcome struct {
		err      error
		panicked bool
		p        any
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() { <-s.turn }()
		ok := false
		defer func() {
			if !ok {
				done <- outcome{panicked: true, p: recover()}
			}
		}()
		err := s.db.Update(func(tx *bbolt.Tx) error {
			mu.Lock()
			if abandoned || ctx.Err() != nil {
				mu.Unlock()
				return ctx.Err()
			}
			started = true
			mu.Unlock()
			b, err := s.buckets(tx)
			if err != nil {
				return err
			}
			return fn(b)
		})
		ok = true
		done <- outcome{err: err}
	}()
	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		mu.Lock()
		if !started {
			abandoned = true
			mu.Unlock()
			return ctx.Err()
		}
		mu.Unlock()
		o = <-done
	}
	if o.panicked {
		panic(o.p) // fn's panic, carried to the caller's goroutine
	}
	return o.err
}

// millis converts an expiry to the stored form: Unix milliseconds, 0 for
// the zero time (no expiry). Instants at or before the epoch become 1, so
// they stay expired rather than turning into "never".
func millis(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(max(t.UnixMilli(), 1))
}

func fromMillis(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

func expired(ms uint64, now int64) bool { return ms != 0 && int64(ms) <= now }

// header is a decoded record header.
type header struct {
	expiresAt uint64 // Unix ms, 0 for none
	version   uint64
}

// decode splits a stored record. ok is false for a record the store did not
// write. The returned value aliases raw.
func decode(raw []byte) (h header, value []byte, ok bool) {
	if len(raw) < headerSize || raw[0] != formatV1 {
		return header{}, nil, false
	}
	h = header{binary.BigEndian.Uint64(raw[1:9]), binary.BigEndian.Uint64(raw[9:17])}
	if h.version == 0 || h.expiresAt > 1<<63-1 {
		return header{}, nil, false
	}
	return h, raw[headerSize:], true
}

func encode(h header, value []byte) []byte {
	b := make([]byte, headerSize+len(value))
	b[0] = formatV1
	binary.BigEndian.PutUint64(b[1:9], h.expiresAt)
	binary.BigEndian.PutUint64(b[9:17], h.version)
	copy(b[headerSize:], value)
	return b
}

// expiryKey is the expiry bucket's key for an entry of the given kind.
func expiryKey(ms uint64, kind byte, key []byte) []byte {
	b := make([]byte, 9+len(key))
	binary.BigEndian.PutUint64(b, ms)
	b[8] = kind
	copy(b[9:], key)
	return b
}

// live returns the header and value of the live record under key. The
// value aliases bbolt's memory: valid only inside the transaction.
func live(b buckets, key []byte, now int64) (header, []byte, bool) {
	if b.records == nil {
		return header{}, nil, false
	}
	h, v, ok := decode(b.records.Get(key))
	if !ok || expired(h.expiresAt, now) {
		return header{}, nil, false
	}
	return h, v, true
}

// put stores a record, keeping the expiry index in step.
func put(b buckets, key, value []byte, expiresAt, version uint64) error {
	if err := unindex(b, key); err != nil {
		return err
	}
	if err := b.records.Put(key, encode(header{expiresAt, version}, value)); err != nil {
		return err
	}
	if expiresAt != 0 {
		return b.expiry.Put(expiryKey(expiresAt, kindRecord, key), nil)
	}
	return nil
}

// unindex removes the expiry index entry of the record under key, if any.
func unindex(b buckets, key []byte) error {
	if h, _, ok := decode(b.records.Get(key)); ok && h.expiresAt != 0 {
		return b.expiry.Delete(expiryKey(h.expiresAt, kindRecord, key))
	}
	return nil
}

func remove(b buckets, key []byte) error {
	if err := unindex(b, key); err != nil {
		return err
	}
	return b.records.Delete(key)
}

func notFound(op string) error {
	return fmt.Errorf("boltstore: %s: %w", op, kvsession.ErrNotFound)
}

// Get implements [kvsession.Store]. A record that does not decode reads as
// missing.
func (s *Store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := ctx.Err(); err != nil {
		return kvsession.Entry{}, fmt.Errorf("boltstore: get: %w", err)
	}
	now := s.now().UnixMilli()
	var e kvsession.Entry
	found, corrupt := false, false
	err := s.view(func(b buckets) error {
		h, v, ok := live(b, []byte(key), now)
		if !ok {
			if b.records != nil {
				if raw := b.records.Get([]byte(key)); raw != nil {
					_, _, parsed := decode(raw)
					corrupt = !parsed
				}
			}
			return nil
		}
		e = entry(h, v)
		found = true
		return nil
	})
	if err != nil {
		return kvsession.Entry{}, fmt.Errorf("boltstore: get: %w", err)
	}
	if corrupt {
		return kvsession.Entry{}, fmt.Errorf("boltstore: get: %w: %w", kvsession.ErrCorrupt, kvsession.ErrNotFound)
	}
	if !found {
		return kvsession.Entry{}, notFound("get")
	}
	return e, nil
}

// entry returns a record as the caller's. v is bbolt's memory, valid only
// until the transaction ends, so entry copies it.
func entry(h header, v []byte) kvsession.Entry {
	e := kvsession.Entry{Value: bytes.Clone(v), ExpiresAt: fromMillis(h.expiresAt), Version: h.version}
	if e.Value == nil {
		e.Value = []byte{}
	}
	return e
}

// Set implements [kvsession.Store].
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: set: %w", err)
	}
	err := s.update(ctx, func(b buckets) error {
		v, err := b.records.NextSequence()
		if err != nil {
			return err
		}
		return put(b, []byte(key), value, millis(expiresAt), v)
	})
	if err != nil {
		return fmt.Errorf("boltstore: set: %w", err)
	}
	return nil
}

// Delete implements [kvsession.Store].
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: delete: %w", err)
	}
	if err := s.update(ctx, func(b buckets) error { return remove(b, []byte(key)) }); err != nil {
		return fmt.Errorf("boltstore: delete: %w", err)
	}
	return nil
}

// conditional runs fn on the live record under key with version old, in
// one update transaction. A record with another version is returned in a
// *kvsession.ConflictError.
func (s *Store) conditional(ctx context.Context, op, key string, old uint64, fn func(b buckets, k []byte, h header, value []byte) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	now := s.now().UnixMilli()
	err := s.update(ctx, func(b buckets) error {
		k := []byte(key)
		h, v, ok := live(b, k, now)
		switch {
		case !ok:
			return kvsession.ErrNotFound
		case h.version != old:
			return &kvsession.ConflictError{Current: entry(h, v)}
		}
		return fn(b, k, h, v)
	})
	if err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return nil
}

// CompareAndSwap implements [kvsession.Store].
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	return s.conditional(ctx, "compare and swap", key, old, func(b buckets, k []byte, _ header, _ []byte) error {
		v, err := b.records.NextSequence()
		if err != nil {
			return err
		}
		return put(b, k, value, millis(expiresAt), v)
	})
}

// CompareAndDelete implements [kvsession.Store].
func (s *Store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	return s.conditional(ctx, "compare and delete", key, old, func(b buckets, k []byte, _ header, _ []byte) error {
		return remove(b, k)
	})
}

// Touch implements [kvsession.Store]. It keeps the record's version.
func (s *Store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: touch: %w", err)
	}
	now := s.now().UnixMilli()
	err := s.update(ctx, func(b buckets) error {
		k := []byte(key)
		h, v, ok := live(b, k, now)
		if !ok {
			return kvsession.ErrNotFound
		}
		// put copies v into a new slice before it changes the bucket.
		return put(b, k, v, millis(expiresAt), h.version)
	})
	if err != nil {
		return fmt.Errorf("boltstore: touch: %w", err)
	}
	return nil
}

// keysChunk is how many keys Keys collects per read transaction.
const keysChunk = 256

// Keys implements [kvsession.Lister]. It walks the keys in order, in chunks
// of 256, each read in its own short read transaction; fn runs between the
// transactions, so it may call the store. It reports every record, expired
// ones until DeleteExpired removes them and ones that do not parse (Get
// reports those as corrupt).
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: keys: %w", err)
	}
	p := []byte(prefix)
	var after []byte // the last key examined; nil before the first chunk
	chunk := make([]string, 0, keysChunk)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("boltstore: keys: %w", err)
		}
		chunk = chunk[:0]
		done := false
		err := s.view(func(b buckets) error {
			if b.records == nil {
				done = true
				return nil
			}
			c := b.records.Cursor()
			var k []byte
			if after == nil {
				k, _ = c.Seek(p)
			} else if k, _ = c.Seek(after); bytes.Equal(k, after) {
				k, _ = c.Next()
			}
			var last []byte // aliases bbolt's memory
			for ; ; k, _ = c.Next() {
				if k == nil || !bytes.HasPrefix(k, p) {
					done = true
					return nil
				}
				if len(chunk) == keysChunk {
					after = bytes.Clone(last)
					return nil
				}
				last = k
				chunk = append(chunk, string(k)) // string copies k
			}
		})
		if err != nil {
			return fmt.Errorf("boltstore: keys: %w", err)
		}
		for _, k := range chunk {
			if err := fn(k); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// sweepBatch is how many expiry index entries DeleteExpired handles per
// write transaction.
const sweepBatch = 1000

// DeleteExpired implements [kvsession.ExpiredDeleter]. It removes expired
// records and user index entries, at most 1000 per write transaction, and
// reports how many records it removed, after each transaction that
// removed some to ctx's progress function ([kvsession.WithSweepProgress])
// and in all at the end. If ctx is cancelled between two batches it stops
// and returns the count so far with the context's error.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("boltstore: delete expired: %w", err)
	}
	now := s.now().UnixMilli()
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("boltstore: delete expired: %w", err)
		}
		n, more, err := s.sweep(ctx, now)
		total += n
		if err != nil {
			return total, fmt.Errorf("boltstore: delete expired: %w", err)
		}
		if n > 0 {
			kvsession.ReportSweepProgress(ctx, total)
		}
		if !more {
			return total, nil
		}
	}
}

// sweep handles one batch of expired index entries. It reports how many
// records it removed and whether more entries may have expired.
func (s *Store) sweep(ctx context.Context, now int64) (removed int, more bool, err error) {
	err = s.update(ctx, func(b buckets) error {
		removed, more = 0, false
		// Collect first: deleting under a bbolt cursor can make it skip
		// entries.
		var due [][]byte
		c := b.expiry.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(due) == sweepBatch {
				more = true
				break
			}
			if len(k) < 9 {
				due = append(due, bytes.Clone(k)) // not ours: drop it
				continue
			}
			if int64(binary.BigEndian.Uint64(k)) > now {
				break
			}
			due = append(due, bytes.Clone(k))
		}
		for _, k := range due {
			if err := b.expiry.Delete(k); err != nil {
				return err
			}
			if len(k) < 9 {
				continue
			}
			ms, kind, key := binary.BigEndian.Uint64(k), k[8], k[9:]
			switch kind {
			case kindRecord:
				// Delete the record only if the entry still describes it.
				if h, _, ok := decode(b.records.Get(key)); ok && h.expiresAt == ms {
					if err := b.records.Delete(key); err != nil {
						return err
					}
					removed++
				}
			case kindUser:
				if v := b.users.Get(key); len(v) == 8 && binary.BigEndian.Uint64(v) == ms {
					if err := b.users.Delete(key); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	return removed, more, err
}

// userPrefix is the users bucket's key prefix for user: its length, then
// its bytes, so that no user's prefix is a prefix of another's.
func userPrefix(user string) []byte {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(user)), uint64(len(user)))
	return append(b, user...)
}

func userKey(user, key string) []byte { return append(userPrefix(user), key...) }

// AddUserKey implements [kvsession.UserIndex].
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: add user key: %w", err)
	}
	exp := millis(expiresAt)
	err := s.update(ctx, func(b buckets) error {
		k := userKey(user, key)
		if v := b.users.Get(k); len(v) == 8 {
			old := binary.BigEndian.Uint64(v)
			if old == 0 || (exp != 0 && old >= exp) {
				return nil // the recorded expiry is already the later one
			}
			if err := b.expiry.Delete(expiryKey(old, kindUser, k)); err != nil {
				return err
			}
		}
		if err := b.users.Put(k, binary.BigEndian.AppendUint64(nil, exp)); err != nil {
			return err
		}
		if exp != 0 {
			return b.expiry.Put(expiryKey(exp, kindUser, k), nil)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: add user key: %w", err)
	}
	return nil
}

// UserKeys implements [kvsession.UserIndex].
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: user keys: %w", err)
	}
	now := s.now().UnixMilli()
	p := userPrefix(user)
	var keys []string
	err := s.view(func(b buckets) error {
		if b.users == nil {
			return nil
		}
		c := b.users.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if len(v) == 8 && !expired(binary.BigEndian.Uint64(v), now) {
				keys = append(keys, string(k[len(p):])) // string copies
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: user keys: %w", err)
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex].
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: remove user key: %w", err)
	}
	err := s.update(ctx, func(b buckets) error {
		k := userKey(user, key)
		v := b.users.Get(k)
		if v == nil {
			return nil
		}
		if len(v) == 8 {
			if exp := binary.BigEndian.Uint64(v); exp != 0 {
				if err := b.expiry.Delete(expiryKey(exp, kindUser, k)); err != nil {
					return err
				}
			}
		}
		return b.users.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("boltstore: remove user key: %w", err)
	}
	return nil
}
