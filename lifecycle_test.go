package kvsession_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kvsession/kvsession"
)

// serveWith runs fn as the handler of one request carrying cookie under
// h's manager. A panic in fn is recovered, as net/http's server would, and
// reported as panicked. It returns the response.
func (h *harness) serveWith(cookie string, ctx context.Context, fn func(w http.ResponseWriter, r *http.Request)) (rec *httptest.ResponseRecorder, panicked bool) {
	h.t.Helper()
	rec = newRecorder()
	req := newRequest("/", cookie)
	if ctx != nil {
		req = req.WithContext(ctx)
	}
	func() {
		defer func() { panicked = recover() != nil }()
		h.m.Handler(http.HandlerFunc(fn)).ServeHTTP(rec, req)
	}()
	return rec, panicked
}

// loggedIn returns the cookie header of a session bound to user, with a
// value "v" set.
func (h *harness) loggedIn(user string) string {
	h.t.Helper()
	c := h.client()
	h.mustDo(c, "/set?key=v&value=1", "set")
	h.mustDo(c, "/login?user="+user, "logged in")
	return "session=" + h.sessionCookie(c)
}

// live reports whether the session that cookie names still reads its value.
func (h *harness) live(cookie string) bool {
	h.t.Helper()
	r := h.raw("/get?key=v", cookie)
	if r.code != http.StatusOK {
		h.t.Fatalf("reading through %q: status %d", cookie, r.code)
	}
	return r.body == "1"
}

// Destroy deletes the session when it returns: a panic after it, a client
// that goes away, or a failed save later in the request cannot bring the
// old cookie back.
func TestDestroyIsDoneWhenItReturns(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	for _, tc := range []struct {
		name  string
		after func(t *testing.T, w http.ResponseWriter, r *http.Request, cancel context.CancelFunc)
	}{
		{"then panic", func(t *testing.T, w http.ResponseWriter, r *http.Request, cancel context.CancelFunc) {
			panic("handler bug")
		}},
		{"then the client goes away", func(t *testing.T, w http.ResponseWriter, r *http.Request, cancel context.CancelFunc) {
			cancel()
			io.WriteString(w, "bye")
		}},
		{"then a save that fails", func(t *testing.T, w http.ResponseWriter, r *http.Request, cancel context.CancelFunc) {
			h.store.setFaults(nil, errStoreDown, false)
			if err := kvsession.From(r).Set("new", "session"); err != nil {
				t.Errorf("Set after Destroy: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cookie := h.loggedIn("ada")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			h.serveWith(cookie, ctx, func(w http.ResponseWriter, r *http.Request) {
				s := kvsession.From(r)
				if _, err := s.Names(); err != nil {
					t.Fatal(err)
				}
				if err := s.Destroy(); err != nil {
					t.Fatalf("Destroy: %v", err)
				}
				tc.after(t, w, r, cancel)
			})
			h.store.setFaults(nil, nil, false)
			if h.live(cookie) {
				t.Error("the destroyed session's cookie still logs in")
			}
			if infos, err := h.m.UserSessions(t.Context(), "ada"); err != nil || len(infos) != 0 {
				t.Errorf("UserSessions after Destroy = %d, %v; want none", len(infos), err)
			}
		})
	}
	t.Run("cancelled before Destroy", func(t *testing.T) {
		// The client went away after the load: the delete still happens.
		cookie := h.loggedIn("bob")
		ctx, cancel := context.WithCancel(t.Context())
		h.serveWith(cookie, ctx, func(w http.ResponseWriter, r *http.Request) {
			s := kvsession.From(r)
			s.Names()
			cancel()
			if err := s.Destroy(); err != nil {
				t.Errorf("Destroy on a cancelled request = %v, want nil", err)
			}
		})
		if h.live(cookie) {
			t.Error("a Destroy on a cancelled request left the session live")
		}
	})
	t.Run("store error", func(t *testing.T) {
		// A failed delete returns its error and leaves the session usable.
		cookie := h.loggedIn("cy")
		h.store.failOn("Delete", errStoreDown)
		defer h.store.failOn("Delete", nil)
		rec, _ := h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
			if err := kvsession.From(r).Destroy(); !errors.Is(err, errStoreDown) {
				t.Errorf("Destroy with the store failing = %v, want its error", err)
			}
		})
		if len(rec.Header().Values("Set-Cookie")) != 0 {
			t.Error("a failed Destroy cleared the cookie")
		}
		h.store.failOn("Delete", nil)
		if !h.live(cookie) {
			t.Error("a failed Destroy ended the session")
		}
	})
}

// Regenerate moves the session when it returns: the old ID is dead and
// the new one stored and indexed, whatever happens next in the request.
func TestRegenerateIsDoneWhenItReturns(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	cookie := h.loggedIn("ada")
	oldKey, err := h.m.StoreKey(strings.TrimPrefix(cookie, "session="))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, panicked := h.serveWith(cookie, ctx, func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		s.Names()
		cancel() // the client goes away: the regenerate still completes
		if err := s.Regenerate(); err != nil {
			t.Fatalf("Regenerate: %v", err)
		}
		if _, err := h.m.Info(t.Context(), oldKey); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("old key after Regenerate returned: %v, want ErrNotFound", err)
		}
		infos, err := h.m.UserSessions(t.Context(), "ada")
		if err != nil || len(infos) != 1 || infos[0].Key == oldKey {
			t.Errorf("UserSessions after Regenerate = %+v, %v; want the new key alone", infos, err)
		}
		panic("handler bug")
	})
	if !panicked {
		t.Fatal("the handler did not panic")
	}
	if h.live(cookie) {
		t.Error("the old cookie works after Regenerate returned and the handler panicked")
	}
}

// A failed step of Regenerate returns its error and leaves the old session
// as it was: usable, indexed, its cookie unchanged, and no orphan copy.
func TestRegenerateFailureKeepsTheOldSession(t *testing.T) {
	for _, method := range []string{"AddUserKey", "CompareAndDelete"} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t, kvsession.Config{})
			cookie := h.loggedIn("ada")
			records := h.store.Len()
			h.store.failOn(method, errStoreDown)
			rec, _ := h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
				s := kvsession.From(r)
				if err := s.Set("more", "data"); err != nil {
					t.Fatal(err)
				}
				if err := s.Regenerate(); !errors.Is(err, errStoreDown) {
					t.Errorf("Regenerate with %s failing = %v, want its error", method, err)
				}
			})
			h.store.failOn(method, nil)
			if rec.Code != http.StatusOK {
				t.Errorf("status %d: the handler handled the error, the save of its other change should go on", rec.Code)
			}
			if got := h.store.Len(); got != records {
				t.Errorf("%d records after the failed Regenerate, want %d: the new copy must be removed", got, records)
			}
			if !h.live(cookie) {
				t.Error("the old session is gone after a failed Regenerate")
			}
			if infos, err := h.m.UserSessions(t.Context(), "ada"); err != nil || len(infos) != 1 {
				t.Errorf("UserSessions = %d, %v; want the old session", len(infos), err)
			}
		})
	}
}

// A change after the response's first byte returns ErrResponseStarted,
// emits EventLateChange, and is not made.
func TestChangeAfterResponseStarted(t *testing.T) {
	var events []kvsession.EventKind
	h := newHarness(t, kvsession.Config{OnEvent: func(_ context.Context, e kvsession.Event) { events = append(events, e.Kind) }})
	cookie := h.loggedIn("ada")
	changes := map[string]func(s *kvsession.Session) error{
		"Set":          func(s *kvsession.Session) error { return s.Set("late", "x") },
		"Delete":       func(s *kvsession.Session) error { return s.Delete("v") },
		"Clear":        func(s *kvsession.Session) error { return s.Clear() },
		"SetUser":      func(s *kvsession.Session) error { return s.SetUser("eve") },
		"SetPermanent": func(s *kvsession.Session) error { return s.SetPermanent(true) },
		"Regenerate":   func(s *kvsession.Session) error { return s.Regenerate() },
	}
	for name, change := range changes {
		events = nil
		h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
			s := kvsession.From(r)
			io.WriteString(w, "body first")
			if err := change(s); !errors.Is(err, kvsession.ErrResponseStarted) {
				t.Errorf("%s after the first byte = %v, want ErrResponseStarted", name, err)
			}
		})
		if !containsEvent(events, kvsession.EventLateChange) {
			t.Errorf("%s after the first byte: events %v, want EventLateChange", name, events)
		}
		if !h.live(cookie) {
			t.Fatalf("%s after the first byte changed the session", name)
		}
	}
	if got := h.raw("/get?key=late", cookie).body; got != "" {
		t.Errorf("a late Set was saved: %q", got)
	}
	// A late Destroy still deletes (a logout never fails open) but says
	// that the cookie could not be cleared.
	h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		io.WriteString(w, "body first")
		if err := s.Destroy(); !errors.Is(err, kvsession.ErrResponseStarted) {
			t.Errorf("Destroy after the first byte = %v, want ErrResponseStarted", err)
		}
	})
	if h.live(cookie) {
		t.Error("a late Destroy left the session live")
	}
}

// RevokeUser keeping the current session: the others end, and the current
// one goes on working, Regenerate included.
func TestRevokeUserKeepsCurrentSession(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	current, other := h.loggedIn("ada"), h.loggedIn("ada")
	h.serveWith(current, nil, func(w http.ResponseWriter, r *http.Request) {
		if n, err := h.m.RevokeUser(r.Context(), "ada", true); err != nil || n != 1 {
			t.Errorf("RevokeUser = %d, %v; want 1", n, err)
		}
	})
	if h.live(other) {
		t.Error("the other session survived RevokeUser")
	}
	rec, _ := h.serveWith(current, nil, func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).Regenerate(); err != nil {
			t.Errorf("Regenerate of the kept session: %v", err)
		}
	})
	ck := setCookieFor(response{cookies: rec.Result().Cookies()}, "session")
	if ck == nil || !h.live("session="+ck.Value) {
		t.Error("the kept session does not survive its next Regenerate")
	}
	// A new login after the revocation works.
	if !h.live(h.loggedIn("ada")) {
		t.Error("a login after RevokeUser does not work")
	}
}

// SetUser on a stored session without Regenerate binds it in the save:
// the session is listed, keeps its ID, and RevokeUser ends it.
func TestLoginWithoutRegenerate(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/set?key=v&value=1", "set")
	cookie := "session=" + h.sessionCookie(c)
	rec, _ := h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).SetUser("ada"); err != nil {
			t.Fatal(err)
		}
	})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	infos, err := h.m.UserSessions(t.Context(), "ada")
	if err != nil || len(infos) != 1 || infos[0].User != "ada" {
		t.Fatalf("UserSessions = %+v, %v; want the session", infos, err)
	}
	if !h.live(cookie) {
		t.Fatal("the session lost its data when bound")
	}
	if n, err := h.m.RevokeUser(t.Context(), "ada", false); err != nil || n != 1 {
		t.Errorf("RevokeUser = %d, %v; want 1", n, err)
	}
	if h.live(cookie) {
		t.Error("the bound session survived RevokeUser")
	}
}

// Values set after Regenerate in the same request are saved under the new
// ID, whose version the save reads first.
func TestSetAfterRegenerate(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	cookie := h.loggedIn("ada")
	rec, _ := h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if err := s.Regenerate(); err != nil {
			t.Fatal(err)
		}
		if err := s.Set("after", "regenerate"); err != nil {
			t.Fatal(err)
		}
	})
	ck := setCookieFor(response{cookies: rec.Result().Cookies()}, "session")
	if ck == nil {
		t.Fatal("no new cookie")
	}
	if got := h.raw("/get?key=after", "session="+ck.Value).body; got != "regenerate" {
		t.Errorf("a value set after Regenerate reads %q under the new ID", got)
	}
	if h.live(cookie) {
		t.Error("the old ID lives")
	}
}

// Cleanup removes expired sessions through the store's ExpiredDeleter;
// CleanupEvery runs it until its context ends; a store without the
// capability gives ErrUnsupported.
func TestCleanup(t *testing.T) {
	h := newHarness(t, kvsession.Config{Lifetime: time.Hour})
	for range 3 {
		h.mustDo(h.client(), "/set?key=v&value=1", "set")
	}
	h.clock.Advance(2 * time.Hour)
	if n, err := h.m.Cleanup(t.Context()); err != nil || n != 3 {
		t.Errorf("Cleanup = %d, %v; want 3", n, err)
	}
	if h.store.Len() != 0 {
		t.Errorf("%d records left after Cleanup", h.store.Len())
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- h.m.CleanupEvery(ctx, time.Minute) }()
		time.Sleep(3 * time.Minute) // three ticks of the bubble's clock
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("CleanupEvery = %v, want context.Canceled", err)
		}
	})
	m, err := kvsession.New(noSweep{h.store}, kvsession.Config{Secrets: [][]byte{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Cleanup(t.Context()); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Cleanup without ExpiredDeleter = %v, want ErrUnsupported", err)
	}
	if err := m.CleanupEvery(t.Context(), time.Hour); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CleanupEvery without ExpiredDeleter = %v, want ErrUnsupported", err)
	}
}

// noSweep hides every optional capability of a store.
type noSweep struct{ kvsession.Store }

// The writer saves before the first byte whichever way the handler writes
// (WriteHeader, ReadFrom), lets 1xx headers through without a save, and
// unwraps for http.ResponseController.
func TestResponseWriterPaths(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	for name, write := range map[string]func(w http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) },
		"ReadFrom":    func(w http.ResponseWriter) { w.(io.ReaderFrom).ReadFrom(strings.NewReader("body")) },
		"Flush":       func(w http.ResponseWriter) { http.NewResponseController(w).Flush() },
		"103 first": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "body")
		},
	} {
		rec, _ := h.serveWith("", nil, func(w http.ResponseWriter, r *http.Request) {
			if err := kvsession.From(r).Set("k", "v"); err != nil {
				t.Fatal(err)
			}
			if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
				t.Errorf("%s: the writer has no Unwrap", name)
			}
			write(w)
			if err := kvsession.From(r).Set("late", "x"); !errors.Is(err, kvsession.ErrResponseStarted) {
				t.Errorf("%s: Set after the write = %v, want ErrResponseStarted", name, err)
			}
		})
		// The live header map: a recorder snapshots its Result at the
		// first WriteHeader, a 1xx included.
		var ck *http.Cookie
		for _, line := range rec.Header().Values("Set-Cookie") {
			if c, err := http.ParseSetCookie(line); err == nil && c.Name == "session" {
				ck = c
			}
		}
		if ck == nil || h.raw("/get?key=k", "session="+ck.Value).body != "v" {
			t.Errorf("%s: the session was not saved before the first byte", name)
		}
	}
}

// The accessors on a fresh, a stored and a nil session.
func TestSessionAccessors(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	cookie := h.loggedIn("ada")
	var nilSession *kvsession.Session
	if nilSession.LogID() != "" || nilSession.IsModified() || nilSession.Degraded() {
		t.Error("a nil session reports state")
	}
	if err := nilSession.Destroy(); !errors.Is(err, kvsession.ErrNoSession) {
		t.Errorf("Destroy on a nil session = %v", err)
	}
	h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if isNew, err := s.IsNew(); err != nil || isNew {
			t.Errorf("IsNew of a stored session = %v, %v", isNew, err)
		}
		if p, err := s.Permanent(); err != nil || p {
			t.Errorf("Permanent = %v, %v; want false", p, err)
		}
		if u, err := s.User(); err != nil || u != "ada" {
			t.Errorf("User = %q, %v", u, err)
		}
		if has, err := s.Has("v"); err != nil || !has {
			t.Errorf("Has(v) = %v, %v", has, err)
		}
		if id := s.LogID(); len(id) != 12 || strings.Contains(cookie, id) {
			t.Errorf("LogID = %q: want 12 characters that are not part of the cookie", id)
		}
	})
	h.serveWith("", nil, func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if isNew, err := s.IsNew(); err != nil || !isNew {
			t.Errorf("IsNew of a fresh session = %v, %v", isNew, err)
		}
		if s.LogID() != "" {
			t.Error("a fresh session has a LogID")
		}
	})
}

// RevokeUser leaves a revocation mark in the store; tools walking the
// store's keys tell it from a session with IsSessionKey.
func TestIsSessionKey(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	cookie := h.loggedIn("ada")
	key, err := h.m.StoreKey(strings.TrimPrefix(cookie, "session="))
	if err != nil {
		t.Fatal(err)
	}
	if !h.m.IsSessionKey(key) {
		t.Errorf("IsSessionKey(%q) = false for a session's key", key)
	}
	if _, err := h.m.RevokeUser(t.Context(), "ada", false); err != nil {
		t.Fatal(err)
	}
	var others []string
	h.store.Keys(t.Context(), "", func(k string) error {
		if !h.m.IsSessionKey(k) {
			others = append(others, k)
		}
		return nil
	})
	if len(others) != 1 || !strings.Contains(others[0], "!r:") {
		t.Errorf("keys that are not sessions after RevokeUser: %q, want the one revocation mark", others)
	}
	for _, k := range []string{"", "s:", key[:len(key)-1], "x" + key, key + "A", "!r:" + strings.Repeat("A", 40)} {
		if h.m.IsSessionKey(k) {
			t.Errorf("IsSessionKey(%q) = true", k)
		}
	}
}
