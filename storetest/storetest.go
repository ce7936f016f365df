// Package storetest checks that a [kvsession.Store] keeps the contract the
// session manager relies on. Every store in this repository runs it, and a
// third-party store can run it in three lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
//			return mystore.New(c.Now)
//		}})
//	}
//
// Run it under the race detector (go test -race): the concurrency checks
// are only as good as the detector watching them.
//
// Every method of the [kvsession.Store] contract is checked: conditional
// writes, Touch and the user index included, since the manager's promises
// rest on them. The optional capabilities ([kvsession.Lister],
// [kvsession.ExpiredDeleter]) are checked when the store implements them and
// skipped otherwise: a store without them still conforms.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/sharedread"
)

// Harness describes the store under test.
type Harness struct {
	// NewStore returns a store for one test. Stores returned by separate
	// calls need not be empty, but keys are unique to each test, so stores
	// may share one server. A store that can take a clock should decide
	// expiry with c.Now, so that the kit can move time without sleeping.
	NewStore func(t *testing.T, c *Clock) kvsession.Store

	// ServerClock says that the store decides expiry with a clock of its
	// own (a database server's, say) rather than c.Now. The expiry checks
	// then wait in real time, for a few seconds at most.
	ServerClock bool

	// ClockGranularity is how coarsely the store keeps expiry times: one
	// second for memcached, say. Default: one millisecond.
	ClockGranularity time.Duration

	// SessionRounds is how many rounds of 50 concurrent writers the
	// no-lost-updates check runs. Default: 100; with -short, 5.
	SessionRounds int

	// SweepProgress says that the store's DeleteExpired reports its
	// progress ([kvsession.ReportSweepProgress]), so the kit requires the
	// reports. Without it the kit checks the reports of a store that makes
	// them and skips that check for one that makes none: reporting is
	// optional, and such a store still conforms.
	SweepProgress bool
}

// Clock is a controllable clock for stores under test. Its zero value is
// not usable; the kit makes one for each test.
type Clock struct {
	server bool
	mu     sync.Mutex
	now    time.Time
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	if c.server {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d. For a store with a server clock it
// sleeps instead.
func (c *Clock) Advance(d time.Duration) {
	if c.server {
		time.Sleep(d)
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	h      Harness
	clock  *Clock
	store  kvsession.Store
	prefix string
	gran   time.Duration
}

var runs atomic.Uint64

func newEnv(t *testing.T, h Harness) *env {
	t.Helper()
	c := &Clock{server: h.ServerClock, now: time.Now().Truncate(time.Second)}
	s := h.NewStore(t, c)
	if s == nil {
		t.Fatal("Harness.NewStore returned nil")
	}
	gran := h.ClockGranularity
	if gran <= 0 {
		gran = time.Millisecond
	}
	return &env{
		h:      h,
		clock:  c,
		store:  s,
		prefix: fmt.Sprintf("storetest-%d-%d-", time.Now().UnixNano(), runs.Add(1)),
		gran:   gran,
	}
}

// key returns a key unique to this test.
func (e *env) key(name string) string { return e.prefix + name }

func (e *env) later() time.Time { return e.clock.Now().Add(time.Hour) }

func (e *env) mustSet(t *testing.T, key string, value []byte, exp time.Time) {
	t.Helper()
	if err := e.store.Set(t.Context(), key, value, exp); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func (e *env) mustGet(t *testing.T, key string) kvsession.Entry {
	t.Helper()
	got, err := e.store.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return got
}

func (e *env) wantMissing(t *testing.T, key string) {
	t.Helper()
	got, err := e.store.Get(t.Context(), key)
	if !errors.Is(err, kvsession.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want an error wrapping ErrNotFound", key, got.Value, err)
	}
}

func (e *env) wantExpiry(t *testing.T, got, want time.Time) {
	t.Helper()
	if want.IsZero() != got.IsZero() || got.Sub(want).Abs() > e.gran {
		t.Errorf("ExpiresAt = %v, want %v (within %v)", got, want, e.gran)
	}
}

// Run checks the store with RunStore, then RunSessions.
func Run(t *testing.T, h Harness) {
	RunStore(t, h)
	runSessionTests(t, h)
}

// RunSessions runs the store under a kvsession.Manager to check what
// applications rely on, each in a subtest named "Sessions/...": no lost
// updates, no resurrection, per-user sessions, airtight revocation, and a
// model-based check of seeded random request sequences.
func RunSessions(t *testing.T, h Harness) {
	if h.NewStore == nil {
		t.Fatal("storetest: Harness.NewStore is nil")
	}
	runSessionTests(t, h)
}

// RunStore checks every property of the store contract, each in a
// subtest, calling the store directly.
func RunStore(t *testing.T, h Harness) {
	if h.NewStore == nil {
		t.Fatal("storetest: Harness.NewStore is nil")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Missing", testMissing},
		{"RoundTrip", testRoundTrip},
		{"EmptyAndBinaryValues", testBinaryValues},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"NoExpiry", testNoExpiry},
		{"ExpiredOnWrite", testExpiredOnWrite},
		{"Expiry", testExpiry},
		{"LongExpiry", testLongExpiry},
		{"WeirdKeys", testWeirdKeys},
		{"LargeValue", testLargeValue},
		{"NoAliasing", testNoAliasing},
		{"SharedRead", testSharedRead},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelled},
		{"Versioned", testVersioned},
		{"VersionedConcurrent", testVersionedConcurrent},
		{"Touch", testTouch},
		{"Keys", testKeys},
		{"DeleteExpired", testDeleteExpired},
		{"SweepProgress", testSweepProgress},
		{"UserIndex", testUserIndex},
		{"UserIndexWeirdUsers", testUserIndexWeirdUsers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newEnv(t, h))
		})
	}
}

func testMissing(t *testing.T, e *env) {
	e.wantMissing(t, e.key("never-written"))
}

func testRoundTrip(t *testing.T, e *env) {
	k := e.key("round-trip")
	exp := e.later()
	e.mustSet(t, k, []byte("hello"), exp)
	got := e.mustGet(t, k)
	if string(got.Value) != "hello" {
		t.Errorf("Get value = %q, want %q", got.Value, "hello")
	}
	e.wantExpiry(t, got.ExpiresAt, exp)
}

func testBinaryValues(t *testing.T, e *env) {
	all := make([]byte, 512)
	for i := range all {
		all[i] = byte(i)
	}
	for name, v := range map[string][]byte{"empty": {}, "all-bytes": all, "nul": {0}, "utf8-invalid": {0xff, 0xfe, 0xc0}} {
		k := e.key(name)
		e.mustSet(t, k, v, e.later())
		if got := e.mustGet(t, k); !bytes.Equal(got.Value, v) {
			t.Errorf("%s: Get value = %x, want %x", name, got.Value, v)
		}
	}
}

func testOverwrite(t *testing.T, e *env) {
	k := e.key("overwrite")
	e.mustSet(t, k, []byte("first value, longer"), e.later())
	exp := e.later().Add(time.Hour)
	e.mustSet(t, k, []byte("second"), exp)
	got := e.mustGet(t, k)
	if string(got.Value) != "second" {
		t.Errorf("Get after overwrite = %q, want %q", got.Value, "second")
	}
	e.wantExpiry(t, got.ExpiresAt, exp)
}

func testDelete(t *testing.T, e *env) {
	k := e.key("delete")
	e.mustSet(t, k, []byte("v"), e.later())
	if err := e.store.Delete(t.Context(), k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	e.wantMissing(t, k)
}

func testDeleteMissing(t *testing.T, e *env) {
	if err := e.store.Delete(t.Context(), e.key("absent")); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
}

func testNoExpiry(t *testing.T, e *env) {
	k := e.key("no-expiry")
	e.mustSet(t, k, []byte("v"), time.Time{})
	got := e.mustGet(t, k)
	if !got.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want the zero time for a record set without expiry", got.ExpiresAt)
	}
}

func testExpiredOnWrite(t *testing.T, e *env) {
	k := e.key("born-expired")
	e.mustSet(t, k, []byte("v"), e.clock.Now().Add(-time.Minute))
	e.wantMissing(t, k)
}

func testExpiry(t *testing.T, e *env) {
	step := 100 * time.Millisecond
	if e.h.ServerClock {
		step = max(time.Second, e.gran)
	}
	short, long := e.key("short"), e.key("long")
	now := e.clock.Now()
	e.mustSet(t, short, []byte("v"), now.Add(step))
	e.mustSet(t, long, []byte("v"), now.Add(time.Hour))
	e.mustGet(t, short)
	e.clock.Advance(2*step + e.gran)
	e.wantMissing(t, short)
	e.mustGet(t, long)
	{
		vs := e.store
		if err := vs.CompareAndSwap(t.Context(), short, []byte("x"), e.later(), 0); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("CompareAndSwap on an expired record = %v, want ErrNotFound", err)
		}
		e.wantMissing(t, short)
	}
	{
		ts := e.store
		if err := ts.Touch(t.Context(), short, e.later()); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("Touch on an expired record = %v, want ErrNotFound", err)
		}
		e.wantMissing(t, short)
	}
}

func testLongExpiry(t *testing.T, e *env) {
	// Memcached reads an expiry above 30 days as an absolute Unix time.
	k := e.key("long-expiry")
	exp := e.clock.Now().Add(45 * 24 * time.Hour)
	e.mustSet(t, k, []byte("v"), exp)
	got := e.mustGet(t, k)
	e.wantExpiry(t, got.ExpiresAt, exp)
}

// WeirdKeys are keys that break naive stores: path syntax, control
// characters, wildcards, non-ASCII, and the longest allowed key.
var WeirdKeys = []string{
	"../../../../etc/passwd", "..", ".", "a/b", `a\b`, "/abs", "C:", "CON", "nul",
	"key with spaces", "tab\there", "new\nline", "cr\rlf", "nul\x00byte", "\x7f\x01",
	"*", "?", "[a-z]", "{hash}tag", "%2e%2e%2f", "100%", "'quote\"", "semi;colon", "--",
	"ключ", "日本語", "emoji-🔑", "\xff\xfe invalid utf8",
	"A", "a", // must stay distinct on case-insensitive file systems and collations
	strings.Repeat("k", 200),
}

func testWeirdKeys(t *testing.T, e *env) {
	keys := make([]string, 0, len(WeirdKeys)+1)
	for _, w := range WeirdKeys {
		keys = append(keys, e.key(w))
	}
	keys = append(keys, e.key("")+strings.Repeat("x", 250-len(e.key(""))))
	for i, k := range keys {
		e.mustSet(t, k, []byte(fmt.Sprint(i)), e.later())
	}
	for i, k := range keys {
		if got := e.mustGet(t, k); string(got.Value) != fmt.Sprint(i) {
			t.Errorf("Get(%q) = %q, want %q", k, got.Value, fmt.Sprint(i))
		}
	}
	for _, k := range keys {
		if err := e.store.Delete(t.Context(), k); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
		e.wantMissing(t, k)
	}
}

func testLargeValue(t *testing.T, e *env) {
	v := make([]byte, 512<<10)
	for i := range v {
		v[i] = byte(i * 7)
	}
	k := e.key("large")
	e.mustSet(t, k, v, e.later())
	if got := e.mustGet(t, k); !bytes.Equal(got.Value, v) {
		t.Errorf("Get of a %d-byte value returned %d bytes, or different ones", len(v), len(got.Value))
	}
}

func testNoAliasing(t *testing.T, e *env) {
	k := e.key("alias")
	in := []byte("original")
	e.mustSet(t, k, in, e.later())
	copy(in, "XXXXXXXX")
	got := e.mustGet(t, k)
	if string(got.Value) != "original" {
		t.Fatalf("changing the slice passed to Set changed the record: Get = %q", got.Value)
	}
	copy(got.Value, "YYYYYYYY")
	if again := e.mustGet(t, k); string(again.Value) != "original" {
		t.Fatalf("changing a slice returned by Get changed the record: Get = %q", again.Value)
	}
}

// testSharedRead checks the read without a copy that a store may offer the
// manager for a session's load (internal/sharedread) against Get: the same
// value, expiry and version for a live record, ErrNotFound for a missing
// one, and bytes already handed out left as they were by later writes.
func testSharedRead(t *testing.T, e *env) {
	get := sharedread.For(e.store)
	if get == nil {
		t.Skip("the store offers no shared read")
	}
	k := e.key("shared")
	exp := e.later()
	e.mustSet(t, k, []byte("original"), exp)
	v, gotExp, version, err := get(t.Context(), k)
	want := e.mustGet(t, k)
	if err != nil || string(v) != "original" || !gotExp.Equal(want.ExpiresAt) || version != want.Version {
		t.Fatalf("shared read = %q, %v, %d, %v; Get = %q, %v, %d", v, gotExp, version, err, want.Value, want.ExpiresAt, want.Version)
	}
	e.mustSet(t, k, []byte("replaced"), exp)
	if err := e.store.CompareAndSwap(t.Context(), k, []byte("swapped!"), exp, e.mustGet(t, k).Version); err != nil {
		t.Fatal(err)
	}
	if again, _, _, err := get(t.Context(), k); err != nil || string(again) != "swapped!" {
		t.Errorf("shared read after a swap = %q, %v; want the new value", again, err)
	}
	if string(v) != "original" {
		t.Errorf("later writes changed the bytes a shared read handed out: %q", v)
	}
	if _, _, _, err := get(t.Context(), e.key("shared-missing")); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("shared read of a missing key = %v, want ErrNotFound", err)
	}
}

func testConcurrent(t *testing.T, e *env) {
	const workers, ops = 8, 40
	shared := e.key("shared")
	var wg sync.WaitGroup
	errs := make(chan error, workers*ops)
	for w := range workers {
		wg.Go(func() {
			own := e.key(fmt.Sprintf("own-%d", w))
			for i := range ops {
				ctx := t.Context()
				v := fmt.Appendf(nil, "%d-%d", w, i)
				if err := e.store.Set(ctx, own, v, e.later()); err != nil {
					errs <- err
					return
				}
				if got, err := e.store.Get(ctx, own); err != nil || !bytes.Equal(got.Value, v) {
					errs <- fmt.Errorf("worker %d: Get(own) = %q, %v; want %q", w, got.Value, err, v)
					return
				}
				if err := e.store.Set(ctx, shared, v, e.later()); err != nil {
					errs <- err
					return
				}
				if _, err := e.store.Get(ctx, shared); err != nil && !errors.Is(err, kvsession.ErrNotFound) {
					errs <- err
					return
				}
				if i%10 == 9 {
					if err := e.store.Delete(ctx, shared); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCancelled(t *testing.T, e *env) {
	k := e.key("cancelled")
	e.mustSet(t, k, []byte("v"), e.later())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", op, err)
		}
	}
	_, err := e.store.Get(ctx, k)
	check("Get", err)
	check("Set", e.store.Set(ctx, k, []byte("changed"), e.later()))
	check("Delete", e.store.Delete(ctx, k))
	{
		vs := e.store
		v := e.mustGet(t, k).Version
		check("CompareAndSwap", vs.CompareAndSwap(ctx, k, []byte("changed"), e.later(), v))
		check("CompareAndDelete", vs.CompareAndDelete(ctx, k, v))
	}
	{
		ts := e.store
		check("Touch", ts.Touch(ctx, k, e.later()))
	}
	if ls, ok := e.store.(kvsession.Lister); ok {
		check("Keys", ls.Keys(ctx, e.prefix, func(string) error { return nil }))
	}
	if ds, ok := e.store.(kvsession.ExpiredDeleter); ok {
		_, err := ds.DeleteExpired(ctx)
		check("DeleteExpired", err)
	}
	{
		us := e.store
		check("AddUserKey", us.AddUserKey(ctx, e.key("user"), k, e.later()))
		_, err := us.UserKeys(ctx, e.key("user"))
		check("UserKeys", err)
		check("RemoveUserKey", us.RemoveUserKey(ctx, e.key("user"), k))
	}
	if got := e.mustGet(t, k); string(got.Value) != "v" {
		t.Errorf("after calls with a cancelled context the record is %q, want it unchanged", got.Value)
	}
}

func testVersioned(t *testing.T, e *env) {
	vs := e.store
	ctx := t.Context()
	k := e.key("versioned")
	if err := vs.CompareAndSwap(ctx, k, []byte("v"), e.later(), 0); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("CompareAndSwap on a missing key = %v, want ErrNotFound", err)
	}
	e.wantMissing(t, k)
	if err := vs.CompareAndDelete(ctx, k, 0); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("CompareAndDelete on a missing key = %v, want ErrNotFound", err)
	}

	e.mustSet(t, k, []byte("one"), e.later())
	v1 := e.mustGet(t, k).Version
	e.mustSet(t, k, []byte("one"), e.later())
	v2 := e.mustGet(t, k).Version
	if v1 == v2 {
		t.Errorf("two Sets of the same value gave the same version %d", v1)
	}
	curExp := e.later().Add(2 * time.Hour)
	e.mustSet(t, k, []byte("current"), curExp)
	v2 = e.mustGet(t, k).Version
	err := vs.CompareAndSwap(ctx, k, []byte("stale"), e.later(), v1)
	if !errors.Is(err, kvsession.ErrConflict) {
		t.Errorf("CompareAndSwap with a stale version = %v, want ErrConflict", err)
	}
	// A store may hand back the current record with the conflict; if it
	// does, it must be the current record.
	if ce := (*kvsession.ConflictError)(nil); errors.As(err, &ce) {
		if string(ce.Current.Value) != "current" || ce.Current.Version != v2 {
			t.Errorf("ConflictError.Current = %q version %d, want %q version %d", ce.Current.Value, ce.Current.Version, "current", v2)
		}
		e.wantExpiry(t, ce.Current.ExpiresAt, curExp)
	}
	exp := e.later().Add(time.Minute)
	if err := vs.CompareAndSwap(ctx, k, []byte("two"), exp, v2); err != nil {
		t.Fatalf("CompareAndSwap with the current version: %v", err)
	}
	got := e.mustGet(t, k)
	if string(got.Value) != "two" || got.Version == v2 {
		t.Errorf("after CompareAndSwap: value %q version %d; want %q and a version other than %d", got.Value, got.Version, "two", v2)
	}
	e.wantExpiry(t, got.ExpiresAt, exp)
	if err := vs.CompareAndSwap(ctx, k, []byte("again"), e.later(), v2); !errors.Is(err, kvsession.ErrConflict) {
		t.Errorf("second CompareAndSwap with the same old version = %v, want ErrConflict", err)
	}
	if err := vs.CompareAndDelete(ctx, k, v2); !errors.Is(err, kvsession.ErrConflict) {
		t.Errorf("CompareAndDelete with a stale version = %v, want ErrConflict", err)
	}
	e.mustGet(t, k)
	if err := vs.CompareAndDelete(ctx, k, got.Version); err != nil {
		t.Fatalf("CompareAndDelete with the current version: %v", err)
	}
	e.wantMissing(t, k)
	// No resurrection: a write based on the deleted record must fail.
	if err := vs.CompareAndSwap(ctx, k, []byte("zombie"), e.later(), got.Version); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("CompareAndSwap after delete = %v, want ErrNotFound", err)
	}
	e.wantMissing(t, k)
}

// testVersionedConcurrent increments a counter from many goroutines with
// read, compare-and-swap, retry: no increment may be lost.
func testVersionedConcurrent(t *testing.T, e *env) {
	vs := e.store
	const workers, increments = 8, 10
	k := e.key("counter")
	e.mustSet(t, k, []byte("0"), e.later())
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range increments {
				for attempt := 0; ; attempt++ {
					if attempt == 1000 {
						errs <- errors.New("no progress after 1000 conflicts")
						return
					}
					got, err := vs.Get(t.Context(), k)
					if err != nil {
						errs <- err
						return
					}
					var n int
					fmt.Sscan(string(got.Value), &n)
					err = vs.CompareAndSwap(t.Context(), k, fmt.Append(nil, n+1), e.later(), got.Version)
					if err == nil {
						break
					}
					if !errors.Is(err, kvsession.ErrConflict) {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := e.mustGet(t, k); string(got.Value) != fmt.Sprint(workers*increments) {
		t.Errorf("counter = %s after %d increments: updates were lost", got.Value, workers*increments)
	}
}

func testTouch(t *testing.T, e *env) {
	ts := e.store
	ctx := t.Context()
	k := e.key("touch")
	if err := ts.Touch(ctx, k, e.later()); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Touch on a missing key = %v, want ErrNotFound", err)
	}
	e.wantMissing(t, k)
	e.mustSet(t, k, []byte("value"), e.later())
	exp := e.later().Add(24 * time.Hour)
	if err := ts.Touch(ctx, k, exp); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	got := e.mustGet(t, k)
	if string(got.Value) != "value" {
		t.Errorf("Touch changed the value to %q", got.Value)
	}
	e.wantExpiry(t, got.ExpiresAt, exp)
	// Touching into the past expires the record.
	if err := ts.Touch(ctx, k, e.clock.Now().Add(-time.Minute)); err != nil {
		t.Fatalf("Touch into the past: %v", err)
	}
	e.wantMissing(t, k)
}

func testKeys(t *testing.T, e *env) {
	ls, ok := e.store.(kvsession.Lister)
	if !ok {
		t.Skip("store does not implement kvsession.Lister")
	}
	var want []string
	for i := range 25 {
		k := e.key(fmt.Sprintf("list-%02d", i))
		want = append(want, k)
		e.mustSet(t, k, []byte("v"), e.later())
	}
	dead := e.key("list-deleted")
	e.mustSet(t, dead, []byte("v"), e.later())
	if err := e.store.Delete(t.Context(), dead); err != nil {
		t.Fatal(err)
	}
	other := "other-" + e.prefix + "x" // does not start with the prefix
	e.mustSet(t, other, []byte("v"), e.later())
	t.Cleanup(func() { e.store.Delete(context.Background(), other) })
	if _, sweeps := e.store.(kvsession.ExpiredDeleter); sweeps && !e.h.ServerClock {
		// A store that needs sweeping holds an expired record until the
		// sweep, and Keys reports it: tools count it.
		expiring := e.key("list-expired")
		want = append(want, expiring)
		e.mustSet(t, expiring, []byte("v"), e.clock.Now().Add(e.gran))
		e.clock.Advance(2 * e.gran)
		e.wantMissing(t, expiring)
	}

	var got []string
	if err := ls.Keys(t.Context(), e.prefix+"list-", func(k string) error {
		got = append(got, k)
		return nil
	}); err != nil {
		t.Fatalf("Keys: %v", err)
	}
	slices.Sort(got)
	got = slices.Compact(got) // the contract allows repeats
	if !slices.Equal(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}

	stop := errors.New("stop")
	calls := 0
	err := ls.Keys(t.Context(), e.prefix+"list-", func(string) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Keys with a callback that fails: err %v after %d calls; want the callback's error after 1 call", err, calls)
	}
}

func testDeleteExpired(t *testing.T, e *env) {
	ds, ok := e.store.(kvsession.ExpiredDeleter)
	if !ok {
		t.Skip("store does not implement kvsession.ExpiredDeleter")
	}
	step := 100 * time.Millisecond
	if e.h.ServerClock {
		step = max(time.Second, e.gran)
	}
	now := e.clock.Now()
	const n = 30
	for i := range n {
		e.mustSet(t, e.key(fmt.Sprintf("expiring-%d", i)), []byte("v"), now.Add(step))
	}
	live := e.key("live")
	e.mustSet(t, live, []byte("v"), now.Add(time.Hour))
	e.clock.Advance(2*step + e.gran)
	got, err := ds.DeleteExpired(t.Context())
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	// Other tests may share the store, so more may go, but not fewer.
	if got < n {
		t.Errorf("DeleteExpired removed %d records, want at least %d", got, n)
	}
	e.mustGet(t, live)
	if ls, ok := e.store.(kvsession.Lister); ok {
		err := ls.Keys(t.Context(), e.prefix+"expiring-", func(k string) error {
			return fmt.Errorf("after DeleteExpired, Keys still reports %q", k)
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// testSweepProgress sweeps enough records for several batches of the
// repository's stores (1000 rows, 256 directory entries) and checks what
// kvsession.WithSweepProgress promises: counts that grow, the last equal
// to the total, none after DeleteExpired returns.
func testSweepProgress(t *testing.T, e *env) {
	ds, ok := e.store.(kvsession.ExpiredDeleter)
	if !ok {
		t.Skip("store does not implement kvsession.ExpiredDeleter")
	}
	step := 100 * time.Millisecond
	if e.h.ServerClock {
		step = max(time.Second, e.gran)
	}
	const n, writers = 2500, 8
	exp := e.clock.Now().Add(step)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				if err := e.store.Set(t.Context(), e.key(fmt.Sprintf("sweep-%d", i)), []byte("v"), exp); err != nil {
					errs <- fmt.Errorf("Set: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.clock.Advance(2*step + e.gran)

	var reports []int
	var returned atomic.Bool
	ctx := kvsession.WithSweepProgress(t.Context(), func(deleted int) {
		if returned.Load() {
			t.Errorf("progress %d reported after DeleteExpired returned", deleted)
			return
		}
		reports = append(reports, deleted)
	})
	got, err := ds.DeleteExpired(ctx)
	returned.Store(true)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if got < n { // other tests may share the store, so more may go
		t.Errorf("DeleteExpired removed %d records, want at least %d", got, n)
	}
	if len(reports) == 0 {
		if e.h.SweepProgress {
			t.Fatalf("DeleteExpired of %d records reported no progress; Harness.SweepProgress says it does", got)
		}
		t.Skip("DeleteExpired reports no progress (optional)")
	}
	t.Logf("DeleteExpired of %d records reported %d times", got, len(reports))
	last := 0
	for _, d := range reports {
		if d <= last {
			t.Errorf("progress reports %v: %d after %d, want growing counts", reports, d, last)
			break
		}
		last = d
	}
	if last != got {
		t.Errorf("last progress report %d, but DeleteExpired returned %d", last, got)
	}
}

func testUserIndex(t *testing.T, e *env) {
	us := e.store
	ctx := t.Context()
	alice, bob := e.key("alice"), e.key("bob")
	userKeys := func(user string) []string {
		t.Helper()
		keys, err := us.UserKeys(ctx, user)
		if err != nil {
			t.Fatalf("UserKeys(%q): %v", user, err)
		}
		slices.Sort(keys)
		return keys
	}
	if got := userKeys(alice); len(got) != 0 {
		t.Errorf("UserKeys of an unknown user = %q, want none", got)
	}
	a1, a2, b1 := e.key("a1"), e.key("a2"), e.key("b1")
	short := e.clock.Now().Add(time.Second)
	if e.h.ServerClock {
		short = e.clock.Now().Add(max(time.Second, e.gran))
	}
	for _, p := range []struct {
		user, key string
		exp       time.Time
	}{{alice, a1, e.later()}, {alice, a2, e.later()}, {alice, a2, e.later()}, {bob, b1, short}} {
		if err := us.AddUserKey(ctx, p.user, p.key, p.exp); err != nil {
			t.Fatalf("AddUserKey(%q, %q): %v", p.user, p.key, err)
		}
	}
	if got, want := userKeys(alice), []string{a1, a2}; !slices.Equal(got, want) {
		t.Errorf("UserKeys(alice) = %q, want %q", got, want)
	}
	if got, want := userKeys(bob), []string{b1}; !slices.Equal(got, want) {
		t.Errorf("UserKeys(bob) = %q, want %q", got, want)
	}
	if err := us.RemoveUserKey(ctx, alice, a1); err != nil {
		t.Fatalf("RemoveUserKey: %v", err)
	}
	if err := us.RemoveUserKey(ctx, alice, e.key("never-added")); err != nil {
		t.Errorf("RemoveUserKey of a pair never added = %v, want nil", err)
	}
	if got, want := userKeys(alice), []string{a2}; !slices.Equal(got, want) {
		t.Errorf("UserKeys(alice) after remove = %q, want %q", got, want)
	}
	e.clock.Advance(short.Sub(e.clock.Now()) + time.Second + e.gran)
	if got := userKeys(bob); len(got) != 0 {
		t.Errorf("UserKeys(bob) after the entry's expiry = %q, want none", got)
	}
}

// weirdUsers returns user IDs that a store must keep apart: the longest the
// manager accepts, long ones that differ only in their last byte (a store
// that truncates or hashes a prefix merges them), and bytes that mean
// something to a file system, a URL, SQL or a Redis/memcached protocol.
func weirdUsers(prefix string) []string {
	long := prefix + strings.Repeat("u", kvsession.MaxUserBytes-len(prefix)-1)
	return []string{
		long + "a",
		long + "b",
		prefix + strings.Repeat("é", 128), // 256 bytes of UTF-8, over a VARCHAR(255) of bytes
		prefix + "../../etc/passwd",
		prefix + "a/b\\c",
		prefix + "sp ace\ttab\r\nnewline",
		prefix + "\x00nul\xff\xfe",
		prefix + "%2e%2e%2F",
		prefix + "'; DROP TABLE sessions; --",
		prefix + "*?[]{}",
		prefix + "\u2000__Host-u\u3000",
		prefix + ".",
	}
}

func testUserIndexWeirdUsers(t *testing.T, e *env) {
	us := e.store
	ctx := t.Context()
	users := weirdUsers(e.prefix)
	for i, u := range users {
		if err := us.AddUserKey(ctx, u, e.key(fmt.Sprint("k", i)), e.later()); err != nil {
			t.Fatalf("AddUserKey(user %d, %d bytes): %v", i, len(u), err)
		}
	}
	for i, u := range users {
		keys, err := us.UserKeys(ctx, u)
		if err != nil {
			t.Fatalf("UserKeys(user %d, %d bytes): %v", i, len(u), err)
		}
		if want := []string{e.key(fmt.Sprint("k", i))}; !slices.Equal(keys, want) {
			t.Errorf("UserKeys(user %d, %d bytes) = %q, want %q", i, len(u), keys, want)
		}
	}
	for i, u := range users {
		if err := us.RemoveUserKey(ctx, u, e.key(fmt.Sprint("k", i))); err != nil {
			t.Fatalf("RemoveUserKey(user %d): %v", i, err)
		}
		if keys, err := us.UserKeys(ctx, u); err != nil || len(keys) != 0 {
			t.Errorf("UserKeys(user %d) after remove = %q, %v; want none", i, keys, err)
		}
	}
}

// RunBenchmarks measures the core operations of the store.
func RunBenchmarks(b *testing.B, newStore func(b *testing.B) kvsession.Store) {
	value := bytes.Repeat([]byte("v"), 200)
	prefix := fmt.Sprintf("storebench-%d-", time.Now().UnixNano())
	b.Run("Get", func(b *testing.B) {
		s := newStore(b)
		k := prefix + "get"
		if err := s.Set(b.Context(), k, value, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Get(b.Context(), k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Set", func(b *testing.B) {
		s := newStore(b)
		k := prefix + "set"
		for b.Loop() {
			if err := s.Set(b.Context(), k, value, time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetCompareAndSwap", func(b *testing.B) {
		s := newStore(b)
		vs := s
		k := prefix + "cas"
		if err := s.Set(b.Context(), k, value, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			e, err := s.Get(b.Context(), k)
			if err != nil {
				b.Fatal(err)
			}
			if err := vs.CompareAndSwap(b.Context(), k, value, time.Now().Add(time.Hour), e.Version); err != nil {
				b.Fatal(err)
			}
		}
	})
}
