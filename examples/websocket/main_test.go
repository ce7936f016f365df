package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/middlewaretest"
	"github.com/kvsession/kvsession/memstore"
)

// env is the example's server on loopback and a browser with a cookie jar.
type env struct {
	t      *testing.T
	m      *kvsession.Manager
	kv     *middlewaretest.HookStore
	srv    *httptest.Server
	client *http.Client
}

func newEnv(t *testing.T, recheck time.Duration) *env {
	t.Helper()
	kv := &middlewaretest.HookStore{Store: memstore.New(nil)}
	m, err := kvsession.New(kv, kvsession.Config{
		Secrets:        [][]byte{[]byte(rand.Text() + rand.Text())},
		InsecureCookie: true,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&app{m: m, recheck: recheck}).routes())
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, m: m, kv: kv, srv: srv, client: &http.Client{Jar: jar}}
}

// post sends a form POST as the browser and fails the test unless it
// answers 200 (after redirects).
func (e *env) post(path string, form url.Values) {
	e.t.Helper()
	resp, err := e.client.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Errorf("POST %s: %s", path, resp.Status)
	}
}

// state reads the session's state over HTTP as the browser.
func (e *env) state() state {
	e.t.Helper()
	resp, err := e.client.Get(e.srv.URL + "/state")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st state
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// token returns the browser's session cookie value.
func (e *env) token() string {
	e.t.Helper()
	u, _ := url.Parse(e.srv.URL)
	for _, c := range e.client.Jar.Cookies(u) {
		if c.Name == e.m.CookieName() {
			return c.Value
		}
	}
	e.t.Fatal("the browser holds no session cookie")
	return ""
}

// login logs the browser in as user and opens a socket with its cookie.
func (e *env) login(user string) *websocket.Conn {
	e.t.Helper()
	e.post("/login", url.Values{"user": {user}})
	conn, _, err := websocket.Dial(e.t.Context(), "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws",
		&websocket.DialOptions{HTTPClient: e.client})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// send sends text over the socket and returns the reply.
func send(t *testing.T, conn *websocket.Conn, text string) (state, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := wsjson.Write(ctx, conn, text); err != nil {
		return state{}, err
	}
	var st state
	err := wsjson.Read(ctx, conn, &st)
	return st, err
}

// wantEnded fails the test unless the socket was closed with 1008 and
// "session ended", waiting at most 10 seconds.
func wantEnded(t *testing.T, conn *websocket.Conn, err error) {
	t.Helper()
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, _, err = conn.Read(ctx)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "session ended" {
		t.Fatalf("the socket ended with %v, want close 1008 \"session ended\"", err)
	}
}

// TestMessagesMergeWithHTTP: the socket's changes and those of HTTP
// requests running at the same time all land, including a request that
// saves while a message's save is between its load and its write.
func TestMessagesMergeWithHTTP(t *testing.T) {
	e := newEnv(t, time.Hour)
	conn := e.login("ada")
	const n = 20
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if _, err := send(t, conn, "m"); err != nil {
				t.Errorf("message %d: %v", i, err)
				return
			}
		}
	})
	wg.Go(func() {
		for range n {
			e.post("/visit", nil)
		}
	})
	wg.Wait()
	if st := e.state(); st.Messages != n || st.Visits != n || st.User != "ada" {
		t.Fatalf("after %d messages and %d visits at once: %+v", n, n, st)
	}

	e.kv.Arm(func() { e.post("/visit", nil) })
	st, err := send(t, conn, "during a visit")
	if err != nil {
		t.Fatal(err)
	}
	if !e.kv.Fired() {
		t.Fatal("the message's save made no CompareAndSwap: the test did not race")
	}
	if st.Messages != n+1 {
		t.Errorf("reply %+v, want %d messages", st, n+1)
	}
	if st := e.state(); st.Messages != n+1 || st.Visits != n+1 || st.Last != "during a visit" {
		t.Fatalf("after a visit inside a message's save: %+v, want both counted", st)
	}
}

// TestRevokeEndsTheSocket: after Admin().Revoke the next message ends the
// socket; after RevokeUser an idle socket ends within the recheck; a
// RevokeUser while a message is being saved ends the socket and the
// message's Commit does not bring the session back.
func TestRevokeEndsTheSocket(t *testing.T) {
	t.Run("Revoke, then a message", func(t *testing.T) {
		e := newEnv(t, time.Hour)
		conn := e.login("ada")
		if _, err := send(t, conn, "before"); err != nil {
			t.Fatal(err)
		}
		key, err := e.m.StoreKey(e.token())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.m.Admin().Revoke(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		_, err = send(t, conn, "after")
		wantEnded(t, conn, err)
	})
	t.Run("RevokeUser, idle socket", func(t *testing.T) {
		e := newEnv(t, 10*time.Millisecond)
		conn := e.login("ada")
		if _, err := e.m.RevokeUser(t.Context(), "ada", false); err != nil {
			t.Fatal(err)
		}
		wantEnded(t, conn, nil)
	})
	t.Run("RevokeUser during a message's save", func(t *testing.T) {
		e := newEnv(t, time.Hour)
		conn := e.login("ada")
		token := e.token()
		e.kv.Arm(func() {
			if _, err := e.m.RevokeUser(context.Background(), "ada", false); err != nil {
				t.Error(err)
			}
		})
		_, err := send(t, conn, "during the revocation")
		if !e.kv.Fired() {
			t.Fatal("the message's save made no CompareAndSwap: the test did not race")
		}
		wantEnded(t, conn, err)
		wantGone(t, e, token)
	})
}

// wantGone fails the test unless token names no session any more.
func wantGone(t *testing.T, e *env, token string) {
	t.Helper()
	s := e.m.Open(t.Context(), token)
	if isNew, err := s.IsNew(); err != nil || !isNew {
		t.Fatalf("the old token opens a stored session (IsNew %v, %v): brought back", isNew, err)
	}
	if c, _ := s.NewCause(); c != kvsession.CauseEnded {
		t.Errorf("the old token's session is new because %v, want ended", c)
	}
}

// TestDestroyIsNotResurrected: a logout over HTTP while a message is being
// saved drops the message's change and ends the socket; a message after a
// logout ends it too. The session never comes back.
func TestDestroyIsNotResurrected(t *testing.T) {
	t.Run("logout during a message's save", func(t *testing.T) {
		e := newEnv(t, time.Hour)
		conn := e.login("ada")
		token := e.token()
		e.kv.Arm(func() { e.post("/logout", nil) })
		_, err := send(t, conn, "during the logout")
		if !e.kv.Fired() {
			t.Fatal("the message's save made no CompareAndSwap: the test did not race")
		}
		wantEnded(t, conn, err)
		wantGone(t, e, token)
		if st := e.state(); st != (state{}) {
			t.Errorf("after the logout the browser's session holds %+v", st)
		}
	})
	t.Run("a message after logout", func(t *testing.T) {
		e := newEnv(t, time.Hour)
		conn := e.login("ada")
		token := e.token()
		e.post("/logout", nil)
		_, err := send(t, conn, "after the logout")
		wantEnded(t, conn, err)
		wantGone(t, e, token)
	})
}

// TestUpgradeNeedsASession: a request without a logged-in session gets
// 401 and no socket.
func TestUpgradeNeedsASession(t *testing.T) {
	e := newEnv(t, time.Hour)
	_, resp, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws",
		&websocket.DialOptions{HTTPClient: e.client})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Dial without a session: %v, %v; want 401", resp, err)
	}
}
