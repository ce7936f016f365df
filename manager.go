package kvsession

import (
	"crypto/sha256"
	"strings"

	"github.com/kvsession/kvsession/internal/nonblocking"
)

// Manager loads and saves sessions for HTTP handlers. Create one with New,
// wrap handlers with Handler, and reach the session in a handler with
// FromContext. Its other methods operate on stored sessions by store key,
// for "list my devices", "log out everywhere" and tools. A Manager is safe
// for concurrent use.
//
// Inside the package, calls go one way: Manager → Session → core (the
// store calls, cookies, events) → Store.
type Manager struct {
	c *core
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
	return &Manager{c: &core{
		cfg:       cfg,
		store:     store,
		unbounded: nonblocking.Is(store) || cfg.StoreTimeout == NoStoreTimeout,
		signer:    newSigner(cfg.CookieName, cfg.IDBits/8, cfg.Keys),
		cookieFmt: newCookieFormat(cfg),
	}}, nil
}

// CookieName returns the name of the session cookie, Config.CookieName or
// its default.
func (m *Manager) CookieName() string { return m.c.cfg.CookieName }

// Key returns the store key of the session that a cookie value (or header
// token) names, for tools that inspect or revoke a session given its
// cookie. It returns ErrInvalidCookie if the value does not verify. It
// does not check that the session exists.
func (m *Manager) Key(cookieValue string) (string, error) {
	id, _ := m.c.signer.verify(nil, cookieValue)
	if id == nil {
		return "", ErrInvalidCookie
	}
	return storageKey(m.c.cfg.KeyPrefix, id), nil
}

// IsSessionKey reports whether key, a store key under Config.KeyPrefix, is
// a session's, rather than one of the manager's other records (the users'
// revocation marks), for tools that walk a store's keys.
func (m *Manager) IsSessionKey(key string) bool {
	rest, ok := strings.CutPrefix(key, m.c.cfg.KeyPrefix)
	if !ok || len(rest) != b64.EncodedLen(sha256.Size) {
		return false
	}
	_, err := b64.DecodeString(rest)
	return err == nil
}
