package kvsession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The per-user index: which sessions belong to a user.

func (m *Manager) index(ctx context.Context, r record, key string) error {
	if r.user == "" || m.users == nil {
		return nil
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	if err := m.users.AddUserKey(ctx, r.user, key, m.deadline(r)); err != nil {
		m.emit(ctx, Event{Kind: EventStoreError, LogID: logID(m.cfg.KeyPrefix, key), Err: err})
		return fmt.Errorf("kvsession: index session: %w", err)
	}
	return nil
}

func (m *Manager) unindex(ctx context.Context, user, key string) error {
	if user == "" || m.users == nil {
		return nil
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	if err := m.users.RemoveUserKey(ctx, user, key); err != nil {
		m.emit(ctx, Event{Kind: EventStoreError, LogID: logID(m.cfg.KeyPrefix, key), Err: err})
		return fmt.Errorf("kvsession: unindex session: %w", err)
	}
	return nil
}

// reindex updates the index after a save that may have changed the user
// (from oldUser to r.user) or the key (from oldKey to key).
func (m *Manager) reindex(ctx context.Context, oldUser string, r record, oldKey, key string) error {
	if oldUser == r.user && oldKey == key {
		return nil
	}
	if err := m.index(ctx, r, key); err != nil {
		return err
	}
	return m.unindex(ctx, oldUser, oldKey)
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
// Handler, the request's own session is marked Current. It returns an error
// wrapping errors.ErrUnsupported if the store has no user index.
func (m *Manager) UserSessions(ctx context.Context, user string) ([]SessionInfo, error) {
	if m.users == nil {
		return nil, fmt.Errorf("kvsession: user sessions: %w", errors.ErrUnsupported)
	}
	keys, err := m.userKeys(ctx, user)
	if err != nil {
		return nil, err
	}
	current := ""
	if s := FromContext(ctx); s != nil {
		s.mu.Lock()
		s.identify()
		current = s.key
		s.mu.Unlock()
	}
	var infos []SessionInfo
	for _, key := range keys {
		info, err := m.Info(ctx, key)
		if errors.Is(err, ErrNotFound) || (err == nil && info.User != user) {
			m.unindex(ctx, user, key) // stale entry; a failure here is harmless
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

func (m *Manager) userKeys(ctx context.Context, user string) ([]string, error) {
	sctx, cancel := m.bound(ctx)
	defer cancel()
	keys, err := m.users.UserKeys(sctx, user)
	if err != nil {
		return nil, fmt.Errorf("kvsession: user sessions: %w", err)
	}
	return keys, nil
}

// Info describes the session stored under key (a SessionInfo.Key). It
// returns an error wrapping ErrNotFound if there is no live session there.
func (m *Manager) Info(ctx context.Context, key string) (SessionInfo, error) {
	e, err := m.get(ctx, key)
	if err != nil {
		return SessionInfo{}, fmt.Errorf("kvsession: session info: %w", err)
	}
	r, err := m.decode(e.Value)
	if err != nil {
		return SessionInfo{}, fmt.Errorf("kvsession: session info: %w: %w", ErrNotFound, err)
	}
	if m.expired(r, e.ExpiresAt, m.cfg.Now()) {
		return SessionInfo{}, fmt.Errorf("kvsession: session info: %w: expired", ErrNotFound)
	}
	lastSeen := r.updated
	if m.cfg.IdleTimeout > 0 && !e.ExpiresAt.IsZero() {
		if refreshed := e.ExpiresAt.Add(-m.cfg.IdleTimeout); refreshed.After(lastSeen) {
			lastSeen = refreshed
		}
	}
	exp := e.ExpiresAt
	if exp.IsZero() {
		exp = m.deadline(r)
	}
	return SessionInfo{
		Key:        key,
		LogID:      logID(m.cfg.KeyPrefix, key),
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
	e, err := m.get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("kvsession: session values: %w", err)
	}
	r, err := m.decode(e.Value)
	if err != nil {
		return nil, fmt.Errorf("kvsession: session values: %w: %w", ErrNotFound, err)
	}
	if m.expired(r, e.ExpiresAt, m.cfg.Now()) {
		return nil, fmt.Errorf("kvsession: session values: %w: expired", ErrNotFound)
	}
	values := make(map[string]json.RawMessage, len(r.fields))
	for _, f := range r.fields {
		values[f.key] = json.RawMessage(f.raw)
	}
	return values, nil
}

// Revoke deletes the session stored under key (a SessionInfo.Key) at
// once: its cookie is worthless from then on, on every instance sharing the
// store.
func (m *Manager) Revoke(ctx context.Context, key string) error {
	var user string
	if info, err := m.Info(ctx, key); err == nil {
		user = info.User
	}
	if err := m.del(ctx, key); err != nil {
		return fmt.Errorf("kvsession: revoke: %w", err)
	}
	m.emit(ctx, Event{Kind: EventDestroyed, LogID: logID(m.cfg.KeyPrefix, key)})
	return m.unindex(ctx, user, key)
}

// RevokeUser deletes every session bound to user, except the session of
// the request whose context is ctx when keepCurrent is set ("log out my
// other devices"). It returns how many it deleted.
func (m *Manager) RevokeUser(ctx context.Context, user string, keepCurrent bool) (int, error) {
	if m.users == nil {
		return 0, fmt.Errorf("kvsession: revoke user: %w", errors.ErrUnsupported)
	}
	keys, err := m.userKeys(ctx, user)
	if err != nil {
		return 0, err
	}
	current := ""
	if s := FromContext(ctx); keepCurrent && s != nil {
		s.mu.Lock()
		s.identify()
		current = s.key
		s.mu.Unlock()
	}
	n := 0
	for _, key := range keys {
		if key == current {
			continue
		}
		if err := m.del(ctx, key); err != nil {
			return n, fmt.Errorf("kvsession: revoke user: %w", err)
		}
		m.emit(ctx, Event{Kind: EventDestroyed, LogID: logID(m.cfg.KeyPrefix, key)})
		if err := m.unindex(ctx, user, key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Cleanup deletes expired sessions from stores that do not drop them by
// themselves, and returns how many it deleted. It returns an error wrapping
// errors.ErrUnsupported if the store has no such capability (stores with
// native expiry, such as Redis, need none). This is Flask-KVSession's
// cleanup_sessions.
func (m *Manager) Cleanup(ctx context.Context) (int, error) {
	d, ok := m.store.(ExpiredDeleter)
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
	if _, ok := m.store.(ExpiredDeleter); !ok {
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
				m.emit(ctx, Event{Kind: EventStoreError, Err: err})
			}
		}
	}
}
