package sqlitestore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/sqlitestore"
	"github.com/kvsession/kvsession/storetest"
)

// dsn is how the package doc tells users to open a database.
func dsn(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(1000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
}

// openDB opens a database as the package doc tells users to: the DSN's
// pragmas and a pool of one connection.
func openDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", dsn(filepath.Join(tb.TempDir(), "sessions.db")))
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	return db
}

func newStore(tb testing.TB, db *sql.DB, opts *sqlitestore.Options) *sqlitestore.Store {
	tb.Helper()
	s, err := sqlitestore.New(db, opts)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.CreateSchema(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// sessionRounds keeps the kit's 50-writer rounds affordable: SQLite lets
// one writer in at a time, and waiting writers poll for the lock.
const sessionRounds = 20

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
			return newStore(t, openDB(t), &sqlitestore.Options{Now: c.Now})
		},
		SessionRounds: sessionRounds,
		SweepProgress: true,
	})
}

// TestConformanceManyConnections runs the kit against a pool of ten
// connections, whose writers wait for each other on SQLite's lock: the
// store keeps its promises there too, given a busy_timeout long enough
// for the kit's 50 concurrent writers and no deadline.
func TestConformanceManyConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
			path := filepath.Join(t.TempDir(), "sessions.db")
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(10)
			t.Cleanup(func() { db.Close() })
			return newStore(t, db, &sqlitestore.Options{Now: c.Now, Table: "sessions"})
		},
		SessionRounds: sessionRounds,
		SweepProgress: true,
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) kvsession.Store { return newStore(b, openDB(b), nil) })
}

// TestNewOptions checks that New either refuses an option with an error
// naming the package, or accepts it and the store then works.
func TestNewOptions(t *testing.T) {
	for _, tt := range []struct {
		name  string
		nilDB bool
		table string
		want  string // a piece of the error; "" for success
	}{
		{name: "nil db", nilDB: true, want: "nil *sql.DB"},
		{name: "nil db with a table", nilDB: true, table: "t", want: "nil *sql.DB"},
		{name: "default table"},
		{name: "keyword", table: "select"},
		{name: "keyword order", table: "Order"},
		{name: "longest", table: "a234567890123456789012345678901234567890123456_8"},
		{name: "too long", table: "a234567890123456789012345678901234567890123456_89", want: "invalid table name"},
		{name: "reserved", table: "sqlite_sessions", want: "SQLite reserves"},
		{name: "reserved upper case", table: "SQLite_x", want: "SQLite reserves"},
		{name: "quote", table: `a"b`, want: "invalid table name"},
		{name: "dot", table: "main.t", want: "invalid table name"},
		{name: "NUL", table: "t\x00", want: "invalid table name"},
		{name: "digit first", table: "1t", want: "invalid table name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var db *sql.DB
			if !tt.nilDB {
				db = openDB(t)
			}
			s, err := sqlitestore.New(db, &sqlitestore.Options{Table: tt.table})
			if tt.want != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "sqlitestore: new: ") || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("New = %v, want an error \"sqlitestore: new: ...%s...\"", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := s.CreateSchema(t.Context()); err != nil {
				t.Fatalf("CreateSchema with table %q: %v", tt.table, err)
			}
			if err := s.Set(t.Context(), "k", []byte("v"), time.Time{}); err != nil {
				t.Fatal(err)
			}
			if e, err := s.Get(t.Context(), "k"); err != nil || string(e.Value) != "v" {
				t.Errorf("Get = %q, %v", e.Value, err)
			}
		})
	}
}

func TestNewRejectsBadTable(t *testing.T) {
	db := openDB(t)
	for _, name := range []string{"1abc", "a-b", "a b", "sessions; DROP TABLE x", `"q"`, "ключ", "a23456789012345678901234567890123456789012345678x"} {
		if _, err := sqlitestore.New(db, &sqlitestore.Options{Table: name}); err == nil {
			t.Errorf("New with table %q succeeded, want an error", name)
		}
	}
	if _, err := sqlitestore.New(nil, nil); err == nil {
		t.Error("New(nil, nil) succeeded, want an error")
	}
}

func TestCreateSchemaIsIdempotent(t *testing.T) {
	db := openDB(t)
	s := newStore(t, db, nil)
	if err := s.Set(t.Context(), "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSchema(t.Context()); err != nil {
		t.Fatalf("second CreateSchema: %v", err)
	}
	if got, err := s.Get(t.Context(), "k"); err != nil || string(got.Value) != "v" {
		t.Errorf("after a second CreateSchema Get = %q, %v; want %q", got.Value, err, "v")
	}
}

// TestTablesAreSeparate checks that two stores on one database with
// different tables do not see each other's records.
func TestTablesAreSeparate(t *testing.T) {
	db := openDB(t)
	a := newStore(t, db, &sqlitestore.Options{Table: "app_a"})
	b := newStore(t, db, &sqlitestore.Options{Table: "app_b"})
	if err := a.Set(t.Context(), "k", []byte("a"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(t.Context(), "k"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get from the other table = %v, want ErrNotFound", err)
	}
}

// TestCorruptRecord writes rows the store never writes and checks that they
// read as missing, never as a panic or a system error, and that Set
// replaces them.
func TestCorruptRecord(t *testing.T) {
	db := openDB(t)
	s := newStore(t, db, nil)
	ctx := t.Context()
	future := time.Now().Add(time.Hour).UnixMilli()
	rows := map[string][]any{
		"text-expiry":     {[]byte("v"), "soon", int64(7)},
		"text-version":    {[]byte("v"), future, "x"},
		"zero-version":    {[]byte("v"), future, int64(0)},
		"negative-ver":    {[]byte("v"), future, int64(-5)},
		"integer-value":   {int64(42), future, int64(7)},
		"real-expiry":     {[]byte("v"), 1e300, int64(7)},
		"negative-expiry": {[]byte("v"), int64(-1), int64(7)},
	}
	for key, r := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO kvsession_sessions (key, value, expires_at, version) VALUES (?, ?, ?, ?)`,
			append([]any{[]byte(key)}, r...)...); err != nil {
			t.Fatalf("insert %s: %v", key, err)
		}
	}
	var listed []string
	if err := s.Keys(ctx, "", func(k string) error { listed = append(listed, k); return nil }); err != nil || len(listed) != len(rows) {
		t.Errorf("Keys = %q, %v; want the %d corrupt rows, so that tools report them", listed, err, len(rows))
	}
	for key := range rows {
		_, err := s.Get(ctx, key)
		// A negative expiry is in the past: the row reads as expired.
		if !errors.Is(err, kvsession.ErrNotFound) || !errors.Is(err, kvsession.ErrCorrupt) && key != "negative-expiry" {
			t.Errorf("Get(%q) of a corrupt row = %v, want an error wrapping ErrNotFound and ErrCorrupt", key, err)
		}
		if err := s.Set(ctx, key, []byte("fresh"), time.Time{}); err != nil {
			t.Fatalf("Set over a corrupt row: %v", err)
		}
		if got, err := s.Get(ctx, key); err != nil || string(got.Value) != "fresh" {
			t.Errorf("Get(%q) after Set over a corrupt row = %q, %v; want %q", key, got.Value, err, "fresh")
		}
	}
	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Errorf("DeleteExpired: %v", err)
	}
}

// TestKeysBinaryPrefix checks the key-range scan around 0xff bytes, where
// a prefix has no simple successor.
func TestKeysBinaryPrefix(t *testing.T) {
	s := newStore(t, openDB(t), nil)
	ctx := t.Context()
	keys := []string{"\xff", "\xff\xff", "\xff\xffa", "\xfe\xff", "a\xff", "a\xff\x00", "b", "a"}
	for _, k := range keys {
		if err := s.Set(ctx, k, []byte("v"), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string]int{"": 8, "\xff": 3, "\xff\xff": 2, "a\xff": 2, "a": 3, "\xfe": 1, "c": 0} {
		n := 0
		if err := s.Keys(ctx, prefix, func(string) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("Keys(%q) reported %d keys, want %d", prefix, n, want)
		}
	}
}

// TestKeysManyPages checks paging, and that fn may call the store, even on
// a pool of one connection (openDB's).
func TestKeysManyPages(t *testing.T) {
	db := openDB(t)
	s := newStore(t, db, nil)
	ctx := t.Context()
	const n = 1234
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kvsession_sessions VALUES (?, x'', 0, 1)`, fmt.Appendf(nil, "p-%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	err = s.Keys(ctx, "p-", func(k string) error {
		if seen[k] {
			return fmt.Errorf("key %q reported twice", k)
		}
		seen[k] = true
		return s.Delete(ctx, k) // calling the store from fn must not deadlock
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("Keys reported %d keys, want %d", len(seen), n)
	}
}

// TestDeleteExpiredBatches checks a sweep larger than one batch, with user
// index entries, under the injected clock.
func TestDeleteExpiredBatches(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	db := openDB(t)
	s := newStore(t, db, &sqlitestore.Options{Now: clock})
	ctx := t.Context()
	const n = 2500
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Minute).UnixMilli()
	for i := range n {
		k := fmt.Appendf(nil, "k-%d", i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO kvsession_sessions VALUES (?, x'00', ?, 1)`, k, exp); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO kvsession_sessions_users VALUES (?, ?, ?)`, []byte("u"), k, exp); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "forever", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DeleteExpired(ctx); err != nil || got != 0 {
		t.Fatalf("DeleteExpired before expiry = %d, %v; want 0", got, err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if got, err := s.DeleteExpired(ctx); err != nil || got != n {
		t.Fatalf("DeleteExpired = %d, %v; want %d", got, err, n)
	}
	var left int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM kvsession_sessions) + (SELECT count(*) FROM kvsession_sessions_users)`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 1 {
		t.Errorf("%d rows left after the sweep, want 1 (the record without expiry)", left)
	}
}
