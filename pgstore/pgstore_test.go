package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/pgstore"
	"github.com/kvsession/kvsession/storetest"
)

const dsnEnv = "KVSESSION_TEST_POSTGRES_DSN"

// newPool opens a pool on the test server whose connections carry the
// application name app, and closes it when the test ends.
func newPool(t testing.TB, app string, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(storetest.ServerEnv(t, dsnEnv))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// tempTable returns a table name unique to this test run and drops the
// tables named after it when the test ends, through a connection of its
// own so that tests that break the pool's connections still clean up.
func tempTable(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("kvsession_test_%016x", rand.Uint64())
	dsn := storetest.ServerEnv(t, dsnEnv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %q, %q`, name, name+"_users")); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	return name
}

// newStore returns a store on a fresh table of its own, with its schema.
func newStore(t testing.TB, pool *pgxpool.Pool, opts *pgstore.Options) *pgstore.Store {
	t.Helper()
	o := pgstore.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = tempTable(t)
	}
	s, err := pgstore.New(pool, &o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSchema(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func appName() string { return fmt.Sprintf("kvsession_test_%016x", rand.Uint64()) }

// runConformance runs the kit on table, with rounds rounds of the
// no-lost-updates check (0 for the kit's default).
func runConformance(t *testing.T, pool *pgxpool.Pool, table string, rounds int) {
	newStore(t, pool, &pgstore.Options{Table: table})
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
			s, err := pgstore.New(pool, &pgstore.Options{Table: table, Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		SessionRounds: rounds,
		SweepProgress: true,
	})
}

func TestConformance(t *testing.T) {
	runConformance(t, newPool(t, appName(), nil), tempTable(t), 0)
}

// TestConformanceSimpleProtocol runs the kit again through the simple query
// protocol (what PgBouncer in transaction mode needs) and a
// schema-qualified table name, with fewer rounds of the slow
// no-lost-updates check.
func TestConformanceSimpleProtocol(t *testing.T) {
	pool := newPool(t, appName(), func(c *pgxpool.Config) {
		c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	})
	runConformance(t, pool, "public."+tempTable(t), 20)
}

func BenchmarkStore(b *testing.B) {
	pool := newPool(b, appName(), nil)
	table := tempTable(b)
	newStore(b, pool, &pgstore.Options{Table: table})
	storetest.RunBenchmarks(b, func(b *testing.B) kvsession.Store {
		s, err := pgstore.New(pool, &pgstore.Options{Table: table})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

func TestNewTableNames(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://u@127.0.0.1:1/db")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, name := range []string{"", "t", "_t", "Sessions", "app.sessions", "s_1.t_2", strings.Repeat("a", 45)} {
		if _, err := pgstore.New(pool, &pgstore.Options{Table: name}); err != nil {
			t.Errorf("New with Table %q: %v, want success", name, err)
		}
	}
	for _, name := range []string{
		"1t", "a-b", "a b", `a"b`, "a;drop table x", "a.b.c", ".a", "a.", "ключ", "t\x00",
		strings.Repeat("a", 46), strings.Repeat("s", 64) + ".t",
	} {
		_, err := pgstore.New(pool, &pgstore.Options{Table: name})
		if err == nil {
			t.Errorf("New with Table %q succeeded, want an error", name)
		} else if msg := err.Error(); !strings.HasPrefix(msg, "pgstore: new: invalid ") || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("New with Table %q: error %q, want one line starting \"pgstore: new: invalid \"", name, msg)
		}
	}
	for _, opts := range []*pgstore.Options{nil, {Table: "t"}, {Table: "1t"}} {
		if _, err := pgstore.New(nil, opts); err == nil || err.Error() != "pgstore: new: nil *pgxpool.Pool" {
			t.Errorf("New(nil, %+v) = %v, want the error \"pgstore: new: nil *pgxpool.Pool\"", opts, err)
		}
	}
}

// TestSchemaDoc checks that the package documentation shows the statements
// CreateSchema runs, verbatim.
func TestSchemaDoc(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://u@127.0.0.1:1/db")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := pgstore.New(pool, nil)
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
	pool := newPool(t, appName(), nil)
	table := tempTable(t)
	s, err := pgstore.New(pool, &pgstore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent first calls, as from several processes starting at once.
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

// TestBinaryKeyOrder checks the byte-wise key semantics that bytea gives:
// keys differing only in case, trailing spaces or a NUL stay distinct, and
// Keys handles a prefix ending in 0xff.
func TestBinaryKeyOrder(t *testing.T) {
	s := newStore(t, newPool(t, appName(), nil), nil)
	ctx := t.Context()
	keys := []string{"A", "a", "a ", "a\x00", "\xff", "\xff\xff", "\xff\xffz", "\xfe\xff"}
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
		"":         {"A", "a", "a\x00", "a ", "\xfe\xff", "\xff", "\xff\xff", "\xff\xffz"},
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
}

// TestKeysPages checks that Keys walks more keys than fit one page, in
// order, and lets the callback use the store.
func TestKeysPages(t *testing.T) {
	pool := newPool(t, appName(), func(c *pgxpool.Config) { c.MaxConns = 1 })
	s := newStore(t, pool, nil)
	ctx := t.Context()
	const n = 2500
	if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %q ("key", "value", "version")
		SELECT convert_to('p-' || lpad(i::text, 5, '0'), 'UTF8'), '', i FROM generate_series(1, %d) i`,
		tableOf(t, s), n)); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := s.Keys(ctx, "p-", func(k string) error {
		got = append(got, k)
		_, err := s.Get(ctx, k) // with one connection, this fails if Keys holds it
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

// tableOf digs the table name out of the store's first statement.
func tableOf(t testing.TB, s *pgstore.Store) string {
	t.Helper()
	stmt := s.SchemaStatements()[0]
	name, _, _ := strings.Cut(strings.TrimPrefix(stmt, `CREATE TABLE IF NOT EXISTS "`), `"`)
	return name
}

func TestDeleteExpiredBatches(t *testing.T) {
	pool := newPool(t, appName(), nil)
	now := time.Now()
	s := newStore(t, pool, &pgstore.Options{Now: func() time.Time { return now }})
	ctx := t.Context()
	const n = 2345
	table := tableOf(t, s)
	if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %q ("key", "value", "expires_at", "version")
		SELECT convert_to('x-' || i, 'UTF8'), '', $1, i FROM generate_series(1, %d) i`, table, n), now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %q ("user", "key", "expires_at")
		SELECT 'u', convert_to('x-' || i, 'UTF8'), $1 FROM generate_series(1, %d) i`, table+"_users", n), now.Add(-time.Second)); err != nil {
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
	var rows, users int
	if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %q), (SELECT count(*) FROM %q)`, table, table+"_users")).Scan(&rows, &users); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || users != 1 {
		t.Errorf("after DeleteExpired: %d records and %d user index entries left, want 1 and 1", rows, users)
	}

	// A cancelled sweep stops with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.DeleteExpired(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteExpired with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestTouchSameExpiry checks that touching a record with the expiry it
// already has succeeds.
func TestTouchSameExpiry(t *testing.T) {
	s := newStore(t, newPool(t, appName(), nil), nil)
	exp := time.Now().Add(time.Hour)
	if err := s.Set(t.Context(), "k", []byte("v"), exp); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Touch(t.Context(), "k", exp); err != nil {
			t.Fatalf("Touch with the same expiry: %v", err)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/test?connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := pgstore.New(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
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
		case !strings.HasPrefix(err.Error(), "pgstore: "+op+": "):
			t.Errorf("%s with the server down = %q, want it to start with %q", op, err, "pgstore: "+op+": ")
		case !errors.Is(err, syscall.ECONNREFUSED):
			t.Errorf("%s with the server down = %v, want it to wrap ECONNREFUSED", op, err)
		}
	}
}

// TestCancelWhileWaiting checks that a call blocked on the server (here by
// a row lock) returns promptly when its context is cancelled. With pgx's
// default context handling the statement may still complete on the server
// after the call returned; with a pool that sends PostgreSQL a cancel
// request, it does not.
func TestCancelWhileWaiting(t *testing.T) {
	t.Run("Default", func(t *testing.T) { testCancelWhileWaiting(t, nil, false) })
	t.Run("CancelRequest", func(t *testing.T) {
		testCancelWhileWaiting(t, func(c *pgxpool.Config) {
			c.ConnConfig.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
				return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, CancelRequestDelay: 0, DeadlineDelay: time.Second}
			}
		}, true)
	})
}

func testCancelWhileWaiting(t *testing.T, configure func(*pgxpool.Config), wantCancelled bool) {
	pool := newPool(t, appName(), configure)
	s := newStore(t, pool, nil)
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("old"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT 1 FROM %q WHERE "key" = 'k' FOR UPDATE`, tableOf(t, s))); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err = s.Set(cctx, "k", []byte("new"), time.Time{})
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Set blocked on a lock returned %v after its context was cancelled", elapsed-200*time.Millisecond)
	}
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "pgstore: set: ") {
		t.Errorf("Set cancelled while waiting = %v, want a pgstore: set: error wrapping context.Canceled", err)
	}
	if wantCancelled {
		// Give the server time to run the statement if it was not cancelled.
		time.Sleep(100 * time.Millisecond)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if !wantCancelled {
		return
	}
	time.Sleep(100 * time.Millisecond)
	if got, err := s.Get(ctx, "k"); err != nil || string(got.Value) != "old" {
		t.Errorf("after a cancelled Set, Get = %q, %v; want %q", got.Value, err, "old")
	}
}

// terminate ends every server process of the application app and waits
// until they are gone.
func terminate(t *testing.T, app string) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, storetest.ServerEnv(t, dsnEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no connection to terminate")
	}
	for {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTerminatedConnections checks that the store recovers when the
// server ends its pooled connections between calls (a restart, a failover,
// an administrator): calls safe to repeat succeed at once, and
// CompareAndSwap succeeds at once or at the caller's next try.
func TestTerminatedConnections(t *testing.T) {
	app := appName()
	pool := newPool(t, app, nil)
	s := newStore(t, pool, nil)
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Fill the pool with several connections, all of which will die.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { s.Get(ctx, "k") })
	}
	wg.Wait()

	terminate(t, app)
	got, err := s.Get(ctx, "k")
	if err != nil || string(got.Value) != "v" {
		t.Fatalf("Get after the server ended the pool's connections = %q, %v; want %q", got.Value, err, "v")
	}

	for range 4 {
		wg.Go(func() { s.Get(ctx, "k") })
	}
	wg.Wait()
	terminate(t, app)
	for attempt := 1; ; attempt++ {
		err := s.CompareAndSwap(ctx, "k", []byte("w"), time.Time{}, got.Version)
		if err == nil {
			break
		}
		if attempt == 2 || errors.Is(err, kvsession.ErrNotFound) || errors.Is(err, kvsession.ErrConflict) {
			t.Fatalf("CompareAndSwap attempt %d after the server ended the pool's connections: %v", attempt, err)
		}
		t.Logf("CompareAndSwap attempt %d: %v", attempt, err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || string(got.Value) != "w" {
		t.Errorf("Get = %q, %v; want %q", got.Value, err, "w")
	}
}
