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
	return &Session{c: m.c, ctx: ctx, in: request{token: token}, ident: identity{tokenClient: true}}
}

// Commit saves the changes of a session from Manager.Open and returns the
// token that now names it: the same token if it did not change, a new one
// after a create or Regenerate, "" if the session was destroyed, never
// stored, or ended while it was open (a concurrent Destroy, Regenerate or
// revocation: the save is dropped, with no error, and IsNew then reports
// true). Give the client the new token (a WebSocket message, a response
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

// Serve runs fn with the session of a request served without net/http (a
// fasthttp server, say), under the rules of Manager.Handler. req holds the
// request's headers (Cookie, User-Agent and Config.Header are read) and
// remoteAddr its client address, for Config.RecordRemoteAddr ("" for
// none). The session is loaded on first use with ctx, and saved when fn
// returns: fn must send no part of the response before Serve returns.
//
// On success Serve adds to resp what Manager.Handler would send with the
// response: Set-Cookie with the Config's attributes, Cache-Control:
// no-store and Vary: Cookie when the cookie is set or cleared (and
// Config.Header for an API client), nothing for a session that was not
// used or did not change. A save dropped because the session ended while
// fn ran (a concurrent Destroy, Regenerate or revocation) is not an error:
// Serve returns nil, resp gets no cookie for it, and the session's IsNew
// then reports true, so a handler can tell its client that the session
// ended. On an error, which wraps ErrLoad or the store's
// error, resp is left as it was: answer with a 5xx and send no cookie.
func (m *Manager) Serve(ctx context.Context, req http.Header, remoteAddr string, resp http.Header, fn func(*Session)) error {
	s := &Session{c: m.c, ctx: ctx}
	m.c.readRequest(s, req, remoteAddr)
	fn(s)
	out := http.Header{}
	if err := s.commit(out); err != nil {
		return err
	}
	for k, v := range out {
		resp[k] = append(resp[k], v...)
	}
	return nil
}
