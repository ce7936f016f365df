package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

// fixedClock returns a store clock that stays at now.
func fixedClock() (time.Time, func() time.Time) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return now, func() time.Time { return now }
}

// wantLive checks that each key reads back, and wantGone that none does.
func wantLive(t *testing.T, s *memstore.Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if e, err := s.Get(t.Context(), k); err != nil || string(e.Value) != "v-"+k {
			t.Errorf("Get(%q) = %q, %v; want it kept", k, e.Value, err)
		}
	}
}

func wantGone(t *testing.T, s *memstore.Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := s.Get(t.Context(), k); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("Get(%q): %v; want it evicted", k, err)
		}
	}
}

func set(t *testing.T, s *memstore.Store, key string, expiresAt time.Time) {
	t.Helper()
	if err := s.Set(t.Context(), key, []byte("v-"+key), expiresAt); err != nil {
		t.Fatal(err)
	}
}

func names(prefix string, from, to int) []string {
	var keys []string
	for i := from; i < to; i++ {
		keys = append(keys, fmt.Sprintf("%s%03d", prefix, i))
	}
	return keys
}

// TestBoundEvictsSoonestExpiring fills a store to its bound in random
// order, then writes more: the soonest-expiring records go, records without
// expiry go last, and every other record stays readable.
func TestBoundEvictsSoonestExpiring(t *testing.T) {
	now, clock := fixedClock()
	s := memstore.New(&memstore.Options{Now: clock, MaxRecords: 100})
	expiring, forever := names("e", 0, 50), names("n", 0, 50)
	order := append(slices.Clone(expiring), forever...)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, k := range order {
		var exp time.Time
		if k[0] == 'e' {
			var i int
			fmt.Sscanf(k, "e%d", &i)
			exp = now.Add(time.Duration(i+1) * time.Minute)
		}
		set(t, s, k, exp)
	}
	if n := s.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	wantLive(t, s, order...)

	// 30 new records, each expiring later than every old one: the 30 old
	// ones that expire soonest make room.
	fresh := names("x", 0, 30)
	for i, k := range fresh {
		set(t, s, k, now.Add(time.Duration(100+i)*time.Minute))
	}
	wantGone(t, s, expiring[:30]...)
	wantLive(t, s, expiring[30:]...)
	wantLive(t, s, forever...)
	wantLive(t, s, fresh...)

	// 30 more: the 20 old expiring ones go, then the first 10 fresh
	// ones; the records without expiry stay.
	more := names("y", 0, 30)
	for i, k := range more {
		set(t, s, k, now.Add(time.Duration(200+i)*time.Minute))
	}
	wantGone(t, s, expiring...)
	wantGone(t, s, fresh[:10]...)
	wantLive(t, s, fresh[10:]...)
	wantLive(t, s, forever...)
	wantLive(t, s, more...)
	if n := s.Len(); n != 100 {
		t.Errorf("Len = %d, want 100", n)
	}

	// Only records without expiry left: the oldest write goes first.
	t.Run("no expiry", func(t *testing.T) {
		s := memstore.New(&memstore.Options{Now: clock, MaxRecords: 10})
		keys := names("n", 0, 15)
		for _, k := range keys {
			set(t, s, k, time.Time{})
		}
		wantGone(t, s, keys[:5]...)
		wantLive(t, s, keys[5:]...)
	})
}

// TestBoundKeepsTheRecordBeingWritten writes, into a full store, a record
// that expires sooner than all the others: the write keeps it and evicts
// the soonest of the others.
func TestBoundKeepsTheRecordBeingWritten(t *testing.T) {
	now, clock := fixedClock()
	s := memstore.New(&memstore.Options{Now: clock, MaxRecords: 3})
	for i, k := range []string{"a", "b", "c"} {
		set(t, s, k, now.Add(time.Duration(10+i)*time.Hour))
	}
	set(t, s, "soon", now.Add(time.Minute))
	wantGone(t, s, "a")
	wantLive(t, s, "b", "c", "soon")
}

// TestBoundUpdatesEvictNothing rewrites and refreshes records of a full
// store: no record goes, and a refresh moves a record back in line.
func TestBoundUpdatesEvictNothing(t *testing.T) {
	now, clock := fixedClock()
	ctx := t.Context()
	s := memstore.New(&memstore.Options{Now: clock, MaxRecords: 3})
	for i, k := range []string{"a", "b", "c"} {
		set(t, s, k, now.Add(time.Duration(1+i)*time.Hour))
	}
	set(t, s, "a", now.Add(time.Hour))
	e, err := s.Get(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, "b", []byte("v-b"), now.Add(2*time.Hour), e.Version); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "a", now.Add(9*time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantLive(t, s, "a", "b", "c")
	set(t, s, "d", now.Add(5*time.Hour)) // "b" now expires soonest
	wantGone(t, s, "b")
	wantLive(t, s, "a", "c", "d")
	if err := s.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	set(t, s, "e", now.Add(time.Minute)) // room again: nothing goes
	wantLive(t, s, "a", "d", "e")
}

// TestBoundBytes bounds a store by bytes.
func TestBoundBytes(t *testing.T) {
	now, clock := fixedClock()
	ctx := t.Context()
	size := int64(len("k000")+len("v-k000")) + memstore.RecordOverhead
	s := memstore.New(&memstore.Options{Now: clock, MaxRecords: -1, MaxBytes: 10 * size})
	keys := names("k", 0, 15)
	for i, k := range keys {
		set(t, s, k, now.Add(time.Duration(1+i)*time.Minute))
	}
	wantGone(t, s, keys[:5]...)
	wantLive(t, s, keys[5:]...)

	// A record that could never fit fails, and changes nothing.
	big := make([]byte, 10*size)
	if err := s.Set(ctx, "k014", big, time.Time{}); err == nil {
		t.Error("Set of a record larger than MaxBytes = nil, want an error")
	}
	e, err := s.Get(ctx, "k014")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, "k014", big, time.Time{}, e.Version); err == nil {
		t.Error("CompareAndSwap of a record larger than MaxBytes = nil, want an error")
	}
	wantLive(t, s, keys[5:]...)

	// A record that grows evicts others, never itself.
	half := make([]byte, 5*size)
	if err := s.Set(ctx, "k005", half, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(ctx, "k005"); err != nil || len(e.Value) != len(half) {
		t.Errorf("Get of the grown record = %d bytes, %v; want %d", len(e.Value), err, len(half))
	}
	wantGone(t, s, keys[6:11]...)
	wantLive(t, s, keys[11:]...)
}

// TestBoundOptions checks what zero and negative bounds mean.
func TestBoundOptions(t *testing.T) {
	_, clock := fixedClock()
	for _, tc := range []struct {
		name string
		opts memstore.Options
		want int // records held after 3000 writes of distinct keys
	}{
		{"MaxRecords 1", memstore.Options{MaxRecords: 1}, 1},
		{"MaxRecords -1 is no bound", memstore.Options{MaxRecords: -1}, 3000},
		{"MaxBytes -1 is no bound", memstore.Options{MaxBytes: -1}, 3000},
		{"MaxBytes 1 fails every write", memstore.Options{MaxBytes: 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = clock
			s := memstore.New(&tc.opts)
			for i := range 3000 {
				s.Set(t.Context(), fmt.Sprint(i), []byte("v"), time.Time{})
			}
			if n := s.Len(); n != tc.want {
				t.Errorf("Len = %d, want %d", n, tc.want)
			}
		})
	}
}

// TestDefaultBound checks that the zero Options hold DefaultMaxRecords
// records at most. It writes a million records.
func TestDefaultBound(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("writes a million records")
	}
	_, clock := fixedClock()
	s := memstore.New(&memstore.Options{Now: clock})
	for i := range memstore.DefaultMaxRecords + 100 {
		s.Set(t.Context(), fmt.Sprint(i), nil, time.Time{})
	}
	if n := s.Len(); n != memstore.DefaultMaxRecords {
		t.Errorf("Len = %d, want DefaultMaxRecords", n)
	}
	wantGone(t, s, "0", "99")
}

var errStop = errors.New("stop")

var testKey = []byte("0123456789abcdef0123456789abcdef")

// newManager returns a manager on s.
func newManager(t testing.TB, s *memstore.Store, clock func() time.Time) *kvsession.Manager {
	t.Helper()
	m, err := kvsession.New(s, kvsession.Config{Secrets: [][]byte{testKey}, Now: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// browser is a typical User-Agent, which every session records.
const browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

// request serves one request without a cookie through m, running fn on
// its new session, which is then saved.
func request(t testing.TB, m *kvsession.Manager, fn func(*kvsession.Session) error) {
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(kvsession.FromContext(r.Context())); err != nil {
			t.Error(err)
		}
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "https://example.com/", nil)
	req.Header.Set("User-Agent", browser)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// TestBoundAndUserIndex floods a bounded store with anonymous sessions
// after a user logged in on three devices: the flood evicts their
// sessions, which expire first, and UserSessions then lists the survivor
// without error and drops the stale index entries.
func TestBoundAndUserIndex(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	s := memstore.New(&memstore.Options{Now: clock, MaxRecords: 50})
	m := newManager(t, s, clock)
	login := func(sess *kvsession.Session) error { return sess.SetUser("ada") }
	for range 3 {
		request(t, m, login)
		now = now.Add(time.Minute)
	}
	for range 48 {
		request(t, m, func(sess *kvsession.Session) error { return sess.Set("n", 1) })
	}
	if n := s.Len(); n != 50 {
		t.Fatalf("Len = %d, want 50", n)
	}
	infos, err := m.UserSessions(context.Background(), "ada")
	if err != nil {
		t.Fatalf("UserSessions: %v", err)
	}
	if len(infos) != 2 {
		t.Errorf("UserSessions after 1 of 3 sessions was evicted = %d sessions, want 2", len(infos))
	}
	keys, err := s.UserKeys(t.Context(), "ada")
	if err != nil || len(keys) != 2 {
		t.Errorf("UserKeys after UserSessions = %d keys, %v; want the 2 live ones", len(keys), err)
	}
	for _, k := range keys {
		if _, err := s.Get(t.Context(), k); err != nil {
			t.Errorf("an index entry left names a missing record: %v", err)
		}
	}
	n, err := m.RevokeUser(context.Background(), "ada", false)
	if err != nil || n != 2 {
		t.Errorf("RevokeUser = %d, %v; want 2", n, err)
	}
}

// BenchmarkSessionMemory reports what a session costs the store: the heap
// growth over b.N anonymous sessions, each created by a request from a
// browser through a manager that sets one small value, and the length of
// one stored key and value. Run it with -benchtime=100000x.
func BenchmarkSessionMemory(b *testing.B) {
	s := memstore.New(&memstore.Options{MaxRecords: -1})
	m := newManager(b, s, nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for b.Loop() {
		request(b, m, func(sess *kvsession.Session) error { return sess.Set("visits", 1) })
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.Len() != b.N {
		b.Fatalf("Len = %d, want %d", s.Len(), b.N)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-bytes/session")
	err := s.Keys(b.Context(), "", func(key string) error {
		e, err := s.Get(b.Context(), key)
		b.ReportMetric(float64(len(key)+len(e.Value)), "key+value-bytes")
		return errors.Join(err, errStop)
	})
	if !errors.Is(err, errStop) {
		b.Fatal(err)
	}
}

// TestBoundRandom checks eviction against a model through random writes,
// refreshes and deletes of a bounded store, with distinct expiries: in a
// Store as New makes it, and in one whose keys share four hashes, so that
// most records are chained behind others of the same hash.
func TestBoundRandom(t *testing.T) {
	t.Run("store=new", func(t *testing.T) { boundRandom(t, memstore.New) })
	t.Run("store=colliding", func(t *testing.T) { boundRandom(t, memstore.NewColliding) })
}

func boundRandom(t *testing.T, newStore func(*memstore.Options) *memstore.Store) {
	now, clock := fixedClock()
	ctx := t.Context()
	const bound = 20
	s := newStore(&memstore.Options{Now: clock, MaxRecords: bound})
	model := map[string]time.Time{}
	rng := rand.New(rand.NewPCG(1, 2))
	used := map[time.Duration]bool{}
	expiry := func() time.Time {
		for {
			d := time.Duration(1+rng.IntN(1_000_000)) * time.Millisecond
			if !used[d] {
				used[d] = true
				return now.Add(d)
			}
		}
	}
	for i := range 20_000 {
		key := fmt.Sprintf("k%d", rng.IntN(60))
		_, live := model[key]
		switch op := rng.IntN(10); {
		case op < 6:
			exp := expiry()
			if !live && len(model) == bound {
				soonest := ""
				for k, e := range model {
					if soonest == "" || e.Before(model[soonest]) {
						soonest = k
					}
				}
				delete(model, soonest)
			}
			model[key] = exp
			set(t, s, key, exp)
		case op < 9:
			exp := expiry()
			err := s.Touch(ctx, key, exp)
			if live != (err == nil) {
				t.Fatalf("op %d: Touch(%s) = %v, want live=%v", i, key, err, live)
			}
			if live {
				model[key] = exp
			}
		default:
			delete(model, key)
			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		if s.Len() != len(model) {
			t.Fatalf("op %d: Len = %d, want %d", i, s.Len(), len(model))
		}
		for k, exp := range model {
			if e, err := s.Get(ctx, k); err != nil || !e.ExpiresAt.Equal(exp) {
				t.Fatalf("op %d: Get(%s) = %v, %v; want it live until %v", i, k, e.ExpiresAt, err, exp)
			}
		}
	}
}

// BenchmarkSetNewAtBound inserts new records into a store at its bound of
// 100,000 records: every insertion evicts one.
func BenchmarkSetNewAtBound(b *testing.B) {
	s, _, now := populated(b, &memstore.Options{MaxRecords: benchLive})
	value := make([]byte, 200)
	i := 0
	for b.Loop() {
		if err := s.Set(b.Context(), fmt.Sprintf("new-%010d", i), value, now.Add(2*time.Hour+time.Duration(i))); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if s.Len() != benchLive {
		b.Fatalf("Len = %d, want %d", s.Len(), benchLive)
	}
}
