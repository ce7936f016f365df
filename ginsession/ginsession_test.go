package ginsession_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/ginsession"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// newApp returns a gin engine with the middleware and the routes the tests use.
func newApp(t *testing.T) (*gin.Engine, *kvsession.Manager, *faulty) {
	m, st := newManager(t)
	r := gin.New()
	r.Use(ginsession.Middleware(m))
	r.GET("/none", func(c *gin.Context) { c.String(http.StatusOK, "no session") })
	r.GET("/set", func(c *gin.Context) {
		s := ginsession.Get(c)
		if err := s.Set(c.Query("k"), c.Query("v")); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		c.String(http.StatusOK, "set")
		// The first byte is out: the session was saved before it and is
		// read-only now.
		if err := s.Set("late", "x"); !errors.Is(err, kvsession.ErrResponseStarted) {
			t.Errorf("Set after the first byte = %v, want ErrResponseStarted", err)
		}
	})
	r.GET("/status", func(c *gin.Context) {
		if err := ginsession.Get(c).Set("k", "status-only"); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		c.Status(http.StatusNoContent)
	})
	// Writes straight to c.Writer, without gin's WriteHeader first.
	raw := map[string]func(gin.ResponseWriter){
		"write":       func(w gin.ResponseWriter) { w.Write([]byte("raw")) },
		"writestring": func(w gin.ResponseWriter) { w.WriteString("raw") },
		"flush":       func(w gin.ResponseWriter) { w.Flush() },
		"headernow":   func(w gin.ResponseWriter) { w.WriteHeaderNow() },
	}
	r.GET("/raw", func(c *gin.Context) {
		s := ginsession.Get(c)
		if err := s.Set("k", c.Query("how")); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		raw[c.Query("how")](c.Writer)
		if err := s.Set("late", "x"); !errors.Is(err, kvsession.ErrResponseStarted) {
			t.Errorf("%s: Set after the first byte = %v, want ErrResponseStarted", c.Query("how"), err)
		}
	})
	r.GET("/get", func(c *gin.Context) {
		v, err := kvsession.GetOr(ginsession.Get(c), c.Query("k"), "")
		if err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		c.String(http.StatusOK, "%s", v)
	})
	r.GET("/regenerate", func(c *gin.Context) {
		if err := ginsession.Get(c).Regenerate(); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		c.String(http.StatusOK, "regenerated")
	})
	r.GET("/destroy", func(c *gin.Context) {
		if err := ginsession.Get(c).Destroy(); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		c.String(http.StatusOK, "destroyed")
	})
	return r, m, st
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

// login creates a session holding k=v and returns its Cookie header.
func login(t *testing.T, h http.Handler, m *kvsession.Manager) string {
	t.Helper()
	w := do(h, "/set?k=user&v=ada", "")
	if w.Code != http.StatusOK {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	return pair(sessionCookie(t, m, w.Result().Header))
}

func TestNewSessionSetsCookie(t *testing.T) {
	h, m, st := newApp(t)
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
	h, m, st := newApp(t)
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
	h, m, st := newApp(t)
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
	h, m, _ := newApp(t)
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

	for _, how := range []string{"write", "writestring", "flush", "headernow"} {
		w := do(h, "/raw?how="+how, "")
		checkCookieRules(t, m, w.Result().Header, false)
		if got := do(h, "/get?k=k", pair(sessionCookie(t, m, w.Result().Header))).Body.String(); got != how {
			t.Errorf("%s: read back %q", how, got)
		}
	}

	w := do(h, "/status", "")
	if w.Code != http.StatusNoContent {
		t.Fatalf("status-only: %d", w.Code)
	}
	checkCookieRules(t, m, w.Result().Header, false)
	if got := do(h, "/get?k=k", pair(sessionCookie(t, m, w.Result().Header))).Body.String(); got != "status-only" {
		t.Errorf("status-only response: read back %q", got)
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	h, m, st := newApp(t)
	cookie := login(t, h, m)

	st.FailGets.Store(true)
	w := do(h, "/get?k=user", cookie)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("load failure: status %d, want 503", w.Code)
	}
	if strings.Contains(w.Body.String(), "ada") || len(w.Result().Header.Values("Set-Cookie")) != 0 {
		t.Errorf("load failure: body %q, Set-Cookie %q", w.Body, w.Result().Header.Values("Set-Cookie"))
	}
	st.FailGets.Store(false)

	st.FailWrites.Store(true)
	w = do(h, "/set?k=user&v=bob", "")
	if w.Code != http.StatusServiceUnavailable || w.Body.String() == "set" {
		t.Errorf("save failure: %d %q, want 503 and the handler's body replaced", w.Code, w.Body)
	}
	if len(w.Result().Header.Values("Set-Cookie")) != 0 {
		t.Errorf("save failure sent Set-Cookie %q for an unsaved session", w.Result().Header.Values("Set-Cookie"))
	}
	st.FailWrites.Store(false)

	// The session made before the outage still works.
	if got := do(h, "/get?k=user", cookie).Body.String(); got != "ada" {
		t.Errorf("after the outage the session reads %q, want ada", got)
	}
}

func TestRegenerate(t *testing.T) {
	h, m, _ := newApp(t)
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
	h, m, _ := newApp(t)
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
	m, _ := newManager(t)
	var loaded sync.WaitGroup
	loaded.Add(2)
	r := gin.New()
	r.Use(ginsession.Middleware(m))
	r.GET("/set", func(c *gin.Context) {
		if err := ginsession.Get(c).Set("user", "ada"); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
		}
	})
	r.GET("/both", func(c *gin.Context) {
		s := ginsession.Get(c)
		if _, err := s.Names(); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		loaded.Done()
		loaded.Wait()
		if err := s.Set(c.Query("k"), "1"); err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
		}
	})
	r.GET("/keys", func(c *gin.Context) {
		keys, err := ginsession.Get(c).Names()
		if err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		c.String(http.StatusOK, "%s", strings.Join(keys, ","))
	})
	cookie := login(t, r, m)
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b"} {
		wg.Go(func() {
			if w := do(r, "/both?k="+k, cookie); w.Code != http.StatusOK {
				t.Errorf("concurrent write %s: %d", k, w.Code)
			}
		})
	}
	wg.Wait()
	if got := do(r, "/keys", cookie).Body.String(); got != "a,b,user" {
		t.Errorf("after two concurrent writes the session holds %q, want a,b,user", got)
	}
}
