package kvsession

import (
	"context"
	"net/http"
)

// Sessions outside the middleware: a WebSocket handler after the upgrade,
// a connect-go or gRPC handler, a background job.

// Open returns the session that token names, for code that runs outside
// Manager.Handler. token is a session cookie's value (or a Config.Header
// token); an empty, invalid or unknown one gives a new, empty session, as a
// request without a valid cookie would. The session is loaded on first use
// with ctx, which must outlive the session's use; call Commit when done.
//
// Such a session keeps every guarantee of one under the middleware:
// concurrent changes merge, a save after a concurrent Destroy or
// Regenerate is dropped, RevokeUser ends it, and Regenerate and Destroy do
// their store work when called.
func (m *Manager) Open(ctx context.Context, token string) *Session {
	return &Session{c: m.c, ctx: ctx, in: request{token: token, tokenClient: true}}
}

// Commit saves the changes of a session from Manager.Open and returns the
// token that now names it: the same token if it did not change, a new one
// after a create or Regenerate, "" if the session was destroyed or never
// stored. Give the client the new token (a WebSocket message, a response
// header) in place of the old. After Commit the session is read-only, as a
// middleware session is after the response's first byte; a second Commit
// does nothing and returns the same token.
func (s *Session) Commit() (token string, err error) {
	if s == nil {
		return "", ErrNoSession
	}
	if err := s.commit(http.Header{}); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stored || s.ident.id == nil {
		return "", nil
	}
	return s.c.signer.sign(s.ident.id), nil
}
