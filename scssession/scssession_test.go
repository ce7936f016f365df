package scssession_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/kvsession/kvsession/scssession"
	"github.com/kvsession/kvsession/storetest"
	"github.com/redis/go-redis/v9"
)

var (
	_ scs.Store    = (*scssession.Store)(nil)
	_ scs.CtxStore = (*scssession.Store)(nil)
)

// clock is a settable clock for memstore.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// app is an scs application on an httptest server, with a client that
// keeps cookies.
type app struct {
	t      *testing.T
	sm     *scs.SessionManager
	srv    *httptest.Server
	client *http.Client
}

func newApp(t *testing.T, st scs.Store, lifetime time.Duration) *app {
	sm := scs.New()
	sm.Store = st
	sm.Lifetime = lifetime
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "msg", r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, sm.GetString(r.Context(), "msg"))
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &app{t: t, sm: sm, srv: srv, client: &http.Client{Jar: jar}}
}

func (a *app) do(path string) (int, string) {
	a.t.Helper()
	res, err := a.client.Get(a.srv.URL + path)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func (a *app) get() string {
	a.t.Helper()
	code, body := a.do("/get")
	if code != http.StatusOK {
		a.t.Fatalf("GET /get: status %d, %q", code, body)
	}
	return body
}

// token returns the session token the client holds, or "".
func (a *app) token() string {
	u, _ := url.Parse(a.srv.URL)
	for _, c := range a.client.Jar.Cookies(u) {
		if c.Name == a.sm.Cookie.Name {
			return c.Value
		}
	}
	return ""
}

// scenarios runs scs's own session manager over the adapter: put, get,
// renew, destroy.
func scenarios(t *testing.T, st *scssession.Store, kv kvsession.Store) {
	a := newApp(t, st, time.Hour)
	if got := a.get(); got != "" {
		t.Fatalf("a new session holds %q", got)
	}
	if code, _ := a.do("/put?v=hello"); code != http.StatusOK {
		t.Fatalf("put: status %d", code)
	}
	tok := a.token()
	if tok == "" {
		t.Fatal("no session cookie after put")
	}
	if got := a.get(); got != "hello" {
		t.Fatalf("get after put = %q, want hello", got)
	}
	ctx := context.Background()
	if _, err := kv.Get(ctx, tok); !errors.Is(err, kvsession.ErrNotFound) {
		t.Fatalf("the raw token is a store key: %v", err)
	}
	if _, err := kv.Get(ctx, st.StoreKey(tok)); err != nil {
		t.Fatalf("no record under the token's hash: %v", err)
	}

	// Renew: a new token, the data kept, the old token dead.
	if code, _ := a.do("/renew"); code != http.StatusOK {
		t.Fatalf("renew: status %d", code)
	}
	tok2 := a.token()
	if tok2 == "" || tok2 == tok {
		t.Fatal("renew did not change the token")
	}
	if got := a.get(); got != "hello" {
		t.Fatalf("get after renew = %q, want hello", got)
	}
	if _, found, err := st.Find(tok); err != nil || found {
		t.Fatalf("old token after renew: found %v, err %v", found, err)
	}

	// Destroy: the record gone; replaying the cookie gives an empty session.
	if code, _ := a.do("/destroy"); code != http.StatusOK {
		t.Fatalf("destroy: status %d", code)
	}
	if _, found, err := st.Find(tok2); err != nil || found {
		t.Fatalf("token after destroy: found %v, err %v", found, err)
	}
	u, _ := url.Parse(a.srv.URL)
	a.client.Jar.SetCookies(u, []*http.Cookie{{Name: a.sm.Cookie.Name, Value: tok2, Path: "/"}})
	if got := a.get(); got != "" {
		t.Fatalf("replayed cookie after destroy holds %q", got)
	}
}

func TestMemstore(t *testing.T) {
	kv := memstore.New(nil)
	st, err := scssession.New(kv, scssession.Config{})
	if err != nil {
		t.Fatal(err)
	}
	scenarios(t, st, kv)
}

func TestMemstoreExpiry(t *testing.T) {
	clk := &clock{now: time.Now()}
	kv := memstore.New(&memstore.Options{Now: clk.Now})
	st, err := scssession.New(kv, scssession.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, st, time.Hour)
	a.do("/put?v=hello")
	if got := a.get(); got != "hello" {
		t.Fatalf("get = %q, want hello", got)
	}
	clk.Add(59 * time.Minute)
	if got := a.get(); got != "hello" {
		t.Fatalf("get before the lifetime's end = %q, want hello", got)
	}
	clk.Add(2 * time.Minute)
	if got := a.get(); got != "" {
		t.Fatalf("get after the lifetime's end = %q, want an empty session", got)
	}
}

func TestKeyPrefix(t *testing.T) {
	kv := memstore.New(nil)
	a, _ := scssession.New(kv, scssession.Config{KeyPrefix: "app1:"})
	b, _ := scssession.New(kv, scssession.Config{KeyPrefix: "app2:"})
	ctx := context.Background()
	if err := a.CommitCtx(ctx, "tok", []byte("A"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, found, err := b.FindCtx(ctx, "tok"); err != nil || found {
		t.Fatalf("another prefix sees the record: found %v, err %v", found, err)
	}
	if !strings.HasPrefix(a.StoreKey("tok"), "app1:") || strings.Contains(a.StoreKey("tok"), "tok") {
		t.Fatalf("StoreKey(tok) = %q", a.StoreKey("tok"))
	}
	if _, err := scssession.New(kv, scssession.Config{KeyPrefix: strings.Repeat("x", 101)}); err == nil {
		t.Fatal("a 101-byte prefix was accepted")
	}
	if _, err := scssession.New(nil, scssession.Config{}); err == nil {
		t.Fatal("a nil store was accepted")
	}
}

// failing is a store whose Get fails, for fault injection.
type failing struct{ kvsession.Store }

var errDown = errors.New("store down")

func (failing) Get(context.Context, string) (kvsession.Entry, error) {
	return kvsession.Entry{}, errDown
}

func TestStoreErrorNotSwallowed(t *testing.T) {
	st, _ := scssession.New(failing{memstore.New(nil)}, scssession.Config{})
	_, found, err := st.FindCtx(context.Background(), "tok")
	if !errors.Is(err, errDown) || found {
		t.Fatalf("FindCtx = found %v, err %v; want the store's error", found, err)
	}
	a := newApp(t, st, time.Hour)
	u, _ := url.Parse(a.srv.URL)
	a.client.Jar.SetCookies(u, []*http.Cookie{{Name: a.sm.Cookie.Name, Value: "tok", Path: "/"}})
	if code, _ := a.do("/get"); code != http.StatusInternalServerError {
		t.Fatalf("a failing store answered %d, want 500", code)
	}
}

func TestCleanup(t *testing.T) {
	clk := &clock{now: time.Now()}
	kv := memstore.New(&memstore.Options{Now: clk.Now})
	st, _ := scssession.New(kv, scssession.Config{})
	ctx := context.Background()
	st.CommitCtx(ctx, "a", []byte("x"), clk.Now().Add(time.Minute))
	st.CommitCtx(ctx, "b", []byte("x"), clk.Now().Add(time.Hour))
	clk.Add(2 * time.Minute)
	n, err := st.Cleanup(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Cleanup = %d, %v; want 1, nil", n, err)
	}
	if _, found, _ := st.FindCtx(ctx, "b"); !found {
		t.Fatal("Cleanup removed a live record")
	}
	st2, _ := scssession.New(noSweep{kv}, scssession.Config{})
	if _, err := st2.Cleanup(ctx); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Cleanup on a store without DeleteExpired: %v", err)
	}
}

// noSweep hides the ExpiredDeleter of the store it wraps.
type noSweep struct{ kvsession.Store }

func newRedis(t *testing.T) (*redisstore.Store, *redis.Client, string) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("KVSESSION_TEST_REDIS_ADDR=%s: %v", addr, err)
	}
	prefix := fmt.Sprintf("kvsession-test-scssession-%d-%s:", time.Now().UnixNano(), rand.Text()[:8])
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
	return kv, c, prefix
}

func TestRedis(t *testing.T) {
	kv, _, _ := newRedis(t)
	st, err := scssession.New(kv, scssession.Config{})
	if err != nil {
		t.Fatal(err)
	}
	scenarios(t, st, kv)
}

// TestRedisExpiry checks that the expiry scs passes becomes Redis's TTL,
// without waiting for it.
func TestRedisExpiry(t *testing.T) {
	kv, c, prefix := newRedis(t)
	st, _ := scssession.New(kv, scssession.Config{})
	a := newApp(t, st, 10*time.Minute)
	a.do("/put?v=hello")
	tok := a.token()
	var keys []string
	ctx := context.Background()
	it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if len(keys) != 1 {
		t.Fatalf("%d keys under the test prefix, want 1: %q", len(keys), keys)
	}
	if strings.Contains(keys[0], tok) {
		t.Fatalf("the raw token is in the Redis key %q", keys[0])
	}
	ttl, err := c.PTTL(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("Redis TTL = %v, want about the 10m lifetime", ttl)
	}
}
