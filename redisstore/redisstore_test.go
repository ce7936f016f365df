package redisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/kvsession/kvsession/storetest"
	"github.com/redis/go-redis/v9"
)

// quietLogger drops go-redis's own log lines, which the failure tests
// would otherwise fill with expected dial errors.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

// testPrefix returns a key namespace unique to one test run, so that tests
// can share a server with each other and with anything else.
func testPrefix(name string) string {
	return fmt.Sprintf("kvsession-test-%s-%d-%s:", name, time.Now().UnixNano(), rand.Text()[:8])
}

// forEachNode calls fn on every node that holds keys: each master of a
// cluster, or the client itself.
func forEachNode(ctx context.Context, c redis.UniversalClient, fn func(ctx context.Context, c redis.Cmdable) error) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return fn(ctx, c) })
	}
	return fn(ctx, c)
}

// scanPrefix returns every key on the server that starts with prefix. The
// prefixes used here hold no glob characters.
func scanPrefix(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	var (
		mu   sync.Mutex
		keys []string
	)
	err := forEachNode(context.Background(), c, func(ctx context.Context, n redis.Cmdable) error {
		it := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		return it.Err()
	})
	if err != nil {
		t.Errorf("scanning for %q: %v", prefix, err)
	}
	return keys
}

// removePrefix deletes every key that starts with prefix, one DEL per key
// (a cluster refuses a DEL of keys in several slots), and checks that none
// is left.
func removePrefix(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	err := forEachNode(context.Background(), c, func(ctx context.Context, n redis.Cmdable) error {
		it := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		pipe := n.Pipeline()
		for it.Next(ctx) {
			pipe.Del(ctx, it.Val())
			if pipe.Len() >= 500 {
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
		}
		if err := it.Err(); err != nil {
			return err
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		t.Errorf("removing the test keys %q*: %v", prefix, err)
	}
	if left := scanPrefix(t, c, prefix); len(left) > 0 {
		t.Errorf("%d test keys left under %q after cleanup, such as %q", len(left), prefix, left[0])
	}
}

// newClient connects to the server named by KVSESSION_TEST_REDIS_ADDR (or
// skips) and returns the client and a prefix whose keys are removed when
// the test ends.
func newClient(t testing.TB) (*redis.Client, string) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		t.Fatalf("KVSESSION_TEST_REDIS_ADDR=%s: %v", addr, err)
	}
	prefix := testPrefix(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() {
		removePrefix(t, c, prefix)
		c.Close()
	})
	return c, prefix
}

func TestConformance(t *testing.T) {
	c, prefix := newClient(t)
	s := newStore(t, c, &redisstore.Options{Namespace: prefix})
	storetest.Run(t, storetest.Harness{
		ServerClock: true, // Redis decides expiry
		NewStore:    func(*testing.T, *storetest.Clock) kvsession.Store { return s },
	})
}

func TestClusterConformance(t *testing.T) {
	c, prefix := newClusterClient(t)
	s := newStore(t, c, &redisstore.Options{Namespace: prefix})
	storetest.Run(t, storetest.Harness{
		ServerClock: true,
		NewStore:    func(*testing.T, *storetest.Clock) kvsession.Store { return s },
	})
}

func newClusterClient(t testing.TB) (*redis.ClusterClient, string) {
	addrs := strings.Split(storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_CLUSTER_ADDRS"), ",")
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		t.Fatalf("KVSESSION_TEST_REDIS_CLUSTER_ADDRS=%s: %v", strings.Join(addrs, ","), err)
	}
	prefix := testPrefix(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() {
		removePrefix(t, c, prefix)
		c.Close()
	})
	return c, prefix
}

// TestClusterKeysEveryMaster checks that records spread over the masters
// of a cluster and that Keys finds them on every one, hash-tagged keys
// included.
func TestClusterKeysEveryMaster(t *testing.T) {
	c, prefix := newClusterClient(t)
	s := newStore(t, c, &redisstore.Options{Namespace: prefix})
	ctx := t.Context()
	var want []string
	for i := range 60 {
		k := fmt.Sprintf("k%02d", i)
		if i%3 == 0 {
			k = fmt.Sprintf("{tag%d}k%02d", i, i) // a hash tag: another slot
		}
		want = append(want, k)
		if err := s.Set(ctx, k, []byte(k), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	holding := 0
	var mu sync.Mutex
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, _, err := n.Scan(ctx, 0, prefix+"*", 1000).Result()
		if len(keys) > 0 {
			mu.Lock()
			holding++
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if holding < 2 {
		t.Errorf("60 records landed on %d master(s); want them spread over several", holding)
	}
	var got []string
	if err := s.Keys(ctx, "", func(k string) error {
		got = append(got, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	got = slices.Compact(got) // SCAN may repeat a key
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
	for _, k := range want {
		e, err := s.Get(ctx, k)
		if err != nil || string(e.Value) != k {
			t.Errorf("Get(%q) = %q, %v", k, e.Value, err)
		}
	}
}

// TestKeyLayout checks the documented key layout and TTL strategy.
func TestKeyLayout(t *testing.T) {
	c, prefix := newClient(t)
	s := newStore(t, c, &redisstore.Options{Namespace: prefix})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.Set(ctx, "same", []byte("v"), exp); err != nil {
		t.Fatal(err)
	}
	// A user named like a record key does not collide with it.
	if err := s.AddUserKey(ctx, "same", "same", exp.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserKey(ctx, "s:same", "same", exp); err != nil {
		t.Fatal(err)
	}
	keys := scanPrefix(t, c, prefix)
	slices.Sort(keys)
	want := []string{prefix + "s:same", prefix + "u:s:same", prefix + "u:same"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys on the server = %q, want %q", keys, want)
	}
	if typ := c.Type(ctx, prefix+"s:same").Val(); typ != "string" {
		t.Errorf("record type %q, want string", typ)
	}
	if typ := c.Type(ctx, prefix+"u:same").Val(); typ != "zset" {
		t.Errorf("user index type %q, want zset", typ)
	}
	wantExpiry := func(key string, want time.Time) {
		t.Helper()
		got, err := c.PExpireTime(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case want.IsZero() && got != -1:
			t.Errorf("%s: PEXPIRETIME %v, want none (-1)", key, got)
		case !want.IsZero() && got != time.Duration(want.UnixMilli())*time.Millisecond:
			t.Errorf("%s: PEXPIRETIME %v, want %v", key, got, time.Duration(want.UnixMilli())*time.Millisecond)
		}
	}
	wantExpiry(prefix+"s:same", exp)
	wantExpiry(prefix+"u:same", exp.Add(time.Hour)) // the set expires with its latest entry
	if err := s.AddUserKey(ctx, "same", "other", exp); err != nil {
		t.Fatal(err)
	}
	wantExpiry(prefix+"u:same", exp.Add(time.Hour)) // an earlier entry does not shorten it
	if err := s.AddUserKey(ctx, "same", "forever", time.Time{}); err != nil {
		t.Fatal(err)
	}
	wantExpiry(prefix+"u:same", time.Time{})

	// Set without expiry clears an earlier TTL; Touch sets and clears it.
	if err := s.Set(ctx, "same", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	wantExpiry(prefix+"s:same", time.Time{})
	if err := s.Touch(ctx, "same", exp); err != nil {
		t.Fatal(err)
	}
	wantExpiry(prefix+"s:same", exp)
	if err := s.Touch(ctx, "same", time.Time{}); err != nil {
		t.Fatal(err)
	}
	wantExpiry(prefix+"s:same", time.Time{})
	if e, err := s.Get(ctx, "same"); err != nil || !e.ExpiresAt.IsZero() {
		t.Errorf("after Touch without expiry: Get = %+v, %v; want no expiry", e, err)
	}
}

// TestDefaultNamespace checks that nil Options put keys under
// DefaultNamespace.
func TestDefaultNamespace(t *testing.T) {
	c, _ := newClient(t)
	s := newStore(t, c, nil)
	ctx := t.Context()
	key := testPrefix("default")
	t.Cleanup(func() { removePrefix(t, c, redisstore.DefaultNamespace+"s:"+key) })
	if err := s.Set(ctx, key, []byte("v"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, redisstore.DefaultNamespace+"s:"+key).Val(); n != 1 {
		t.Errorf("record not found under %q", redisstore.DefaultNamespace+"s:"+key)
	}
}

// TestDeprecatedPrefix checks that Options.Prefix, the old name of
// Namespace, still places the keys, and that setting both is an error.
func TestDeprecatedPrefix(t *testing.T) {
	c, prefix := newClient(t)
	ctx := t.Context()
	s := newStore(t, c, &redisstore.Options{Prefix: prefix + "old:"})
	if err := s.Set(ctx, "k", []byte("v"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, prefix+"old:s:k").Val(); n != 1 {
		t.Errorf("record not found under %q", prefix+"old:s:k")
	}
	_, err := redisstore.New(c, &redisstore.Options{Namespace: "a:", Prefix: "b:"})
	if err == nil || !strings.HasPrefix(err.Error(), "redisstore: new: ") || !strings.Contains(err.Error(), "Namespace") {
		t.Errorf("New with Namespace and Prefix = %v, want an error naming Namespace", err)
	}
}

// TestKeysGlobCharacters checks that glob characters in the store prefix
// and in Keys's prefix are matched literally.
func TestKeysGlobCharacters(t *testing.T) {
	c, prefix := newClient(t)
	ctx := t.Context()
	star := newStore(t, c, &redisstore.Options{Namespace: prefix + "*:"})
	other := newStore(t, c, &redisstore.Options{Namespace: prefix + "zz:"})
	exp := time.Now().Add(time.Hour)
	for _, k := range []string{"[a-z]1", "[a-z]2", "b", `\x`, "?"} {
		if err := star.Set(ctx, k, []byte("v"), exp); err != nil {
			t.Fatal(err)
		}
		if err := other.Set(ctx, k, []byte("v"), exp); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"?", "[a-z]1", "[a-z]2", `\x`, "b"}},
		{"[a-z]", []string{"[a-z]1", "[a-z]2"}},
		{"?", []string{"?"}},
		{`\`, []string{`\x`}},
		{"*", nil},
	} {
		var got []string
		if err := star.Keys(ctx, tt.prefix, func(k string) error {
			got = append(got, k)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Keys(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

// TestMalformedRecordReadsAsMissing checks that a value under the store's
// namespace that the store did not write is not mistaken for a record.
func TestMalformedRecordReadsAsMissing(t *testing.T) {
	c, prefix := newClient(t)
	s := newStore(t, c, &redisstore.Options{Namespace: prefix})
	ctx := t.Context()
	for name, v := range map[string]string{"short": "abc", "long": strings.Repeat("x", 40), "empty": ""} {
		if err := c.Set(ctx, prefix+"s:"+name, v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, name); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("%s: Get = %v, want ErrNotFound", name, err)
		}
		if err := s.CompareAndSwap(ctx, name, []byte("v"), time.Time{}, 0); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("%s: CompareAndSwap = %v, want ErrNotFound", name, err)
		}
		if err := s.Touch(ctx, name, time.Time{}); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("%s: Touch = %v, want ErrNotFound", name, err)
		}
	}
}

// commandLog is a go-redis hook that records the commands a client sends.
type commandLog struct {
	mu    sync.Mutex
	names []string
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.mu.Lock()
		l.names = append(l.names, cmd.Name())
		l.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		l.mu.Lock()
		for _, c := range cmds {
			l.names = append(l.names, "pipeline:"+c.Name())
		}
		l.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (l *commandLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.names
	l.names = nil
	return n
}

// TestRoundTrips checks that every operation is one command (one round
// trip), that value and TTL are written together, and that KEYS is never
// sent.
func TestRoundTrips(t *testing.T) {
	c, prefix := newClient(t)
	log := &commandLog{}
	c.AddHook(log)
	s := newStore(t, c, &redisstore.Options{Namespace: prefix})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)

	ops := []struct {
		name string
		want string
		run  func() error
	}{
		{"Set", "set", func() error { return s.Set(ctx, "k", []byte("v"), exp) }},
		{"Get", "get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"CompareAndSwap", "evalsha", func() error {
			e, err := s.Get(ctx, "k")
			if err != nil {
				return err
			}
			log.take() // count the swap alone
			return s.CompareAndSwap(ctx, "k", []byte("w"), exp, e.Version)
		}},
		{"Touch", "evalsha", func() error { return s.Touch(ctx, "k", exp.Add(time.Minute)) }},
		{"AddUserKey", "evalsha", func() error { return s.AddUserKey(ctx, "u", "k", exp) }},
		{"UserKeys", "evalsha", func() error { _, err := s.UserKeys(ctx, "u"); return err }},
		{"RemoveUserKey", "zrem", func() error { return s.RemoveUserKey(ctx, "u", "k") }},
		{"CompareAndDelete", "evalsha", func() error {
			e, err := s.Get(ctx, "k")
			if err != nil {
				return err
			}
			log.take()
			return s.CompareAndDelete(ctx, "k", e.Version)
		}},
		{"Delete", "del", func() error { return s.Delete(ctx, "k") }},
	}
	// Run everything once, so that the scripts are in the server's cache.
	for _, op := range ops {
		if op.name == "CompareAndDelete" || op.name == "Delete" {
			continue
		}
		if err := op.run(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
	}
	log.take()
	for _, op := range ops {
		if err := op.run(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if got := log.take(); !slices.Equal(got, []string{op.want}) {
			t.Errorf("%s sent %q, want the one command %q", op.name, got, op.want)
		}
	}
	if err := s.Keys(ctx, "", func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, name := range log.take() {
		if name != "scan" {
			t.Errorf("Keys sent %q, want only SCAN", name)
		}
	}
}

// TestVersionsNeverRepeat checks that a key deleted and written again gets
// a version it never had, so a stale CompareAndSwap cannot revive it.
func TestVersionsNeverRepeat(t *testing.T) {
	c, prefix := newClient(t)
	s := newStore(t, c, &redisstore.Options{Namespace: prefix})
	ctx := t.Context()
	seen := map[uint64]bool{}
	for range 200 {
		if err := s.Set(ctx, "k", []byte("same"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		e, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if e.Version == 0 || seen[e.Version] {
			t.Fatalf("version %d repeated or zero", e.Version)
		}
		seen[e.Version] = true
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConnectionRefused checks that a server that cannot be reached gives
// a clear error, never ErrNotFound, and does so promptly.
func TestConnectionRefused(t *testing.T) {
	c := redis.NewClient(&redis.Options{
		Addr:          "127.0.0.1:1",
		DialTimeout:   200 * time.Millisecond,
		DialerRetries: 1,
		MaxRetries:    -1,
	})
	defer c.Close()
	s := newStore(t, c, nil)
	ctx := t.Context()
	for _, op := range allOps(s) {
		start := time.Now()
		err := op.run(ctx)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s took %v against a refused connection", op.name, d)
		}
		switch {
		case err == nil:
			t.Errorf("%s against a refused connection succeeded", op.name)
		case errors.Is(err, kvsession.ErrNotFound):
			t.Errorf("%s against a refused connection = %v, which reads as not found", op.name, err)
		case !strings.HasPrefix(err.Error(), "redisstore: "+op.errOp+": "):
			t.Errorf("%s error %q does not start with %q", op.name, err, "redisstore: "+op.errOp+": ")
		case !errors.Is(err, syscall.ECONNREFUSED):
			t.Errorf("%s error %q does not wrap ECONNREFUSED", op.name, err)
		}
	}
}

type op struct {
	name, errOp string
	run         func(ctx context.Context) error
}

func allOps(s *redisstore.Store) []op {
	exp := time.Now().Add(time.Hour)
	return []op{
		{"Get", "get", func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }},
		{"Set", "set", func(ctx context.Context) error { return s.Set(ctx, "k", []byte("v"), exp) }},
		{"Delete", "delete", func(ctx context.Context) error { return s.Delete(ctx, "k") }},
		{"CompareAndSwap", "compare and swap", func(ctx context.Context) error {
			return s.CompareAndSwap(ctx, "k", []byte("v"), exp, 1)
		}},
		{"CompareAndDelete", "compare and delete", func(ctx context.Context) error { return s.CompareAndDelete(ctx, "k", 1) }},
		{"Touch", "touch", func(ctx context.Context) error { return s.Touch(ctx, "k", exp) }},
		{"Keys", "keys", func(ctx context.Context) error { return s.Keys(ctx, "", func(string) error { return nil }) }},
		{"AddUserKey", "add user key", func(ctx context.Context) error { return s.AddUserKey(ctx, "u", "k", exp) }},
		{"UserKeys", "user keys", func(ctx context.Context) error { _, err := s.UserKeys(ctx, "u"); return err }},
		{"RemoveUserKey", "remove user key", func(ctx context.Context) error { return s.RemoveUserKey(ctx, "u", "k") }},
	}
}

// hungServer accepts connections and never answers. It returns its
// address.
func hungServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					if _, err := conn.Read(buf); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// TestCancelledContext checks that a cancelled context makes every method
// return at once, even when the server would hang.
func TestCancelledContext(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: hungServer(t), ContextTimeoutEnabled: true})
	defer c.Close()
	s := newStore(t, c, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, op := range allOps(s) {
		start := time.Now()
		err := op.run(ctx)
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%s with a cancelled context took %v", op.name, d)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", op.name, err)
		}
	}
}

// TestHungServerDeadline checks that a context deadline bounds a call to a
// server that never answers, when the client has ContextTimeoutEnabled.
func TestHungServerDeadline(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: hungServer(t), ContextTimeoutEnabled: true})
	defer c.Close()
	s := newStore(t, c, nil)
	for _, op := range allOps(s) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		start := time.Now()
		err := op.run(ctx)
		d := time.Since(start)
		cancel()
		if d > 2*time.Second {
			t.Errorf("%s with a 200ms deadline on a hung server took %v", op.name, d)
		}
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("%s on a hung server = %v, want an error wrapping context.DeadlineExceeded", op.name, err)
		}
	}
}

func BenchmarkStore(b *testing.B) {
	c, prefix := newClient(b)
	s := newStore(b, c, &redisstore.Options{Namespace: prefix})
	storetest.RunBenchmarks(b, func(*testing.B) kvsession.Store { return s })
}

// BenchmarkBare measures the bare commands the store's calls are compared
// with: a GET and a SET of a record of the same size.
func BenchmarkBare(b *testing.B) {
	c, prefix := newClient(b)
	ctx := b.Context()
	v := strings.Repeat("v", 200+17)
	if err := c.Set(ctx, prefix+"bare", v, time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("GET", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Get(ctx, prefix+"bare").Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SET", func(b *testing.B) {
		for b.Loop() {
			if err := c.Set(ctx, prefix+"bare", v, time.Hour).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRing checks the store on a redis.Ring (client-side sharding), whose
// Keys walks every shard.
func TestRing(t *testing.T) {
	c, prefix := newClient(t) // for cleanup
	ring := redis.NewRing(&redis.RingOptions{
		Addrs:                 map[string]string{"a": c.Options().Addr},
		ContextTimeoutEnabled: true,
	})
	defer ring.Close()
	s := newStore(t, ring, &redisstore.Options{Namespace: prefix})
	ctx := t.Context()
	for _, k := range []string{"x", "y", "{tag}z"} {
		if err := s.Set(ctx, k, []byte(k), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.Keys(ctx, "", func(k string) error {
		got = append(got, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"x", "y", "{tag}z"}; !slices.Equal(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
}
