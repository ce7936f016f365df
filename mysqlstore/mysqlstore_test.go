package mysqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/mysqlstore"
	"github.com/kvsession/kvsession/storetest"
)

const dsnEnv = "KVSESSION_TEST_MYSQL_DSN"

// config returns the test server's driver configuration.
func config(t testing.TB) *mysql.Config {
	t.Helper()
	cfg, err := mysql.ParseDSN(storetest.ServerEnv(t, dsnEnv))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newDB opens a handle on the test server, changed by configure, and
// closes it when the test ends.
func newDB(t testing.TB, configure func(*mysql.Config)) *sql.DB {
	t.Helper()
	cfg := config(t)
	if configure != nil {
		configure(cfg)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	// Keep connections for the kit's 50 concurrent requests: with
	// database/sql's default of 2 idle connections, most requests would
	// open a connection and prepare statements anew.
	db.SetMaxIdleConns(64)
	t.Cleanup(func() { db.Close() })
	return db
}

// tempTable returns a table name unique to this test run and drops the
// tables named after it when the test ends, through a handle of its own.
func tempTable(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("kvsession_test_%016x", rand.Uint64())
	cfg := config(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Error(err)
			return
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		if _, err := db.ExecContext(ctx, fmt.Sprintf("DROP TABLE IF EXISTS `%s`, `%s_users`", name, name)); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	return name
}

// newStore returns a store on db, closed when the test ends. Without a
// table name in opts, it gets a fresh table of its own, with its schema.
func newStore(t testing.TB, db *sql.DB, opts *mysqlstore.Options) *mysqlstore.Store {
	t.Helper()
	o := mysqlstore.Options{}
	if opts != nil {
		o = *opts
	}
	fresh := o.Table == ""
	if fresh {
		o.Table = tempTable(t)
	}
	s, err := mysqlstore.New(db, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if fresh {
		if err := s.CreateSchema(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// runConformance runs the kit on db, with rounds rounds of the
// no-lost-updates check (0 for the kit's default).
func runConformance(t *testing.T, db *sql.DB, rounds int) {
	table := tempTable(t)
	if err := newStore(t, db, &mysqlstore.Options{Table: table}).CreateSchema(t.Context()); err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
			return newStore(t, db, &mysqlstore.Options{Table: table, Now: c.Now})
		},
		SessionRounds: rounds,
		SweepProgress: true,
	})
}

// TestConformance runs the kit with the DSN as given (by default MariaDB
// then reports changed rows, not matched ones).
func TestConformance(t *testing.T) {
	runConformance(t, newDB(t, nil), 0)
}

// TestConformanceClientFoundRows runs the kit with clientFoundRows=true,
// with fewer rounds of the slow no-lost-updates check.
func TestConformanceClientFoundRows(t *testing.T) {
	runConformance(t, newDB(t, func(c *mysql.Config) { c.ClientFoundRows = true }), 20)
}

func BenchmarkStore(b *testing.B) {
	db := newDB(b, nil)
	table := tempTable(b)
	if err := newStore(b, db, &mysqlstore.Options{Table: table}).CreateSchema(b.Context()); err != nil {
		b.Fatal(err)
	}
	storetest.RunBenchmarks(b, func(b *testing.B) kvsession.Store {
		return newStore(b, db, &mysqlstore.Options{Table: table})
	})
}

// unreachable returns a handle on a server that is not there.
func unreachable(t *testing.T) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.DBName = "tcp", "127.0.0.1:1", "root", "test"
	cfg.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestNewTableNames(t *testing.T) {
	db := unreachable(t)
	for _, name := range []string{"", "t", "_t", "Sessions", "s_1", strings.Repeat("a", 58)} {
		if _, err := mysqlstore.New(db, &mysqlstore.Options{Table: name}); err != nil {
			t.Errorf("New with Table %q: %v, want success", name, err)
		}
	}
	for _, name := range []string{
		"1t", "a-b", "a b", "a`b", "a;drop table x", "db.t", ".a", "ключ", "t\x00",
		strings.Repeat("a", 59),
	} {
		_, err := mysqlstore.New(db, &mysqlstore.Options{Table: name})
		if err == nil {
			t.Errorf("New with Table %q succeeded, want an error", name)
		} else if msg := err.Error(); !strings.HasPrefix(msg, "mysqlstore: new: invalid ") || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("New with Table %q: error %q, want one line starting \"mysqlstore: new: invalid \"", name, msg)
		}
	}
	for _, opts := range []*mysqlstore.Options{nil, {Table: "t"}, {Table: "1t"}} {
		if _, err := mysqlstore.New(nil, opts); err == nil || err.Error() != "mysqlstore: new: nil *sql.DB" {
			t.Errorf("New(nil, %+v) = %v, want the error \"mysqlstore: new: nil *sql.DB\"", opts, err)
		}
	}
}

// TestSchemaDoc checks that the package documentation shows the statements
// CreateSchema runs, verbatim.
func TestSchemaDoc(t *testing.T) {
	s, err := mysqlstore.New(unreachable(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var doc strings.Builder
	for line := range strings.Lines(string(src)) {
		if code, ok := strings.CutPrefix(line, "//\t"); ok {
			doc.WriteString(code)
		}
	}
	for _, stmt := range s.SchemaStatements() {
		if !strings.Contains(doc.String(), stmt+";\n") {
			t.Errorf("the package documentation does not show this statement of CreateSchema:\n%s", stmt)
		}
	}
}

func TestCreateSchemaIdempotent(t *testing.T) {
	db := newDB(t, nil)
	s := newStore(t, db, &mysqlstore.Options{Table: tempTable(t)})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- s.CreateSchema(t.Context()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent CreateSchema: %v", err)
		}
	}
	if err := s.Set(t.Context(), "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSchema(t.Context()); err != nil {
		t.Fatalf("CreateSchema on an existing schema: %v", err)
	}
	if got, err := s.Get(t.Context(), "k"); err != nil || string(got.Value) != "v" {
		t.Errorf("after a second CreateSchema, Get = %q, %v; want the record kept", got.Value, err)
	}
}

// TestBinaryKeys checks the byte-wise key semantics that VARBINARY gives:
// keys differing only in case, trailing spaces or a NUL stay distinct, and
// Keys handles a prefix ending in 0xff. Keys longer than the column are
// refused, never truncated.
func TestBinaryKeys(t *testing.T) {
	s := newStore(t, newDB(t, nil), nil)
	ctx := t.Context()
	keys := []string{"A", "a", "a ", "a\x00", "\xff", "\xff\xff", "\xff\xffz", "\xfe\xff", strings.Repeat("L", 255)}
	for i, k := range keys {
		if err := s.Set(ctx, k, []byte(fmt.Sprint(i)), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		if got, err := s.Get(ctx, k); err != nil || string(got.Value) != fmt.Sprint(i) {
			t.Errorf("Get(%q) = %q, %v; want %q", k, got.Value, err, fmt.Sprint(i))
		}
	}
	for prefix, want := range map[string][]string{
		"":         {"A", strings.Repeat("L", 255), "a", "a\x00", "a ", "\xfe\xff", "\xff", "\xff\xff", "\xff\xffz"},
		"a":        {"a", "a\x00", "a "},
		"\xff\xff": {"\xff\xff", "\xff\xffz"},
		"\xfe":     {"\xfe\xff"},
	} {
		var got []string
		if err := s.Keys(ctx, prefix, func(k string) error { got = append(got, k); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("Keys(%q) = %q, want %q", prefix, got, want)
		}
	}

	long := strings.Repeat("L", 256)
	if err := s.Set(ctx, long, []byte("v"), time.Time{}); err == nil || errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Set of a 256-byte key = %v, want an error", err)
	}
	if _, err := s.Get(ctx, long); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get of a 256-byte key = %v, want ErrNotFound", err)
	}
	if err := s.AddUserKey(ctx, long, "k", time.Time{}); err != nil {
		t.Errorf("AddUserKey with a 256-byte user: %v, want success (long user IDs are hashed)", err)
	}
	if err := s.AddUserKey(ctx, "u", long, time.Time{}); err == nil {
		t.Error("AddUserKey with a 256-byte key succeeded, want an error")
	}
}

// TestKeysPages checks that Keys walks more keys than fit one page, in
// order, and lets the callback use the store.
func TestKeysPages(t *testing.T) {
	db := newDB(t, nil)
	db.SetMaxOpenConns(1)
	table := tempTable(t)
	s := newStore(t, db, &mysqlstore.Options{Table: table})
	ctx := t.Context()
	if err := s.CreateSchema(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 2500
	var values strings.Builder
	var args []any
	for i := 1; i <= n; i++ {
		if i > 1 {
			values.WriteString(", ")
		}
		values.WriteString("(?, '', NULL, 1)")
		args = append(args, fmt.Appendf(nil, "p-%05d", i))
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (`key`, `value`, `expires_at`, `version`) VALUES %s", table, values.String()), args...); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := s.Keys(ctx, "p-", func(k string) error {
		got = append(got, k)
		_, err := s.Get(ctx, k) // with one connection, this blocks if Keys holds it
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[0] != "p-00001" || got[n-1] != fmt.Sprintf("p-%05d", n) {
		t.Errorf("Keys reported %d keys, from %q to %q; want %d", len(got), got[0], got[len(got)-1], n)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("Keys reported %q after %q", got[i], got[i-1])
		}
	}
}

func TestDeleteExpiredBatches(t *testing.T) {
	db := newDB(t, nil)
	now := time.Now()
	table := tempTable(t)
	s := newStore(t, db, &mysqlstore.Options{Table: table, Now: func() time.Time { return now }})
	if err := s.CreateSchema(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const n = 2345
	var rows, users strings.Builder
	var rowArgs, userArgs []any
	past := now.Add(-time.Second).UnixMicro()
	for i := range n {
		if i > 0 {
			rows.WriteString(", ")
			users.WriteString(", ")
		}
		rows.WriteString("(?, '', ?, 1)")
		users.WriteString("('u', ?, ?)")
		k := fmt.Appendf(nil, "x-%d", i)
		rowArgs = append(rowArgs, k, past)
		userArgs = append(userArgs, k, past)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (`key`, `value`, `expires_at`, `version`) VALUES %s", table, rows.String()), rowArgs...); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s_users` (`user`, `key`, `expires_at`) VALUES %s", table, users.String()), userArgs...); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "live", []byte("v"), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserKey(ctx, "u", "live", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeleteExpired(ctx)
	if err != nil || got != n {
		t.Errorf("DeleteExpired = %d, %v; want %d, nil", got, err, n)
	}
	var left, leftUsers int
	if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT (SELECT count(*) FROM `%[1]s`), (SELECT count(*) FROM `%[1]s_users`)", table)).Scan(&left, &leftUsers); err != nil {
		t.Fatal(err)
	}
	if left != 1 || leftUsers != 1 {
		t.Errorf("after DeleteExpired: %d records and %d user index entries left, want 1 and 1", left, leftUsers)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.DeleteExpired(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteExpired with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestTouchSameExpiry checks that touching a record with the expiry it
// already has succeeds, although MariaDB then reports no changed row
// unless the DSN sets clientFoundRows.
func TestTouchSameExpiry(t *testing.T) {
	for _, found := range []bool{false, true} {
		t.Run(fmt.Sprintf("clientFoundRows=%v", found), func(t *testing.T) {
			s := newStore(t, newDB(t, func(c *mysql.Config) { c.ClientFoundRows = found }), nil)
			ctx := t.Context()
			for _, exp := range []time.Time{time.Now().Add(time.Hour), {}} {
				if err := s.Set(ctx, "k", []byte("v"), exp); err != nil {
					t.Fatal(err)
				}
				for range 2 {
					if err := s.Touch(ctx, "k", exp); err != nil {
						t.Fatalf("Touch with the same expiry %v: %v", exp, err)
					}
				}
			}
			if err := s.Touch(ctx, "missing", time.Time{}); !errors.Is(err, kvsession.ErrNotFound) {
				t.Errorf("Touch of a missing key = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	s := newStore(t, unreachable(t), &mysqlstore.Options{Table: "t"})
	ctx := t.Context()
	_, getErr := s.Get(ctx, "k")
	for op, err := range map[string]error{
		"create schema":    s.CreateSchema(ctx),
		"get":              getErr,
		"set":              s.Set(ctx, "k", []byte("v"), time.Time{}),
		"compare and swap": s.CompareAndSwap(ctx, "k", []byte("v"), time.Time{}, 1),
		"touch":            s.Touch(ctx, "k", time.Time{}),
	} {
		switch {
		case err == nil:
			t.Errorf("%s with the server down succeeded", op)
		case errors.Is(err, kvsession.ErrNotFound) || errors.Is(err, kvsession.ErrConflict):
			t.Errorf("%s with the server down = %v, want a system error, not ErrNotFound or ErrConflict", op, err)
		case !strings.HasPrefix(err.Error(), "mysqlstore: "+op+": "):
			t.Errorf("%s with the server down = %q, want it to start with %q", op, err, "mysqlstore: "+op+": ")
		case !errors.Is(err, syscall.ECONNREFUSED):
			t.Errorf("%s with the server down = %v, want it to wrap ECONNREFUSED", op, err)
		}
	}
}

// TestCancelWhileWaiting checks that a call blocked on the server (here by
// a row lock) returns promptly when its context is cancelled.
func TestCancelWhileWaiting(t *testing.T) {
	db := newDB(t, nil)
	table := tempTable(t)
	s := newStore(t, db, &mysqlstore.Options{Table: table})
	if err := s.CreateSchema(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("old"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT 1 FROM `%s` WHERE `key` = 'k' FOR UPDATE", table)); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"set", "compare and swap"} {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		switch op {
		case "set":
			err = s.Set(cctx, "k", []byte("new"), time.Time{})
		case "compare and swap":
			err = s.CompareAndSwap(cctx, "k", []byte("new"), time.Time{}, 1)
		}
		if elapsed := time.Since(start); elapsed > 3*time.Second {
			t.Errorf("%s blocked on a lock returned %v after its context was cancelled", op, elapsed-200*time.Millisecond)
		}
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "mysqlstore: "+op+": ") {
			t.Errorf("%s cancelled while waiting = %v, want a mysqlstore: %s: error wrapping context.Canceled", op, err, op)
		}
	}
}

// TestKilledConnection checks that the store recovers when the server
// closes its pooled connection between calls (a restart, wait_timeout, an
// administrator's KILL).
func TestKilledConnection(t *testing.T) {
	db := newDB(t, nil)
	db.SetMaxOpenConns(1) // so that CONNECTION_ID() names the store's connection
	s := newStore(t, db, nil)
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	admin := newDB(t, nil)
	kill := func() {
		t.Helper()
		var id int64
		if err := db.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
		for {
			var n int
			if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.processlist WHERE id = ?", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	kill()
	got, err := s.Get(ctx, "k")
	if err != nil || string(got.Value) != "v" {
		t.Fatalf("Get after the server closed the connection = %q, %v; want %q", got.Value, err, "v")
	}
	kill()
	if err := s.CompareAndSwap(ctx, "k", []byte("w"), time.Time{}, got.Version); err != nil {
		t.Fatalf("CompareAndSwap after the server closed the connection: %v", err)
	}
	kill()
	if err := s.Set(ctx, "k", []byte("x"), time.Time{}); err != nil {
		t.Fatalf("Set after the server closed the connection: %v", err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || string(got.Value) != "x" {
		t.Errorf("Get = %q, %v; want %q", got.Value, err, "x")
	}
}

func TestClose(t *testing.T) {
	s := newStore(t, newDB(t, nil), nil)
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get on a closed store = %v, want an error other than ErrNotFound", err)
	}
}

// TestLongUsers checks that user IDs longer than the user column work, that
// a user ID equal to another's hashed form stays apart from it, and that
// the hashed form has the width no short user ID has.
func TestLongUsers(t *testing.T) {
	s := newStore(t, newDB(t, nil), nil)
	ctx := t.Context()
	long := strings.Repeat("x", kvsession.MaxUserBytes)
	hashed := string(mysqlstore.StoredUser(long))
	if len(hashed) != mysqlstore.MaxKeyLen {
		t.Fatalf("hashed form is %d bytes, want %d", len(hashed), mysqlstore.MaxKeyLen)
	}
	if got := string(mysqlstore.StoredUser("alice")); got != "alice" {
		t.Errorf("StoredUser(alice) = %q, want it as it is", got)
	}
	users := []string{long, hashed, long[:mysqlstore.MaxKeyLen], long[:mysqlstore.MaxKeyLen-1], long[:len(long)-1] + "y"}
	for i, u := range users {
		if err := s.AddUserKey(ctx, u, fmt.Sprint("k", i), time.Time{}); err != nil {
			t.Fatalf("AddUserKey(user %d, %d bytes): %v", i, len(u), err)
		}
	}
	for i, u := range users {
		keys, err := s.UserKeys(ctx, u)
		if want := fmt.Sprint("k", i); err != nil || len(keys) != 1 || keys[0] != want {
			t.Errorf("UserKeys(user %d, %d bytes) = %q, %v; want [%s]", i, len(u), keys, err, want)
		}
	}
}

// TestLegacyUserRows checks that index rows that the previous version
// wrote for a user ID of exactly 255 bytes (as it is, not hashed) are still
// listed and removed, and that a user ID shaped like a hashed form does not
// reach another user's rows that way.
func TestLegacyUserRows(t *testing.T) {
	db := newDB(t, nil)
	table := tempTable(t)
	s := newStore(t, db, &mysqlstore.Options{Table: table})
	if err := s.CreateSchema(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	legacy := strings.Repeat("l", mysqlstore.MaxKeyLen)
	victim := strings.Repeat("v", 300)
	forged := string(mysqlstore.StoredUser(victim)) // 255 bytes
	if _, err := db.ExecContext(ctx, "INSERT INTO `"+table+"_users` (`user`, `key`, `expires_at`) VALUES (?, 'old', NULL)", []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserKey(ctx, legacy, "new", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.UserKeys(ctx, legacy); err != nil || strings.Join(keys, ",") != "new,old" {
		t.Errorf("UserKeys(legacy user) = %q, %v; want [new old]", keys, err)
	}
	for _, k := range []string{"old", "new"} {
		if err := s.RemoveUserKey(ctx, legacy, k); err != nil {
			t.Fatal(err)
		}
	}
	if keys, err := s.UserKeys(ctx, legacy); err != nil || len(keys) != 0 {
		t.Errorf("UserKeys(legacy user) after removing both = %q, %v; want none", keys, err)
	}

	if err := s.AddUserKey(ctx, victim, "victim-session", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.UserKeys(ctx, forged); err != nil || len(keys) != 0 {
		t.Errorf("UserKeys(a user ID equal to another's hashed form) = %q, %v; want none", keys, err)
	}
	if err := s.RemoveUserKey(ctx, forged, "victim-session"); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.UserKeys(ctx, victim); err != nil || len(keys) != 1 {
		t.Errorf("UserKeys(victim) = %q, %v; want its session, untouched by the forged ID", keys, err)
	}
}
