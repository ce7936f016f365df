package bench

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/rueidisstore"
	"github.com/redis/rueidis"
)

// kvsession on rueidisstore: the same manager and app as lib=kvsession, on
// a rueidis client, which pipelines the commands of concurrent requests on
// shared connections instead of one command per connection and round trip.
// Redis only: on store=mem the instance is skipped.

// benchCacheTTL is the client-side cache bound of lib=kvsession-rueidis-cache.
const benchCacheTTL = time.Second

func newKVRueidis(tb testing.TB, store string, o options) *instance {
	return newKVRueidisCache(tb, store, o, 0)
}

func newKVRueidisCached(tb testing.TB, store string, o options) *instance {
	return newKVRueidisCache(tb, store, o, benchCacheTTL)
}

func newKVRueidisCache(tb testing.TB, store string, o options, cacheTTL time.Duration) *instance {
	if store != "redis" {
		tb.Skip("rueidisstore is a Redis store")
	}
	in := &instance{counts: new(counts), prefix: newRedisPrefix(tb, "kvsession-rueidis")}
	st, err := rueidisstore.New(newRueidisClient(tb, in.counted(o)), &rueidisstore.Options{Namespace: in.prefix, CacheTTL: cacheTTL})
	if err != nil {
		tb.Fatal(err)
	}
	return in.serveKV(tb, st, kvsession.Config{Secrets: [][]byte{signingKey}}, o)
}

// newRueidisClient returns a rueidis client of its own for one instance,
// counting its commands in c when c is not nil.
func newRueidisClient(tb testing.TB, c *counts) rueidis.Client {
	needRedis(tb)
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{redisAddr},
		ForceSingleClient: true,
		CacheSizeEachConn: 16 << 20,
	})
	if err != nil {
		tb.Fatalf("Redis at %s: %v", redisAddr, err)
	}
	tb.Cleanup(client.Close)
	if c == nil {
		return client
	}
	return &countingRueidis{client, c}
}

// countingRueidis counts the commands a rueidis client sends: each command
// (EVALSHA included), and each batch of DoMulti, is one; a read served from
// the client-side cache is none.
type countingRueidis struct {
	rueidis.Client
	c *counts
}

func (r *countingRueidis) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	r.c.countRTT()
	return r.Client.Do(ctx, cmd)
}

func (r *countingRueidis) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	r.c.countRTT()
	return r.Client.DoMulti(ctx, multi...)
}

func (r *countingRueidis) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	res := r.Client.DoCache(ctx, cmd, ttl)
	if !res.IsCacheHit() {
		r.c.countRTT()
	}
	return res
}

// newBareRueidis is the floor of kvsession-rueidis end to end: a server
// that makes, per request, the bare Redis commands of the scenario on the
// record kvsession keeps for it, through one shared rueidis client: READ
// one GET, WRITE a GET then a SET. The key is the request's Cookie header,
// so that each connection's requests read their own records, as with
// sessions; records for cookies are stored with store.
type bareRueidis struct {
	client rueidis.Client
	prefix string
	value  []byte // the record kvsession stores for /setup
}

func newBareRueidis(tb testing.TB) *bareRueidis {
	_, value := sampleRecord(tb, "/setup")
	return &bareRueidis{client: newRueidisClient(tb, nil), prefix: newRedisPrefix(tb, "bare-rueidis"), value: value}
}

// store writes the record under cookie's key.
func (br *bareRueidis) store(tb testing.TB, cookie string) {
	c := br.client
	if err := c.Do(context.Background(), c.B().Set().Key(br.prefix+cookie).Value(rueidis.BinaryString(br.value)).Px(24*time.Hour).Build()).Error(); err != nil {
		tb.Fatal(err)
	}
}

func (br *bareRueidis) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, ctx := br.client, r.Context()
	key := br.prefix + r.Header.Get("Cookie")
	v, err := c.Do(ctx, c.B().Get().Key(key).Build()).AsBytes()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	switch r.URL.Path {
	case "/read":
		w.Write([]byte(user))
	case "/inc":
		if err := c.Do(ctx, c.B().Set().Key(key).Value(rueidis.BinaryString(v)).Px(24*time.Hour).Build()).Error(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(strconv.AppendInt(nil, int64(len(v)), 10))
	default:
		http.NotFound(w, r)
	}
}
