package kvsession

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Admin operates on the sessions of a store by store key, for "list my
// devices", "log out everywhere", and tools that inspect sessions while
// their clients are away. It needs no signing key and no guess of the
// application's Lifetime or IdleTimeout: every record carries its own
// deadlines. Every Manager has one ([Manager.Admin]); a tool makes its own
// with [NewAdmin]. An Admin is safe for concurrent use.
//
// Its writes (Revoke, RevokeUser, Cleanup) are done when they return: they
// are not cancelled by the caller's context, only bounded by the store
// timeout.
type Admin struct {
	c        *core
	readOnly bool
}

// AdminConfig configures an [Admin] made by [NewAdmin]. The zero value of
// each field means the default of the same field of [Config].
type AdminConfig struct {
	// KeyPrefix is the application's Config.KeyPrefix. Default: none.
	KeyPrefix string

	// Lifetime is how long the revocation marks that RevokeUser writes
	// live, and the lifetime of records written before records carried
	// their deadline. Give the application's Config.Lifetime, or more.
	// Default: 24 hours.
	Lifetime time.Duration

	// NoStoreTTL is the application's Config.NoStoreTTL.
	NoStoreTTL bool

	// ReadOnly makes the Admin change nothing: UserSessions leaves stale
	// index entries in place, and Revoke, RevokeUser and Cleanup return an
	// error wrapping ErrReadOnly.
	ReadOnly bool

	// StoreTimeout, MaxRecordBytes, Logger, OnEvent and Now are as in
	// Config.
	StoreTimeout   time.Duration
	MaxRecordBytes int
	Logger         *slog.Logger
	OnEvent        func(ctx context.Context, e Event)
	Now            func() time.Time
}

// ErrReadOnly is returned by the writes of an Admin made with
// AdminConfig.ReadOnly.
var ErrReadOnly = errors.New("kvsession: read-only admin")

// NewAdmin returns an Admin for the sessions that an application with the
// given key prefix keeps in store. It returns an error wrapping
// ErrInvalidConfig if cfg is invalid.
func NewAdmin(store Store, cfg AdminConfig) (*Admin, error) {
	if store == nil {
		return nil, configError("nil store")
	}
	full, err := Config{
		Secrets:        [][]byte{adminSecret}, // never signs: an Admin has no cookies
		KeyPrefix:      cfg.KeyPrefix,
		Lifetime:       cfg.Lifetime,
		NoStoreTTL:     cfg.NoStoreTTL,
		StoreTimeout:   cfg.StoreTimeout,
		MaxRecordBytes: cfg.MaxRecordBytes,
		Logger:         cfg.Logger,
		OnEvent:        cfg.OnEvent,
		Now:            cfg.Now,
	}.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Admin{c: newCore(store, full), readOnly: cfg.ReadOnly}, nil
}

// adminSecret fills Config.Secrets for an Admin, which signs nothing.
var adminSecret = []byte("kvsession admin: this secret signs nothing")

func (a *Admin) write(op string) error {
	if a.readOnly {
		return fmt.Errorf("kvsession: %s: %w", op, ErrReadOnly)
	}
	return nil
}

// IsSessionKey reports whether key, a store key under the key prefix, is
// a session's, rather than one of the manager's other records (the users'
// revocation marks), for tools that walk a store's keys.
func (a *Admin) IsSessionKey(key string) bool {
	rest, ok := strings.CutPrefix(key, a.c.cfg.KeyPrefix)
	if !ok || len(rest) != b64.EncodedLen(sha256.Size) {
		return false
	}
	_, err := b64.DecodeString(rest)
	return err == nil
}

// SessionInfo describes a stored session, for listing a user's devices.
// It holds no session ID: Key is the store key (a hash of the ID), which
// identifies the session to Revoke but cannot be used as a cookie.
type SessionInfo struct {
	Key        string
	LogID      string
	User       string
	Created    time.Time
	LastSeen   time.Time // the last change or idle refresh
	ExpiresAt  time.Time
	Permanent  bool
	UserAgent  string
	RemoteAddr string // only with Config.RecordRemoteAddr
	Current    bool   // the session of the request whose context was passed
}

// UserSessions lists the live sessions bound to user (see
// Session.SetUser), oldest first. If ctx is a request context under
// Handler, the request's own session is marked Current.
func (a *Admin) UserSessions(ctx context.Context, user string) ([]SessionInfo, error) {
	c := a.c
	keys, err := c.userKeys(ctx, user)
	if err != nil {
		return nil, err
	}
	current := FromContext(ctx).currentKey()
	var infos []SessionInfo
	for _, key := range keys {
		info, err := a.Info(ctx, key)
		if errors.Is(err, ErrNotFound) || (err == nil && info.User != user) {
			if !a.readOnly {
				c.tidy(ctx, user, key) // a stale entry
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		info.Current = key == current
		infos = append(infos, info)
	}
	slices.SortFunc(infos, func(a, b SessionInfo) int { return a.Created.Compare(b.Created) })
	return infos, nil
}

// lookup reads and decodes the live session stored under key.
func (c *core) lookup(ctx context.Context, key string) (record, Entry, error) {
	e, err := c.get(ctx, key)
	if err != nil {
		return record{}, e, err
	}
	r, err := c.decode(e.Value)
	if err != nil {
		c.emit(ctx, Event{Kind: EventCorruptRecord, LogID: c.logID(key), Err: err})
		return record{}, e, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if c.expired(&r, e, c.cfg.Now()) {
		return record{}, e, fmt.Errorf("%w: %w", ErrNotFound, ErrExpired)
	}
	return r, e, nil
}

// Info describes the session stored under key (a SessionInfo.Key). It
// returns an error wrapping ErrNotFound if there is no live session there.
func (a *Admin) Info(ctx context.Context, key string) (SessionInfo, error) {
	c := a.c
	r, e, err := c.lookup(ctx, key)
	if err != nil {
		return SessionInfo{}, fmt.Errorf("kvsession: session info: %w", err)
	}
	return c.info(key, &r, e), nil
}

// info describes a decoded record.
func (c *core) info(key string, r *record, e Entry) SessionInfo {
	lastSeen := time.UnixMilli(r.updated)
	exp := c.deadline(r)
	if idle := c.idleDeadline(r, e); !idle.IsZero() {
		// The idle deadline was set IdleTimeout after the last write or
		// refresh, which the record's own idle deadline dates.
		if r.idle != 0 {
			if refreshed := lastSeen.Add(idle.Sub(time.UnixMilli(r.idle))); refreshed.After(lastSeen) {
				lastSeen = refreshed
			}
		}
		if idle.Before(exp) {
			exp = idle
		}
	}
	// The record's strings alias the entry's bytes, which Walk hands to
	// its caller: the info gets copies of its own.
	return SessionInfo{
		Key:        key,
		LogID:      c.logID(key),
		User:       strings.Clone(r.user),
		Created:    time.UnixMilli(r.created),
		LastSeen:   lastSeen,
		ExpiresAt:  exp,
		Permanent:  r.permanent,
		UserAgent:  strings.Clone(r.userAgent),
		RemoteAddr: strings.Clone(r.remote),
	}
}

// capUser ends the least recently seen sessions of user beyond
// Config.MaxUserSessions, never the one under keep, which was just bound.
// Errors are reported as events: the binding that called it stands.
func (c *core) capUser(ctx context.Context, user, keep string) {
	max := c.cfg.MaxUserSessions
	if max <= 0 || user == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	keys, err := c.userKeys(ctx, user)
	if err != nil || len(keys) <= max {
		return // userKeys reported its error
	}
	var others []SessionInfo
	for _, key := range keys {
		if key == keep {
			continue
		}
		r, e, err := c.lookup(ctx, key)
		if errors.Is(err, ErrNotFound) || (err == nil && r.user != user) {
			c.tidy(ctx, user, key)
			continue
		}
		if err != nil {
			c.emit(ctx, Event{Kind: EventStoreError, LogID: c.logID(key), Err: err})
			return
		}
		others = append(others, c.info(key, &r, e))
	}
	slices.SortFunc(others, func(a, b SessionInfo) int { return b.LastSeen.Compare(a.LastSeen) })
	for _, info := range others[min(len(others), max-1):] {
		if err := c.del(ctx, info.Key); err != nil {
			c.emit(ctx, Event{Kind: EventStoreError, LogID: info.LogID, Err: err})
			return
		}
		c.emit(ctx, Event{Kind: EventRevoked, LogID: info.LogID, Revocation: RevocationCap})
		c.tidy(ctx, user, info.Key)
	}
}

// Values returns the values of the session stored under key (a
// SessionInfo.Key), each as the JSON it is stored as, for tools that
// inspect sessions. It returns an error wrapping ErrNotFound if there is no
// live session there.
func (a *Admin) Values(ctx context.Context, key string) (map[string]json.RawMessage, error) {
	r, _, err := a.c.lookup(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("kvsession: session values: %w", err)
	}
	r.unpack()
	values := make(map[string]json.RawMessage, len(r.fields))
	for _, f := range r.fields {
		values[f.key] = json.RawMessage(f.raw)
	}
	return values, nil
}

// Revoke deletes the session stored under key (a SessionInfo.Key): its
// cookie is worthless from then on, on every instance sharing the store.
// The delete is done when Revoke returns nil; it is not cancelled by ctx's
// cancellation, only bounded by the store timeout.
//
// A live session's deletion is reported as EventRevoked
// (RevocationSession). A key with no live session there (absent, expired
// or corrupt) is deleted all the same, returns nil and reports no
// revocation. If reading the session first fails, the failure is reported
// as EventStoreError and the delete still goes ahead; the user's index may
// then keep an entry naming the deleted session, which readers of the
// index skip and remove.
func (a *Admin) Revoke(ctx context.Context, key string) error {
	if err := a.write("revoke"); err != nil {
		return err
	}
	c := a.c
	ctx, cancel := c.detached(ctx)
	defer cancel()
	var user string
	info, lookupErr := a.Info(ctx, key)
	switch {
	case lookupErr == nil:
		user = info.User
	case !errors.Is(lookupErr, ErrNotFound):
		c.emit(ctx, Event{Kind: EventStoreError, LogID: c.logID(key), Err: lookupErr})
	}
	if err := c.del(ctx, key); err != nil {
		c.emit(ctx, Event{Kind: EventStoreError, LogID: c.logID(key), Err: err})
		return fmt.Errorf("kvsession: revoke: %w", err)
	}
	if !errors.Is(lookupErr, ErrNotFound) {
		c.emit(ctx, Event{Kind: EventRevoked, LogID: c.logID(key), Revocation: RevocationSession})
	}
	c.tidy(ctx, user, key)
	return nil
}

// RevokeUser deletes every session bound to user, except the session of
// the request whose context is ctx when keepCurrent is set ("log out my
// other devices"), and returns how many index entries it removed.
//
// It is airtight: once it returns nil, no session bound to the user before
// the call can be used again, on any instance, even one that was
// regenerating its ID during the call. It first writes a new revocation
// mark for the user, then deletes what the index names; a session that
// binds a new ID to the user checks the mark after indexing that ID, and
// gives the ID up if the mark changed (its Regenerate returns ErrEnded).
// A new login after the call works. The store work is not cancelled by
// ctx's cancellation, each call only bounded by the store timeout. Call it
// before the response's first byte when keepCurrent is set, so that the
// current session's record learns the new mark.
//
// Each index entry it removes is reported as EventRevoked (RevocationUser),
// and a completed call as EventUserRevoked with the count. An entry whose
// session has already ended (it expired before the entry did, or its
// entry could not be removed when it was deleted: see Revoke) is counted
// and reported the same: telling them apart would cost a read per entry.
func (a *Admin) RevokeUser(ctx context.Context, user string, keepCurrent bool) (int, error) {
	if err := a.write("revoke user"); err != nil {
		return 0, err
	}
	c := a.c
	detached := context.WithoutCancel(ctx)
	mark, err := c.newMark(detached, user)
	if err != nil {
		return 0, fmt.Errorf("kvsession: revoke user: %w", err)
	}
	keys, err := c.userKeys(detached, user)
	if err != nil {
		return 0, err
	}
	current := ""
	if keepCurrent {
		current = FromContext(ctx).currentKey()
	}
	n := 0
	for _, key := range keys {
		if key == current {
			continue
		}
		if err := c.del(detached, key); err != nil {
			c.emit(ctx, Event{Kind: EventStoreError, LogID: c.logID(key), Err: err})
			return n, fmt.Errorf("kvsession: revoke user: %w", err)
		}
		c.emit(ctx, Event{Kind: EventRevoked, LogID: c.logID(key), Revocation: RevocationUser})
		c.tidy(detached, user, key)
		n++
	}
	if current != "" {
		FromContext(ctx).adoptMark(user, mark)
	}
	c.emit(ctx, Event{Kind: EventUserRevoked, Count: n})
	return n, nil
}

// Cleanup deletes expired sessions (and revocation marks) from stores that
// do not drop them by themselves, and returns how many records it deleted.
// This is Flask-KVSession's cleanup_sessions. A store with an
// [ExpiredDeleter] sweeps itself; with Config.NoStoreTTL, or a store that
// can only list its keys, Cleanup walks the keys ([Lister]) and deletes
// each record its own deadlines say has expired, with CompareAndDelete, so
// a session refreshed meanwhile stays. It returns an error wrapping
// errors.ErrUnsupported if the store can do neither (memcached, which
// evicts by itself).
//
// If ctx carries a progress function ([WithSweepProgress]), Cleanup passes
// it to the store's sweep, which reports after each batch if it does, or,
// when it walks, reports itself after each record it deletes.
func (a *Admin) Cleanup(ctx context.Context) (int, error) {
	if err := a.write("cleanup"); err != nil {
		return 0, err
	}
	c := a.c
	d, sweeps := c.store.(ExpiredDeleter)
	if sweeps && !c.cfg.NoStoreTTL {
		n, err := d.DeleteExpired(ctx)
		if err != nil {
			return n, fmt.Errorf("kvsession: cleanup: %w", err)
		}
		return n, nil
	}
	if _, ok := c.store.(Lister); !ok {
		return 0, fmt.Errorf("kvsession: cleanup: %w", errors.ErrUnsupported)
	}
	type doomed struct {
		key, user string
		version   uint64
	}
	var expired []doomed
	err := a.Walk(ctx, func(key string, e Entry, info SessionInfo, err error) error {
		switch {
		case errors.Is(err, ErrExpired):
			expired = append(expired, doomed{key, info.User, e.Version})
		case err == nil, errors.Is(err, ErrNotFound):
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("kvsession: cleanup: %w", err)
	}
	// The walk only collects: a store may hold a read transaction during
	// it (bbolt), so the deletes come after.
	n := 0
	detached := context.WithoutCancel(ctx)
	for _, d := range expired {
		err := c.cad(detached, d.key, d.version)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			continue // gone already, or refreshed meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("kvsession: cleanup: %w", err)
		}
		c.tidy(detached, d.user, d.key)
		n++
		ReportSweepProgress(ctx, n)
	}
	return n, nil
}

// Walk calls fn for every record under the key prefix of a store that can
// list its keys ([Lister]): with the session's SessionInfo and a nil error
// for a live session; with an error wrapping ErrExpired (and ErrNotFound)
// for one past its deadlines that the store still holds, the info filled in
// from the record; with an error wrapping ErrCorrupt (and ErrNotFound) for a
// record that does not decode; with an error wrapping ErrNotFound for a key
// gone during the walk. Revocation marks are walked too, as expired or not
// (their info is empty). If fn returns an error, Walk stops and returns
// it. A key the store reports twice (Redis SCAN) is reported once.
func (a *Admin) Walk(ctx context.Context, fn func(key string, e Entry, info SessionInfo, err error) error) error {
	c := a.c
	ls, ok := c.store.(Lister)
	if !ok {
		return fmt.Errorf("kvsession: walk: %w", errors.ErrUnsupported)
	}
	seen := map[string]bool{}
	now := c.cfg.Now()
	return ls.Keys(ctx, c.cfg.KeyPrefix, func(key string) error {
		if seen[key] {
			return nil
		}
		seen[key] = true
		e, err := c.get(ctx, key)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				return err
			}
			if errors.Is(err, ErrCorrupt) { // a record the store cannot parse
				c.emit(ctx, Event{Kind: EventCorruptRecord, LogID: c.logID(key), Err: err})
			}
			return fn(key, e, SessionInfo{Key: key}, err)
		}
		if !a.IsSessionKey(key) {
			if markExpired(e.Value, now) {
				err = fmt.Errorf("%w: %w", ErrNotFound, ErrExpired)
			}
			return fn(key, e, SessionInfo{Key: key}, err)
		}
		r, err := c.decode(e.Value)
		if err != nil {
			c.emit(ctx, Event{Kind: EventCorruptRecord, LogID: c.logID(key), Err: err})
			return fn(key, e, SessionInfo{Key: key, LogID: c.logID(key)}, fmt.Errorf("%w: %w", ErrNotFound, err))
		}
		info := c.info(key, &r, e)
		if c.expired(&r, e, now) {
			return fn(key, e, info, fmt.Errorf("%w: %w", ErrNotFound, ErrExpired))
		}
		return fn(key, e, info, nil)
	})
}

// CleanupEvery runs Cleanup every interval until ctx is cancelled, then
// returns ctx's error. Failures are logged and retried at the next tick. It
// returns at once, with an error wrapping errors.ErrUnsupported, if the
// store can neither sweep nor list. Run it in a goroutine you own:
//
//	go m.CleanupEvery(ctx, 10*time.Minute)
func (a *Admin) CleanupEvery(ctx context.Context, interval time.Duration) error {
	if err := a.write("cleanup"); err != nil {
		return err
	}
	_, sweeps := a.c.store.(ExpiredDeleter)
	_, lists := a.c.store.(Lister)
	if !sweeps && !lists {
		return fmt.Errorf("kvsession: cleanup: %w", errors.ErrUnsupported)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := a.Cleanup(ctx); err != nil && ctx.Err() == nil {
				a.c.emit(ctx, Event{Kind: EventStoreError, Err: err})
			}
		}
	}
}
