package kvsession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The operations on stored sessions by store key, for "list my devices",
// "log out everywhere", and tools that inspect sessions while their clients
// are away.

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
func (m *Manager) UserSessions(ctx context.Context, user string) ([]SessionInfo, error) {
	c := m.c
	keys, err := c.userKeys(ctx, user)
	if err != nil {
		return nil, err
	}
	current := FromContext(ctx).currentKey()
	var infos []SessionInfo
	for _, key := range keys {
		info, err := m.Info(ctx, key)
		if errors.Is(err, ErrNotFound) || (err == nil && info.User != user) {
			c.tidy(ctx, user, key) // a stale entry
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
		return record{}, e, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if c.expired(&r, e.ExpiresAt, c.cfg.Now()) {
		return record{}, e, fmt.Errorf("%w: expired", ErrNotFound)
	}
	return r, e, nil
}

// Info describes the session stored under key (a SessionInfo.Key). It
// returns an error wrapping ErrNotFound if there is no live session there.
func (m *Manager) Info(ctx context.Context, key string) (SessionInfo, error) {
	c := m.c
	r, e, err := c.lookup(ctx, key)
	if err != nil {
		return SessionInfo{}, fmt.Errorf("kvsession: session info: %w", err)
	}
	lastSeen := r.updated
	if c.cfg.IdleTimeout > 0 && !e.ExpiresAt.IsZero() {
		if refreshed := e.ExpiresAt.Add(-c.cfg.IdleTimeout); refreshed.After(lastSeen) {
			lastSeen = refreshed
		}
	}
	exp := e.ExpiresAt
	if exp.IsZero() {
		exp = c.deadline(&r)
	}
	return SessionInfo{
		Key:        key,
		LogID:      c.logID(key),
		User:       r.user,
		Created:    r.created,
		LastSeen:   lastSeen,
		ExpiresAt:  exp,
		Permanent:  r.permanent,
		UserAgent:  r.userAgent,
		RemoteAddr: r.remote,
	}, nil
}

// Values returns the values of the session stored under key (a
// SessionInfo.Key), each as the JSON it is stored as, for tools that
// inspect sessions. It returns an error wrapping ErrNotFound if there is no
// live session there.
func (m *Manager) Values(ctx context.Context, key string) (map[string]json.RawMessage, error) {
	r, _, err := m.c.lookup(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("kvsession: session values: %w", err)
	}
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
func (m *Manager) Revoke(ctx context.Context, key string) error {
	c := m.c
	ctx, cancel := c.detached(ctx)
	defer cancel()
	var user string
	if info, err := m.Info(ctx, key); err == nil {
		user = info.User
	}
	if err := c.del(ctx, key); err != nil {
		c.emit(ctx, Event{Kind: EventStoreError, LogID: c.logID(key), Err: err})
		return fmt.Errorf("kvsession: revoke: %w", err)
	}
	c.emit(ctx, Event{Kind: EventDestroyed, LogID: c.logID(key)})
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
func (m *Manager) RevokeUser(ctx context.Context, user string, keepCurrent bool) (int, error) {
	c := m.c
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
		c.emit(ctx, Event{Kind: EventDestroyed, LogID: c.logID(key)})
		c.tidy(detached, user, key)
		n++
	}
	if current != "" {
		FromContext(ctx).adoptMark(user, mark)
	}
	return n, nil
}

// Cleanup deletes expired sessions from stores that do not drop them by
// themselves, and returns how many it deleted. It returns an error wrapping
// errors.ErrUnsupported if the store has no such capability (stores with
// native expiry, such as Redis, need none). This is Flask-KVSession's
// cleanup_sessions.
func (m *Manager) Cleanup(ctx context.Context) (int, error) {
	d, ok := m.c.store.(ExpiredDeleter)
	if !ok {
		return 0, fmt.Errorf("kvsession: cleanup: %w", errors.ErrUnsupported)
	}
	n, err := d.DeleteExpired(ctx)
	if err != nil {
		return n, fmt.Errorf("kvsession: cleanup: %w", err)
	}
	return n, nil
}

// CleanupEvery runs Cleanup every interval until ctx is cancelled, then
// returns ctx's error. Failures are logged and retried at the next tick. It
// returns at once, with an error wrapping errors.ErrUnsupported, if the
// store has no cleanup capability. Run it in a goroutine you own:
//
//	go m.CleanupEvery(ctx, 10*time.Minute)
func (m *Manager) CleanupEvery(ctx context.Context, interval time.Duration) error {
	if _, ok := m.c.store.(ExpiredDeleter); !ok {
		return fmt.Errorf("kvsession: cleanup: %w", errors.ErrUnsupported)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := m.Cleanup(ctx); err != nil && ctx.Err() == nil {
				m.c.emit(ctx, Event{Kind: EventStoreError, Err: err})
			}
		}
	}
}
