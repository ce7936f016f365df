package kvsession_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

func TestStoreErrorOnLoadFailsClosed(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/count", "1")
	cookie := h.sessionCookie(c)

	h.store.setFaults(errStoreDown, nil, false)
	r := h.do(c, "/count")
	if r.code != http.StatusServiceUnavailable {
		t.Errorf("load with the store down = %d %q, want 503", r.code, r.body)
	}
	if hasSetCookie(r) {
		t.Errorf("failed load sent Set-Cookie %q", r.header.Values("Set-Cookie"))
	}
	if h.sessionCookie(c) != cookie {
		t.Errorf("the client's cookie changed during the outage")
	}

	// After the outage, the same session goes on: no forced logout.
	h.store.setFaults(nil, nil, false)
	h.mustDo(c, "/count", "2")
}

func TestLoadErrorReachesTheHandler(t *testing.T) {
	clk := newClock()
	store := newFaultStore(clk.Now)
	var handlerErr error
	var events []kvsession.EventKind
	m, _ := kvsession.New(store, kvsession.Config{
		Secrets: [][]byte{testKey}, Now: clk.Now,
		OnEvent: func(_ context.Context, e kvsession.Event) { events = append(events, e.Kind) },
	})
	rec := newRecorder()
	m.Handler(app()).ServeHTTP(rec, newRequest("/count", ""))
	cookie := rec.Result().Header.Get("Set-Cookie")

	store.setFaults(errStoreDown, nil, false)
	rec = newRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, handlerErr = kvsession.Get[int](kvsession.From(r), "count")
		w.Write([]byte("the handler's page"))
	})).ServeHTTP(rec, newRequest("/", cookie))
	if handlerErr == nil || !errorIs(handlerErr, kvsession.ErrLoad) || !errorIs(handlerErr, errStoreDown) {
		t.Errorf("handler saw %v, want an error wrapping ErrLoad and the store's error", handlerErr)
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() == "the handler's page\n" {
		t.Errorf("response = %d %q, want the 503 in place of the handler's page", rec.Code, rec.Body.String())
	}
	if !containsEvent(events, kvsession.EventStoreError) {
		t.Errorf("events = %v, want a store error", events)
	}
}

func TestStoreErrorOnSave(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.store.setFaults(nil, errStoreDown, false)
	r := h.do(c, "/count")
	if r.code != http.StatusServiceUnavailable || hasSetCookie(r) {
		t.Errorf("save with the store down: %d, Set-Cookie %v; want 503 and no cookie for an unpersisted ID", r.code, hasSetCookie(r))
	}
	h.store.setFaults(nil, nil, false)
	h.mustDo(c, "/count", "1")

	// An existing session whose save fails keeps its old data and cookie.
	cookie := h.sessionCookie(c)
	h.store.setFaults(nil, errStoreDown, false)
	if r := h.do(c, "/count"); r.code != http.StatusServiceUnavailable || hasSetCookie(r) {
		t.Errorf("update with the store down: %d, Set-Cookie %v", r.code, hasSetCookie(r))
	}
	h.store.setFaults(nil, nil, false)
	if h.sessionCookie(c) != cookie {
		t.Error("cookie changed after a failed save")
	}
	h.mustDo(c, "/count", "2")
}

func TestHungStoreIsBoundedByTimeout(t *testing.T) {
	h := newHarness(t, kvsession.Config{StoreTimeout: 50 * time.Millisecond})
	c := h.client()
	h.mustDo(c, "/count", "1")
	h.store.setFaults(nil, nil, true)
	// Without the timeout this request would hang until the test's deadline.
	if r := h.do(c, "/count"); r.code != http.StatusServiceUnavailable {
		t.Errorf("request on a hung store = %d, want 503", r.code)
	}
	h.store.setFaults(nil, nil, false)
	h.mustDo(c, "/count", "2")
}

func TestDegradeOnLoadError(t *testing.T) {
	h := newHarness(t, kvsession.Config{DegradeOnLoadError: true})
	c := h.client()
	h.mustDo(c, "/count", "1")
	cookie := h.sessionCookie(c)
	h.store.setFaults(errStoreDown, nil, false)
	r := h.mustDo(c, "/get?key=count", "") // an empty session, by explicit choice
	if hasSetCookie(r) || h.sessionCookie(c) != cookie {
		t.Error("a degraded read changed the cookie")
	}
	if r := h.do(c, "/count"); r.code != http.StatusInternalServerError || !strings.Contains(r.body, "cannot load session") {
		t.Errorf("a change to a degraded session: %d %q, want the handler to see ErrLoad", r.code, r.body)
	}
	h.store.setFaults(nil, nil, false)
	h.mustDo(c, "/count", "2")
}

// In a degraded session every change returns an error wrapping ErrLoad, so
// a handler cannot believe it logged a user in or out; Destroy also clears
// the cookie, and Degraded tells the handler where it stands.
func TestDegradedSessionRefusesEveryChange(t *testing.T) {
	h := newHarness(t, kvsession.Config{DegradeOnLoadError: true})
	c := h.client()
	h.mustDo(c, "/login?user=ada", "logged in")
	cookie := h.sessionCookie(c)
	h.store.setFaults(errStoreDown, nil, false)
	changes := map[string]func(s *kvsession.Session) error{
		"Set":          func(s *kvsession.Session) error { return s.Set("k", "v") },
		"Delete":       func(s *kvsession.Session) error { return s.Delete("k") },
		"Clear":        func(s *kvsession.Session) error { return s.Clear() },
		"SetUser":      func(s *kvsession.Session) error { return s.SetUser("eve") },
		"SetPermanent": func(s *kvsession.Session) error { return s.SetPermanent(true) },
		"Regenerate":   func(s *kvsession.Session) error { return s.Regenerate() },
		"Destroy":      func(s *kvsession.Session) error { return s.Destroy() },
	}
	for name, change := range changes {
		rec := newRecorder()
		h.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := kvsession.From(r)
			if !s.Degraded() {
				t.Errorf("%s: Degraded() = false during the outage", name)
			}
			if err := change(s); !errors.Is(err, kvsession.ErrLoad) {
				t.Errorf("%s on a degraded session = %v, want an error wrapping ErrLoad", name, err)
			}
		})).ServeHTTP(rec, newRequest("/", "session="+cookie))
		ck := setCookieFor(response{cookies: rec.Result().Cookies()}, "session")
		if name == "Destroy" {
			if ck == nil || ck.MaxAge >= 0 {
				t.Errorf("Destroy on a degraded session: cookie %v, want it cleared", ck)
			}
		} else if ck != nil {
			t.Errorf("%s on a degraded session sent a cookie", name)
		}
	}
	h.store.setFaults(nil, nil, false)
	if r := h.raw("/get?key=count", "session="+cookie); r.code != http.StatusOK {
		t.Errorf("after the outage: %d", r.code)
	}
	if infos, err := h.m.UserSessions(t.Context(), "ada"); err != nil || len(infos) != 1 || infos[0].User != "ada" {
		t.Errorf("after the outage the session is %v, %v; want it unchanged, bound to ada", infos, err)
	}
}

func TestErrorHandler(t *testing.T) {
	var got error
	h := newHarness(t, kvsession.Config{ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusInternalServerError)
	}})
	h.store.setFaults(nil, errStoreDown, false)
	if r := h.do(h.client(), "/count"); r.code != http.StatusInternalServerError {
		t.Errorf("status = %d, want the ErrorHandler's 500", r.code)
	}
	if !errorIs(got, errStoreDown) {
		t.Errorf("ErrorHandler got %v, want the store's error", got)
	}
}

// deadlineStore wraps a memstore and records whether its calls carry a
// deadline. It even claims to be non-blocking, as a wrapper written for an
// earlier version of the package might.
type deadlineStore struct {
	*memstore.Store
	mu        sync.Mutex
	deadlines []bool
}

func (d *deadlineStore) NonBlocking() bool { return true }

func (d *deadlineStore) note(ctx context.Context) {
	_, ok := ctx.Deadline()
	d.mu.Lock()
	d.deadlines = append(d.deadlines, ok)
	d.mu.Unlock()
}

func (d *deadlineStore) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	d.note(ctx)
	return d.Store.Get(ctx, key)
}

func (d *deadlineStore) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	d.note(ctx)
	return d.Store.Set(ctx, key, v, exp)
}

func (d *deadlineStore) CompareAndSwap(ctx context.Context, key string, v []byte, exp time.Time, old uint64) error {
	d.note(ctx)
	return d.Store.CompareAndSwap(ctx, key, v, exp, old)
}

// A wrapper around a memstore (metrics, tracing, a test double) gets the
// StoreTimeout deadline on every call: only *memstore.Store itself skips
// it, so no method a wrapper inherits or declares can turn the bound off.
// TestBegunStoreCallIsNotCutShort checks what Config.StoreTimeout
// promises about the request's context: a store call begun before the
// client went away completes, a load as much as a save, and the one after
// it, on the done context, fails.
func TestBegunStoreCallIsNotCutShort(t *testing.T) {
	for _, method := range []string{"Get", "CompareAndSwap"} {
		t.Run(method, func(t *testing.T) {
			st := &gatedStore{Store: memstore.New(nil), entered: make(chan struct{}), release: make(chan struct{})}
			m, err := kvsession.New(st, kvsession.Config{Secrets: [][]byte{testKey}})
			if err != nil {
				t.Fatal(err)
			}
			h := m.Handler(app())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/count", nil))
			cookie := strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0]

			st.gate(method)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := httptest.NewRequest("GET", "/count", nil).WithContext(ctx)
			req.Header.Set("Cookie", cookie)
			rec = httptest.NewRecorder()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(rec, req)
			}()
			<-st.entered // the call has begun
			cancel()     // the client goes away
			st.release <- struct{}{}
			<-done
			if st.err != nil {
				t.Fatalf("%s begun before the client went away ended with %v", method, st.err)
			}
			if method == "Get" { // the load completed; the save after it, on the done context, did not
				if rec.Code != http.StatusServiceUnavailable {
					t.Errorf("the save on a done context answered %d, want 503", rec.Code)
				}
			} else if got := rec.Body.String(); got != "2" {
				t.Errorf("body %q, want 2", got)
			}
			// What the store holds: the save that had begun landed.
			req = httptest.NewRequest("GET", "/count", nil)
			req.Header.Set("Cookie", cookie)
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			want := map[string]string{"Get": "2", "CompareAndSwap": "3"}[method]
			if got := rec.Body.String(); got != want {
				t.Errorf("next request: body %q, want %q", got, want)
			}
		})
	}
}

// gatedStore holds one call to the gated method, once it has begun, until
// the test releases it; the call then fails, as a store's would, if its
// context is done by then, and err keeps that error.
type gatedStore struct {
	*memstore.Store
	mu      sync.Mutex
	method  string // the gated method, until its call begins
	entered chan struct{}
	release chan struct{}
	err     error
}

func (g *gatedStore) gate(method string) {
	g.mu.Lock()
	g.method = method
	g.mu.Unlock()
}

func (g *gatedStore) wait(ctx context.Context, method string) error {
	g.mu.Lock()
	gated := g.method == method
	if gated {
		g.method = ""
	}
	g.mu.Unlock()
	if !gated {
		return nil
	}
	g.entered <- struct{}{}
	<-g.release
	g.err = ctx.Err()
	return g.err
}

func (g *gatedStore) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := g.wait(ctx, "Get"); err != nil {
		return kvsession.Entry{}, err
	}
	return g.Store.Get(ctx, key)
}

func (g *gatedStore) CompareAndSwap(ctx context.Context, key string, v []byte, exp time.Time, old uint64) error {
	if err := g.wait(ctx, "CompareAndSwap"); err != nil {
		return err
	}
	return g.Store.CompareAndSwap(ctx, key, v, exp, old)
}

func TestStoreTimeoutBoundsWrappersOfMemstore(t *testing.T) {
	st := &deadlineStore{Store: memstore.New(nil)}
	m, err := kvsession.New(st, kvsession.Config{Secrets: [][]byte{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(app())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/count", nil)) // create
	cookie := strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0]
	req := httptest.NewRequest("GET", "/count", nil) // load and update
	req.Header.Set("Cookie", cookie)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if len(st.deadlines) != 3 {
		t.Fatalf("%d store calls, want 3 (set, get, compare-and-swap)", len(st.deadlines))
	}
	for i, had := range st.deadlines {
		if !had {
			t.Errorf("store call %d of a memstore wrapper had no deadline", i)
		}
	}
}
