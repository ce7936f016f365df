package kvsession

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kvsession/kvsession/internal/sharedread"
)

// core is the layer under Manager and Session: the frozen Config, the
// cookie signer, and every call to the store, each bounded by the store
// timeout and reported as events. Manager and Session call it; it calls
// nothing above it.
type core struct {
	cfg       Config
	store     Store
	unbounded bool           // the store's type never blocks: no deadlines
	shared    sharedread.Get // the store's read without a copy, or nil
	signer    *signer
	cookieFmt cookieFormat
}

// bound returns the context of a store call made on behalf of ctx: ctx
// itself when it is already done (the store fails the call with its
// error), when its deadline is already as close as StoreTimeout (inside a
// save) or when the store never blocks; otherwise a context limited to
// StoreTimeout that keeps ctx's values but not its cancellation. A call
// once begun is thus not cut short by a client that goes away: it
// completes or times out, and a save is not left half done. It also costs
// a timer and no more: a child of the request's own context would be
// registered with it, and under load that registration (a map on every
// request's context) cost Redis-backed servers about 15% of their
// throughput (docs/BENCHMARKS.md).
func (c *core) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.unbounded || ctx.Err() != nil {
		return ctx, func() {}
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= c.cfg.StoreTimeout {
		return ctx, func() {}
	}
	return c.detached(ctx)
}

// detached returns a context for store work that must finish once begun
// (Destroy, Regenerate, revocations): it keeps ctx's values but not its
// cancellation, so a client that goes away cannot stop it halfway, and it
// is bounded by the store timeout, so a hung store cannot hold it forever.
func (c *core) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.unbounded {
		return context.WithoutCancel(ctx), func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), c.cfg.StoreTimeout)
}

func (c *core) get(ctx context.Context, key string) (Entry, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.store.Get(ctx, key)
}

// load reads a session's record for Session.load, which never writes to
// the entry's bytes nor hands them on: through the store's shared read when
// it offers one (package sharedread), without Get's copy, else with Get.
func (c *core) load(ctx context.Context, key string) (Entry, error) {
	if c.shared == nil {
		return c.get(ctx, key)
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	v, exp, version, err := c.shared(ctx, key)
	return Entry{Value: v, ExpiresAt: exp, Version: version}, err
}

func (c *core) set(ctx context.Context, key string, v []byte, exp time.Time) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.store.Set(ctx, key, v, exp)
}

func (c *core) cas(ctx context.Context, key string, v []byte, exp time.Time, old uint64) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.store.CompareAndSwap(ctx, key, v, exp, old)
}

func (c *core) cad(ctx context.Context, key string, old uint64) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.store.CompareAndDelete(ctx, key, old)
}

func (c *core) del(ctx context.Context, key string) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.store.Delete(ctx, key)
}

func (c *core) touch(ctx context.Context, key string, exp time.Time) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.store.Touch(ctx, key, exp)
}

// index records that key belongs to r's user.
func (c *core) index(ctx context.Context, r *record, key string) error {
	if r.user == "" {
		return nil
	}
	sctx, cancel := c.bound(ctx)
	defer cancel()
	if err := c.store.AddUserKey(sctx, r.user, key, c.deadline(r)); err != nil {
		c.emit(ctx, Event{Kind: EventStoreError, LogID: c.logID(key), Err: err})
		return fmt.Errorf("kvsession: index session: %w", err)
	}
	return nil
}

// unindex forgets that key belongs to user.
func (c *core) unindex(ctx context.Context, user, key string) error {
	if user == "" {
		return nil
	}
	sctx, cancel := c.bound(ctx)
	defer cancel()
	if err := c.store.RemoveUserKey(sctx, user, key); err != nil {
		c.emit(ctx, Event{Kind: EventStoreError, LogID: c.logID(key), Err: err})
		return fmt.Errorf("kvsession: unindex session: %w", err)
	}
	return nil
}

// tidy removes an index entry that is stale once a session has moved or
// ended. The session's own work is done; a failure leaves an entry that
// names a missing record, which every reader of the index skips and
// removes, so it is reported (EventStoreError) and not returned.
func (c *core) tidy(ctx context.Context, user, key string) {
	_ = c.unindex(ctx, user, key)
}

func (c *core) userKeys(ctx context.Context, user string) ([]string, error) {
	sctx, cancel := c.bound(ctx)
	defer cancel()
	keys, err := c.store.UserKeys(sctx, user)
	if err != nil {
		return nil, fmt.Errorf("kvsession: user sessions: %w", err)
	}
	return keys, nil
}

// markKey returns the store key of user's revocation mark: the prefix,
// "!r:" (never part of a session key, which is URL-safe base64) and a
// hash of the user ID.
func (c *core) markKey(user string) string {
	sum := sha256.Sum256([]byte(user))
	return c.cfg.KeyPrefix + "!r:" + b64.EncodeToString(sum[:])
}

// mark returns user's current revocation mark: "" if the user was never
// revoked (or the mark has outlived every session it could concern).
func (c *core) mark(ctx context.Context, user string) (string, error) {
	e, err := c.get(ctx, c.markKey(user))
	switch {
	case err == nil:
		return string(e.Value), nil
	case errors.Is(err, ErrNotFound):
		return "", nil
	default:
		c.emit(ctx, Event{Kind: EventStoreError, Err: err})
		return "", fmt.Errorf("kvsession: read revocation mark: %w", err)
	}
}

// newMark writes a new revocation mark for user and returns it. It lives
// as long as any session bound before it can, Config.Lifetime, and carries
// that deadline in its value ("random.unix-ms"), so that a sweep can remove
// it from a store that keeps no expiry (Config.NoStoreTTL).
func (c *core) newMark(ctx context.Context, user string) (string, error) {
	var b [16]byte
	rand.Read(b[:])
	until := c.cfg.Now().Add(c.cfg.Lifetime)
	m := b64.EncodeToString(b[:]) + "." + strconv.FormatInt(until.UnixMilli(), 10)
	if err := c.set(ctx, c.markKey(user), []byte(m), c.storeExpiry(until)); err != nil {
		c.emit(ctx, Event{Kind: EventStoreError, Err: err})
		return "", fmt.Errorf("kvsession: write revocation mark: %w", err)
	}
	return m, nil
}

// markExpired reports whether a stored revocation mark is past the
// deadline its value carries.
func markExpired(value []byte, now time.Time) bool {
	_, ms, ok := strings.Cut(string(value), ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	return ok && err == nil && !now.Before(time.UnixMilli(n))
}

func (c *core) decode(b []byte) (record, error) {
	if len(b) > c.cfg.MaxRecordBytes {
		return record{}, fmt.Errorf("%w: %d bytes, above MaxRecordBytes", ErrCorrupt, len(b))
	}
	return decodeRecord(b)
}

func (c *core) encode(r *record) ([]byte, error) {
	b := r.encode()
	if len(b) > c.cfg.MaxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes, above MaxRecordBytes %d", ErrTooLarge, len(b), c.cfg.MaxRecordBytes)
	}
	return b, nil
}

// deadline returns the end of a session's absolute lifetime: the one
// recorded at its creation, or, for a record written before deadlines
// were recorded, its creation plus Config.Lifetime.
func (c *core) deadline(r *record) time.Time {
	if r.deadline != 0 {
		return time.UnixMilli(r.deadline)
	}
	return time.UnixMilli(r.created).Add(c.cfg.Lifetime)
}

// expired reports whether a loaded session is past its lifetime or idle
// deadline, judged by the manager's clock.
func (c *core) expired(r *record, e Entry, now time.Time) bool {
	if !now.Before(c.deadline(r)) {
		return true
	}
	exp := c.idleDeadline(r, e)
	return !exp.IsZero() && !now.Before(exp)
}

// idleDeadline returns when a loaded session ends if unused: the store's
// expiry, which an idle refresh (Touch) moves without rewriting the
// record, or, in a store that keeps none (Config.NoStoreTTL), the one the
// record carries.
func (c *core) idleDeadline(r *record, e Entry) time.Time {
	if !e.ExpiresAt.IsZero() {
		return e.ExpiresAt
	}
	return milliTime(r.idle)
}

// expiry returns when a session saved now expires.
func (c *core) expiry(r *record, now time.Time) time.Time {
	exp := c.deadline(r)
	if c.cfg.IdleTimeout > 0 {
		if idle := now.Add(c.cfg.IdleTimeout); idle.Before(exp) {
			exp = idle
		}
	}
	return exp
}

// stamp prepares r to be written now: it records the time and the idle
// deadline, and returns the expiry to give the store (none with
// Config.NoStoreTTL).
func (c *core) stamp(r *record, now time.Time) time.Time {
	r.updated = now.UnixMilli()
	exp := c.expiry(r, now)
	r.idle = 0
	if c.cfg.IdleTimeout > 0 {
		r.idle = unixMilli(exp)
	}
	return c.storeExpiry(exp)
}

// storeExpiry returns exp, or the zero time (no expiry) with
// Config.NoStoreTTL.
func (c *core) storeExpiry(exp time.Time) time.Time {
	if c.cfg.NoStoreTTL {
		return time.Time{}
	}
	return exp
}

// newID returns a fresh random session ID and its storage key. The ID is
// written to dst's backing array when it has room (see spareIDBuf), and
// to a new one otherwise.
func (c *core) newID(dst []byte) ([]byte, string, error) {
	n := c.cfg.IDBits / 8
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	id := dst[:n]
	if c.cfg.Rand == nil {
		rand.Read(id) // never fails
	} else if _, err := io.ReadFull(c.cfg.Rand, id); err != nil {
		return nil, "", fmt.Errorf("kvsession: new session ID: %w", err)
	}
	return id, storageKey(c.cfg.KeyPrefix, id), nil
}

// spareIDBuf returns the identity's own ID buffer, empty, for a new ID,
// or nil while it holds the presented ID (which must stay intact until
// the new one replaces it).
func (id *identity) spareIDBuf() []byte {
	if id.id != nil {
		return nil
	}
	return id.buf[:0]
}

func (c *core) logID(key string) string { return logID(c.cfg.KeyPrefix, key) }
