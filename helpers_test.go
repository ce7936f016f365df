package kvsession_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/sharedread"
	"github.com/kvsession/kvsession/memstore"
)

// testKey is a fixed signing key for tests.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// clock is a controllable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// faultStore wraps a memstore, counts calls, and injects faults.
type faultStore struct {
	*memstore.Store
	gets, sets, cas, deletes, touches atomic.Int64

	mu      sync.Mutex
	getErr  error
	saveErr error
	opErr   map[string]error // the named method fails with it
	hang    bool             // block every call until its context ends
	shared  []sharedBytes    // what the shared read handed out
}

// sharedBytes is a record's bytes that the shared read handed to the
// manager, and a copy of them as they were then.
type sharedBytes struct{ given, was []byte }

func init() {
	// The harness's store offers the manager a shared read, as memstore
	// does, so that every test of the harness loads sessions through it;
	// checkShared then checks that the manager wrote to none of it.
	sharedread.Register(func(store any) sharedread.Get {
		if f, ok := store.(*faultStore); ok {
			return f.getShared
		}
		return nil
	})
}

// getShared is the shared read: Get, with its counts and faults, keeping
// the bytes it hands out.
func (f *faultStore) getShared(ctx context.Context, key string) ([]byte, time.Time, uint64, error) {
	e, err := f.Get(ctx, key)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	f.mu.Lock()
	f.shared = append(f.shared, sharedBytes{e.Value, bytes.Clone(e.Value)})
	f.mu.Unlock()
	return e.Value, e.ExpiresAt, e.Version, nil
}

// checkShared fails t if the manager wrote to bytes the shared read gave it.
func (f *faultStore) checkShared(t *testing.T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.shared {
		if !bytes.Equal(b.given, b.was) {
			t.Errorf("the manager wrote to a record's bytes from the shared read: %q, was %q", b.given, b.was)
		}
	}
}

func newFaultStore(now func() time.Time) *faultStore {
	return &faultStore{Store: memstore.New(&memstore.Options{Now: now})}
}

func (f *faultStore) fault(ctx context.Context, save bool) error {
	f.mu.Lock()
	hang, getErr, saveErr := f.hang, f.getErr, f.saveErr
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if save {
		return saveErr
	}
	return getErr
}

func (f *faultStore) setFaults(getErr, saveErr error, hang bool) {
	f.mu.Lock()
	f.getErr, f.saveErr, f.hang = getErr, saveErr, hang
	f.mu.Unlock()
}

func (f *faultStore) calls() int64 {
	return f.gets.Load() + f.sets.Load() + f.cas.Load() + f.deletes.Load() + f.touches.Load()
}

func (f *faultStore) writes() int64 {
	return f.sets.Load() + f.cas.Load() + f.deletes.Load() + f.touches.Load()
}

func (f *faultStore) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	f.gets.Add(1)
	if err := f.fault(ctx, false); err != nil {
		return kvsession.Entry{}, err
	}
	return f.Store.Get(ctx, key)
}

func (f *faultStore) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	f.sets.Add(1)
	if err := f.fault(ctx, true); err != nil {
		return err
	}
	return f.Store.Set(ctx, key, v, exp)
}

func (f *faultStore) CompareAndSwap(ctx context.Context, key string, v []byte, exp time.Time, old uint64) error {
	f.cas.Add(1)
	if err := f.fault(ctx, true); err != nil {
		return err
	}
	return f.Store.CompareAndSwap(ctx, key, v, exp, old)
}

func (f *faultStore) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	f.deletes.Add(1)
	if err := f.opFault("CompareAndDelete"); err != nil {
		return err
	}
	if err := f.fault(ctx, true); err != nil {
		return err
	}
	return f.Store.CompareAndDelete(ctx, key, old)
}

func (f *faultStore) Delete(ctx context.Context, key string) error {
	f.deletes.Add(1)
	if err := f.opFault("Delete"); err != nil {
		return err
	}
	if err := f.fault(ctx, true); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *faultStore) Touch(ctx context.Context, key string, exp time.Time) error {
	f.touches.Add(1)
	if err := f.fault(ctx, true); err != nil {
		return err
	}
	return f.Store.Touch(ctx, key, exp)
}

// failOn makes the named method (CompareAndDelete, say) fail with err;
// nil restores it.
func (f *faultStore) failOn(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opErr == nil {
		f.opErr = map[string]error{}
	}
	f.opErr[method] = err
}

func (f *faultStore) opFault(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opErr[method]
}

func (f *faultStore) AddUserKey(ctx context.Context, user, key string, exp time.Time) error {
	if err := f.opFault("AddUserKey"); err != nil {
		return err
	}
	if err := f.fault(ctx, true); err != nil {
		return err
	}
	return f.Store.AddUserKey(ctx, user, key, exp)
}

var errStoreDown = errors.New("store down")

// app is the test application: a handler per session operation.
func app() http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		http.Error(w, "handler saw: "+err.Error(), http.StatusInternalServerError)
	}
	mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		v, err := kvsession.Get[any](kvsession.From(r), r.FormValue("key"))
		if err != nil && !errors.Is(err, kvsession.ErrNoValue) {
			fail(w, err)
			return
		}
		if v != nil {
			fmt.Fprint(w, v)
		}
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).Set(r.FormValue("key"), r.FormValue("value")); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "set")
	})
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		n, err := kvsession.Get[int](s, "count")
		if err != nil && !errors.Is(err, kvsession.ErrNoValue) {
			fail(w, err)
			return
		}
		if err := s.Set("count", n+1); err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, n+1)
	})
	mux.HandleFunc("/regenerate", func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).Regenerate(); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "regenerated")
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).Destroy(); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "destroyed")
	})
	mux.HandleFunc("/permanent", func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).SetPermanent(r.FormValue("on") == "1"); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if err := s.SetUser(r.FormValue("user")); err != nil {
			fail(w, err)
			return
		}
		if err := s.Regenerate(); err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, "logged in")
	})
	return mux
}

// harness is a TLS test server running app under a Manager.
type harness struct {
	t     *testing.T
	clock *clock
	store *faultStore
	m     *kvsession.Manager
	srv   *httptest.Server
}

func newHarness(t *testing.T, cfg kvsession.Config) *harness {
	t.Helper()
	h := &harness{t: t, clock: newClock()}
	h.store = newFaultStore(h.clock.Now)
	if cfg.Secrets == nil {
		cfg.Secrets = [][]byte{testKey}
	}
	if cfg.Now == nil {
		cfg.Now = h.clock.Now
	}
	if cfg.CookieName == "" {
		// Most tests write Cookie headers by hand: a short name keeps them
		// readable. TestDefaultCookieName covers the default.
		cfg.CookieName = "session"
	}
	m, err := kvsession.New(h.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	h.srv = httptest.NewTLSServer(m.Handler(app()))
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() { h.store.checkShared(t) })
	return h
}

// client returns a browser-like client with its own cookie jar.
func (h *harness) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	c := h.srv.Client()
	return &http.Client{Transport: c.Transport, Jar: jar}
}

type response struct {
	code    int
	body    string
	header  http.Header
	cookies []*http.Cookie
}

func (h *harness) do(c *http.Client, path string) response {
	h.t.Helper()
	resp, err := c.Get(h.srv.URL + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{resp.StatusCode, string(body), resp.Header, resp.Cookies()}
}

// mustDo requests path and fails the test unless it answers 200 with want
// (when want is not empty).
func (h *harness) mustDo(c *http.Client, path, want string) response {
	h.t.Helper()
	r := h.do(c, path)
	if r.code != http.StatusOK || (want != "" && r.body != want) {
		h.t.Fatalf("GET %s = %d %q, want 200 %q", path, r.code, r.body, want)
	}
	return r
}

// sessionCookie returns the client's session cookie value, or "".
func (h *harness) sessionCookie(c *http.Client) string {
	u, _ := url.Parse(h.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == h.m.CookieName() {
			return ck.Value
		}
	}
	return ""
}

// raw sends a request with exactly the given Cookie header, outside any jar.
func (h *harness) raw(path, cookieHeader string) response {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if cookieHeader != "" {
		req.Header.Set("Cookie", cookieHeader)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(body), resp.Header, resp.Cookies()}
}

func setCookieFor(r response, name string) *http.Cookie {
	for _, c := range r.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func hasSetCookie(r response) bool { return len(r.header.Values("Set-Cookie")) > 0 }

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func newRequest(target, cookie string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

func errorIs(err, target error) bool { return errors.Is(err, target) }

func containsEvent(events []kvsession.EventKind, k kvsession.EventKind) bool {
	for _, e := range events {
		if e == k {
			return true
		}
	}
	return false
}

var discardLogger = slog.New(slog.DiscardHandler)

// eventLog keeps the events a Manager reports: pass its record as
// Config.OnEvent.
type eventLog struct {
	mu     sync.Mutex
	events []kvsession.Event
}

func (l *eventLog) record(_ context.Context, e kvsession.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// take returns the events reported since the last call.
func (l *eventLog) take() []kvsession.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.events
	l.events = nil
	return got
}
