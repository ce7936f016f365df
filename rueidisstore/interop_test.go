package rueidisstore_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/kvsession/kvsession/rueidisstore"
	"github.com/kvsession/kvsession/storetest"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// The two Redis stores share the key layout, the record format and the
// scripts: either reads, changes and deletes what the other wrote.

func goRedisClient(t *testing.T, cluster bool) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if cluster {
		addrs := strings.Split(storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_CLUSTER_ADDRS"), ",")
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	} else {
		c = redis.NewClient(&redis.Options{Addr: storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR"), ContextTimeoutEnabled: true})
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestInteropRedisstore(t *testing.T)        { testInterop(t, false) }
func TestClusterInteropRedisstore(t *testing.T) { testInterop(t, true) }

func testInterop(t *testing.T, cluster bool) {
	var (
		rc     rueidis.Client
		prefix string
	)
	if cluster {
		rc, prefix = newClusterClient(t)
	} else {
		rc, prefix = newClient(t)
	}
	gs, err := redisstore.New(goRedisClient(t, cluster), &redisstore.Options{Namespace: prefix})
	if err != nil {
		t.Fatal(err)
	}
	for _, cacheTTL := range []time.Duration{0, testCacheTTL} {
		rs := newStore(t, rc, &rueidisstore.Options{Namespace: prefix, CacheTTL: cacheTTL})
		for _, p := range []struct {
			name string
			a, b kvsession.Store
		}{{"redisstore-to-rueidisstore", gs, rs}, {"rueidisstore-to-redisstore", rs, gs}} {
			t.Run(fmt.Sprintf("%s/CacheTTL=%v", p.name, cacheTTL), func(t *testing.T) {
				interop(t, p.a, p.b, cacheTTL)
			})
		}
	}
}

// interop writes with a and reads, changes and deletes with b. Where b
// caches, it reads what a changed after waiting out the bound.
func interop(t *testing.T, a, b kvsession.Store, bound time.Duration) {
	ctx := t.Context()
	k := "interop-" + rand8()
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := a.Set(ctx, k, []byte("from a"), exp); err != nil {
		t.Fatal(err)
	}
	ea, err := a.Get(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.Get(ctx, k)
	if err != nil || string(eb.Value) != "from a" || !eb.ExpiresAt.Equal(exp) || eb.Version != ea.Version {
		t.Fatalf("b.Get = %q, %v, version %x, %v; want a's record %q, %v, version %x", eb.Value, eb.ExpiresAt, eb.Version, err, "from a", exp, ea.Version)
	}
	// b changes it conditionally on a's version; a sees the change, and
	// a's stale swap is refused with b's record.
	if err := b.CompareAndSwap(ctx, k, []byte("from b"), exp, ea.Version); err != nil {
		t.Fatalf("b.CompareAndSwap on a's version: %v", err)
	}
	if e, err := a.Get(ctx, k); err != nil || string(e.Value) != "from b" {
		t.Fatalf("a.Get after b's swap = %q, %v", e.Value, err)
	}
	var ce *kvsession.ConflictError
	if err := a.CompareAndSwap(ctx, k, []byte("stale"), exp, ea.Version); !errors.As(err, &ce) || string(ce.Current.Value) != "from b" {
		t.Fatalf("a's stale CompareAndSwap = %v; want a ConflictError holding b's record", err)
	}
	// a touches; b reads the new expiry (after the bound, if it caches).
	later := exp.Add(time.Hour)
	if err := a.Touch(ctx, k, later); err != nil {
		t.Fatal(err)
	}
	time.Sleep(bound)
	e, err := b.Get(ctx, k)
	if err != nil || !e.ExpiresAt.Equal(later) || string(e.Value) != "from b" {
		t.Fatalf("b.Get after a's Touch = %q, %v, %v; want %v", e.Value, e.ExpiresAt, err, later)
	}
	// The user index is shared.
	user := "user-" + rand8()
	if err := a.AddUserKey(ctx, user, k, later); err != nil {
		t.Fatal(err)
	}
	if keys, err := b.UserKeys(ctx, user); err != nil || !slices.Equal(keys, []string{k}) {
		t.Fatalf("b.UserKeys = %q, %v; want [%q]", keys, err, k)
	}
	if err := b.RemoveUserKey(ctx, user, k); err != nil {
		t.Fatal(err)
	}
	if keys, err := a.UserKeys(ctx, user); err != nil || len(keys) != 0 {
		t.Fatalf("a.UserKeys after b's remove = %q, %v", keys, err)
	}
	// b lists what a wrote.
	var listed []string
	if err := b.(kvsession.Lister).Keys(ctx, k, func(key string) error {
		listed = append(listed, key)
		return nil
	}); err != nil || !slices.Contains(listed, k) {
		t.Fatalf("b.Keys = %q, %v; want %q listed", listed, err, k)
	}
	// a deletes on b's version; b then reads nothing.
	if err := a.CompareAndDelete(ctx, k, e.Version); err != nil {
		t.Fatal(err)
	}
	time.Sleep(bound)
	if _, err := b.Get(ctx, k); !errors.Is(err, kvsession.ErrNotFound) {
		t.Fatalf("b.Get after a's delete = %v; want ErrNotFound", err)
	}
}

func rand8() string { return rand.Text()[:8] }

var sessionKey = []byte("rueidisstore-test-key-0123456789")

func manager(t *testing.T, s kvsession.Store, prefix string) *kvsession.Manager {
	t.Helper()
	m, err := kvsession.New(s, kvsession.Config{Secrets: [][]byte{sessionKey}, KeyPrefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serve runs fn as a handler under m with cookie and returns the response's
// session cookie ("" if none, "deleted" if cleared).
func serve(t *testing.T, m *kvsession.Manager, cookie string, fn func(s *kvsession.Session) error) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(kvsession.From(r)); err != nil && !errors.Is(err, kvsession.ErrEnded) {
			t.Errorf("handler: %v", err)
		}
	})).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
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

// read returns the session's "v" through cookie, "" if it has none.
func read(t *testing.T, m *kvsession.Manager, cookie string) string {
	t.Helper()
	var v string
	serve(t, m, cookie, func(s *kvsession.Session) error {
		var err error
		v, err = kvsession.Get[string](s, "v")
		if errors.Is(err, kvsession.ErrNoValue) {
			return nil
		}
		return err
	})
	return v
}

// TestSessionsAcrossInstances: two application instances, each with a
// caching store on a client of its own, and a third on redisstore. A
// session logged out or revoked on one is refused by the others for writes
// at once, and for reads once the cache bound has passed; a revocation
// holds even for a stolen cookie that regenerates on an instance whose
// cache still holds the session.
func TestSessionsAcrossInstances(t *testing.T) {
	ca, prefix := newClient(t)
	a := manager(t, newStore(t, ca, &rueidisstore.Options{Namespace: prefix, CacheTTL: testCacheTTL}), "app-")
	b := manager(t, newStore(t, another(t, false), &rueidisstore.Options{Namespace: prefix, CacheTTL: testCacheTTL}), "app-")
	gs, err := redisstore.New(goRedisClient(t, false), &redisstore.Options{Namespace: prefix})
	if err != nil {
		t.Fatal(err)
	}
	g := manager(t, gs, "app-")

	login := func(m *kvsession.Manager, user string) string {
		c := serve(t, m, "", func(s *kvsession.Session) error { return s.Set("v", "secret") })
		return serve(t, m, c, func(s *kvsession.Session) error {
			if err := s.SetUser(user); err != nil {
				return err
			}
			return s.Regenerate()
		})
	}

	// Shared both ways, and with redisstore.
	c := login(a, "ada")
	if got := read(t, b, c); got != "secret" {
		t.Fatalf("instance b reads %q of a's session", got)
	}
	serve(t, g, c, func(s *kvsession.Session) error { return s.Set("v", "by redisstore") })
	time.Sleep(testCacheTTL)
	if got := read(t, a, c); got != "by redisstore" {
		t.Fatalf("after the bound, a reads %q; want redisstore's write", got)
	}

	// Destroy on b: a refuses at once to save the session, and reads it
	// as gone once the bound has passed.
	read(t, a, c) // a's cache holds it
	serve(t, b, c, func(s *kvsession.Session) error { return s.Destroy() })
	serve(t, a, c, func(s *kvsession.Session) error { return s.Set("v", "late write") })
	time.Sleep(testCacheTTL)
	if got := read(t, a, c); got != "" {
		t.Fatalf("a destroyed session reads %q on another instance after the cache bound", got)
	}
	if got := read(t, g, c); got != "" {
		t.Fatalf("a late write on a caching instance resurrected a destroyed session: %q", got)
	}

	// RevokeUser on b while a's cache holds the session: a stolen cookie
	// regenerating on a does not outlive the revocation.
	c = login(a, "bob")
	read(t, a, c)
	if n, err := b.RevokeUser(t.Context(), "bob", false); err != nil || n != 1 {
		t.Fatalf("RevokeUser = %d, %v; want 1", n, err)
	}
	fresh := serve(t, a, c, func(s *kvsession.Session) error { return s.Regenerate() })
	time.Sleep(testCacheTTL)
	for _, cookie := range []string{c, fresh} {
		if cookie == "" || cookie == "deleted" {
			continue
		}
		if got := read(t, a, cookie); got != "" {
			t.Errorf("a revoked session reads %q on a caching instance after the bound", got)
		}
		if got := read(t, g, cookie); got != "" {
			t.Errorf("a revoked session reads %q on redisstore", got)
		}
	}
	if infos, err := g.UserSessions(t.Context(), "bob"); err != nil || len(infos) != 0 {
		t.Errorf("UserSessions after RevokeUser = %d, %v; want none", len(infos), err)
	}
}

// TestCacheMarksAndOwnWrites: with caching on, a store reads its own
// writes at once, and reads revocation marks from the server, whatever
// another instance did just before.
func TestCacheMarksAndOwnWrites(t *testing.T) {
	ca, prefix := newClient(t)
	a := newStore(t, ca, &rueidisstore.Options{Namespace: prefix, CacheTTL: rueidisstore.MaxCacheTTL})
	b := newStore(t, another(t, false), &rueidisstore.Options{Namespace: prefix})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	mark := "app-!r:" + rand8()
	for i := range 100 {
		v := []byte{byte(i)}
		if err := b.Set(ctx, mark, v, exp); err != nil {
			t.Fatal(err)
		}
		if e, err := a.Get(ctx, mark); err != nil || string(e.Value) != string(v) {
			t.Fatalf("round %d: a revocation mark read %v, %v right after another instance wrote %v", i, e.Value, err, v)
		}
		if err := a.Set(ctx, "own", v, exp); err != nil {
			t.Fatal(err)
		}
		if e, err := a.Get(ctx, "own"); err != nil || string(e.Value) != string(v) {
			t.Fatalf("round %d: a store read %v, %v right after writing %v itself", i, e.Value, err, v)
		}
		if err := a.Delete(ctx, "own"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Get(ctx, "own"); !errors.Is(err, kvsession.ErrNotFound) {
			t.Fatalf("round %d: a store read %v right after deleting the record itself", i, err)
		}
	}
}

// TestNoLostUpdatesAcrossInstances: concurrent requests on one session,
// spread over two instances whose caches both hold it, each setting a key
// of its own: every update lands. A stale cached read costs a failed
// compare-and-swap and a merge, never an update.
func TestNoLostUpdatesAcrossInstances(t *testing.T) {
	ca, prefix := newClient(t)
	a := manager(t, newStore(t, ca, &rueidisstore.Options{Namespace: prefix, CacheTTL: rueidisstore.MaxCacheTTL}), "app-")
	b := manager(t, newStore(t, another(t, false), &rueidisstore.Options{Namespace: prefix, CacheTTL: rueidisstore.MaxCacheTTL}), "app-")
	const writers = 40
	for round := range 10 {
		cookie := serve(t, a, "", func(s *kvsession.Session) error { return s.Set("v", "x") })
		read(t, a, cookie) // both caches hold the session
		read(t, b, cookie)
		var wg sync.WaitGroup
		for i := range writers {
			m := a
			if i%2 == 1 {
				m = b
			}
			wg.Go(func() {
				serve(t, m, cookie, func(s *kvsession.Session) error { return s.Set(fmt.Sprintf("k%02d", i), i) })
			})
		}
		wg.Wait()
		// Read through a store without a cache: the server's record.
		lost := 0
		g := manager(t, newStore(t, ca, &rueidisstore.Options{Namespace: prefix}), "app-")
		serve(t, g, cookie, func(s *kvsession.Session) error {
			for i := range writers {
				if n, err := kvsession.Get[int](s, fmt.Sprintf("k%02d", i)); err != nil || n != i {
					lost++
				}
			}
			return nil
		})
		if lost > 0 {
			t.Fatalf("round %d: %d of %d concurrent updates over two caching instances lost", round, lost, writers)
		}
	}
}
