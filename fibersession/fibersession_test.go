package fibersession_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/fibersession"
	"github.com/kvsession/kvsession/memstore"
)

// newFiber returns a fiber app with the middleware.
func newFiber(m *kvsession.Manager) *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(fibersession.Middleware(m))
	return app
}

// newApp returns a fiber app with the middleware and the routes the tests use.
func newApp(t *testing.T) (*fiber.App, *kvsession.Manager, *faulty) {
	m, st := newManager(t)
	app := newFiber(m)
	app.Get("/none", func(c *fiber.Ctx) error { return c.SendString("no session") })
	app.Get("/set", func(c *fiber.Ctx) error {
		if err := fibersession.Get(c).Set(c.Query("k"), c.Query("v")); err != nil {
			return err
		}
		return c.SendString("set")
	})
	app.Get("/status", func(c *fiber.Ctx) error {
		if err := fibersession.Get(c).Set("k", "status-only"); err != nil {
			return err
		}
		return c.SendStatus(http.StatusNoContent)
	})
	app.Get("/get", func(c *fiber.Ctx) error {
		v, err := kvsession.GetOr(fibersession.Get(c), c.Query("k"), "")
		if err != nil {
			return err
		}
		return c.SendString(v)
	})
	app.Get("/regenerate", func(c *fiber.Ctx) error {
		if err := fibersession.Get(c).Regenerate(); err != nil {
			return err
		}
		return c.SendString("regenerated")
	})
	app.Get("/destroy", func(c *fiber.Ctx) error {
		if err := fibersession.Get(c).Destroy(); err != nil {
			return err
		}
		return c.SendString("destroyed")
	})
	return app, m, st
}

type result struct {
	code   int
	header http.Header
	body   string
}

// do serves one GET with the given Cookie header over fiber's test
// connection (fasthttp end to end).
func do(t *testing.T, app *fiber.App, target, cookie string) result {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{res.StatusCode, res.Header, string(b)}
}

// login creates a session holding user=ada and returns its Cookie header.
func login(t *testing.T, app *fiber.App, m *kvsession.Manager) string {
	t.Helper()
	r := do(t, app, "/set?k=user&v=ada", "")
	if r.code != http.StatusOK {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	return pair(sessionCookie(t, m, r.header))
}

func TestNewSessionSetsCookie(t *testing.T) {
	app, m, st := newApp(t)
	r := do(t, app, "/set?k=user&v=ada", "")
	if r.code != http.StatusOK || r.body != "set" {
		t.Fatalf("got %d %q", r.code, r.body)
	}
	checkCookieRules(t, m, r.header, false)
	if _, writes := st.Counts(); writes != 1 {
		t.Errorf("a new session cost %d store writes, want 1", writes)
	}
	if got := do(t, app, "/get?k=user", pair(sessionCookie(t, m, r.header))).body; got != "ada" {
		t.Errorf("the next request reads %q, want ada", got)
	}
}

func TestUntouchedSessionCostsNothing(t *testing.T) {
	app, m, st := newApp(t)
	cookie := login(t, app, m)
	g0, w0 := st.Counts()
	r := do(t, app, "/none", cookie)
	if g, wr := st.Counts(); g != g0 || wr != w0 {
		t.Errorf("a request that never touches its session made %d reads, %d writes", g-g0, wr-w0)
	}
	if len(r.header.Values("Set-Cookie")) != 0 || r.header.Get("Cache-Control") != "" {
		t.Errorf("untouched session: Set-Cookie %q, Cache-Control %q", r.header.Values("Set-Cookie"), r.header.Get("Cache-Control"))
	}
}

func TestReadSendsNoCookie(t *testing.T) {
	app, m, st := newApp(t)
	cookie := login(t, app, m)
	g0, w0 := st.Counts()
	r := do(t, app, "/get?k=user", "other=1; "+cookie)
	if r.body != "ada" {
		t.Fatalf("read %q, want ada", r.body)
	}
	if g, wr := st.Counts(); g-g0 != 1 || wr != w0 {
		t.Errorf("a read cost %d store reads and %d writes, want 1 and 0", g-g0, wr-w0)
	}
	if c := sessionCookie(t, m, r.header); c != "" {
		t.Errorf("a read sent Set-Cookie %q", c)
	}
}

// A change made by a handler is saved before fiber sends the response's
// first byte, whether the response has a body, none, or is the error a
// handler returned.
func TestWriteBeforeFirstByteIsSaved(t *testing.T) {
	app, m, _ := newApp(t)
	app.Get("/fail", func(c *fiber.Ctx) error {
		if err := fibersession.Get(c).Set("k", "then-error"); err != nil {
			return err
		}
		return fiber.NewError(http.StatusTeapot, "no")
	})
	cookie := login(t, app, m)
	if r := do(t, app, "/set?k=color&v=blue", cookie); r.code != http.StatusOK {
		t.Fatalf("set: %d", r.code)
	}
	if got := do(t, app, "/get?k=color", cookie).body; got != "blue" {
		t.Errorf("read back %q, want blue", got)
	}
	for target, code := range map[string]int{"/status": http.StatusNoContent, "/fail": http.StatusTeapot} {
		r := do(t, app, target, "")
		if r.code != code {
			t.Fatalf("%s: status %d, want %d", target, r.code, code)
		}
		checkCookieRules(t, m, r.header, false)
		if got := do(t, app, "/get?k=k", pair(sessionCookie(t, m, r.header))).body; got == "" {
			t.Errorf("%s: the change was not saved", target)
		}
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	app, m, st := newApp(t)
	cookie := login(t, app, m)

	st.FailGets.Store(true)
	r := do(t, app, "/get?k=user", cookie)
	if r.code != http.StatusServiceUnavailable || strings.Contains(r.body, "ada") {
		t.Errorf("load failure: %d %q, want 503", r.code, r.body)
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Errorf("load failure sent Set-Cookie %q", r.header.Values("Set-Cookie"))
	}
	st.FailGets.Store(false)

	st.FailWrites.Store(true)
	app.Get("/cookie-too", func(c *fiber.Ctx) error {
		c.Cookie(&fiber.Cookie{Name: "theme", Value: "dark"})
		if err := fibersession.Get(c).Set("user", "bob"); err != nil {
			return err
		}
		return c.SendString("set")
	})
	r = do(t, app, "/cookie-too", "")
	if r.code != http.StatusServiceUnavailable || r.body == "set" {
		t.Errorf("save failure: %d %q, want 503 and the handler's body replaced", r.code, r.body)
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Errorf("save failure sent Set-Cookie %q", r.header.Values("Set-Cookie"))
	}
	st.FailWrites.Store(false)

	if got := do(t, app, "/get?k=user", cookie).body; got != "ada" {
		t.Errorf("after the outage the session reads %q, want ada", got)
	}
}

func TestRegenerate(t *testing.T) {
	app, m, _ := newApp(t)
	old := login(t, app, m)
	r := do(t, app, "/regenerate", old)
	checkCookieRules(t, m, r.header, false)
	next := pair(sessionCookie(t, m, r.header))
	if next == old {
		t.Fatal("Regenerate kept the cookie")
	}
	if got := do(t, app, "/get?k=user", next).body; got != "ada" {
		t.Errorf("the new ID reads %q, want the data kept", got)
	}
	if got := do(t, app, "/get?k=user", old).body; got != "" {
		t.Errorf("the old ID still reads %q", got)
	}
}

func TestDestroy(t *testing.T) {
	app, m, _ := newApp(t)
	cookie := login(t, app, m)
	r := do(t, app, "/destroy", cookie)
	checkCookieRules(t, m, r.header, true)
	if got := do(t, app, "/get?k=user", cookie).body; got != "" {
		t.Errorf("the destroyed session's cookie still reads %q", got)
	}
}

// Two requests on one session that change different keys at the same time
// both land: each loads the session, waits for the other to load, then
// changes its key.
func TestConcurrentWritesMerge(t *testing.T) {
	app, m, _ := newApp(t)
	var loaded sync.WaitGroup
	loaded.Add(2)
	app.Get("/both", func(c *fiber.Ctx) error {
		s := fibersession.Get(c)
		if _, err := s.Names(); err != nil {
			return err
		}
		loaded.Done()
		loaded.Wait()
		return s.Set(c.Query("k"), "1")
	})
	app.Get("/keys", func(c *fiber.Ctx) error {
		keys, err := fibersession.Get(c).Names()
		if err != nil {
			return err
		}
		return c.SendString(strings.Join(keys, ","))
	})
	cookie := login(t, app, m)
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b"} {
		wg.Go(func() {
			if r := do(t, app, "/both?k="+k, cookie); r.code != http.StatusOK {
				t.Errorf("concurrent write %s: %d", k, r.code)
			}
		})
	}
	wg.Wait()
	if got := do(t, app, "/keys", cookie).body; got != "a,b,user" {
		t.Errorf("after two concurrent writes the session holds %q, want a,b,user", got)
	}
}

// Outside the middleware Get returns nil, whose methods report it.
func TestGetOutsideMiddleware(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error {
		if err := fibersession.Get(c).Set("k", "v"); !errors.Is(err, kvsession.ErrNoSession) {
			t.Errorf("Set without the middleware = %v, want ErrNoSession", err)
		}
		return nil
	})
	do(t, app, "/", "")
}

// A session created through fiber carries the request's metadata, as one
// created under Manager.Handler does: the User-Agent and, with
// Config.RecordRemoteAddr, the client's address.
func TestSessionMetadata(t *testing.T) {
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{
		Secrets:          [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		RecordRemoteAddr: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	app := newFiber(m)
	app.Get("/login", func(c *fiber.Ctx) error { return fibersession.Get(c).SetUser("ada") })
	req := httptest.NewRequest(http.MethodGet, "/login", nil)
	req.Header.Set("User-Agent", "fiber-test/1")
	if _, err := app.Test(req, -1); err != nil {
		t.Fatal(err)
	}
	infos, err := m.UserSessions(context.Background(), "ada")
	if err != nil || len(infos) != 1 {
		t.Fatalf("UserSessions = %v, %v; want one session", infos, err)
	}
	if infos[0].UserAgent != "fiber-test/1" || infos[0].RemoteAddr != "0.0.0.0" {
		t.Errorf("metadata: user agent %q, remote %q; want fiber-test/1 and fiber's test address 0.0.0.0", infos[0].UserAgent, infos[0].RemoteAddr)
	}
}

// With Config.Header, an API client that sends the header gets its token in
// it and is known by it on the next request, as under Manager.Handler.
func TestHeaderTransport(t *testing.T) {
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{
		Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		Header:  "X-Session",
	})
	if err != nil {
		t.Fatal(err)
	}
	app := newFiber(m)
	app.Get("/set", func(c *fiber.Ctx) error { return fibersession.Get(c).Set("user", "ada") })
	app.Get("/get", func(c *fiber.Ctx) error {
		v, err := kvsession.GetOr(fibersession.Get(c), "user", "")
		if err != nil {
			return err
		}
		return c.SendString(v)
	})
	req := httptest.NewRequest(http.MethodGet, "/set", nil)
	req.Header.Set("X-Session", "")
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	token := res.Header.Get("X-Session")
	if token == "" {
		t.Fatal("no token in X-Session for an API client")
	}
	req = httptest.NewRequest(http.MethodGet, "/get", nil)
	req.Header.Set("X-Session", token)
	res, err = app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if string(b) != "ada" {
		t.Errorf("the token reads %q, want ada", b)
	}
}
