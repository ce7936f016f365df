package echosession_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/echosession"
	"github.com/labstack/echo/v4"
)

// newEcho returns an echo instance with the middleware, quiet.
func newEcho(m *kvsession.Manager) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(echosession.Middleware(m))
	return e
}

// newApp returns an echo instance with the middleware and the routes the
// tests use. lastStatus reports the status echo's Response recorded.
func newApp(t *testing.T) (*echo.Echo, *kvsession.Manager, *faulty, *atomic.Int64) {
	m, st := newManager(t)
	e := newEcho(m)
	var lastStatus atomic.Int64
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			lastStatus.Store(int64(c.Response().Status))
			return err
		}
	})
	e.GET("/none", func(c echo.Context) error { return c.String(http.StatusOK, "no session") })
	e.GET("/set", func(c echo.Context) error {
		s := echosession.Get(c)
		if err := s.Set(c.QueryParam("k"), c.QueryParam("v")); err != nil {
			return err
		}
		if err := c.String(http.StatusOK, "set"); err != nil {
			return err
		}
		// The first byte is out: the session was saved before it and is
		// read-only now.
		if err := s.Set("late", "x"); !errors.Is(err, kvsession.ErrResponseStarted) {
			t.Errorf("Set after the first byte = %v, want ErrResponseStarted", err)
		}
		return nil
	})
	e.GET("/status", func(c echo.Context) error {
		if err := echosession.Get(c).Set("k", "status-only"); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	e.GET("/flush", func(c echo.Context) error {
		s := echosession.Get(c)
		if err := s.Set("k", "flushed"); err != nil {
			return err
		}
		c.Response().Flush()
		if err := s.Set("late", "x"); !errors.Is(err, kvsession.ErrResponseStarted) {
			t.Errorf("Set after a flush = %v, want ErrResponseStarted", err)
		}
		return nil
	})
	e.GET("/get", func(c echo.Context) error {
		v, err := kvsession.GetOr(echosession.Get(c), c.QueryParam("k"), "")
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, v)
	})
	e.GET("/regenerate", func(c echo.Context) error {
		if err := echosession.Get(c).Regenerate(); err != nil {
			return err
		}
		return c.String(http.StatusOK, "regenerated")
	})
	e.GET("/destroy", func(c echo.Context) error {
		if err := echosession.Get(c).Destroy(); err != nil {
			return err
		}
		return c.String(http.StatusOK, "destroyed")
	})
	return e, m, st, &lastStatus
}

// do serves one GET with the given Cookie header.
func do(h http.Handler, target, cookie string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// login creates a session holding user=ada and returns its Cookie header.
func login(t *testing.T, h http.Handler, m *kvsession.Manager) string {
	t.Helper()
	w := do(h, "/set?k=user&v=ada", "")
	if w.Code != http.StatusOK {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	return pair(sessionCookie(t, m, w.Result().Header))
}

func TestNewSessionSetsCookie(t *testing.T) {
	h, m, st, _ := newApp(t)
	w := do(h, "/set?k=user&v=ada", "")
	if w.Code != http.StatusOK || w.Body.String() != "set" {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
	checkCookieRules(t, m, w.Result().Header, false)
	if _, writes := st.Counts(); writes != 1 {
		t.Errorf("a new session cost %d store writes, want 1", writes)
	}
	cookie := pair(sessionCookie(t, m, w.Result().Header))
	if got := do(h, "/get?k=user", cookie).Body.String(); got != "ada" {
		t.Errorf("the next request reads %q, want ada", got)
	}
}

func TestUntouchedSessionCostsNothing(t *testing.T) {
	h, m, st, _ := newApp(t)
	cookie := login(t, h, m)
	g0, w0 := st.Counts()
	w := do(h, "/none", cookie)
	if g, wr := st.Counts(); g != g0 || wr != w0 {
		t.Errorf("a request that never touches its session made %d reads, %d writes", g-g0, wr-w0)
	}
	if len(w.Result().Header.Values("Set-Cookie")) != 0 || w.Header().Get("Cache-Control") != "" {
		t.Errorf("untouched session: Set-Cookie %q, Cache-Control %q", w.Result().Header.Values("Set-Cookie"), w.Header().Get("Cache-Control"))
	}
}

func TestReadSendsNoCookie(t *testing.T) {
	h, m, st, _ := newApp(t)
	cookie := login(t, h, m)
	g0, w0 := st.Counts()
	w := do(h, "/get?k=user", cookie)
	if w.Body.String() != "ada" {
		t.Fatalf("read %q, want ada", w.Body)
	}
	if g, wr := st.Counts(); g-g0 != 1 || wr != w0 {
		t.Errorf("a read cost %d store reads and %d writes, want 1 and 0", g-g0, wr-w0)
	}
	if c := sessionCookie(t, m, w.Result().Header); c != "" {
		t.Errorf("a read sent Set-Cookie %q", c)
	}
}

// A change made before the first byte is saved and its cookie sent, whether
// the first byte is a body write or a status-only response.
func TestWriteBeforeFirstByteIsSaved(t *testing.T) {
	h, m, _, _ := newApp(t)
	cookie := login(t, h, m)
	if w := do(h, "/set?k=color&v=blue", cookie); w.Code != http.StatusOK {
		t.Fatalf("set: %d", w.Code)
	}
	if got := do(h, "/get?k=color", cookie).Body.String(); got != "blue" {
		t.Errorf("read back %q, want blue", got)
	}
	if got := do(h, "/get?k=late", cookie).Body.String(); got != "" {
		t.Errorf("a change after the first byte was saved: %q", got)
	}

	w := do(h, "/flush", "")
	checkCookieRules(t, m, w.Result().Header, false)
	if got := do(h, "/get?k=k", pair(sessionCookie(t, m, w.Result().Header))).Body.String(); got != "flushed" {
		t.Errorf("flush: read back %q", got)
	}

	w = do(h, "/status", "")
	if w.Code != http.StatusNoContent {
		t.Fatalf("status-only: %d", w.Code)
	}
	checkCookieRules(t, m, w.Result().Header, false)
	if got := do(h, "/get?k=k", pair(sessionCookie(t, m, w.Result().Header))).Body.String(); got != "status-only" {
		t.Errorf("status-only response: read back %q", got)
	}
}

// A change made by a handler that then returns an error is saved before
// echo's HTTPErrorHandler writes the error response, which carries the cookie.
func TestChangeThenErrorIsSaved(t *testing.T) {
	m, _ := newManager(t)
	e := newEcho(m)
	e.GET("/fail", func(c echo.Context) error {
		if err := echosession.Get(c).Set("user", "ada"); err != nil {
			return err
		}
		return echo.NewHTTPError(http.StatusTeapot, "no")
	})
	e.GET("/get", func(c echo.Context) error {
		v, err := kvsession.GetOr(echosession.Get(c), "user", "")
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, v)
	})
	w := do(e, "/fail", "")
	if w.Code != http.StatusTeapot {
		t.Fatalf("status %d, want the handler's error", w.Code)
	}
	checkCookieRules(t, m, w.Result().Header, false)
	if got := do(e, "/get", pair(sessionCookie(t, m, w.Result().Header))).Body.String(); got != "ada" {
		t.Errorf("read back %q, want ada", got)
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	h, m, st, status := newApp(t)
	cookie := login(t, h, m)

	st.FailGets.Store(true)
	w := do(h, "/get?k=user", cookie)
	if w.Code != http.StatusServiceUnavailable || status.Load() != http.StatusServiceUnavailable {
		t.Errorf("load failure: status %d (echo recorded %d), want 503", w.Code, status.Load())
	}
	if strings.Contains(w.Body.String(), "ada") || len(w.Result().Header.Values("Set-Cookie")) != 0 {
		t.Errorf("load failure: body %q, Set-Cookie %q", w.Body, w.Result().Header.Values("Set-Cookie"))
	}
	st.FailGets.Store(false)

	st.FailWrites.Store(true)
	w = do(h, "/set?k=user&v=bob", "")
	if w.Code != http.StatusServiceUnavailable || w.Body.String() == "set" || status.Load() != http.StatusServiceUnavailable {
		t.Errorf("save failure: %d %q (echo recorded %d), want 503 and the handler's body replaced", w.Code, w.Body, status.Load())
	}
	if len(w.Result().Header.Values("Set-Cookie")) != 0 {
		t.Errorf("save failure sent Set-Cookie %q for an unsaved session", w.Result().Header.Values("Set-Cookie"))
	}
	st.FailWrites.Store(false)

	if got := do(h, "/get?k=user", cookie).Body.String(); got != "ada" {
		t.Errorf("after the outage the session reads %q, want ada", got)
	}
}

func TestRegenerate(t *testing.T) {
	h, m, _, _ := newApp(t)
	old := login(t, h, m)
	w := do(h, "/regenerate", old)
	checkCookieRules(t, m, w.Result().Header, false)
	next := pair(sessionCookie(t, m, w.Result().Header))
	if next == old {
		t.Fatal("Regenerate kept the cookie")
	}
	if got := do(h, "/get?k=user", next).Body.String(); got != "ada" {
		t.Errorf("the new ID reads %q, want the data kept", got)
	}
	if got := do(h, "/get?k=user", old).Body.String(); got != "" {
		t.Errorf("the old ID still reads %q", got)
	}
}

func TestDestroy(t *testing.T) {
	h, m, _, _ := newApp(t)
	cookie := login(t, h, m)
	w := do(h, "/destroy", cookie)
	checkCookieRules(t, m, w.Result().Header, true)
	if got := do(h, "/get?k=user", cookie).Body.String(); got != "" {
		t.Errorf("the destroyed session's cookie still reads %q", got)
	}
}

// Two requests on one session that change different keys at the same time
// both land: each loads the session, waits for the other to load, then
// changes its key.
func TestConcurrentWritesMerge(t *testing.T) {
	h, m, _, _ := newApp(t)
	var loaded sync.WaitGroup
	loaded.Add(2)
	h.GET("/both", func(c echo.Context) error {
		s := echosession.Get(c)
		if _, err := s.Names(); err != nil {
			return err
		}
		loaded.Done()
		loaded.Wait()
		return s.Set(c.QueryParam("k"), "1")
	})
	h.GET("/keys", func(c echo.Context) error {
		keys, err := echosession.Get(c).Names()
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, strings.Join(keys, ","))
	})
	cookie := login(t, h, m)
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b"} {
		wg.Go(func() {
			if w := do(h, "/both?k="+k, cookie); w.Code != http.StatusOK {
				t.Errorf("concurrent write %s: %d", k, w.Code)
			}
		})
	}
	wg.Wait()
	if got := do(h, "/keys", cookie).Body.String(); got != "a,b,user" {
		t.Errorf("after two concurrent writes the session holds %q, want a,b,user", got)
	}
}
