package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
	"github.com/redis/go-redis/v9"
)

// BenchmarkScale: kvsession's READ with n live sessions in the store. The
// requests cycle over up to 1000 real sessions; the rest are copies of a
// real record under random keys, written straight to the store. lib=floor
// is the bare lookup of the same records in a map of the same size under a
// lock (or a bare GET in the same Redis).
//
// The memory store goes to 1e6 sessions only with KVSESSION_BENCH_SCALE=full
// (about 300 MB and a few seconds to fill), so that a quick run
// (-benchtime=100x, as in CI) stays cheap; Redis goes to 1e5, under a
// prefix of its own, deleted afterwards.
func BenchmarkScale(b *testing.B) {
	full := os.Getenv("KVSESSION_BENCH_SCALE") == "full"
	sizes := map[string][]int{"mem": {1e3, 1e5, 1e6}, "redis": {1e3, 1e5}}
	defer func() { memScale = nil }()
	for _, store := range stores {
		b.Run("store="+store, func(b *testing.B) {
			for _, n := range sizes[store] {
				b.Run("sessions="+sizeName(n), func(b *testing.B) {
					if n > 1e5 && !full {
						b.Skip("set KVSESSION_BENCH_SCALE=full for 1e6 sessions")
					}
					b.Run("lib=kvsession", func(b *testing.B) { benchScaleRead(b, scaleFixture(b, store, n)) })
					b.Run("lib=floor", func(b *testing.B) { benchScaleFloor(b, scaleFixture(b, store, n)) })
				})
			}
		})
	}
}

func sizeName(n int) string {
	e := 0
	for n >= 10 && n%10 == 0 {
		n /= 10
		e++
	}
	return fmt.Sprintf("%de%d", n, e)
}

// scale is a kvsession instance holding n sessions, with the requests of
// its real ones.
type scale struct {
	in    *instance
	store string
	n     int
	reqs  []http.Request // real sessions' requests, restored before each use
	keys  []string       // their store keys (with the Redis prefix on Redis)
	value []byte         // a record, as stored
	floor *lockedMap     // the same records in a plain map, made on first use
}

// The memory fixtures are kept between the runs of one size (the runs of
// -count, and of each lib), since filling 1e6 takes seconds; Redis ones are
// rebuilt, since their keys are deleted at the end of each run.
var memScale *scale

const realSessions = 1000

func scaleFixture(b *testing.B, store string, n int) *scale {
	if store == "mem" && memScale != nil && memScale.n == n {
		return memScale
	}
	if store == "mem" {
		memScale = nil // let the previous size go before filling
	}
	in := newKVSession(b, store, options{})
	f := &scale{in: in, store: store, n: n}
	ctx := context.Background()
	for range min(n, realSessions) {
		cookie := prepare(b, in.handler, "/setup")
		req := httptest.NewRequest("GET", "/read", nil)
		req.Header.Set("Cookie", cookie)
		f.reqs = append(f.reqs, *req)
		_, v, _ := strings.Cut(cookie, "=")
		key, err := in.kvMgr.StoreKey(v)
		if err != nil {
			b.Fatal(err)
		}
		f.keys = append(f.keys, key)
	}
	fill := n - len(f.reqs)
	exp := time.Now().Add(24 * time.Hour)
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	randomKey := func() string {
		var id [32]byte
		for i := 0; i < len(id); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				id[i+j] = byte(v >> (8 * j))
			}
		}
		return "s:" + base64.RawURLEncoding.EncodeToString(id[:])
	}
	switch store {
	case "mem":
		e, err := in.kvMem.Get(ctx, f.keys[0])
		if err != nil {
			b.Fatal(err)
		}
		f.value = e.Value
		for range fill {
			if err := in.kvMem.Set(ctx, randomKey(), f.value, exp); err != nil {
				b.Fatal(err)
			}
		}
		memScale = f
	case "redis":
		recPrefix := in.prefix + "s:" // redisstore's record namespace
		for i := range f.keys {
			f.keys[i] = recPrefix + f.keys[i]
		}
		v, err := in.client.Get(ctx, f.keys[0]).Bytes()
		if err != nil {
			b.Fatal(err)
		}
		f.value = v
		for fill > 0 {
			batch := min(fill, 1000)
			_, err := in.client.Pipelined(ctx, func(p redis.Pipeliner) error {
				for range batch {
					p.Set(ctx, recPrefix+randomKey(), v, time.Until(exp))
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			fill -= batch
		}
	}
	// Filling allocated hundreds of megabytes: collect now, so that the
	// collection does not run concurrently with the first timed requests.
	runtime.GC()
	return f
}

func benchScaleRead(b *testing.B, f *scale) {
	reqs := make([]*http.Request, len(f.reqs))
	for i := range f.reqs {
		r := f.reqs[i]
		reqs[i] = &r
	}
	f.in.counts.reset()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		j := i % len(reqs)
		*reqs[j] = f.reqs[j]
		rec := httptest.NewRecorder()
		f.in.handler.ServeHTTP(rec, reqs[j])
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /read: %d %s", rec.Code, rec.Body)
		}
		i++
	}
	reportCounts(b, f.in.counts, f.store == "redis")
}

// benchScaleFloor looks the real sessions' records up, in turn, in a map of
// n records (on the memory store) or in Redis.
func benchScaleFloor(b *testing.B, f *scale) {
	var reads, readBytes int
	ctx := context.Background()
	b.ReportAllocs()
	switch f.store {
	case "mem":
		if f.floor == nil {
			f.floor = floorMap(f)
		}
		m := f.floor
		i := 0
		for b.Loop() {
			v := m.get(f.keys[i%len(f.keys)])
			readBytes += len(v)
			reads++
			i++
		}
	case "redis":
		c := new(counts)
		client := newRedisClient(b, c)
		i := 0
		for b.Loop() {
			v, err := client.Get(ctx, f.keys[i%len(f.keys)]).Bytes()
			if err != nil {
				b.Fatal(err)
			}
			readBytes += len(v)
			reads++
			i++
		}
	}
	c := new(counts)
	c.reads.Store(int64(reads))
	c.readBytes.Store(int64(readBytes))
	c.rtt.Store(int64(reads))
	reportCounts(b, c, f.store == "redis")
}

// floorMap copies the fixture's memory store into a plain map under a lock.
func floorMap(f *scale) *lockedMap {
	m := &lockedMap{m: make(map[string][]byte, f.n)}
	f.in.kvMem.Keys(context.Background(), "", func(k string) error {
		m.m[k] = f.value
		return nil
	})
	return m
}

type lockedMap struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (m *lockedMap) get(k string) []byte {
	m.mu.RLock()
	v := m.m[k]
	m.mu.RUnlock()
	return v
}

// BenchmarkCleanup: kvsession's Manager.Cleanup on the memory store, which
// finds and deletes n expired records, all of the store. ns/op includes
// refilling the store before each cleanup; ns/record is the cleanup alone,
// and should not grow with n. Redis needs no cleanup: its TTL drops records.
func BenchmarkCleanup(b *testing.B) {
	b.Run("lib=kvsession", func(b *testing.B) {
		b.Run("store=mem", func(b *testing.B) {
			for _, n := range []int{1e3, 1e4} {
				b.Run("expired="+sizeName(n), func(b *testing.B) { benchCleanup(b, n) })
			}
		})
	})
}

func benchCleanup(b *testing.B, n int) {
	ctx := context.Background()
	now := time.Now()
	clock := now
	st := memstore.New(&memstore.Options{Now: func() time.Time { return clock }})
	m, err := kvsession.New(st, kvsession.Config{Secrets: [][]byte{signingKey}})
	if err != nil {
		b.Fatal(err)
	}
	_, value := sampleRecord(b, "/setup")
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("s:expired-%09d", i)
	}
	// Refilling the store costs several times the cleanup, so the timer
	// runs through both (keeping a run near -benchtime) and ns/record
	// reports the cleanup alone.
	var cleaning time.Duration
	b.ReportAllocs()
	for b.Loop() {
		clock = now
		for _, k := range keys {
			st.Set(ctx, k, value, now.Add(time.Hour))
		}
		clock = now.Add(2 * time.Hour)
		start := time.Now()
		deleted, err := m.Cleanup(ctx)
		cleaning += time.Since(start)
		if err != nil || deleted != n {
			b.Fatalf("Cleanup: %d, %v; want %d", deleted, err, n)
		}
	}
	b.ReportMetric(float64(cleaning.Nanoseconds())/float64(b.N)/float64(n), "ns/record")
}
