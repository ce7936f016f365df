package rueidisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/rueidisstore"
	"github.com/kvsession/kvsession/storetest"
	"github.com/redis/rueidis"
)

// testCacheTTL is the cache TTL of the caching tests: short, so that the
// checks that wait out the staleness bound wait little.
const testCacheTTL = 200 * time.Millisecond

// testPrefix returns a key namespace unique to one test run, so that tests
// can share a server with each other and with anything else.
func testPrefix(t testing.TB) string {
	name := strings.ReplaceAll(t.Name(), "/", "-")
	return fmt.Sprintf("kvsession-test-%s-%d-%s:", name, time.Now().UnixNano(), rand.Text()[:8])
}

// masters returns a client of every master the client knows.
func masters(t testing.TB, c rueidis.Client) []rueidis.Client {
	t.Helper()
	var out []rueidis.Client
	for _, n := range c.Nodes() {
		role, err := n.Do(context.Background(), n.B().Role().Build()).ToArray()
		if err != nil {
			t.Fatalf("ROLE: %v", err)
		}
		if r, _ := role[0].ToString(); r == "master" {
			out = append(out, n)
		}
	}
	return out
}

// scanPrefix returns every key on the server that starts with prefix. The
// prefixes used here hold no glob characters.
func scanPrefix(t testing.TB, c rueidis.Client) func(prefix string) []string {
	return func(prefix string) []string {
		t.Helper()
		var keys []string
		ctx := context.Background()
		for _, n := range masters(t, c) {
			var cursor uint64
			for range 10000 { // bounded: far more batches than a test writes
				e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
				if err != nil {
					t.Errorf("scanning for %q: %v", prefix, err)
					return keys
				}
				keys = append(keys, e.Elements...)
				if cursor = e.Cursor; cursor == 0 {
					break
				}
			}
		}
		slices.Sort(keys)
		return slices.Compact(keys)
	}
}

// removePrefix deletes every key that starts with prefix, one DEL per key
// (a cluster refuses a DEL of keys in several slots), and checks that none
// is left.
func removePrefix(t testing.TB, c rueidis.Client, prefix string) {
	t.Helper()
	scan := scanPrefix(t, c)
	for _, k := range scan(prefix) {
		if err := c.Do(context.Background(), c.B().Del().Key(k).Build()).Error(); err != nil {
			t.Errorf("removing the test key %q: %v", k, err)
		}
	}
	if left := scan(prefix); len(left) > 0 {
		t.Errorf("%d test keys left under %q after cleanup, such as %q", len(left), prefix, left[0])
	}
}

// newClient connects to the standalone server named by
// KVSESSION_TEST_REDIS_ADDR (or skips) and returns the client and a prefix
// whose keys are removed when the test ends.
func newClient(t testing.TB) (rueidis.Client, string) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
	return connect(t, "KVSESSION_TEST_REDIS_ADDR", rueidis.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true})
}

// newClusterClient is newClient for the cluster named by
// KVSESSION_TEST_REDIS_CLUSTER_ADDRS.
func newClusterClient(t testing.TB) (rueidis.Client, string) {
	addrs := strings.Split(storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_CLUSTER_ADDRS"), ",")
	return connect(t, "KVSESSION_TEST_REDIS_CLUSTER_ADDRS", rueidis.ClientOption{InitAddress: addrs})
}

func connect(t testing.TB, env string, opt rueidis.ClientOption) (rueidis.Client, string) {
	t.Helper()
	opt.Dialer.Timeout = 5 * time.Second
	opt.CacheSizeEachConn = 16 << 20
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("%s=%s: %v", env, strings.Join(opt.InitAddress, ","), err)
	}
	prefix := testPrefix(t)
	t.Cleanup(func() {
		removePrefix(t, c, prefix)
		c.Close()
	})
	return c, prefix
}

// another returns a second client of the same server or cluster as c, as
// another application instance would have.
func another(t testing.TB, cluster bool) rueidis.Client {
	t.Helper()
	var c rueidis.Client
	if cluster {
		c, _ = newClusterClient(t)
	} else {
		c, _ = newClient(t)
	}
	return c
}

func newStore(t testing.TB, c rueidis.Client, opts *rueidisstore.Options) *rueidisstore.Store {
	t.Helper()
	s, err := rueidisstore.New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// conformance runs the whole kit on one store, with caching off or on.
func conformance(t *testing.T, c rueidis.Client, prefix string, cacheTTL time.Duration) {
	s := newStore(t, c, &rueidisstore.Options{Namespace: prefix, CacheTTL: cacheTTL})
	h := storetest.Harness{
		ServerClock: true, // Redis decides expiry
		NewStore:    func(*testing.T, *storetest.Clock) kvsession.Store { return s },
	}
	storetest.RunStore(t, h)
	storetest.RunSessions(t, h)
}

func TestConformance(t *testing.T) {
	c, prefix := newClient(t)
	conformance(t, c, prefix, 0)
}

// TestConformanceCached: with client-side caching on, the store keeps the
// whole contract, no lost updates, no resurrection and airtight revocation
// included: a read served from a stale copy costs a failed compare-and-swap,
// decided on the server, and a store reads its own writes.
func TestConformanceCached(t *testing.T) {
	c, prefix := newClient(t)
	conformance(t, c, prefix, testCacheTTL)
}

func TestClusterConformance(t *testing.T) {
	c, prefix := newClusterClient(t)
	conformance(t, c, prefix, 0)
}

func TestClusterConformanceCached(t *testing.T) {
	c, prefix := newClusterClient(t)
	conformance(t, c, prefix, testCacheTTL)
}

func TestNewOptions(t *testing.T) {
	if _, err := rueidisstore.New(nil, nil); err == nil {
		t.Error("New(nil client) succeeded")
	}
	c, _ := newClient(t)
	for _, ttl := range []time.Duration{-time.Second, rueidisstore.MaxCacheTTL + time.Second} {
		if _, err := rueidisstore.New(c, &rueidisstore.Options{CacheTTL: ttl}); err == nil {
			t.Errorf("New with CacheTTL %v succeeded", ttl)
		}
	}
	if _, err := rueidisstore.New(c, &rueidisstore.Options{CacheTTL: rueidisstore.MaxCacheTTL}); err != nil {
		t.Errorf("New with CacheTTL = MaxCacheTTL: %v", err)
	}
}

// TestClusterKeysEveryMaster checks that records spread over the masters
// of a cluster and that Keys finds them on every one, hash-tagged keys
// included.
func TestClusterKeysEveryMaster(t *testing.T) {
	c, prefix := newClusterClient(t)
	s := newStore(t, c, &rueidisstore.Options{Namespace: prefix})
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
	for _, n := range masters(t, c) {
		e, err := n.Do(ctx, n.B().Scan().Cursor(0).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Elements) > 0 {
			holding++
		}
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
}

// TestErrors: a server that is not there is a failure, never a missing
// session, and the error says which operation failed.
func TestErrors(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, c, &rueidisstore.Options{Namespace: testPrefix(t)})
	c.Close()
	_, err = s.Get(t.Context(), "k")
	if err == nil || errors.Is(err, kvsession.ErrNotFound) || !strings.HasPrefix(err.Error(), "rueidisstore: get: ") {
		t.Errorf("Get on a closed client = %v; want a failure, not ErrNotFound", err)
	}
	if err := s.CompareAndSwap(t.Context(), "k", nil, time.Time{}, 1); err == nil || errors.Is(err, kvsession.ErrNotFound) || errors.Is(err, kvsession.ErrConflict) {
		t.Errorf("CompareAndSwap on a closed client = %v; want a failure", err)
	}
}

// TestCancelledBeforeCall: a done context returns at once, wrapping its
// error, without a command.
func TestCancelledBeforeCall(t *testing.T) {
	c, prefix := newClient(t)
	s := newStore(t, c, &rueidisstore.Options{Namespace: prefix, CacheTTL: testCacheTTL})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get = %v, want context.Canceled", err)
	}
	if err := s.Touch(ctx, "k", time.Now()); !errors.Is(err, context.Canceled) {
		t.Errorf("Touch = %v, want context.Canceled", err)
	}
}

// TestConcurrentShareRoundTrips: many goroutines on one store, each on its
// own key, all succeed; rueidis pipelines them on its connections.
func TestConcurrentShareRoundTrips(t *testing.T) {
	c, prefix := newClient(t)
	s := newStore(t, c, &rueidisstore.Options{Namespace: prefix})
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			k := fmt.Sprint("k", i)
			for j := range 20 {
				v := []byte(fmt.Sprint(i, "-", j))
				if err := s.Set(t.Context(), k, v, time.Now().Add(time.Hour)); err != nil {
					t.Error(err)
					return
				}
				e, err := s.Get(t.Context(), k)
				if err != nil || string(e.Value) != string(v) {
					t.Errorf("Get(%q) = %q, %v; want %q", k, e.Value, err, v)
					return
				}
			}
		})
	}
	wg.Wait()
}
