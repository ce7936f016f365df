package reliability

import (
	"context"
	"fmt"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/kvsession/kvsession/storetest"
)

// soakDuration is how long each soak runs: KVSESSION_SOAK (a Go duration,
// such as 10m), or 20s under CI=true and 3s otherwise.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	if v := os.Getenv("KVSESSION_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			t.Fatalf("KVSESSION_SOAK=%q: want a duration of at least 1s, such as 10m", v)
		}
		return d
	}
	if isCI() {
		return 20 * time.Second
	}
	return 3 * time.Second
}

// TestSoak runs a mixed load (new sessions, reads, writes, concurrent
// writes to one session, regenerations, destructions, requests that never
// touch the session) over real HTTP on loopback against the memory store
// and against Redis, for KVSESSION_SOAK each. No request may fail; the
// heap and the number of goroutines must stay flat after the warm-up; and
// it reports what the session layer costs per request, measured in the
// server around the same handler with and without the middleware.
func TestSoak(t *testing.T) {
	d := soakDuration(t)
	t.Run("memory", func(t *testing.T) {
		runSoak(t, memstore.New(nil), d)
	})
	t.Run("redis", func(t *testing.T) {
		addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
		rc := newRedisClient(addr)
		t.Cleanup(func() { rc.Close() })
		prefix := "kvsession-reliability-" + randHex() + ":"
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n, err := deleteKeys(ctx, rc, prefix)
			if err != nil {
				t.Errorf("removing the soak's keys: %v", err)
			}
			if left, err := deleteKeys(ctx, rc, prefix); err != nil || left != 0 {
				t.Errorf("%d keys under %s left after the clean-up: %v", left, prefix, err)
			}
			t.Logf("removed the %d Redis keys the soak left (live sessions and user indexes)", n)
		})
		store, err := redisstore.New(rc, &redisstore.Options{Namespace: prefix})
		if err != nil {
			t.Fatal(err)
		}
		runSoak(t, store, d)
	})
}

// deleteKeys deletes every key under prefix (which holds no glob
// character) and returns how many there were.
func deleteKeys(ctx context.Context, rc *redis.Client, prefix string) (int, error) {
	n := 0
	var cursor uint64
	for range 100000 {
		keys, next, err := rc.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return n, err
		}
		if len(keys) > 0 {
			if err := rc.Del(ctx, keys...).Err(); err != nil {
				return n, err
			}
			n += len(keys)
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
	return n, fmt.Errorf("SCAN did not finish")
}

// sample is the process's live heap and goroutines at one instant.
type sample struct {
	at         time.Duration // since the load started
	heap       uint64        // HeapAlloc right after a GC
	goroutines int
}

func runSoak(t *testing.T, store kvsession.Store, d time.Duration) {
	ctx := t.Context()
	goroutinesBefore := runtime.NumGoroutine()
	var ev events
	m := newManager(t, store, kvsession.Config{StoreTimeout: 2 * time.Second}, &ev)
	a := &app{}

	// Per request, in the server: the whole wrapped handler (total), the
	// application handler that the middleware calls (next), and within it
	// the time spent in session calls, the save included. The handler
	// without the middleware costs next - session (its own work); the
	// session layer costs total - (next - session).
	var hTotal, hOwn, hSession, hWrapper, hClient hist
	var measuring atomic.Bool
	wrapped := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := r.Context().Value(timingKey{}).(*reqTiming)
		t0 := time.Now()
		a.ServeHTTP(w, r)
		rt.next = time.Since(t0)
	}))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := &reqTiming{}
		r = r.WithContext(context.WithValue(r.Context(), timingKey{}, rt))
		t0 := time.Now()
		wrapped.ServeHTTP(w, r)
		total := time.Since(t0)
		if measuring.Load() {
			own := rt.next - rt.session
			hTotal.add(total)
			hOwn.add(own)
			hSession.add(total - own)
			hWrapper.add(total - rt.next)
		}
	}))
	const workers = 8
	c := newClient(ts.URL, 2*workers)
	users := newUsers("soak-user", 4*workers)
	mx := mix{read: 40, write: 20, pair: 8, regen: 10, destroy: 7, anon: 15}
	var p problems
	var reqs, failed atomic.Int64
	var opsMu sync.Mutex
	ops := map[string]int{}

	warmup := max(d/10, 300*time.Millisecond)
	interval := max(d/24, 250*time.Millisecond)
	var samples []sample
	samplerDone := make(chan struct{})
	stopSampler := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stopSampler:
				return
			case <-tick.C:
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			samples = append(samples, sample{time.Since(start), ms.HeapAlloc, runtime.NumGoroutine()})
		}
	}()
	l := startLoad(ctx, c, users, workers, 100_000_000, mx, &p, func(r reply) {
		reqs.Add(1)
		if !r.ok() {
			failed.Add(1)
			p.add("%v", r)
		}
		if measuring.Load() {
			hClient.add(r.dur)
			opsMu.Lock()
			ops[r.op]++
			opsMu.Unlock()
		}
	})
	time.Sleep(warmup)
	measuring.Store(true)
	measured := time.Now()
	time.Sleep(d - warmup)
	measuring.Store(false)
	elapsed := time.Since(measured)
	l.halt()
	close(stopSampler)
	<-samplerDone
	ts.Close()
	c.close()

	p.report(t, "failed requests or wrong answers")
	a.bad.report(t, "requests whose handler saw what it must not")
	if reqs.Load() == 0 {
		t.Fatal("no request was made")
	}

	// Flat after the warm-up: the second half against the first.
	var first, second []sample
	for _, s := range samples {
		switch {
		case s.at < warmup:
		case s.at < d/2:
			first = append(first, s)
		default:
			second = append(second, s)
		}
	}
	if len(first) == 0 || len(second) == 0 {
		t.Fatalf("too few samples (%d) to compare the halves", len(samples))
	}
	peak := func(ss []sample) (heap uint64, g int) {
		for _, s := range ss {
			heap, g = max(heap, s.heap), max(g, s.goroutines)
		}
		return heap, g
	}
	heap1, g1 := peak(first)
	heap2, g2 := peak(second)
	// Twice the first half's peak, and at least 1 MiB more: a live heap
	// this small moves by a few hundred KiB with the requests in flight.
	if limit := heap1 + max(heap1, 1<<20); heap2 > limit {
		t.Errorf("live heap grew from %s (first half) to %s (second half), above %s: a leak", mib(heap1), mib(heap2), mib(limit))
	}
	if g2 > g1+20 {
		t.Errorf("goroutines grew from %d (first half) to %d (second half): a leak", g1, g2)
	}
	// Once the server and the client are closed, the goroutines are gone.
	var gAfter int
	for i := range 100 {
		if gAfter = runtime.NumGoroutine(); gAfter <= goroutinesBefore+5 {
			break
		}
		if i == 99 {
			t.Errorf("%d goroutines 2s after the soak ended, %d before it began", gAfter, goroutinesBefore)
		}
		time.Sleep(20 * time.Millisecond)
	}

	n := reqs.Load()
	t.Logf("%v soak, %d workers on loopback HTTP: %d requests (%.0f/s while measured), %d failed; requests measured by op: %v",
		d, workers, n, float64(hClient.total())/elapsed.Seconds(), failed.Load(), ops)
	t.Logf("live heap after GC, peak: %s in the first half, %s in the second; goroutines, peak: %d then %d (%d before, %d after)",
		mib(heap1), mib(heap2), g1, g2, goroutinesBefore, gAfter)
	t.Logf("per request in the server, p50 / p99: handler with the middleware %s / %s; the same handler without it %s / %s",
		hTotal.q(0.5), hTotal.q(0.99), hOwn.q(0.5), hOwn.q(0.99))
	t.Logf("middleware overhead, p50 / p99: %s / %s in all (store calls included); %s / %s outside the handler (cookie check, wrapper, context)",
		hSession.q(0.5), hSession.q(0.99), hWrapper.q(0.5), hWrapper.q(0.99))
	t.Logf("seen by the client (loopback HTTP round trip), p50 / p99: %s / %s", hClient.q(0.5), hClient.q(0.99))
	t.Logf("events: %s", &ev)
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// hist is a histogram of durations with fixed memory (so that a long soak
// does not grow the heap it watches): 16 buckets per power of two, so a
// quantile is off by at most 1/16.
type hist struct{ counts [64 * 16]atomic.Int64 }

func bucket(ns int64) int {
	if ns < 16 {
		return int(max(ns, 0))
	}
	shift := bits.Len64(uint64(ns)) - 5
	return shift*16 + int(ns>>shift)
}

func bucketMid(i int) time.Duration {
	if i < 32 {
		return time.Duration(i)
	}
	shift, mant := i/16-1, int64(i%16+16)
	return time.Duration(mant<<shift + (int64(1)<<shift)/2)
}

func (h *hist) add(d time.Duration) { h.counts[min(bucket(int64(d)), len(h.counts)-1)].Add(1) }

func (h *hist) total() int64 {
	var n int64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// q returns the quantile q (0 < q < 1), rounded for display.
func (h *hist) q(q float64) string {
	n := h.total()
	if n == 0 {
		return "n/a"
	}
	target := int64(q*float64(n)) + 1
	var seen int64
	for i := range h.counts {
		if seen += h.counts[i].Load(); seen >= target {
			d := bucketMid(i)
			switch {
			case d < 10*time.Microsecond:
				return d.Round(10 * time.Nanosecond).String()
			case d < 10*time.Millisecond:
				return d.Round(time.Microsecond).String()
			}
			return d.Round(100 * time.Microsecond).String()
		}
	}
	return "n/a"
}
