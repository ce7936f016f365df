package memcachestore_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memcachestore"
	"github.com/kvsession/kvsession/storetest"
)

// runPrefix keeps this run's keys apart from other runs on the same
// memcached.
var runPrefix = fmt.Sprintf("kvsessiontest-%d-%d:", os.Getpid(), time.Now().UnixNano())

func newClient(addr string) *memcache.Client {
	c := memcache.New(addr)
	// The kit runs 50 concurrent requests: without enough idle connections
	// gomemcache would open and close one per call.
	c.MaxIdleConns = 64
	c.Timeout = 2 * time.Second // the race detector slows everything down
	return c
}

func TestConformance(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	client := newClient(addr)
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
			return newStore(t, client, &memcachestore.Options{Namespace: runPrefix})
		},
		ServerClock:      true,
		ClockGranularity: time.Second,
	})
}

func BenchmarkStore(b *testing.B) {
	addr := storetest.ServerEnv(b, "KVSESSION_TEST_MEMCACHE_ADDR")
	client := newClient(addr)
	storetest.RunBenchmarks(b, func(b *testing.B) kvsession.Store {
		return newStore(b, client, &memcachestore.Options{Namespace: runPrefix})
	})
}

func TestExpiration(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const month = 2592000 // memcached's limit for relative expirations
	tests := []struct {
		name     string
		expires  time.Time
		wantExp  int32
		wantGone bool
	}{
		{"zero means never", time.Time{}, 0, false},
		{"past", now.Add(-time.Minute), 0, true},
		{"now", now, 0, true},
		{"a millisecond", now.Add(time.Millisecond), 2, false},
		{"a second", now.Add(time.Second), 2, false},
		{"a second and a bit", now.Add(1001 * time.Millisecond), 3, false},
		{"an hour", now.Add(time.Hour), 3601, false},
		{"the longest relative", now.Add((month - 1) * time.Second), month, false},
		{"just over 30 days is absolute", now.Add(month * time.Second), int32(now.Unix() + month + 2), false},
		{"45 days is absolute", now.Add(45 * 24 * time.Hour), int32(now.Add(45*24*time.Hour).Unix() + 2), false},
		{"past 2038 has no memcached expiry", time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), 0, false},
	}
	for _, tt := range tests {
		exp, gone := memcachestore.Expiration(tt.expires, now)
		if exp != tt.wantExp || gone != tt.wantGone {
			t.Errorf("%s: expiration = %d, %v; want %d, %v", tt.name, exp, gone, tt.wantExp, tt.wantGone)
		}
		if !gone && exp > month && int64(exp) < now.Unix() {
			t.Errorf("%s: absolute expiration %d is in the past", tt.name, exp)
		}
	}
}

// newStore returns New(client, opts), failing the test on an error.
func newStore(t testing.TB, client *memcache.Client, opts *memcachestore.Options) *memcachestore.Store {
	t.Helper()
	s, err := memcachestore.New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNewBadOptions checks that New refuses every bad option with an
// error that names it, and no Store, rather than panic: storeurl passes
// options from a URL.
func TestNewBadOptions(t *testing.T) {
	c := memcache.New("127.0.0.1:1")
	tests := []struct {
		name   string
		client *memcache.Client
		opts   *memcachestore.Options
		want   string // in the error
	}{
		{"nil client", nil, nil, "nil *memcache.Client"},
		{"space", c, &memcachestore.Options{Namespace: "a b"}, "space or control character"},
		{"tab", c, &memcachestore.Options{Namespace: "tab\t"}, "space or control character"},
		{"newline", c, &memcachestore.Options{Namespace: "nl\n"}, "space or control character"},
		{"carriage return", c, &memcachestore.Options{Namespace: "cr\r:"}, "space or control character"},
		{"NUL", c, &memcachestore.Options{Namespace: "nul\x00"}, "space or control character"},
		{"DEL", c, &memcachestore.Options{Namespace: "del\x7f"}, "space or control character"},
		{"too long", c, &memcachestore.Options{Namespace: strings.Repeat("p", 206)}, "longer than 205"},
		{"deprecated Prefix, space", c, &memcachestore.Options{Prefix: "a b"}, "space or control character"},
		{"Namespace and Prefix", c, &memcachestore.Options{Namespace: "a:", Prefix: "b:"}, "both Namespace"},
		{"negative MaxUserKeys", c, &memcachestore.Options{MaxUserKeys: -1}, "MaxUserKeys -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := memcachestore.New(tt.client, tt.opts)
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want no store and an error", s, err)
			}
			if !strings.HasPrefix(err.Error(), "memcachestore: new: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error %q, want one starting with %q and holding %q", err, "memcachestore: new: ", tt.want)
			}
		})
	}
	for _, opts := range []*memcachestore.Options{
		nil,
		{},
		{Namespace: strings.Repeat("p", 205)},
		{Namespace: "app:\u00e9:", MaxUserKeys: 1},
		{Prefix: "app:"}, // the deprecated name

	} {
		if _, err := memcachestore.New(c, opts); err != nil {
			t.Errorf("New(%+v) = %v, want no error", opts, err)
		}
	}
}

// TestNamespace checks that the memcached keys start with Namespace, or
// with the deprecated Prefix, or with DefaultNamespace.
func TestNamespace(t *testing.T) {
	c := memcache.New("127.0.0.1:1")
	for _, tt := range []struct {
		opts *memcachestore.Options
		want string
	}{
		{nil, memcachestore.DefaultNamespace + "s:"},
		{&memcachestore.Options{Namespace: "app1:"}, "app1:s:"},
		{&memcachestore.Options{Prefix: "app2:"}, "app2:s:"},
	} {
		s, err := memcachestore.New(c, tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if k := memcachestore.ItemKey(s, "s:", "k"); !strings.HasPrefix(k, tt.want) {
			t.Errorf("New(%+v): record key %q, want it to start with %q", tt.opts, k, tt.want)
		}
	}
}

// TestConnectionRefused checks that a memcached that is down gives an
// error that says so, never ErrNotFound: the manager must answer 5xx, not
// start a fresh session.
func TestConnectionRefused(t *testing.T) {
	c := memcache.New("127.0.0.1:1")
	c.Timeout = time.Second
	s := newStore(t, c, nil)
	ctx := t.Context()
	check := func(op string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, kvsession.ErrNotFound) || errors.Is(err, kvsession.ErrConflict) {
			t.Errorf("%s against a closed port = %v, want a connection error", op, err)
			return
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), "memcachestore: ") {
			t.Errorf("%s against a closed port = %v, want a memcachestore error wrapping ECONNREFUSED", op, err)
		}
		t.Logf("%s: %v", op, err)
	}
	_, err := s.Get(ctx, "k")
	check("Get", err)
	check("Set", s.Set(ctx, "k", []byte("v"), time.Now().Add(time.Hour)))
	check("Delete", s.Delete(ctx, "k"))
	check("CompareAndSwap", s.CompareAndSwap(ctx, "k", []byte("v"), time.Time{}, 1))
	check("CompareAndDelete", s.CompareAndDelete(ctx, "k", 1))
	check("Touch", s.Touch(ctx, "k", time.Time{}))
	check("AddUserKey", s.AddUserKey(ctx, "u", "k", time.Time{}))
	_, err = s.UserKeys(ctx, "u")
	check("UserKeys", err)
	check("RemoveUserKey", s.RemoveUserKey(ctx, "u", "k"))
}

// memcached runs a memcached of the test's own on a free loopback port.
type memcached struct {
	t    *testing.T
	port string
	args []string // more arguments for memcached
	cmd  *exec.Cmd
}

// startMemcached starts a memcached of the test's own, with args added to
// its command line, and stops it when the test ends.
func startMemcached(t *testing.T, args ...string) *memcached {
	t.Helper()
	if _, err := exec.LookPath("memcached"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the memcached binary is missing; under CI=true it must be installed (.ci/services/memcached.sh does)")
		}
		t.Skip("the memcached binary is missing")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	m := &memcached{t: t, port: port, args: args}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *memcached) addr() string { return "127.0.0.1:" + m.port }

func (m *memcached) start() {
	m.t.Helper()
	args := append([]string{"-l", "127.0.0.1", "-p", m.port, "-U", "0", "-m", "16"}, m.args...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without -u
	}
	m.cmd = exec.Command("memcached", args...)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", m.addr(), time.Second); err == nil {
			c.Close()
			return
		}
	}
	m.t.Fatalf("memcached does not accept connections on %s", m.addr())
}

func (m *memcached) stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	m.cmd.Wait()
	m.cmd = nil
}

// TestRestart checks that a memcached restarted between two calls reads as
// an empty memcached: records are gone (ErrNotFound), and no call fails,
// although the client's pooled connections all died with the old server.
func TestRestart(t *testing.T) {
	m := startMemcached(t)
	client := memcache.New(m.addr())
	client.MaxIdleConns = 4
	s := newStore(t, client, nil)
	ctx := t.Context()
	keys := []string{"a", "b", "c", "d", "e", "f"}
	versions := map[string]uint64{}
	// Fill the connection pool: concurrent calls each take a connection.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, k := range keys {
		wg.Go(func() {
			if err := s.Set(ctx, k, []byte("v"), time.Now().Add(time.Hour)); err != nil {
				t.Error(err)
				return
			}
			e, err := s.Get(ctx, k)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			versions[k] = e.Version
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := s.AddUserKey(ctx, "ada", "a", time.Time{}); err != nil {
		t.Fatal(err)
	}

	m.stop()
	m.start()

	for _, k := range keys[:2] {
		if _, err := s.Get(ctx, k); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("Get(%q) after a restart = %v, want ErrNotFound", k, err)
		}
	}
	if err := s.CompareAndSwap(ctx, "c", []byte("x"), time.Time{}, versions["c"]); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("CompareAndSwap after a restart = %v, want ErrNotFound", err)
	}
	if err := s.CompareAndDelete(ctx, "d", versions["d"]); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("CompareAndDelete after a restart = %v, want ErrNotFound", err)
	}
	if err := s.Touch(ctx, "e", time.Time{}); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Touch after a restart = %v, want ErrNotFound", err)
	}
	if keys, err := s.UserKeys(ctx, "ada"); err != nil || len(keys) != 0 {
		t.Errorf("UserKeys after a restart = %q, %v; want none", keys, err)
	}
	if err := s.Delete(ctx, "f"); err != nil {
		t.Errorf("Delete after a restart = %v", err)
	}
	if err := s.Set(ctx, "a", []byte("new"), time.Now().Add(time.Hour)); err != nil {
		t.Errorf("Set after a restart = %v", err)
	}
	if e, err := s.Get(ctx, "a"); err != nil || string(e.Value) != "new" {
		t.Errorf("Get after Set after a restart = %q, %v", e.Value, err)
	}
}

// TestCorruptItem puts items the store never writes under a record's and
// a user index's key: they read as missing or empty, never as a panic.
func TestCorruptItem(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	client := newClient(addr)
	prefix := runPrefix + "corrupt:"
	s := newStore(t, client, &memcachestore.Options{Namespace: prefix})
	ctx := t.Context()
	// Write through the store, then overwrite the items it made with junk.
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserKey(ctx, "u", "k", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, junk := range []*memcache.Item{
		{Value: []byte{1, 2}, Flags: 1},
		{Value: []byte("12345678v"), Flags: 99},
		{Value: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Flags: 1},
	} {
		for _, k := range []string{memcachestore.ItemKey(s, "s:", "k"), memcachestore.ItemKey(s, "u:", "u")} {
			it := *junk
			it.Key = k
			if err := client.Set(&it); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Get(ctx, "k"); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("Get of junk %v = %v, want ErrNotFound", junk, err)
		}
		if err := s.Touch(ctx, "k", time.Time{}); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("Touch of junk %v = %v, want ErrNotFound", junk, err)
		}
		if _, err := s.UserKeys(ctx, "u"); err != nil {
			t.Errorf("UserKeys of junk %v: %v", junk, err)
		}
		if err := s.AddUserKey(ctx, "u", "k2", time.Time{}); err != nil {
			t.Errorf("AddUserKey over junk %v: %v", junk, err)
		}
		if keys, err := s.UserKeys(ctx, "u"); err != nil || len(keys) != 1 || keys[0] != "k2" {
			t.Errorf("UserKeys after AddUserKey over junk = %q, %v; want [k2]", keys, err)
		}
	}
	if err := s.Set(ctx, "k", []byte("fresh"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(ctx, "k"); err != nil || string(e.Value) != "fresh" {
		t.Errorf("Get after Set over junk = %q, %v", e.Value, err)
	}
	s.Delete(ctx, "k")
	s.RemoveUserKey(ctx, "u", "k2")
}

// TestLongExpiryStored checks the 30-day rule against the server: records
// set, swapped and touched to expiries past 30 days stay, with their
// expiry, and an expiry in the past makes them disappear.
func TestLongExpiryStored(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	s := newStore(t, newClient(addr), &memcachestore.Options{Namespace: runPrefix + "long:"})
	ctx := t.Context()
	check := func(what string, want time.Time) kvsession.Entry {
		t.Helper()
		e, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatalf("Get after %s: %v", what, err)
		}
		if !e.ExpiresAt.Equal(want.Truncate(time.Millisecond)) {
			t.Errorf("after %s ExpiresAt = %v, want %v", what, e.ExpiresAt, want)
		}
		return e
	}
	d60 := time.Now().Add(60 * 24 * time.Hour)
	if err := s.Set(ctx, "k", []byte("v"), d60); err != nil {
		t.Fatal(err)
	}
	e := check("Set 60 days", d60)
	d400 := time.Now().Add(400 * 24 * time.Hour)
	if err := s.CompareAndSwap(ctx, "k", []byte("v2"), d400, e.Version); err != nil {
		t.Fatal(err)
	}
	check("CompareAndSwap 400 days", d400)
	d31 := time.Now().Add(31*24*time.Hour + time.Minute)
	if err := s.Touch(ctx, "k", d31); err != nil {
		t.Fatal(err)
	}
	check("Touch 31 days", d31)
	far := time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC) // beyond memcached's int32
	if err := s.Touch(ctx, "k", far); err != nil {
		t.Fatal(err)
	}
	check("Touch to 2050", far)
	if err := s.Set(ctx, "k", []byte("v"), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get after Set into the past = %v, want ErrNotFound", err)
	}
}

// TestCompareAndDeleteThenSet checks that a record written after a
// CompareAndDelete is not touched by it.
func TestCompareAndDeleteThenSet(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	s := newStore(t, newClient(addr), &memcachestore.Options{Namespace: runPrefix + "cad:"})
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v1"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndDelete(ctx, "k", e.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Fatalf("Get after CompareAndDelete = %v, want ErrNotFound", err)
	}
	if err := s.Set(ctx, "k", []byte("v2"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndDelete(ctx, "k", e.Version); !errors.Is(err, kvsession.ErrConflict) && !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("CompareAndDelete with the deleted record's version = %v, want a conflict", err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || string(got.Value) != "v2" {
		t.Errorf("Get = %q, %v; want the record written after the delete", got.Value, err)
	}
	s.Delete(ctx, "k")
}

// TestUserIndexConcurrent adds keys for one user from many goroutines: the
// cas loop must lose none.
func TestUserIndexConcurrent(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	s := newStore(t, newClient(addr), &memcachestore.Options{Namespace: runPrefix + "users:"})
	ctx := t.Context()
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.AddUserKey(ctx, "ada", fmt.Sprint("k", i), time.Now().Add(time.Hour)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys, err := s.UserKeys(ctx, "ada")
	if err != nil || len(keys) != n {
		t.Fatalf("UserKeys = %d keys, %v; want %d", len(keys), err, n)
	}
	for i := range n {
		if err := s.RemoveUserKey(ctx, "ada", fmt.Sprint("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	if keys, err := s.UserKeys(ctx, "ada"); err != nil || len(keys) != 0 {
		t.Errorf("UserKeys after removing every key = %q, %v; want none", keys, err)
	}
}
