package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/pgstore"
	"github.com/kvsession/kvsession/storetest"
)

const postgresEnv = "KVSESSION_TEST_POSTGRES_DSN"

// TestPostgresTerminatedMidLoad ends the pool's server connections with
// pg_terminate_backend, again and again, while several sessions take
// concurrent writes (two writers per session, each setting keys of its
// own, so that compare-and-swap conflicts and merges happen too). Requests
// may fail while that goes on, with a 503 and no Set-Cookie; every write
// that a request acknowledged (a 200 after setting a value) must be in the
// session afterwards, with its value; a session never holds a value that
// nobody wrote to it; and once the terminations stop, the pool has
// recovered: every request succeeds.
func TestPostgresTerminatedMidLoad(t *testing.T) {
	dsn := storetest.ServerEnv(t, postgresEnv)
	ctx := t.Context()
	appName := "kvsession-reliability-" + randHex()
	table := "kvsession_reliability_" + randHex()

	// The table is dropped through a connection of its own, so that the
	// cleanup works whatever happened to the pool.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping %s: %v", table, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %q, %q`, table, table+"_users")); err != nil {
			t.Errorf("dropping %s: %v", table, err)
		}
	})
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = appName // the terminations' only target
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(pool, &pgstore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateSchema(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// terminate ends every backend of the pool and returns how many.
	terminate := func() int {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND pid <> pg_backend_pid()`, appName).Scan(&n); err != nil {
			t.Errorf("pg_terminate_backend: %v", err)
		}
		return n
	}

	const storeTimeout = 3 * time.Second
	hangBound := 5 * storeTimeout
	var ev events
	m := newManager(t, store, kvsession.Config{StoreTimeout: storeTimeout}, &ev)
	a := &app{}
	ts := httptest.NewServer(m.Handler(a))
	defer ts.Close()
	const sessions, writersPer, writesPer = 6, 2, 400
	c := newClient(ts.URL, sessions*writersPer)
	defer c.close()

	type session struct {
		name, cookie string
		mu           sync.Mutex
		acked        map[string]string // key -> value, for writes that got a 200
		unacked      map[string]string // writes that failed: they may or may not have landed
	}
	ss := make([]*session, sessions)
	for i := range ss {
		s := &session{name: fmt.Sprintf("pg-user-%d", i), acked: map[string]string{}, unacked: map[string]string{}}
		r := c.do(ctx, request{op: "login", params: []string{"user", s.name}})
		if !r.ok() || r.cookie == nil {
			t.Fatalf("login before the terminations: %v", r)
		}
		s.cookie = r.cookie.Value
		ss[i] = s
	}

	var p problems
	var okN, failedN atomic.Int64
	set := func(s *session, key, val string) bool {
		r := c.do(ctx, request{op: "set", cookie: s.cookie, expect: s.name, params: []string{"k", key, "v", val}})
		if r.dur > hangBound {
			p.add("%v: slower than %v", r, hangBound)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.ok() {
			okN.Add(1)
			s.acked[key] = val
			if r.cookie != nil && r.cookie.Value != s.cookie {
				p.add("a write changed the cookie of %s", s.name)
			}
			return true
		}
		failedN.Add(1)
		s.unacked[key] = val
		if r.status != http.StatusServiceUnavailable {
			p.add("%v, want 200 or 503", r)
		}
		if len(r.setCookies) > 0 {
			p.add("%v with Set-Cookie %q", r, r.setCookies)
		}
		return false
	}

	// The write load, bounded in count and time, and the terminations
	// during it.
	deadline := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	for _, s := range ss {
		for w := range writersPer {
			wg.Go(func() {
				for i := range writesPer {
					if time.Now().After(deadline) || ctx.Err() != nil {
						return
					}
					set(s, fmt.Sprintf("w%d-%d", w, i), randHex())
				}
			})
		}
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	rounds, hit, killed := 0, 0, 0
loop:
	for rounds < 60 {
		select {
		case <-writersDone:
			break loop
		case <-time.After(100 * time.Millisecond):
		}
		n := terminate()
		rounds++
		killed += n
		if n > 0 {
			hit++
		}
	}
	<-writersDone
	if hit < 3 {
		t.Errorf("only %d of %d termination rounds found a pool connection to end; the test proves little", hit, rounds)
	}

	// The pool recovers: end its connections once more, wait until they
	// are gone, and every request must succeed (the store retries a
	// statement on a connection the server ended).
	terminate()
	for i := 0; ; i++ {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, appName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if i == 500 {
			t.Fatalf("%d backends of the pool still there 5s after pg_terminate_backend", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	recovered := 0
	for _, s := range ss {
		for i := range 3 {
			if set(s, fmt.Sprintf("after-%d", i), randHex()) {
				recovered++
			} else {
				p.add("a write after the terminations stopped failed: the pool did not recover")
			}
		}
	}

	// Every acknowledged write is there.
	lost, landed := 0, 0
	for _, s := range ss {
		r := c.do(ctx, request{op: "dump", cookie: s.cookie, expect: s.name})
		if !r.ok() {
			t.Fatalf("dump of %s: %v", s.name, r)
		}
		for k, v := range s.acked {
			if got, ok := r.res.Vals[k]; !ok || got != jsonString(v) {
				lost++
				p.add("%s: the acknowledged write %s=%s reads as %s (present: %v): lost", s.name, k, v, got, ok)
			}
		}
		for k, got := range r.res.Vals {
			_, ackd := s.acked[k]
			switch v, unackd := s.unacked[k]; {
			case k == "user" || k == "n" || ackd:
			case unackd && got == jsonString(v):
				landed++
			default:
				p.add("%s holds %s=%s, which no request wrote to it", s.name, k, got)
			}
		}
	}

	p.report(t, "problems")
	a.bad.report(t, "requests whose handler saw what it must not")
	t.Logf("%d termination rounds ended %d backends (%d rounds found some) during %d writes: %d acknowledged (%s), %d failed with 503, %d of those landed anyway",
		rounds, killed, hit, okN.Load()+failedN.Load(), okN.Load(), pct(okN.Load(), okN.Load()+failedN.Load()), failedN.Load(), landed)
	t.Logf("acknowledged writes lost: %d; after the terminations stopped: %d of %d writes succeeded", lost, recovered, 3*sessions)
	t.Logf("events: %s", &ev)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
