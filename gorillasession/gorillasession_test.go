package gorillasession_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/gorillasession"
	"github.com/kvsession/kvsession/internal/middlewaretest"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/kvsession/kvsession/storetest"
	"github.com/redis/go-redis/v9"
)

var testKey = []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH")

func newStore(t testing.TB, kv kvsession.Store, userKey string) *gorillasession.Store {
	t.Helper()
	s, err := gorillasession.New(kv, gorillasession.Config{
		Config:  kvsession.Config{Secrets: [][]byte{testKey}, InsecureCookie: true, Logger: slog.New(slog.DiscardHandler)},
		UserKey: userKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newRedis returns a redisstore on the server KVSESSION_TEST_REDIS_ADDR
// names (or skips), under a prefix removed when the test ends.
func newRedis(t testing.TB) kvsession.Store {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("KVSESSION_TEST_REDIS_ADDR=%s: %v", addr, err)
	}
	prefix := fmt.Sprintf("kvsession-test-gorillasession-%d-%s:", time.Now().UnixNano(), rand.Text()[:8])
	t.Cleanup(func() {
		defer c.Close()
		var keys []string
		it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		if err := it.Err(); err != nil {
			t.Errorf("scan %q: %v", prefix, err)
		}
		for _, k := range keys {
			if err := c.Del(ctx, k).Err(); err != nil {
				t.Errorf("del %q: %v", k, err)
			}
		}
	})
	kv, err := redisstore.New(c, &redisstore.Options{Namespace: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// browser holds one client's cookie.
type browser struct{ cookie string }

// request returns a request carrying the browser's cookie.
func (b *browser) request() *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if b.cookie != "" {
		r.Header.Set("Cookie", b.cookie)
	}
	return r
}

// keep takes the session cookie a response set, if any.
func (b *browser) keep(t testing.TB, w *httptest.ResponseRecorder) {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == "app" {
			if c.MaxAge < 0 || c.Value == "" {
				b.cookie = ""
			} else {
				b.cookie = "app=" + c.Value
			}
		}
	}
}

// load starts a request of b: the request, its session and its recorder.
func load(t testing.TB, s *gorillasession.Store, b *browser) (*http.Request, *sessions.Session, *httptest.ResponseRecorder) {
	t.Helper()
	r := b.request()
	sess, err := s.Get(r, "app")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return r, sess, httptest.NewRecorder()
}

func save(t testing.TB, s *gorillasession.Store, b *browser, r *http.Request, sess *sessions.Session, w *httptest.ResponseRecorder) {
	t.Helper()
	if err := s.Save(r, w, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	b.keep(t, w)
}

func stores(t *testing.T, fn func(t *testing.T, kv func(testing.TB) kvsession.Store)) {
	t.Run("memstore", func(t *testing.T) {
		fn(t, func(testing.TB) kvsession.Store { return memstore.New(nil) })
	})
	t.Run("redis", func(t *testing.T) { fn(t, newRedis) })
}

func TestRoundTrip(t *testing.T) {
	stores(t, func(t *testing.T, kv func(testing.TB) kvsession.Store) {
		s := newStore(t, kv(t), "")
		b := &browser{}
		r, sess, w := load(t, s, b)
		if !sess.IsNew {
			t.Fatal("a request without a cookie has a stored session")
		}
		want := map[interface{}]interface{}{
			"s": "héllo <&>", "i": 42, "f": 3.0, "g": 2.5, "t": true, "n": nil,
			"l": []interface{}{1, "two", 3.5}, "m": map[string]interface{}{"a": 1, "b": []interface{}{false}},
		}
		for k, v := range want {
			sess.Values[k] = v
		}
		save(t, s, b, r, sess, w)
		if b.cookie == "" {
			t.Fatal("no cookie after a Save with values")
		}
		if sess.IsNew || sess.ID == "" {
			t.Fatalf("after Save: IsNew %v, ID %q", sess.IsNew, sess.ID)
		}
		if strings.Contains(b.cookie, sess.ID) {
			t.Fatal("Session.ID holds the cookie's value")
		}
		_, sess2, _ := load(t, s, b)
		if !reflect.DeepEqual(sess2.Values, want) {
			t.Fatalf("loaded %#v\nwant   %#v", sess2.Values, want)
		}
		if sess2.IsNew || sess2.ID != sess.ID {
			t.Fatalf("loaded: IsNew %v, ID %q, want ID %q", sess2.IsNew, sess2.ID, sess.ID)
		}
	})
}

func TestRefusesWhatDoesNotRoundTrip(t *testing.T) {
	type user struct{ Name string }
	for name, set := range map[string]func(map[interface{}]interface{}){
		"int key":     func(v map[interface{}]interface{}) { v[1] = "x" },
		"struct":      func(v map[interface{}]interface{}) { v["u"] = user{"a"} },
		"pointer":     func(v map[interface{}]interface{}) { v["u"] = &user{"a"} },
		"int64":       func(v map[interface{}]interface{}) { v["n"] = int64(1) },
		"[]string":    func(v map[interface{}]interface{}) { v["l"] = []string{"a"} },
		"time":        func(v map[interface{}]interface{}) { v["t"] = time.Now() },
		"nested":      func(v map[interface{}]interface{}) { v["m"] = map[string]interface{}{"x": []byte("a")} },
		"NaN":         func(v map[interface{}]interface{}) { v["f"] = 0 * func() float64 { var z float64; return 1 / z }() },
		"flash value": func(v map[interface{}]interface{}) { v["_flash"] = []interface{}{user{}} },
		"reserved":    func(v map[interface{}]interface{}) { v[kvsession.FlashesName] = "x" },
	} {
		t.Run(name, func(t *testing.T) {
			kv := memstore.New(nil)
			s := newStore(t, kv, "")
			b := &browser{}
			r, sess, w := load(t, s, b)
			sess.Values["keep"] = "me"
			save(t, s, b, r, sess, w)

			r, sess, w = load(t, s, b)
			sess.Values["other"] = "change"
			set(sess.Values)
			if err := s.Save(r, w, sess); err == nil || !strings.HasPrefix(err.Error(), "gorillasession: ") {
				t.Fatalf("Save = %v, want a gorillasession error", err)
			}
			if len(w.Result().Cookies()) != 0 {
				t.Fatal("a failed Save sent a cookie")
			}
			_, sess, _ = load(t, s, b)
			if want := map[interface{}]interface{}{"keep": "me"}; !reflect.DeepEqual(sess.Values, want) {
				t.Fatalf("after a refused Save the session holds %v, want %v", sess.Values, want)
			}
		})
	}
}

// TestConcurrentChangesMerge: two requests of one session load it, change
// different keys and save; both changes land.
func TestConcurrentChangesMerge(t *testing.T) {
	stores(t, func(t *testing.T, kv func(testing.TB) kvsession.Store) {
		s := newStore(t, kv(t), "")
		b := &browser{}
		r, sess, w := load(t, s, b)
		sess.Values["a"], sess.Values["b"] = 0, 0
		save(t, s, b, r, sess, w)

		r1, s1, w1 := load(t, s, b)
		r2, s2, w2 := load(t, s, b)
		s1.Values["a"] = 1
		s2.Values["b"] = 2
		delete(s2.Values, "a") // not loaded as changed: a is deleted only if s2 saw it
		s2.Values["a"] = 0     // back to what s2 loaded: unchanged
		save(t, s, b, r1, s1, w1)
		save(t, s, b, r2, s2, w2)
		_, got, _ := load(t, s, b)
		if want := map[interface{}]interface{}{"a": 1, "b": 2}; !reflect.DeepEqual(got.Values, want) {
			t.Fatalf("after two concurrent saves: %v, want %v", got.Values, want)
		}
	})
}

func TestSaveTwiceInOneRequest(t *testing.T) {
	s := newStore(t, memstore.New(nil), "")
	b := &browser{}
	r, sess, w := load(t, s, b)
	sess.Values["a"] = 1
	save(t, s, b, r, sess, w)
	r2, other, w2 := load(t, s, b) // a concurrent request sets b
	other.Values["b"] = 2
	save(t, s, b, r2, other, w2)
	delete(sess.Values, "a")
	sess.Values["c"] = 3
	save(t, s, b, r, sess, w)
	_, got, _ := load(t, s, b)
	if want := map[interface{}]interface{}{"b": 2, "c": 3}; !reflect.DeepEqual(got.Values, want) {
		t.Fatalf("got %v, want %v", got.Values, want)
	}
}

// TestFlashes: gorilla's AddFlash and Flashes are kvsession's flash
// messages: set now, read once, and two tabs do not lose each other's.
func TestFlashes(t *testing.T) {
	stores(t, func(t *testing.T, kv func(testing.TB) kvsession.Store) {
		s := newStore(t, kv(t), "")
		b := &browser{}
		r, sess, w := load(t, s, b)
		sess.AddFlash("one")
		save(t, s, b, r, sess, w)

		// Tab 1 reads the flashes while tab 2 adds one.
		r1, s1, w1 := load(t, s, b)
		r2, s2, w2 := load(t, s, b)
		if got := s1.Flashes(); !reflect.DeepEqual(got, []interface{}{"one"}) {
			t.Fatalf("Flashes = %v, want [one]", got)
		}
		s2.AddFlash(map[string]interface{}{"level": "info"})
		save(t, s, b, r2, s2, w2)
		save(t, s, b, r1, s1, w1)

		r, sess, w = load(t, s, b)
		if got, want := sess.Flashes(), []interface{}{map[string]interface{}{"level": "info"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Flashes = %v, want %v", got, want)
		}
		save(t, s, b, r, sess, w)
		_, sess, _ = load(t, s, b)
		if got := sess.Flashes(); len(got) != 0 {
			t.Fatalf("Flashes after reading them = %v, want none", got)
		}
	})
}

// TestFlashesRace: one request reads the flashes through gorilla's
// Flashes while another adds one, truly concurrently, round after round:
// each message is read exactly once, and the added one is never lost.
func TestFlashesRace(t *testing.T) {
	stores(t, func(t *testing.T, kv func(testing.TB) kvsession.Store) {
		s := newStore(t, kv(t), "")
		b := &browser{}
		r, sess, w := load(t, s, b)
		sess.Values["x"] = 1
		save(t, s, b, r, sess, w)
		for round := range 30 {
			old, added := fmt.Sprint("old ", round), fmt.Sprint("added ", round)
			r, sess, w = load(t, s, b)
			sess.AddFlash(old)
			save(t, s, b, r, sess, w)

			var read []interface{}
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, 2)
			wg.Go(func() {
				<-start
				r := b.request()
				sess, err := s.Get(r, "app")
				if err == nil {
					read = sess.Flashes()
					err = s.Save(r, httptest.NewRecorder(), sess)
				}
				errs <- err
			})
			wg.Go(func() {
				<-start
				r := b.request()
				sess, err := s.Get(r, "app")
				if err == nil {
					sess.AddFlash(added)
					err = s.Save(r, httptest.NewRecorder(), sess)
				}
				errs <- err
			})
			close(start)
			wg.Wait()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			r, sess, w = load(t, s, b)
			rest := sess.Flashes()
			save(t, s, b, r, sess, w)
			all := map[interface{}]int{}
			for _, v := range append(read, rest...) {
				all[v]++
			}
			if !slices.Contains(read, interface{}(old)) || all[old] != 1 || all[added] != 1 || len(all) != 2 {
				t.Fatalf("round %d: the reader read %v, then %v were left; want %q read once by the reader and %q read exactly once",
					round, read, rest, old, added)
			}
		}
	})
}

// TestFlashesReadAcrossAConflict: a flash added by a request that saves
// while the reading request's Save is between its load and its write is
// kept; the read one goes. The reader's write then meets a newer record
// and kvsession replays its change set: only the messages it read go.
func TestFlashesReadAcrossAConflict(t *testing.T) {
	kv := &middlewaretest.HookStore{Store: memstore.New(nil)}
	s := newStore(t, kv, "")
	b := &browser{}
	r, sess, w := load(t, s, b)
	sess.AddFlash("read")
	save(t, s, b, r, sess, w)

	r, sess, w = load(t, s, b)
	if got := sess.Flashes(); !reflect.DeepEqual(got, []interface{}{"read"}) {
		t.Fatalf("Flashes = %v, want [read]", got)
	}
	hooked := false
	kv.Arm(func() {
		hooked = true
		r2, s2, w2 := load(t, s, b)
		s2.AddFlash("added during the save")
		if err := s.Save(r2, w2, s2); err != nil {
			t.Errorf("the concurrent Save: %v", err)
		}
	})
	save(t, s, b, r, sess, w)
	if !hooked {
		t.Fatal("the reader's Save made no CompareAndSwap: the test did not race")
	}
	_, sess, _ = load(t, s, b)
	if got, want := sess.Flashes(), []interface{}{"added during the save"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Flashes = %v, want %v", got, want)
	}
}

// TestMaxAgeDestroys: MaxAge < 0 deletes the session when Save returns and
// clears the cookie; the old cookie then gives an empty session.
func TestMaxAgeDestroys(t *testing.T) {
	stores(t, func(t *testing.T, kv func(testing.TB) kvsession.Store) {
		s := newStore(t, kv(t), "")
		b := &browser{}
		r, sess, w := load(t, s, b)
		sess.Values["user"] = "alice"
		save(t, s, b, r, sess, w)
		old := *b

		r, sess, w = load(t, s, b)
		sess.Options.MaxAge = -1
		save(t, s, b, r, sess, w)
		if b.cookie != "" {
			t.Fatal("the cookie was not cleared")
		}
		_, sess, _ = load(t, s, &old)
		if !sess.IsNew || len(sess.Values) != 0 {
			t.Fatalf("the old cookie after MaxAge -1: IsNew %v, values %v", sess.IsNew, sess.Values)
		}
	})
}

// TestNoResurrection: a Save after a concurrent destroy is dropped.
func TestNoResurrection(t *testing.T) {
	s := newStore(t, memstore.New(nil), "")
	b := &browser{}
	r, sess, w := load(t, s, b)
	sess.Values["user"] = "alice"
	save(t, s, b, r, sess, w)
	old := *b

	r1, s1, w1 := load(t, s, b)
	r2, s2, w2 := load(t, s, b)
	s2.Options.MaxAge = -1
	save(t, s, b, r2, s2, w2)
	s1.Values["x"] = 1
	if err := s.Save(r1, w1, s1); err != nil {
		t.Fatal(err)
	}
	if len(w1.Result().Cookies()) != 0 {
		t.Fatal("the dropped save sent a cookie")
	}
	_, got, _ := load(t, s, &old)
	if !got.IsNew || len(got.Values) != 0 {
		t.Fatalf("the destroyed session came back: %v", got.Values)
	}
}

func TestPermanent(t *testing.T) {
	s := newStore(t, memstore.New(nil), "")
	b := &browser{}
	r, sess, w := load(t, s, b)
	if sess.Options.MaxAge != 0 {
		t.Fatalf("new session MaxAge = %d, want 0 (Config.Permanent is false)", sess.Options.MaxAge)
	}
	sess.Values["a"] = 1
	sess.Options.MaxAge = 3600
	save(t, s, b, r, sess, w)
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].MaxAge <= 0 {
		t.Fatalf("cookies %v, want one permanent cookie", c)
	}
	if c[0].Path != "/" || !c[0].HttpOnly {
		t.Fatalf("cookie %v: want Path=/ and HttpOnly from the kvsession Config", c[0])
	}
	_, sess, _ = load(t, s, b)
	if sess.Options.MaxAge != 24*3600 {
		t.Fatalf("loaded MaxAge = %d, want the lifetime", sess.Options.MaxAge)
	}
}

// TestUserKey: the UserKey value binds the session to a user, with a new
// ID; the per-user index lists it and RevokeUser ends it.
func TestUserKey(t *testing.T) {
	stores(t, func(t *testing.T, kv func(testing.TB) kvsession.Store) {
		s := newStore(t, kv(t), "user_id")
		b := &browser{}
		r, sess, w := load(t, s, b)
		sess.Values["cart"] = 1
		save(t, s, b, r, sess, w)
		anon := b.cookie

		r, sess, w = load(t, s, b)
		sess.Values["user_id"] = 7
		save(t, s, b, r, sess, w)
		if b.cookie == anon || b.cookie == "" {
			t.Fatal("login did not change the session ID")
		}
		_, old, _ := load(t, s, &browser{cookie: anon})
		if !old.IsNew {
			t.Fatal("the pre-login ID still works")
		}
		m, err := s.Manager("app")
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		list, err := m.UserSessions(ctx, "7")
		if err != nil || len(list) != 1 {
			t.Fatalf("UserSessions = %v, %v; want one", list, err)
		}
		if n, err := m.RevokeUser(ctx, "7", false); err != nil || n != 1 {
			t.Fatalf("RevokeUser = %d, %v", n, err)
		}
		_, sess, _ = load(t, s, b)
		if !sess.IsNew || len(sess.Values) != 0 {
			t.Fatalf("after RevokeUser: %v", sess.Values)
		}

		r, sess, w = load(t, s, b)
		sess.Values["user_id"] = 1.5
		if err := s.Save(r, w, sess); err == nil {
			t.Fatal("a float64 user ID was accepted")
		}
	})
}

// failing is a store whose Get fails, for fault injection.
type failing struct {
	kvsession.Store
	fail bool
}

var errDown = errors.New("store down")

func (f *failing) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if f.fail {
		return kvsession.Entry{}, errDown
	}
	return f.Store.Get(ctx, key)
}

// TestLoadErrorFailsClosed: a session that failed to load reports the
// error, and its Save changes nothing: no write, no cookie.
func TestLoadErrorFailsClosed(t *testing.T) {
	kv := &failing{Store: memstore.New(nil)}
	s := newStore(t, kv, "")
	b := &browser{}
	r, sess, w := load(t, s, b)
	sess.Values["user"] = "alice"
	save(t, s, b, r, sess, w)

	kv.fail = true
	r = b.request()
	sess, err := s.Get(r, "app")
	if !errors.Is(err, kvsession.ErrLoad) || !errors.Is(err, errDown) {
		t.Fatalf("Get with the store down: %v, want ErrLoad wrapping the store's error", err)
	}
	if sess == nil || len(sess.Values) != 0 {
		t.Fatalf("Get with the store down gave %v", sess)
	}
	sess.Values["user"] = "mallory"
	w = httptest.NewRecorder()
	if err := s.Save(r, w, sess); !errors.Is(err, kvsession.ErrLoad) {
		t.Fatalf("Save of a session that failed to load: %v", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("Save sent a cookie for a session that failed to load")
	}
	kv.fail = false
	_, sess, _ = load(t, s, b)
	if sess.Values["user"] != "alice" {
		t.Fatalf("after the outage: %v", sess.Values)
	}
}

func TestGetCachesPerRequest(t *testing.T) {
	s := newStore(t, memstore.New(nil), "")
	r := httptest.NewRequest("GET", "/", nil)
	a, _ := s.Get(r, "app")
	c, _ := s.Get(r, "app")
	if a != c {
		t.Fatal("two Gets in one request gave two sessions")
	}
	if _, err := s.Get(r, "bad name"); err == nil {
		t.Fatal("an invalid cookie name was accepted")
	}
}

func TestNewRefusesConfig(t *testing.T) {
	kv := memstore.New(nil)
	for name, cfg := range map[string]gorillasession.Config{
		"no keys":      {},
		"cookie name":  {Config: kvsession.Config{Secrets: [][]byte{testKey}, CookieName: "x"}},
		"errorhandler": {Config: kvsession.Config{Secrets: [][]byte{testKey}, ErrorHandler: func(http.ResponseWriter, *http.Request, error) {}}},
	} {
		if _, err := gorillasession.New(kv, cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
	if _, err := gorillasession.New(nil, gorillasession.Config{}); err == nil {
		t.Error("New accepted a nil store")
	}
}

func TestUntouchedSaveWritesNothing(t *testing.T) {
	s := newStore(t, memstore.New(nil), "")
	b := &browser{}
	r, sess, w := load(t, s, b)
	save(t, s, b, r, sess, w)
	if len(w.Result().Header["Set-Cookie"]) != 0 {
		t.Fatal("an empty new session sent a cookie")
	}
}
