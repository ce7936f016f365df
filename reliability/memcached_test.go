package reliability

import (
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memcachestore"
)

// startMemcached starts a memcached of the test's own on a spare loopback
// port. Under CI=true a missing binary is installed from Debian's
// memcached package.
func startMemcached(t *testing.T) (*daemon, string) {
	t.Helper()
	requireBinary(t, "memcached", "memcached")
	port := freePort(t)
	addr := "127.0.0.1:" + port
	argv := []string{"memcached", "-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "16"}
	if os.Geteuid() == 0 {
		argv = append(argv, "-u", "root") // memcached refuses root without -u
	}
	d := newDaemon(t, func() bool { return dialable(addr) }, argv...)
	d.start()
	return d, addr
}

// TestMemcachedRestart kills memcached during a mixed load and restarts
// it. Memcached is a cache: a restart loses every session, and users are
// logged out. While it is down, requests fail closed (503, no Set-Cookie,
// promptly, and no handler sees an empty session where there was one);
// once it answers again, every old cookie gives a new empty session and
// nothing fails: not the first request after the restart, and not after a
// second restart with no request in between, which leaves the client's
// pool full of dead connections.
func TestMemcachedRestart(t *testing.T) {
	srv, addr := startMemcached(t)
	mc := memcache.New(addr)
	mc.MaxIdleConns = 16
	mc.Timeout = time.Second
	const storeTimeout = time.Second
	hangBound := 5 * storeTimeout
	var ev events
	store, err := memcachestore.New(mc, &memcachestore.Options{Namespace: "reliability-" + randHex() + ":"})
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, store, kvsession.Config{StoreTimeout: storeTimeout}, &ev)
	a := &app{}
	ts := httptest.NewServer(m.Handler(a))
	defer ts.Close()
	const workers = 4
	c := newClient(ts.URL, 2*workers)
	defer c.close()
	ctx := t.Context()
	users := newUsers("memcached-user", 4*workers)
	mx := mix{read: 40, write: 25, pair: 10, regen: 15, destroy: 10}
	var p problems

	all2xx := func(phase string, n *atomic.Int64) func(reply) {
		return func(r reply) {
			n.Add(1)
			if !r.ok() {
				p.add("%v %s", r, phase)
			}
		}
	}

	// Up, then killed.
	var before, down, downFailed atomic.Int64
	l := startLoad(ctx, c, users, workers, 100000, mx, &p, all2xx("before the kill", &before))
	time.Sleep(time.Second)
	l.halt()
	var killDone atomic.Int64
	l = startLoad(ctx, c, users, workers, 100000, mx, &p, func(r reply) {
		if kd := killDone.Load(); kd == 0 || r.start.UnixNano() < kd {
			return // in flight at the kill
		}
		down.Add(1)
		if r.status == http.StatusServiceUnavailable {
			downFailed.Add(1)
		} else {
			p.add("%v while memcached is down, want 503", r)
		}
		if r.dur > hangBound {
			p.add("%v while memcached is down: slower than %v", r, hangBound)
		}
	})
	time.Sleep(200 * time.Millisecond)
	srv.kill()
	killDone.Store(time.Now().UnixNano())
	time.Sleep(time.Second)
	l.halt()
	if down.Load() < 20 {
		t.Errorf("only %d requests while memcached was down; the test proves little", down.Load())
	}

	// Restarted: every session is gone, and no request fails.
	restart := func() (gone, survived int) {
		for _, u := range users {
			u.markUncertain()
		}
		srv.start()
		for _, u := range users {
			if u.snapshot().state == noSession {
				continue
			}
			r := u.do(ctx, c, "read", &p)[0]
			switch {
			case !r.ok():
				p.add("%v: the first request after the restart failed", r)
			case r.res.User == "" && r.res.New:
				gone++
			default:
				survived++
			}
		}
		return gone, survived
	}
	gone1, survived1 := restart()
	var after1 atomic.Int64
	l = startLoad(ctx, c, users, workers, 100000, mx, &p, all2xx("after the restart", &after1))
	time.Sleep(1500 * time.Millisecond)
	l.halt()

	// Restarted again between two requests: the pooled connections are
	// dead, and the store must read that as an empty memcached.
	srv.kill()
	gone2, survived2 := restart()
	var after2 atomic.Int64
	l = startLoad(ctx, c, users, workers, 100000, mx, &p, all2xx("after the second restart", &after2))
	time.Sleep(time.Second)
	l.halt()

	if survived1+survived2 > 0 {
		t.Errorf("%d sessions survived a memcached restart; memcached keeps nothing across one", survived1+survived2)
	}
	p.report(t, "problems seen by the clients")
	a.bad.report(t, "requests whose handler saw what it must not")
	t.Logf("before the kill: %d requests, all 2xx; while down: %d requests, %d of them 503 (%s); handlers that got ErrLoad: %d",
		before.Load(), down.Load(), downFailed.Load(), pct(downFailed.Load(), down.Load()), a.loadErrs.Load())
	t.Logf("first restart: %d sessions gone (new empty sessions, no error), then %d requests, all 2xx", gone1, after1.Load())
	t.Logf("second restart (no request in between): %d sessions gone, then %d requests, all 2xx", gone2, after2.Load())
	t.Logf("events: %s", &ev)
}
