package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisAddr is the Redis server of the Redis benchmarks and tests; they skip
// when it is empty.
var redisAddr = os.Getenv("KVSESSION_TEST_REDIS_ADDR")

// runPrefix starts every key this process writes, so that several runs can
// share a server and everything left over can be found and deleted.
var runPrefix = fmt.Sprintf("kvbench:%d-%08x:", os.Getpid(), rand.Uint32())

func TestMain(m *testing.M) {
	code := m.Run()
	if redisAddr != "" {
		c := redis.NewClient(&redis.Options{Addr: redisAddr})
		if err := deletePrefix(context.Background(), c, runPrefix); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleaning up Redis:", err)
		}
		c.Close()
	}
	os.Exit(code)
}

func needRedis(tb testing.TB) {
	tb.Helper()
	if redisAddr == "" {
		tb.Skip("KVSESSION_TEST_REDIS_ADDR is unset")
	}
}

// newRedis returns a client of its own for one instance, counting its round
// trips in c, and a fresh key prefix, deleted when tb ends.
func newRedis(tb testing.TB, name string, c *counts) (*redis.Client, string) {
	needRedis(tb)
	client := newRedisClient(tb, c)
	return client, newRedisPrefix(tb, name)
}

func newRedisClient(tb testing.TB, c *counts) *redis.Client {
	needRedis(tb)
	client := redis.NewClient(&redis.Options{Addr: redisAddr})
	if c != nil {
		client.AddHook(rttHook{c})
	}
	tb.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		tb.Fatalf("Redis at %s: %v", redisAddr, err)
	}
	return client
}

var prefixSeq atomic.Int64

func newRedisPrefix(tb testing.TB, name string) string {
	prefix := fmt.Sprintf("%s%s:%d:", runPrefix, name, prefixSeq.Add(1))
	tb.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer c.Close()
		if err := deletePrefix(context.Background(), c, prefix); err != nil {
			tb.Errorf("cleaning up Redis: %v", err)
		}
	})
	return prefix
}

// deletePrefix deletes every key under prefix, with SCAN and UNLINK in
// batches. The prefixes made here hold no glob characters.
func deletePrefix(ctx context.Context, c *redis.Client, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// rttHook counts the commands a go-redis client sends: each command, and
// each pipeline, is one round trip.
type rttHook struct{ c *counts }

func (h rttHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h rttHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.countRTT()
		return next(ctx, cmd)
	}
}

func (h rttHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.c.countRTT()
		return next(ctx, cmds)
	}
}
