package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
)

// The session checks run the store under a kvsession.Manager, through its
// middleware, the way applications use it: no lost updates, no
// resurrection, one live ID after a regenerate race, instances sharing
// sessions, and per-user sessions.

// sessionEnv is a Manager over the store under test, with helpers to send
// requests straight to its middleware.
type sessionEnv struct {
	*env
	m *kvsession.Manager
}

var sessionTestKey = []byte("storetest-signing-key-0123456789")

func newSessionEnv(t *testing.T, h Harness) *sessionEnv {
	e := newEnv(t, h)
	return &sessionEnv{env: e, m: e.manager(t)}
}

// manager returns a Manager on the env's store and clock, as another
// application instance would have.
func (e *env) manager(t *testing.T) *kvsession.Manager {
	t.Helper()
	m, err := kvsession.New(e.store, kvsession.Config{
		Secrets:   [][]byte{sessionTestKey},
		KeyPrefix: e.prefix,
		Now:       e.clock.Now,
		Logger:    discardLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serve runs fn as a handler under m with the given cookie and returns the
// response's new cookie ("" if none), failing the test on a non-200.
func serve(t testing.TB, m *kvsession.Manager, cookie string, fn func(s *kvsession.Session) error) string {
	return serveRequest(t, m, cookie, func(r *http.Request) error { return fn(kvsession.From(r)) })
}

// serveRequest is serve for handlers that need the request.
func serveRequest(t testing.TB, m *kvsession.Manager, cookie string, fn func(r *http.Request) error) string {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	var herr error
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		herr = fn(r)
	})).ServeHTTP(rec, req)
	if herr != nil {
		t.Errorf("handler: %v", herr)
	}
	if rec.Code != http.StatusOK {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == m.CookieName() {
			if c.MaxAge < 0 {
				return "deleted"
			}
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

// values returns the session's values as strings, read through cookie.
func values(t testing.TB, m *kvsession.Manager, cookie string) map[string]string {
	got := map[string]string{}
	serve(t, m, cookie, func(s *kvsession.Session) error {
		keys, err := s.Names()
		if err != nil {
			return err
		}
		for _, k := range keys {
			v, err := kvsession.Get[string](s, k)
			if err != nil {
				return err
			}
			got[k] = v
		}
		return nil
	})
	return got
}

func newSession(t testing.TB, m *kvsession.Manager, kv ...string) string {
	cookie := serve(t, m, "", func(s *kvsession.Session) error {
		for i := 0; i+1 < len(kv); i += 2 {
			if err := s.Set(kv[i], kv[i+1]); err != nil {
				return err
			}
		}
		return s.Set("created", "yes")
	})
	if cookie == "" {
		t.Fatal("a new session sent no cookie")
	}
	return cookie
}

func runSessionTests(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, *sessionEnv)
	}{
		{"NoLostUpdates", testNoLostUpdates},
		{"SameKeyOneWinsWhole", testSameKey},
		{"NoResurrectionAfterDestroy", testNoResurrectionAfterDestroy},
		{"NoResurrectionAfterRegenerate", testNoResurrectionAfterRegenerate},
		{"RegenerateRace", testRegenerateRace},
		{"InstancesShareSessions", testInstancesShare},
		{"UserSessions", testUserSessions},
		{"RevokeUserRacesRegenerate", testRevokeRace},
		{"ReplayDeleteAndClear", testReplayDeleteAndClear},
		{"Model", testModel},
		{"StoreTTL", testStoreTTL},
		{"FlashesMerge", testFlashesMerge},
		{"UserCap", testUserCap},
		{"LongAndWeirdUsers", testLongUsers},
		{"HostileCookies", testHostileCookies},
		{"CorruptRecords", testCorruptRecords},
	}
	for _, tt := range tests {
		t.Run("Sessions/"+tt.name, func(t *testing.T) {
			tt.fn(t, newSessionEnv(t, h))
		})
	}
}

// testNoLostUpdates: 50 concurrent requests on one session, each setting
// its own key: all 50 land, round after round.
func testNoLostUpdates(t *testing.T, e *sessionEnv) {
	const writers = 50
	rounds := e.h.SessionRounds
	if rounds <= 0 {
		rounds = 100
	}
	if testing.Short() {
		rounds = min(rounds, 5)
	}
	for round := range rounds {
		cookie := newSession(t, e.m)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				<-start
				serve(t, e.m, cookie, func(s *kvsession.Session) error {
					return s.Set(fmt.Sprintf("k%02d", i), fmt.Sprint(i))
				})
			})
		}
		close(start)
		wg.Wait()
		got := values(t, e.m, cookie)
		lost := 0
		for i := range writers {
			if got[fmt.Sprintf("k%02d", i)] != fmt.Sprint(i) {
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("round %d: %d of %d concurrent updates lost", round, lost, writers)
		}
	}
}

// testSameKey: concurrent writes of one key leave one writer's whole value.
func testSameKey(t *testing.T, e *sessionEnv) {
	cookie := newSession(t, e.m)
	const writers = 10
	want := map[string]bool{}
	var wg sync.WaitGroup
	for i := range writers {
		v := strings.Repeat(fmt.Sprint(i), 100)
		want[v] = true
		wg.Go(func() {
			serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.Set("same", v) })
		})
	}
	wg.Wait()
	if got := values(t, e.m, cookie)["same"]; !want[got] {
		t.Errorf("after concurrent writes of one key it holds %q, not any one writer's value", got)
	}
}

// pausedRequest starts a request that loads the session, then waits for
// release before changing it and saving. It returns a function that
// releases it and waits for it to finish.
func pausedRequest(t *testing.T, m *kvsession.Manager, cookie string) (release func() string) {
	return pausedChange(t, m, cookie, func(s *kvsession.Session) error { return s.Set("late", "write") })
}

// pausedChange starts a request that loads the session, then waits for
// release before making change and saving. If the load fails, the request
// ends at once and the test fails instead of hanging.
func pausedChange(t *testing.T, m *kvsession.Manager, cookie string, change func(s *kvsession.Session) error) (release func() string) {
	t.Helper()
	loaded, proceed, done := make(chan struct{}), make(chan struct{}), make(chan string, 1)
	go func() {
		done <- serve(t, m, cookie, func(s *kvsession.Session) error {
			if _, err := s.Has("x"); err != nil {
				return err
			}
			close(loaded)
			<-proceed
			return change(s)
		})
	}()
	select {
	case <-loaded:
	case c := <-done:
		t.Fatalf("the paused request ended before it loaded the session (cookie %q)", c)
	}
	return func() string {
		close(proceed)
		return <-done
	}
}

// testReplayDeleteAndClear: a Delete or Clear whose save meets a concurrent
// change is replayed onto the newer session, as the package documents: the
// deleted key stays deleted, the concurrent change to another key lands;
// a Clear removes what it saw and what the concurrent save added.
func testReplayDeleteAndClear(t *testing.T, e *sessionEnv) {
	cookie := newSession(t, e.m, "a", "1", "b", "2")
	release := pausedChange(t, e.m, cookie, func(s *kvsession.Session) error { return s.Delete("a") })
	serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.Set("c", "3") })
	release()
	if got := values(t, e.m, cookie); got["a"] != "" || got["b"] != "2" || got["c"] != "3" {
		t.Errorf("a Delete replayed after a concurrent Set: %v, want a gone, b and c kept", got)
	}
	release = pausedChange(t, e.m, cookie, func(s *kvsession.Session) error {
		if err := s.Clear(); err != nil {
			return err
		}
		return s.Set("after", "clear")
	})
	serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.Set("d", "4") })
	release()
	if got := values(t, e.m, cookie); len(got) != 1 || got["after"] != "clear" {
		t.Errorf("a Clear replayed after a concurrent Set: %v, want only the value set after the Clear", got)
	}
}

// revokeTrials bounds testRevokeRace.
const revokeTrials = 20

// testRevokeRace: "log out everywhere" while a stolen cookie regenerates
// its session in a loop. Once RevokeUser returns, no session of the user
// that existed before the call may be usable: every cookie the loop ever
// obtained must read as empty, in every trial.
func testRevokeRace(t *testing.T, e *sessionEnv) {
	user := e.prefix + "victim"
	survivors := 0
	for trial := range revokeTrials {
		cookie := newSession(t, e.m, "secret", "s3cret")
		cookie = serve(t, e.m, cookie, func(s *kvsession.Session) error {
			if err := s.SetUser(user); err != nil {
				return err
			}
			return s.Regenerate()
		})
		var (
			mu      sync.Mutex
			cookies = []string{cookie}
			rounds  atomic.Int64
			revoked = make(chan struct{})
			stopped = make(chan struct{})
		)
		go func() { // the attacker: regenerate, again and again
			defer close(stopped)
			after := 0
			for i := 0; i < 500 && after < 3; i++ {
				select {
				case <-revoked:
					after++
				default:
				}
				next := serveRequest(t, e.m, cookie, func(r *http.Request) error {
					if err := kvsession.From(r).Regenerate(); err != nil && !errors.Is(err, kvsession.ErrEnded) {
						return err
					}
					return nil
				})
				rounds.Add(1)
				if next == "" || next == "deleted" {
					return // the session ended
				}
				cookie = next
				mu.Lock()
				cookies = append(cookies, next)
				mu.Unlock()
			}
		}()
		for rounds.Load() < int64(1+trial%3) {
			runtime.Gosched()
		}
		if _, err := e.m.RevokeUser(t.Context(), user, false); err != nil {
			t.Fatalf("RevokeUser: %v", err)
		}
		close(revoked)
		<-stopped
		mu.Lock()
		for _, c := range cookies {
			if got := values(t, e.m, c); len(got) != 0 {
				survivors++
				t.Errorf("trial %d: a cookie of the revoked user still reads %v", trial, got)
				break
			}
		}
		mu.Unlock()
		if infos, err := e.m.UserSessions(t.Context(), user); err != nil || len(infos) != 0 {
			t.Errorf("trial %d: UserSessions after RevokeUser = %d, %v; want none", trial, len(infos), err)
		}
	}
	if survivors > 0 {
		t.Errorf("%d of %d trials had a session survive RevokeUser", survivors, revokeTrials)
	}
	// A new login after the revocations works.
	c := serve(t, e.m, newSession(t, e.m, "fresh", "login"), func(s *kvsession.Session) error {
		if err := s.SetUser(user); err != nil {
			return err
		}
		return s.Regenerate()
	})
	if got := values(t, e.m, c); got["fresh"] != "login" {
		t.Errorf("a login after RevokeUser reads %v", got)
	}
	if n, err := e.m.RevokeUser(t.Context(), user, false); err != nil || n != 1 {
		t.Errorf("RevokeUser of the new login = %d, %v; want 1", n, err)
	}
}

func testNoResurrectionAfterDestroy(t *testing.T, e *sessionEnv) {
	cookie := newSession(t, e.m, "a", "1")
	release := pausedRequest(t, e.m, cookie)
	if c := serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.Destroy() }); c != "deleted" {
		t.Errorf("Destroy sent cookie %q, want it cleared", c)
	}
	if c := release(); c != "" {
		t.Errorf("a save after a concurrent Destroy sent cookie %q", c)
	}
	if got := values(t, e.m, cookie); len(got) != 0 {
		t.Errorf("after Destroy and a late save, the old cookie reads %v: the session came back", got)
	}
	e.wantNoKeys(t)
}

func testNoResurrectionAfterRegenerate(t *testing.T, e *sessionEnv) {
	cookie := newSession(t, e.m, "a", "1")
	release := pausedRequest(t, e.m, cookie)
	fresh := serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.Regenerate() })
	if fresh == "" || fresh == cookie {
		t.Fatalf("Regenerate sent cookie %q", fresh)
	}
	release()
	if got := values(t, e.m, cookie); len(got) != 0 {
		t.Errorf("after Regenerate and a late save, the old ID reads %v", got)
	}
	if got := values(t, e.m, fresh); got["a"] != "1" {
		t.Errorf("the regenerated session reads %v, want its data", got)
	}
	e.wantKeys(t, 1)
}

// testRegenerateRace: 20 requests carrying the old ID race a Regenerate;
// afterwards exactly one ID carries the session. A racing request that
// arrives after the old ID died gets a fresh, empty session of its own, as
// any request with an unknown ID does; one that saved before is merged;
// one caught in between is dropped. None may keep the old ID alive or fork
// the session's data onto a second ID.
func testRegenerateRace(t *testing.T, e *sessionEnv) {
	cookie := newSession(t, e.m, "a", "1")
	var wg sync.WaitGroup
	start := make(chan struct{})
	var fresh string
	wg.Go(func() {
		<-start
		fresh = serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.Regenerate() })
	})
	racers := make([]string, 20)
	for i := range racers {
		wg.Go(func() {
			<-start
			racers[i] = serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.Set(fmt.Sprint("r", i), "x") })
		})
	}
	close(start)
	wg.Wait()
	if fresh == "" {
		t.Fatal("Regenerate sent no cookie")
	}
	if got := values(t, e.m, cookie); len(got) != 0 {
		t.Errorf("old ID still live after the race: %v", got)
	}
	if got := values(t, e.m, fresh); got["a"] != "1" {
		t.Errorf("new ID reads %v, want the session's data", got)
	}
	others := 0
	for i, c := range racers {
		if c == "" || c == cookie {
			continue
		}
		others++
		if got := values(t, e.m, c); got[fmt.Sprint("r", i)] != "x" || len(got) != 1 {
			t.Errorf("racer %d got a new session holding %v, want only its own value", i, got)
		}
	}
	e.wantKeys(t, 1+others)
}

func testInstancesShare(t *testing.T, e *sessionEnv) {
	other := e.manager(t) // a second application instance on the same store
	cookie := newSession(t, e.m, "from", "one")
	serve(t, other, cookie, func(s *kvsession.Session) error { return s.Set("by", "two") })
	if got := values(t, e.m, cookie); got["from"] != "one" || got["by"] != "two" {
		t.Errorf("instances do not share the session: %v", got)
	}
	serve(t, other, cookie, func(s *kvsession.Session) error { return s.Destroy() })
	if got := values(t, e.m, cookie); len(got) != 0 {
		t.Errorf("a session destroyed on one instance lives on the other: %v", got)
	}
}

// testLongUsers logs in with the longest user ID the manager accepts, and
// with IDs a store might mangle: each login keeps its session, is listed,
// and is revoked.
func testLongUsers(t *testing.T, e *sessionEnv) {
	users := weirdUsers(e.prefix)
	cookies := make([]string, len(users))
	for i, user := range users {
		c := newSession(t, e.m, "before", "login")
		cookies[i] = serve(t, e.m, c, func(s *kvsession.Session) error {
			if err := s.SetUser(user); err != nil {
				return err
			}
			return s.Regenerate()
		})
		if got := values(t, e.m, cookies[i]); got["before"] != "login" {
			t.Fatalf("user %d (%d bytes): the session after login holds %v, want the pre-login data", i, len(user), got)
		}
	}
	for i, user := range users {
		infos, err := e.m.UserSessions(t.Context(), user)
		if err != nil || len(infos) != 1 || infos[0].User != user {
			t.Errorf("user %d (%d bytes): UserSessions = %d sessions, %v; want 1 bound to the user", i, len(user), len(infos), err)
		}
		if n, err := e.m.RevokeUser(t.Context(), user, false); err != nil || n != 1 {
			t.Errorf("user %d (%d bytes): RevokeUser = %d, %v; want 1", i, len(user), n, err)
		}
		if got := values(t, e.m, cookies[i]); len(got) != 0 {
			t.Errorf("user %d: revoked session still reads %v", i, got)
		}
	}
}

func testUserSessions(t *testing.T, e *sessionEnv) {
	user := e.prefix + "ada"
	login := func() string {
		c := newSession(t, e.m)
		return serve(t, e.m, c, func(s *kvsession.Session) error {
			if err := s.SetUser(user); err != nil {
				return err
			}
			return s.Regenerate()
		})
	}
	cookies := []string{login(), login(), login()}
	var infos []kvsession.SessionInfo
	serveRequest(t, e.m, cookies[0], func(r *http.Request) error {
		var err error
		infos, err = e.m.UserSessions(r.Context(), user)
		return err
	})
	if len(infos) != 3 {
		t.Fatalf("UserSessions = %d sessions, want 3", len(infos))
	}
	current := 0
	for _, info := range infos {
		if info.Current {
			current++
		}
		if info.User != user || info.Created.IsZero() || info.LastSeen.IsZero() {
			t.Errorf("SessionInfo = %+v, want the user and times filled in", info)
		}
	}
	if current != 1 {
		t.Errorf("%d sessions marked current, want 1", current)
	}
	serveRequest(t, e.m, cookies[0], func(r *http.Request) error {
		n, err := e.m.RevokeUser(r.Context(), user, true)
		if n != 2 {
			t.Errorf("RevokeUser keeping the current session revoked %d, want 2", n)
		}
		return err
	})
	for i, c := range cookies {
		_, live := values(t, e.m, c)["created"]
		if live != (i == 0) {
			t.Errorf("session %d live = %v after revoking all but session 0", i, live)
		}
	}
	n, err := e.m.RevokeUser(t.Context(), user, false)
	if err != nil || n != 1 {
		t.Errorf("RevokeUser = %d, %v; want 1", n, err)
	}
	if got := values(t, e.m, cookies[0]); len(got) != 0 {
		t.Errorf("revoked session still reads %v", got)
	}
}

func (e *env) wantNoKeys(t *testing.T) { e.wantKeys(t, 0) }

// wantKeys checks the number of live records under the test's prefix,
// when the store can list them.
func (e *env) wantKeys(t *testing.T, n int) {
	t.Helper()
	ls, ok := e.store.(kvsession.Lister)
	if !ok {
		return
	}
	var keys []string
	err := ls.Keys(t.Context(), e.prefix, func(k string) error {
		if _, err := e.store.Get(t.Context(), k); err == nil {
			keys = append(keys, k)
		} else if !errors.Is(err, kvsession.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != n {
		t.Errorf("%d live records under the test's prefix, want %d", len(keys), n)
	}
}

var discardLogger = slog.New(slog.DiscardHandler)

// countingStore counts the calls that reach a store.
type countingStore struct {
	kvsession.Store
	calls atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	c.calls.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	c.calls.Add(1)
	return c.Store.Set(ctx, key, v, exp)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.calls.Add(1)
	return c.Store.Delete(ctx, key)
}

// HostileCookies are session cookie values that must never reach a store.
var HostileCookies = []string{
	"", " ", `""`, "\x00", "a\r\nSet-Cookie: x=y", "../../../../etc/passwd", "%2e%2e%2f", "ключ",
	strings.Repeat("A", 5000), strings.Repeat(".", 87), "null", "{\"id\":1}", "' OR '1'='1",
	strings.Repeat("A", 43) + "." + strings.Repeat("A", 43),
}

// testHostileCookies sends tampered and hostile cookies through the
// middleware: no 5xx, no store call, a fresh session.
func testHostileCookies(t *testing.T, e *sessionEnv) {
	counter := &countingStore{Store: e.store}
	m, err := kvsession.New(counter, kvsession.Config{Secrets: [][]byte{sessionTestKey}, KeyPrefix: e.prefix, Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	valid := strings.TrimPrefix(newSession(t, m, "secret", "s3cret"), m.CookieName()+"=")
	values := slices.Clone(HostileCookies)
	for i := range len(valid) {
		b := []byte(valid)
		b[i] ^= 0x01
		values = append(values, string(b), valid[:i])
	}
	values = append(values, valid+"A", "A"+valid)
	for _, v := range values {
		before := counter.calls.Load()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Cookie", m.CookieName()+"="+v)
		m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, err := kvsession.Get[string](kvsession.From(r), "secret")
			if err == nil {
				t.Errorf("cookie %q read the session's secret %q", v, got)
			}
		})).ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("cookie %q: status %d", v, rec.Code)
		}
		if n := counter.calls.Load() - before; n != 0 {
			t.Errorf("cookie %q: %d store calls, want 0", v, n)
		}
	}
}

// testCorruptRecords overwrites a session's record with bytes that are not
// a record: the session reads as missing, is reported, never a panic or a
// 5xx; a new write replaces it.
func testCorruptRecords(t *testing.T, e *sessionEnv) {
	var corrupt atomic.Int64
	m, err := kvsession.New(e.store, kvsession.Config{
		Secrets: [][]byte{sessionTestKey}, KeyPrefix: e.prefix, Logger: discardLogger, MaxRecordBytes: 64 << 10,
		OnEvent: func(_ context.Context, ev kvsession.Event) {
			if ev.Kind == kvsession.EventCorruptRecord {
				corrupt.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, garbage := range map[string][]byte{
		"empty":     {},
		"text":      []byte("not a record"),
		"gob":       []byte("\x0c\xff\x81\x04\x01\x02\xff\x82\x00\x01\x0c\x01\x10\x00\x00"),
		"truncated": []byte("k\x01\x80"),
		"huge":      make([]byte, 100<<10), // above MaxRecordBytes
		"pickle":    []byte("\x80\x04\x95\x00cos\nsystem\n"),
	} {
		cookie := newSession(t, m, "a", "1")
		key, err := m.StoreKey(strings.TrimPrefix(cookie, m.CookieName()+"="))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.Set(t.Context(), key, garbage, e.later()); err != nil {
			t.Fatalf("%s: Set: %v", name, err)
		}
		before := corrupt.Load()
		if got := values(t, m, cookie); len(got) != 0 {
			t.Errorf("%s: a corrupt record read as %v", name, got)
		}
		if corrupt.Load() == before {
			t.Errorf("%s: no EventCorruptRecord", name)
		}
		if c := serve(t, m, cookie, func(s *kvsession.Session) error { return s.Set("b", "2") }); c == "" || c == cookie {
			t.Errorf("%s: writing over a corrupt session sent cookie %q, want a new ID", name, c)
		}
	}
}

// testStoreTTL checks Config.NoStoreTTL both ways. By default the store
// keeps the session's expiry (its engine's TTL where it has one). With
// NoStoreTTL the record has no expiry in the store, the manager still ends
// the session at its idle deadline, and Cleanup removes it on every store
// that can list its keys.
func testStoreTTL(t *testing.T, e *sessionEnv) {
	for _, noTTL := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoStoreTTL=%v", noTTL), func(t *testing.T) {
			prefix := fmt.Sprintf("%sttl%v-", e.prefix, noTTL)
			m, err := kvsession.New(e.store, kvsession.Config{
				Secrets: [][]byte{sessionTestKey}, KeyPrefix: prefix, Now: e.clock.Now, Logger: discardLogger,
				IdleTimeout: 2 * time.Second, NoStoreTTL: noTTL,
			})
			if err != nil {
				t.Fatal(err)
			}
			cookie := newSession(t, m, "a", "1")
			key, err := m.StoreKey(strings.TrimPrefix(cookie, m.CookieName()+"="))
			if err != nil {
				t.Fatal(err)
			}
			entry, err := e.store.Get(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			if entry.ExpiresAt.IsZero() != noTTL {
				t.Errorf("the stored record's ExpiresAt = %v; want it zero exactly when NoStoreTTL is set", entry.ExpiresAt)
			}
			if got := values(t, m, cookie); got["a"] != "1" {
				t.Fatalf("the new session reads %v", got)
			}
			e.clock.Advance(3 * time.Second)
			if got := values(t, m, cookie); len(got) != 0 {
				t.Errorf("a session past its idle deadline reads %v", got)
			}
			n, err := m.Cleanup(t.Context())
			_, lists := e.store.(kvsession.Lister)
			_, sweeps := e.store.(kvsession.ExpiredDeleter)
			switch {
			case noTTL && !lists:
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("Cleanup with NoStoreTTL on a store that cannot list = %d, %v; want ErrUnsupported", n, err)
				}
				m.Revoke(t.Context(), key) // leave nothing behind
			case noTTL:
				if err != nil || n != 1 {
					t.Errorf("Cleanup with NoStoreTTL = %d, %v; want the one expired session", n, err)
				}
				if _, err := e.store.Get(t.Context(), key); !errors.Is(err, kvsession.ErrNotFound) {
					t.Errorf("the expired session is still stored after Cleanup: %v", err)
				}
			case sweeps || lists:
				if err != nil {
					t.Errorf("Cleanup: %v", err)
				}
			}
		})
	}
}

// testFlashesMerge: flash messages go through the merge. Two requests that
// each add one keep both; a request that reads the messages while another
// adds one removes only those it read.
func testFlashesMerge(t *testing.T, e *sessionEnv) {
	cookie := newSession(t, e.m)
	release := pausedChange(t, e.m, cookie, func(s *kvsession.Session) error { return s.AddFlash("from tab 1") })
	serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.AddFlash("from tab 2") })
	release()
	var got []string
	release = pausedChange(t, e.m, cookie, func(s *kvsession.Session) error {
		var err error
		got, err = kvsession.Flashes[string](s)
		return err
	})
	serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.AddFlash("from tab 3") })
	release()
	slices.Sort(got)
	if !slices.Equal(got, []string{"from tab 1", "from tab 2"}) && !slices.Equal(got, []string{"from tab 1", "from tab 2", "from tab 3"}) {
		t.Errorf("Flashes read %q, want the two added before it", got)
	}
	var rest []string
	serve(t, e.m, cookie, func(s *kvsession.Session) error {
		var err error
		rest, err = kvsession.Flashes[string](s)
		return err
	})
	if len(got)+len(rest) != 3 || (len(rest) == 1 && rest[0] != "from tab 3") {
		t.Errorf("after reading %q, Flashes = %q: every message must be read exactly once", got, rest)
	}

	// PeekFlashes then TakeFlashes, the two steps of an adapter, while
	// another request adds: only the peeked message goes.
	serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.AddFlash("peeked") })
	release = pausedChange(t, e.m, cookie, func(s *kvsession.Session) error {
		fs, err := kvsession.PeekFlashes[string](s)
		if err != nil || len(fs) != 1 {
			return fmt.Errorf("PeekFlashes = %v, %v; want one message", fs, err)
		}
		return s.TakeFlashes(fs[0].ID)
	})
	serve(t, e.m, cookie, func(s *kvsession.Session) error { return s.AddFlash("added meanwhile") })
	release()
	serve(t, e.m, cookie, func(s *kvsession.Session) error {
		var err error
		rest, err = kvsession.Flashes[string](s)
		return err
	})
	if !slices.Equal(rest, []string{"added meanwhile"}) {
		t.Errorf("after taking the peeked message, Flashes = %q, want [added meanwhile]", rest)
	}
}

// testUserCap: with Config.MaxUserSessions, a login past the cap ends the
// user's least recently seen sessions, and only those.
func testUserCap(t *testing.T, e *sessionEnv) {
	m, err := kvsession.New(e.store, kvsession.Config{
		Secrets: [][]byte{sessionTestKey}, KeyPrefix: e.prefix + "cap-", Now: e.clock.Now, Logger: discardLogger,
		MaxUserSessions: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	user := e.prefix + "capped"
	var cookies []string
	for i := range 4 {
		c := serve(t, m, newSession(t, m, "n", fmt.Sprint(i)), func(s *kvsession.Session) error {
			if err := s.SetUser(user); err != nil {
				return err
			}
			return s.Regenerate()
		})
		cookies = append(cookies, c)
		e.clock.Advance(time.Second) // LastSeen orders the sessions
		if i == 1 {
			values(t, m, cookies[0]) // a read; the oldest login is still the least recently seen
		}
	}
	infos, err := m.UserSessions(t.Context(), user)
	if err != nil || len(infos) != 2 {
		t.Fatalf("UserSessions past the cap = %d, %v; want 2", len(infos), err)
	}
	for i, c := range cookies {
		live := values(t, m, c)["n"] == fmt.Sprint(i)
		if live != (i >= 2) {
			t.Errorf("login %d live = %v; want only the two latest", i, live)
		}
	}
	if n, err := m.RevokeUser(t.Context(), user, false); err != nil || n != 2 {
		t.Errorf("RevokeUser = %d, %v; want 2", n, err)
	}
}
