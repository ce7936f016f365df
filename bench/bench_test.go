package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The scenarios, each a request through a library's middleware and the app,
// served by httptest (a new ResponseRecorder per request, one prepared
// request). Names read BenchmarkRead/lib=kvsession/store=mem, so that
// `benchstat -col /lib` puts the libraries side by side.
//
// Besides ns/op, B/op and allocs/op, each reports:
//
//	reads/op    store reads per request, as the library asks its store
//	writes/op   store writes per request (writes, conditional writes,
//	            touches, deletes)
//	rtt/op      Redis commands per request (round trips), PING included
//	cookies/op  Set-Cookie headers per response
//	readB/op    bytes of stored session read per request
//
// and two floors: lib=floor, the bare store operations of the same record
// without HTTP or sessions (a map lookup under a lock; a go-redis GET, or
// GET then SET), and lib=nosession, the same app and harness with no
// session middleware.

type scenario struct {
	path  string // the request
	setup string // the request that made the session it carries; "" for none
	idle  bool   // with an idle timeout
}

var (
	scRead   = scenario{path: "/read", setup: "/setup"}
	scWrite  = scenario{path: "/inc", setup: "/setup"}
	scNew    = scenario{path: "/new"}
	scRead2K = scenario{path: "/read", setup: "/setup2k"}
	scIdle   = scenario{path: "/read", setup: "/setup", idle: true}
	// READ2K-map, READ2K-struct, READ2K-slice: a read-only request on a
	// structured session of about 2 KB whose handler reads a structured
	// value (a 20-entry map[string]string, a struct of 10 fields, a
	// []string of 20).
	scRead2KMap    = scenario{path: "/map", setup: "/setup2kv"}
	scRead2KStruct = scenario{path: "/struct", setup: "/setup2kv"}
	scRead2KSlice  = scenario{path: "/slice", setup: "/setup2kv"}
	// UNTOUCHED: a request with a session cookie whose handler never uses
	// the session. Its floor is lib=nosession; there is no store floor.
	scUntouched = scenario{path: "/nosession", setup: "/setup"}
)

// BenchmarkRead: a request with an existing session that reads one value.
func BenchmarkRead(b *testing.B) { benchScenario(b, scRead) }

// BenchmarkWrite: a request that increments a counter in its session.
func BenchmarkWrite(b *testing.B) { benchScenario(b, scWrite) }

// BenchmarkNew: a request without a cookie that creates a session and sets
// one value.
func BenchmarkNew(b *testing.B) { benchScenario(b, scNew) }

// BenchmarkRead2K: a read-only request on a session of about 2 KB.
func BenchmarkRead2K(b *testing.B) { benchScenario(b, scRead2K) }

// BenchmarkRead2KMap: a read-only request on a structured session of about
// 2 KB whose handler reads a map[string]string of 20 entries.
func BenchmarkRead2KMap(b *testing.B) { benchScenario(b, scRead2KMap) }

// BenchmarkRead2KStruct: the same session; the handler reads a struct of
// 10 fields (Profile).
func BenchmarkRead2KStruct(b *testing.B) { benchScenario(b, scRead2KStruct) }

// BenchmarkRead2KSlice: the same session; the handler reads a []string of
// 20.
func BenchmarkRead2KSlice(b *testing.B) { benchScenario(b, scRead2KSlice) }

// BenchmarkIdle: READ with a 30-minute idle timeout configured.
// gorilla/sessions has none, so it is not in this one.
func BenchmarkIdle(b *testing.B) { benchScenario(b, scIdle) }

// BenchmarkUntouched: a request that carries a session cookie to a handler
// that never uses the session. gorilla/sessions has no middleware: its
// untouched request is the bare app.
func BenchmarkUntouched(b *testing.B) { benchScenario(b, scUntouched) }

func benchScenario(b *testing.B, sc scenario) {
	for _, lib := range libraries {
		if sc.idle && !lib.idle {
			continue
		}
		b.Run("lib="+lib.name, func(b *testing.B) {
			for _, store := range stores {
				b.Run("store="+store, func(b *testing.B) {
					benchHandler(b, lib.new(b, store, options{idle: sc.idle}), sc, store == "redis")
				})
			}
		})
	}
	if sc != scUntouched {
		b.Run("lib=floor", func(b *testing.B) {
			for _, store := range stores {
				b.Run("store="+store, func(b *testing.B) { benchFloor(b, store, sc) })
			}
		})
	}
	b.Run("lib=nosession", func(b *testing.B) {
		b.Run("store=mem", func(b *testing.B) {
			benchHandler(b, newNoSession(b, "", options{}), scenario{path: "/nosession"}, false)
		})
	})
}

// prepare runs the setup request of a scenario and returns the session's
// cookie, "name=value".
func prepare(tb testing.TB, h http.Handler, setup string) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", setup, nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", setup, rec.Code, rec.Body)
	}
	cookie, _, _ := strings.Cut(rec.Header().Get("Set-Cookie"), ";")
	if cookie == "" {
		tb.Fatalf("GET %s: no cookie", setup)
	}
	return cookie
}

func benchHandler(b *testing.B, in *instance, sc scenario, redis bool) {
	req := httptest.NewRequest("GET", sc.path, nil)
	if sc.setup != "" {
		req.Header.Set("Cookie", prepare(b, in.handler, sc.setup))
	}
	// gorilla/sessions keeps its registry in the request by overwriting
	// *r; restoring the request each time makes every request start as
	// the first did, for every library alike.
	orig := *req
	in.counts.reset()
	cookies := 0
	b.ReportAllocs()
	for b.Loop() {
		*req = orig
		rec := httptest.NewRecorder()
		in.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", sc.path, rec.Code, rec.Body)
		}
		cookies += len(rec.Header()["Set-Cookie"])
	}
	reportCounts(b, in.counts, redis)
	b.ReportMetric(float64(cookies)/float64(b.N), "cookies/op")
}

func reportCounts(b *testing.B, c *counts, redis bool) {
	n := float64(b.N)
	b.ReportMetric(float64(c.reads.Load())/n, "reads/op")
	b.ReportMetric(float64(c.writes.Load())/n, "writes/op")
	b.ReportMetric(float64(c.readBytes.Load())/n, "readB/op")
	if redis {
		b.ReportMetric(float64(c.rtt.Load())/n, "rtt/op")
	}
}

// sampleRecord returns the record kvsession stores for the session of a
// setup request, and its store key: the floors move the same bytes.
func sampleRecord(tb testing.TB, setup string) (key string, value []byte) {
	tb.Helper()
	in := newKVSession(tb, "mem", options{})
	if setup == "" {
		setup = "/new"
	}
	cookie := prepare(tb, in.handler, setup)
	_, v, _ := strings.Cut(cookie, "=")
	key, err := in.kvMgr.StoreKey(v)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := in.kvMem.Get(context.Background(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return key, e.Value
}

var floorSink int

// benchFloor runs the bare store operations of a scenario on the record
// kvsession keeps for it: the reads (READ, READ2K and its structured
// variants) a lookup (GET), WRITE a lookup
// and a store (GET then SET), NEW a store under a new key (SET).
func benchFloor(b *testing.B, store string, sc scenario) {
	key, value := sampleRecord(b, sc.setup)
	var reads, writes, readBytes int
	var rtt *counts // Redis round trips, counted by the client
	b.ReportAllocs()
	switch store {
	case "mem":
		var mu sync.RWMutex
		m := map[string][]byte{key: value}
		fresh := make([]string, 4096) // NEW stores under new keys
		for i := range fresh {
			fresh[i] = key + strconv.Itoa(i)
		}
		i := 0
		for b.Loop() {
			switch sc.path {
			case "/read", "/map", "/struct", "/slice":
				mu.RLock()
				v := m[key]
				mu.RUnlock()
				reads++
				readBytes += len(v)
			case "/inc":
				mu.Lock()
				v := m[key]
				m[key] = value
				mu.Unlock()
				reads++
				writes++
				readBytes += len(v)
			case "/new":
				mu.Lock()
				m[fresh[i%len(fresh)]] = value
				mu.Unlock()
				i++
				writes++
			}
		}
		floorSink += readBytes
	case "redis":
		rtt = new(counts)
		client, prefix := newRedis(b, "floor", rtt)
		ctx := context.Background()
		key = prefix + key
		if err := client.Set(ctx, key, value, 24*time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
		rtt.reset()
		i := 0
		for b.Loop() {
			switch sc.path {
			case "/read", "/map", "/struct", "/slice":
				v := redisGet(b, client, key)
				reads++
				readBytes += len(v)
			case "/inc":
				v := redisGet(b, client, key)
				if err := client.Set(ctx, key, v, 24*time.Hour).Err(); err != nil {
					b.Fatal(err)
				}
				reads++
				writes++
				readBytes += len(v)
			case "/new":
				if err := client.Set(ctx, key+strconv.Itoa(i), value, 24*time.Hour).Err(); err != nil {
					b.Fatal(err)
				}
				i++
				writes++
			}
		}
	}
	c := new(counts)
	c.reads.Store(int64(reads))
	c.writes.Store(int64(writes))
	c.readBytes.Store(int64(readBytes))
	if rtt != nil {
		c.rtt.Store(rtt.rtt.Load())
	}
	reportCounts(b, c, store == "redis")
	b.ReportMetric(0, "cookies/op")
}

func redisGet(b *testing.B, client *redis.Client, key string) []byte {
	v, err := client.Get(context.Background(), key).Bytes()
	if err != nil {
		b.Fatal(err)
	}
	return v
}
