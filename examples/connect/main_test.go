package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/middlewaretest"
	"github.com/kvsession/kvsession/memstore"
)

// env is the service on loopback and connect clients of it.
type env struct {
	t   *testing.T
	m   *kvsession.Manager
	kv  *middlewaretest.HookStore
	srv *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kv := &middlewaretest.HookStore{Store: memstore.New(nil)}
	m, err := kvsession.New(kv, kvsession.Config{
		Secrets:        [][]byte{[]byte(rand.Text() + rand.Text())},
		Header:         tokenHeader,
		InsecureCookie: true,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(routes(m))
	t.Cleanup(srv.Close)
	return &env{t: t, m: m, kv: kv, srv: srv}
}

// add calls Add with token in the token header ("" to start a session).
func (e *env) add(token, counter string, delta int) (*connect.Response[Counters], error) {
	c := connect.NewClient[AddRequest, Counters](e.srv.Client(), e.srv.URL+AddProcedure, connect.WithCodec(jsonCodec{}))
	req := connect.NewRequest(&AddRequest{Counter: counter, Delta: delta})
	req.Header().Set(tokenHeader, token)
	return c.CallUnary(context.Background(), req)
}

// get calls Get with token in the token header.
func (e *env) get(token string) (map[string]int, error) {
	c := connect.NewClient[GetRequest, Counters](e.srv.Client(), e.srv.URL+GetProcedure, connect.WithCodec(jsonCodec{}))
	req := connect.NewRequest(&GetRequest{})
	req.Header().Set(tokenHeader, token)
	resp, err := c.CallUnary(context.Background(), req)
	if err != nil {
		return nil, err
	}
	return resp.Msg.Values, nil
}

// start creates a session with counter "a" at 1 and returns its token.
func (e *env) start() string {
	e.t.Helper()
	resp, err := e.add("", "a", 1)
	if err != nil {
		e.t.Fatal(err)
	}
	token := resp.Header().Get(tokenHeader)
	if token == "" {
		e.t.Fatal("a call that created a session returned no token")
	}
	return token
}

func wantCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Errorf("%s: %v, want code %v", what, err, want)
	}
}

// TestCreateThenRead: a call without a token creates a session and returns
// its token; a second call with it sees the value; Get without a session
// is refused.
func TestCreateThenRead(t *testing.T) {
	e := newEnv(t)
	token := e.start()
	if _, err := e.add(token, "a", 2); err != nil {
		t.Fatal(err)
	}
	got, err := e.get(token)
	if err != nil || !maps.Equal(got, map[string]int{"a": 3}) {
		t.Fatalf("Get = %v, %v; want a: 3", got, err)
	}
	_, err = e.get("")
	wantCode(t, "Get without a session", err, connect.CodeUnauthenticated)
	_, err = e.add(token, "", 1)
	wantCode(t, "Add of an unnamed counter", err, connect.CodeInvalidArgument)
}

// TestCookieClient: a client that keeps cookies (a browser) and sends no
// token header gets the session in the cookie.
func TestCookieClient(t *testing.T) {
	e := newEnv(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar}
	add := connect.NewClient[AddRequest, Counters](hc, e.srv.URL+AddProcedure, connect.WithCodec(jsonCodec{}))
	for i := range 2 {
		resp, err := add.CallUnary(context.Background(), connect.NewRequest(&AddRequest{Counter: "a", Delta: 1}))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header().Get(tokenHeader) != "" {
			t.Error("a cookie client got the token in a header")
		}
		if got := resp.Msg.Values["a"]; got != i+1 {
			t.Fatalf("call %d: a = %d, want %d", i, got, i+1)
		}
	}
}

// TestConcurrentCallsMerge: concurrent calls that change different
// counters of one session all land, including a call that saves inside
// another's load-to-write window.
func TestConcurrentCallsMerge(t *testing.T) {
	e := newEnv(t)
	token := e.start()
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := e.add(token, fmt.Sprintf("c%02d", i), i); err != nil {
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	want := map[string]int{"a": 1}
	for i := range n {
		want[fmt.Sprintf("c%02d", i)] = i
	}
	if got, err := e.get(token); err != nil || !maps.Equal(got, want) {
		t.Fatalf("after %d concurrent calls: %v, %v; want %v", n, got, err, want)
	}

	e.kv.Arm(func() {
		if _, err := e.add(token, "inside", 1); err != nil {
			t.Error(err)
		}
	})
	if _, err := e.add(token, "outside", 1); err != nil {
		t.Fatal(err)
	}
	if !e.kv.Fired() {
		t.Fatal("the call's save made no CompareAndSwap: the test did not race")
	}
	got, err := e.get(token)
	if err != nil || got["inside"] != 1 || got["outside"] != 1 {
		t.Fatalf("after a call inside another's save: %v, %v; want both", got, err)
	}
}

// TestRevokedToken: a revoked session's token gets CodeUnauthenticated, as
// does a forged one; a revocation while a call is saving drops the call's
// change, answers CodeUnauthenticated, and does not bring the session back.
func TestRevokedToken(t *testing.T) {
	e := newEnv(t)
	revoke := func(token string) {
		key, err := e.m.StoreKey(token)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.m.Admin().Revoke(context.Background(), key); err != nil {
			t.Error(err)
		}
	}
	token := e.start()
	revoke(token)
	_, err := e.add(token, "a", 1)
	wantCode(t, "Add with a revoked token", err, connect.CodeUnauthenticated)
	_, err = e.get(token)
	wantCode(t, "Get with a revoked token", err, connect.CodeUnauthenticated)
	forged := []byte(token)
	if i := len(forged) / 2; forged[i] == 'A' { // one character changed, still base64url
		forged[i] = 'B'
	} else {
		forged[i] = 'A'
	}
	_, err = e.get(string(forged))
	wantCode(t, "Get with a forged token", err, connect.CodeUnauthenticated)

	token = e.start()
	e.kv.Arm(func() { revoke(token) })
	_, err = e.add(token, "a", 1)
	if !e.kv.Fired() {
		t.Fatal("the call's save made no CompareAndSwap: the test did not race")
	}
	wantCode(t, "Add revoked while saving", err, connect.CodeUnauthenticated)
	if isNew, err := e.m.Open(context.Background(), token).IsNew(); err != nil || !isNew {
		t.Fatalf("the revoked token opens a stored session (IsNew %v, %v): brought back", isNew, err)
	}
}
