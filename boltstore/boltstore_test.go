package boltstore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/boltstore"
	"github.com/kvsession/kvsession/storetest"
)

func openDB(tb testing.TB, path string, opts *bbolt.Options) *bbolt.DB {
	tb.Helper()
	if opts == nil {
		// No fsync per transaction: the tests check behaviour, not
		// durability, and fsyncs would make them slow. Example syncs.
		opts = &bbolt.Options{NoSync: true}
	}
	opts.Timeout = time.Second // fail rather than wait forever for the file lock
	db, err := bbolt.Open(path, 0o600, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func tempDB(tb testing.TB) *bbolt.DB {
	return openDB(tb, filepath.Join(tb.TempDir(), "sessions.db"), nil)
}

func newStore(tb testing.TB, db *bbolt.DB, opts *boltstore.Options) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.New(db, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
			return newStore(t, tempDB(t), &boltstore.Options{Now: c.Now})
		},
		SweepProgress: true,
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) kvsession.Store { return newStore(b, tempDB(b), nil) })
}

// TestNewOptions checks that New either refuses a database or an option
// with a one-line error naming the package, or accepts it and the store
// then works.
func TestNewOptions(t *testing.T) {
	for _, tt := range []struct {
		name   string
		db     func(t *testing.T) *bbolt.DB
		bucket string
		want   string // a piece of the error; "" for success
	}{
		{name: "nil db", db: func(*testing.T) *bbolt.DB { return nil }, want: "nil *bbolt.DB"},
		{name: "closed db", db: func(t *testing.T) *bbolt.DB {
			db := tempDB(t)
			db.Close()
			return db
		}, want: "database not open"},
		{name: "bucket too long", bucket: strings.Repeat("b", bbolt.MaxKeySize+1), want: "too long"},
		{name: "longest bucket", bucket: strings.Repeat("b", bbolt.MaxKeySize)},
		{name: "default bucket"},
		{name: "odd bucket", bucket: "a/b\x00\xff ../"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var db *bbolt.DB
			if tt.db != nil {
				db = tt.db(t)
			} else {
				db = tempDB(t)
			}
			s, err := boltstore.New(db, &boltstore.Options{Bucket: tt.bucket})
			if tt.want != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "boltstore: new: ") || !strings.Contains(err.Error(), tt.want) || strings.ContainsAny(err.Error(), "\r\n") {
					t.Fatalf("New = %v, want an error \"boltstore: new: ...%s...\"", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := s.Set(t.Context(), "k", []byte("v"), time.Time{}); err != nil {
				t.Fatal(err)
			}
			if e, err := s.Get(t.Context(), "k"); err != nil || string(e.Value) != "v" {
				t.Errorf("Get = %q, %v", e.Value, err)
			}
		})
	}
	if _, err := boltstore.New(nil, nil); err == nil {
		t.Error("New(nil, nil) succeeded, want an error")
	}
}

// putRaw writes bytes under key in the records bucket, bypassing the store.
func putRaw(t *testing.T, db *bbolt.DB, key string, raw []byte) {
	t.Helper()
	err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(boltstore.DefaultBucket)).Bucket([]byte("records")).Put([]byte(key), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptRecord writes records the store never writes and checks that
// they read as missing, never as a panic or a system error, and that Set
// replaces them.
func TestCorruptRecord(t *testing.T) {
	db := tempDB(t)
	s := newStore(t, db, nil)
	ctx := t.Context()
	valid := func(format byte, exp, version uint64) []byte {
		b := []byte{format}
		b = binary.BigEndian.AppendUint64(b, exp)
		b = binary.BigEndian.AppendUint64(b, version)
		return append(b, "value"...)
	}
	future := uint64(time.Now().Add(time.Hour).UnixMilli())
	raws := map[string][]byte{
		"empty":          {},
		"short":          {1, 2, 3},
		"header-only-1":  valid(1, future, 7)[:16],
		"unknown-format": valid(9, future, 7),
		"zero-version":   valid(1, future, 0),
		"huge-expiry":    valid(1, 1<<63, 7),
	}
	for key, raw := range raws {
		putRaw(t, db, key, raw)
	}
	var listed []string
	if err := s.Keys(ctx, "", func(k string) error { listed = append(listed, k); return nil }); err != nil || len(listed) != len(raws) {
		t.Errorf("Keys = %q, %v; want the %d corrupt records, so that tools report them", listed, err, len(raws))
	}
	for key := range raws {
		if _, err := s.Get(ctx, key); !errors.Is(err, kvsession.ErrNotFound) || !errors.Is(err, kvsession.ErrCorrupt) {
			t.Errorf("Get(%q) of a corrupt record = %v, want an error wrapping ErrNotFound and ErrCorrupt", key, err)
		}
		if err := s.CompareAndSwap(ctx, key, []byte("x"), time.Time{}, 7); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("CompareAndSwap(%q) of a corrupt record = %v, want ErrNotFound", key, err)
		}
		if err := s.Touch(ctx, key, time.Time{}); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("Touch(%q) of a corrupt record = %v, want ErrNotFound", key, err)
		}
		if err := s.Set(ctx, key, []byte("fresh"), time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Set over a corrupt record: %v", err)
		}
		if got, err := s.Get(ctx, key); err != nil || string(got.Value) != "fresh" {
			t.Errorf("Get(%q) after Set over a corrupt record = %q, %v; want %q", key, got.Value, err, "fresh")
		}
	}
	// A record that is well formed apart from its expiry index.
	putRaw(t, db, "unindexed", valid(1, 1, 5))
	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Errorf("DeleteExpired: %v", err)
	}
	if err := s.Keys(ctx, "", func(string) error { return nil }); err != nil {
		t.Errorf("Keys: %v", err)
	}
}

// TestReturnedBytesOutliveTransaction checks that values returned by Get
// stay intact after later writes reuse bbolt's pages.
func TestReturnedBytesOutliveTransaction(t *testing.T) {
	s := newStore(t, tempDB(t), nil)
	ctx := t.Context()
	want := bytes.Repeat([]byte("abcdefgh"), 1024)
	if err := s.Set(ctx, "k", want, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		v := bytes.Repeat([]byte{byte(i)}, 8192)
		if err := s.Set(ctx, "k", v, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, fmt.Sprint("other-", i), v, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Value, want) {
		t.Error("a value returned by Get changed after later writes: it aliases bbolt's memory")
	}
}

// TestReadOnly opens the file read-only, as the command-line tool does
// while the application is stopped: reads work, writes fail, and New
// creates nothing.
func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	db := openDB(t, path, nil)
	s := newStore(t, db, nil)
	if err := s.Set(t.Context(), "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ro := openDB(t, path, &bbolt.Options{ReadOnly: true})
	rs := newStore(t, ro, nil)
	if got, err := rs.Get(t.Context(), "k"); err != nil || string(got.Value) != "v" {
		t.Errorf("read-only Get = %q, %v; want %q", got.Value, err, "v")
	}
	var keys []string
	if err := rs.Keys(t.Context(), "", func(k string) error { keys = append(keys, k); return nil }); err != nil || len(keys) != 1 {
		t.Errorf("read-only Keys = %q, %v; want [k]", keys, err)
	}
	if err := rs.Set(t.Context(), "k2", []byte("v"), time.Time{}); err == nil {
		t.Error("Set on a read-only database succeeded")
	}
	// Another bucket name: nothing there, and nothing created.
	other := newStore(t, ro, &boltstore.Options{Bucket: "absent"})
	if _, err := other.Get(t.Context(), "k"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get in a missing bucket = %v, want ErrNotFound", err)
	}
	if keys, err := other.UserKeys(t.Context(), "u"); err != nil || len(keys) != 0 {
		t.Errorf("UserKeys in a missing bucket = %q, %v; want none", keys, err)
	}
}

// TestBucketsAreSeparate checks that two stores in one file with different
// buckets do not see each other's records.
func TestBucketsAreSeparate(t *testing.T) {
	db := tempDB(t)
	a := newStore(t, db, &boltstore.Options{Bucket: "a"})
	b := newStore(t, db, &boltstore.Options{Bucket: "b"})
	if err := a.Set(t.Context(), "k", []byte("a"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(t.Context(), "k"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get from the other bucket = %v, want ErrNotFound", err)
	}
}

// TestDeleteExpiredBatches checks a sweep larger than one batch, with
// overwritten records and user index entries, under the injected clock.
func TestDeleteExpiredBatches(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	db := tempDB(t)
	s := newStore(t, db, &boltstore.Options{Now: clock})
	ctx := t.Context()
	const n = 2500
	soon, later := now.Add(time.Minute), now.Add(time.Hour)
	for i := range n {
		k := fmt.Sprint("k-", i)
		if err := s.Set(ctx, k, []byte("v"), soon); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUserKey(ctx, "u", k, soon); err != nil {
			t.Fatal(err)
		}
	}
	// Records whose expiry moved later must survive the sweep.
	for _, k := range []string{"k-1", "k-2000"} {
		if err := s.Set(ctx, k, []byte("v"), later); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Touch(ctx, "k-3", later); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserKey(ctx, "u", "k-1", later); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DeleteExpired(ctx); err != nil || got != 0 {
		t.Fatalf("DeleteExpired before expiry = %d, %v; want 0", got, err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if got, err := s.DeleteExpired(ctx); err != nil || got != n-3 {
		t.Fatalf("DeleteExpired = %d, %v; want %d", got, err, n-3)
	}
	var records, users, index int
	err := db.View(func(tx *bbolt.Tx) error {
		top := tx.Bucket([]byte(boltstore.DefaultBucket))
		records = top.Bucket([]byte("records")).Stats().KeyN
		users = top.Bucket([]byte("users")).Stats().KeyN
		index = top.Bucket([]byte("expiry")).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if records != 3 || users != 1 || index != 4 {
		t.Errorf("after the sweep: %d records, %d user entries, %d index entries; want 3, 1, 4", records, users, index)
	}
	if keys, err := s.UserKeys(ctx, "u"); err != nil || len(keys) != 1 || keys[0] != "k-1" {
		t.Errorf("UserKeys after the sweep = %q, %v; want [k-1]", keys, err)
	}
}

// TestKeysManyChunks checks chunking, and that fn may write to the store.
func TestKeysManyChunks(t *testing.T) {
	s := newStore(t, tempDB(t), nil)
	ctx := t.Context()
	const n = 700
	for i := range n {
		if err := s.Set(ctx, fmt.Sprintf("p-%04d", i), []byte("v"), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"o", "p", "q-1"} {
		if err := s.Set(ctx, k, []byte("v"), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[string]bool)
	err := s.Keys(ctx, "p-", func(k string) error {
		if seen[k] {
			return fmt.Errorf("key %q reported twice", k)
		}
		seen[k] = true
		return s.Delete(ctx, k) // writing from fn must not deadlock
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("Keys reported %d keys, want %d", len(seen), n)
	}
}

// TestUserKeysDistinctUsers checks that a user whose name is a prefix of
// another's does not see the other's keys.
func TestUserKeysDistinctUsers(t *testing.T) {
	s := newStore(t, tempDB(t), nil)
	ctx := t.Context()
	if err := s.AddUserKey(ctx, "ab", "c", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserKey(ctx, "a", "bc", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]string{"a": "bc", "ab": "c"} {
		if keys, err := s.UserKeys(ctx, user); err != nil || len(keys) != 1 || keys[0] != want {
			t.Errorf("UserKeys(%q) = %q, %v; want [%s]", user, keys, err, want)
		}
	}
}
