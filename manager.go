package kvsession

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kvsession/kvsession/internal/nonblocking"
	"github.com/kvsession/kvsession/internal/sharedread"
)

// Manager loads and saves sessions for HTTP handlers. Create one with New,
// wrap handlers with Handler, and reach the session in a handler with
// FromContext. Its other methods operate on stored sessions by store key
// (see [Admin]), for "list my devices", "log out everywhere" and tools. A
// Manager is safe for concurrent use.
//
// Inside the package, calls go one way: Manager → Session → core (the
// store calls, cookies, events) → Store.
type Manager struct {
	c     *core
	admin *Admin
}

// New returns a Manager that keeps sessions in store. It returns an error
// wrapping ErrInvalidConfig if cfg is invalid.
func New(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, configError("nil store")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := newCore(store, cfg)
	return &Manager{c: c, admin: &Admin{c: c}}, nil
}

func newCore(store Store, cfg Config) *core {
	return &core{
		cfg:       cfg,
		store:     store,
		unbounded: nonblocking.Is(store) || cfg.StoreTimeout == NoStoreTimeout,
		shared:    sharedread.For(store),
		signer:    newSigner(cfg.CookieName, cfg.IDBits/8, cfg.Secrets),
		cookieFmt: newCookieFormat(cfg),
	}
}

// Admin returns the manager's operations by store key.
func (m *Manager) Admin() *Admin { return m.admin }

// CookieName returns the name of the session cookie, Config.CookieName or
// its default.
func (m *Manager) CookieName() string { return m.c.cfg.CookieName }

// TokenHeader returns Config.Header in its canonical form, or "" if the
// manager takes no header token: with CookieName, the request headers a
// server outside net/http must hand to Manager.Serve.
func (m *Manager) TokenHeader() string { return m.c.cfg.Header }

// StoreKey returns the store key of the session that a cookie value (or
// header token) names, for tools that inspect or revoke a session given
// its cookie. It returns ErrInvalidCookie if the value does not verify. It
// does not check that the session exists.
func (m *Manager) StoreKey(cookieValue string) (string, error) {
	id, _ := m.c.signer.verify(nil, cookieValue)
	if id == nil {
		return "", ErrInvalidCookie
	}
	return storageKey(m.c.cfg.KeyPrefix, id), nil
}

// Key is the former name of [Manager.StoreKey].
//
// Deprecated: use StoreKey.
func (m *Manager) Key(cookieValue string) (string, error) { return m.StoreKey(cookieValue) }

// IsSessionKey is [Admin.IsSessionKey].
func (m *Manager) IsSessionKey(key string) bool { return m.admin.IsSessionKey(key) }

// UserSessions is [Admin.UserSessions].
func (m *Manager) UserSessions(ctx context.Context, user string) ([]SessionInfo, error) {
	return m.admin.UserSessions(ctx, user)
}

// Info is [Admin.Info].
func (m *Manager) Info(ctx context.Context, key string) (SessionInfo, error) {
	return m.admin.Info(ctx, key)
}

// Values is [Admin.Values].
func (m *Manager) Values(ctx context.Context, key string) (map[string]json.RawMessage, error) {
	return m.admin.Values(ctx, key)
}

// Revoke is [Admin.Revoke].
func (m *Manager) Revoke(ctx context.Context, key string) error { return m.admin.Revoke(ctx, key) }

// RevokeUser is [Admin.RevokeUser].
func (m *Manager) RevokeUser(ctx context.Context, user string, keepCurrent bool) (int, error) {
	return m.admin.RevokeUser(ctx, user, keepCurrent)
}

// Cleanup is [Admin.Cleanup].
func (m *Manager) Cleanup(ctx context.Context) (int, error) { return m.admin.Cleanup(ctx) }

// CleanupEvery is [Admin.CleanupEvery].
func (m *Manager) CleanupEvery(ctx context.Context, interval time.Duration) error {
	return m.admin.CleanupEvery(ctx, interval)
}
