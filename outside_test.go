package kvsession_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kvsession/kvsession"
)

// A session opened from a cookie value outside the middleware (a WebSocket
// handler, a job) reads and changes the browser's session with the same
// guarantees, and Commit returns the token that names it now.
func TestOpenAndCommit(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	cookie := h.loggedIn("ada")
	token := strings.TrimPrefix(cookie, "session=")
	ctx := context.Background()

	s := h.m.Open(ctx, token)
	if v, err := kvsession.Get[string](s, "v"); err != nil || v != "1" {
		t.Fatalf("Get through Open = %q, %v", v, err)
	}
	if err := s.Set("from", "websocket"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Commit()
	if err != nil || got != token {
		t.Fatalf("Commit = %q, %v; want the unchanged token", got, err)
	}
	if r := h.raw("/get?key=from", cookie); r.body != "websocket" {
		t.Errorf("the browser reads %q, want the change made outside the middleware", r.body)
	}
	if err := s.Set("late", "x"); !errors.Is(err, kvsession.ErrResponseStarted) {
		t.Errorf("Set after Commit = %v, want ErrResponseStarted", err)
	}

	// Regenerate gives a new token; the old one is dead at once.
	s = h.m.Open(ctx, token)
	if err := s.Regenerate(); err != nil {
		t.Fatal(err)
	}
	next, err := s.Commit()
	if err != nil || next == "" || next == token {
		t.Fatalf("Commit after Regenerate = %q, %v; want a new token", next, err)
	}
	if h.live(cookie) || !h.live("session="+next) {
		t.Error("after Regenerate outside the middleware, the old token lives or the new one does not")
	}

	// RevokeUser ends it; the revoked token opens an empty session.
	if _, err := h.m.RevokeUser(ctx, "ada", false); err != nil {
		t.Fatal(err)
	}
	s = h.m.Open(ctx, next)
	if isNew, err := s.IsNew(); err != nil || !isNew {
		t.Errorf("a revoked token opens IsNew = %v, %v", isNew, err)
	}
	if c, _ := s.NewCause(); c != kvsession.CauseEnded {
		t.Errorf("a revoked token: cause %v", c)
	}

	// No token: a new session, stored at Commit, whose token works in HTTP.
	s = h.m.Open(ctx, "")
	s.Set("job", "done")
	fresh, err := s.Commit()
	if err != nil || fresh == "" {
		t.Fatalf("Commit of a new session = %q, %v", fresh, err)
	}
	if r := h.raw("/get?key=job", "session="+fresh); r.body != "done" {
		t.Errorf("the new session's token reads %q", r.body)
	}
	s = h.m.Open(ctx, fresh)
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.Commit(); err != nil || tok != "" {
		t.Errorf("Commit after Destroy = %q, %v; want no token", tok, err)
	}
	var nilSession *kvsession.Session
	if _, err := nilSession.Commit(); !errors.Is(err, kvsession.ErrNoSession) {
		t.Errorf("Commit of a nil session = %v", err)
	}
}

// A save that meets a revocation made while the handler ran is dropped,
// outside the middleware too: Commit returns no token, Serve returns nil
// and sends no cookie, and either way the session then reports IsNew, so
// a WebSocket or RPC handler can tell that its session ended.
func TestOutsideSaveAfterRevocationIsDropped(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	ctx := context.Background()
	revokeWhileOpen := func(s *kvsession.Session) {
		t.Helper()
		if _, err := kvsession.Get[string](s, "v"); err != nil {
			t.Fatal(err) // loaded before the revocation
		}
		if _, err := h.m.RevokeUser(ctx, "ada", false); err != nil {
			t.Fatal(err)
		}
		if err := s.Set("after", "revoke"); err != nil {
			t.Fatal(err)
		}
	}

	token := strings.TrimPrefix(h.loggedIn("ada"), "session=")
	s := h.m.Open(ctx, token)
	revokeWhileOpen(s)
	if got, err := s.Commit(); err != nil || got != "" {
		t.Errorf("Commit after a concurrent RevokeUser = %q, %v; want no token and no error", got, err)
	}
	if isNew, err := s.IsNew(); err != nil || !isNew {
		t.Errorf("after a dropped Commit, IsNew = %v, %v; want true", isNew, err)
	}

	cookie := h.loggedIn("ada")
	req := map[string][]string{"Cookie": {cookie}}
	resp := map[string][]string{}
	var served *kvsession.Session
	err := h.m.Serve(ctx, req, "", resp, func(s *kvsession.Session) {
		served = s
		revokeWhileOpen(s)
	})
	if err != nil {
		t.Fatalf("Serve with a save dropped after a concurrent RevokeUser = %v, want nil", err)
	}
	if sc := resp["Set-Cookie"]; len(sc) > 0 && !strings.Contains(sc[0], "Max-Age=0") {
		t.Errorf("Serve sent Set-Cookie %q for a session that ended", sc)
	}
	if isNew, err := served.IsNew(); err != nil || !isNew {
		t.Errorf("after Serve dropped the save, IsNew = %v, %v; want true", isNew, err)
	}
	if h.live(cookie) {
		t.Error("the revoked session came back")
	}
}
