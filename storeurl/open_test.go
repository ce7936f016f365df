package storeurl_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/filestore"
	"github.com/kvsession/kvsession/storetest"
	"github.com/kvsession/kvsession/storeurl"
)

// roundTrip writes, reads and deletes one record under key.
func roundTrip(t *testing.T, s kvsession.Store, key string) {
	t.Helper()
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.Set(ctx, key, []byte("value"), exp); err != nil {
		t.Fatalf("Set: %v", err)
	}
	e, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(e.Value) != "value" {
		t.Errorf("Get = %q, want %q", e.Value, "value")
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, key); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
}

func open(t *testing.T, rawURL string, opts storeurl.Options) kvsession.Store {
	t.Helper()
	s, c, err := storeurl.Open(t.Context(), rawURL, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// unique returns a name no other test run uses.
func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s%x", prefix, b)
}

// checkOpenError fails if err is nil, a bad-URL error, or more than one line,
// or if it does not mention want.
func checkOpenError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("Open succeeded, want an error")
	}
	msg := err.Error()
	if errors.Is(err, storeurl.ErrBadURL) {
		t.Errorf("error %q wraps ErrBadURL; the URL is fine", msg)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error %q is not one line", msg)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not say %q", msg, want)
	}
}

func TestOpenBadURL(t *testing.T) {
	_, c, err := storeurl.Open(t.Context(), "file:sessions", storeurl.Options{})
	if !errors.Is(err, storeurl.ErrBadURL) || c != nil {
		t.Errorf("Open(file:sessions) = %v, %v; want ErrBadURL", c, err)
	}
}

func TestOpenMem(t *testing.T) {
	roundTrip(t, open(t, "mem:", storeurl.Options{}), "k")
}

func TestOpenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "sessions")
	_, _, err := storeurl.Open(t.Context(), "file://"+dir, storeurl.Options{ReadOnly: true})
	checkOpenError(t, err, "no such directory")
	if _, err := os.Stat(dir); err == nil {
		t.Error("a read-only open created the directory")
	}
	w := open(t, "file://"+dir, storeurl.Options{})
	roundTrip(t, w, "k")
	if err := w.Set(t.Context(), "kept", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Read-only: reads the store, writes nothing, and refuses a directory
	// that is not a store without creating anything in it.
	r := open(t, "file://"+dir, storeurl.Options{ReadOnly: true})
	if e, err := r.Get(t.Context(), "kept"); err != nil || string(e.Value) != "v" {
		t.Errorf("read-only Get = %q, %v", e.Value, err)
	}
	if err := r.Set(t.Context(), "k", []byte("v"), time.Time{}); !errors.Is(err, filestore.ErrReadOnly) {
		t.Errorf("read-only Set = %v, want filestore.ErrReadOnly", err)
	}
	plain := t.TempDir()
	_, _, err = storeurl.Open(t.Context(), "file://"+plain, storeurl.Options{ReadOnly: true})
	checkOpenError(t, err, "not a session store")
	if entries, _ := os.ReadDir(plain); len(entries) != 0 {
		t.Errorf("a read-only open of a plain directory created %v in it", entries)
	}
}

func TestOpenBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db", "sessions.db")
	u := "bolt://" + path + "?bucket=app1"
	_, _, err := storeurl.Open(t.Context(), u, storeurl.Options{ReadOnly: true})
	checkOpenError(t, err, "no such file")

	s, c, err := storeurl.Open(t.Context(), u, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, "k")
	if err := s.Set(t.Context(), "kept", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The writer holds the file: another open waits for the lock, then
	// says so.
	_, _, err = storeurl.Open(t.Context(), u, storeurl.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	checkOpenError(t, err, "locked by another process")
	c.Close()

	ro := open(t, u, storeurl.Options{ReadOnly: true})
	if e, err := ro.Get(t.Context(), "kept"); err != nil || string(e.Value) != "v" {
		t.Errorf("read-only Get = %q, %v", e.Value, err)
	}
	if err := ro.Set(t.Context(), "k2", []byte("v"), time.Time{}); err == nil {
		t.Error("Set on a read-only bolt store succeeded")
	}
}

func TestOpenSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db", "sessions.db")
	u := "sqlite://" + path + "?table=app_sessions"
	_, _, err := storeurl.Open(t.Context(), u, storeurl.Options{ReadOnly: true})
	checkOpenError(t, err, "no such file")

	s := open(t, u, storeurl.Options{CreateSchema: true})
	roundTrip(t, s, "k")
	if err := s.Set(t.Context(), "kept", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	ro := open(t, u, storeurl.Options{ReadOnly: true})
	if e, err := ro.Get(t.Context(), "kept"); err != nil || string(e.Value) != "v" {
		t.Errorf("read-only Get = %q, %v", e.Value, err)
	}
	if err := ro.Set(t.Context(), "k2", []byte("v"), time.Time{}); err == nil {
		t.Error("Set on a read-only SQLite store succeeded")
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestOpenServerDown(t *testing.T) {
	addr := closedPort(t)
	for _, u := range []string{
		"redis://:hunter2@" + addr + "/0",
		"redis+cluster://" + addr,
		"redis+sentinel://" + addr + "/mymaster",
		"memcache://" + addr,
		"postgres://postgres:hunter2@" + addr + "/test?sslmode=disable",
		"mysql://root:hunter2@" + addr + "/test",
	} {
		t.Run(u, func(t *testing.T) {
			start := time.Now()
			_, _, err := storeurl.Open(t.Context(), u, storeurl.Options{Timeout: 2 * time.Second})
			checkOpenError(t, err, "cannot connect")
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Open took %v, want about the timeout at most", d)
			}
		})
	}
}

func TestOpenRedis(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
	prefix := unique("storeurl-test-") + ":"
	s := open(t, "redis://"+addr+"/0?namespace="+url.QueryEscape(prefix), storeurl.Options{})
	roundTrip(t, s, "k")
	_, _, err := storeurl.Open(t.Context(), "redis://"+addr+"/100000", storeurl.Options{})
	checkOpenError(t, err, "cannot connect") // the server refuses the database number
}

func TestOpenRedisCluster(t *testing.T) {
	addrs := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_CLUSTER_ADDRS")
	prefix := unique("storeurl-test-") + ":"
	roundTrip(t, open(t, "redis+cluster://"+addrs+"?namespace="+url.QueryEscape(prefix), storeurl.Options{}), "k")
}

func TestOpenMemcache(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	roundTrip(t, open(t, "memcache://"+addr+"?namespace="+unique("storeurl-test-")+":", storeurl.Options{}), "k")
}

func TestOpenPostgres(t *testing.T) {
	dsn := storetest.ServerEnv(t, "KVSESSION_TEST_POSTGRES_DSN")
	table := unique("storeurl_test_")
	t.Cleanup(func() {
		pool, err := pgxpool.New(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if _, err := pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`", "`+table+`_users"`); err != nil {
			t.Errorf("drop tables: %v", err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("table", table)
	u.RawQuery = q.Encode()
	roundTrip(t, open(t, u.String(), storeurl.Options{CreateSchema: true}), "k")
}

func TestOpenMySQL(t *testing.T) {
	dsn := storetest.ServerEnv(t, "KVSESSION_TEST_MYSQL_DSN")
	table := unique("storeurl_test_")
	t.Cleanup(func() {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DROP TABLE IF EXISTS `"+table+"`, `"+table+"_users`"); err != nil {
			t.Errorf("drop tables: %v", err)
		}
	})
	roundTrip(t, open(t, MySQLURL(t, dsn)+"?table="+table, storeurl.Options{CreateSchema: true}), "k")
}

// MySQLURL turns a go-sql-driver DSN (the test variable's form) into a
// mysql:// URL without parameters.
func MySQLURL(t *testing.T, dsn string) string {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("KVSESSION_TEST_MYSQL_DSN: %v", err)
	}
	if c.Net != "tcp" {
		t.Skipf("KVSESSION_TEST_MYSQL_DSN uses %s; mysql:// URLs reach servers over TCP", c.Net)
	}
	u := url.URL{Scheme: "mysql", Host: c.Addr, Path: "/" + c.DBName}
	if c.Passwd != "" {
		u.User = url.UserPassword(c.User, c.Passwd)
	} else {
		u.User = url.User(c.User)
	}
	return u.String()
}

// hungServer returns the address of a server that accepts connections and
// never answers.
func hungServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	return l.Addr().String()
}

func TestOpenServerHangs(t *testing.T) {
	addr := hungServer(t)
	for _, u := range []string{
		"redis://" + addr + "/0",
		"memcache://" + addr,
		"postgres://postgres@" + addr + "/test?sslmode=disable",
		"mysql://root@" + addr + "/test",
	} {
		t.Run(u, func(t *testing.T) {
			start := time.Now()
			_, _, err := storeurl.Open(t.Context(), u, storeurl.Options{Timeout: 300 * time.Millisecond})
			checkOpenError(t, err, "cannot connect")
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Open took %v with a 300ms timeout", d)
			}
		})
	}
}

// TestOpenBadNamespace checks that a namespace that the store refuses gives an
// error, never a panic, and before any connection: with a server up or down.
func TestOpenBadNamespace(t *testing.T) {
	urls := []string{"memcache://127.0.0.1:1?namespace=a%20b", "memcache://127.0.0.1:1?namespace=%00"}
	if addr := os.Getenv("KVSESSION_TEST_MEMCACHE_ADDR"); addr != "" {
		urls = append(urls, "memcache://"+addr+"?namespace=a%20b")
	}
	for _, u := range urls {
		t.Run(u, func(t *testing.T) {
			_, _, err := storeurl.Open(t.Context(), u, storeurl.Options{Timeout: time.Second})
			checkOpenError(t, err, "cannot open")
		})
	}
}
