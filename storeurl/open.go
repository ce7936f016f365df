package storeurl

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/boltstore"
	"github.com/kvsession/kvsession/filestore"
	"github.com/kvsession/kvsession/memcachestore"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/mysqlstore"
	"github.com/kvsession/kvsession/pgstore"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/kvsession/kvsession/sqlitestore"
)

// DefaultTimeout is the Options.Timeout used when it is zero.
const DefaultTimeout = 5 * time.Second

// Options configure [Open]. The zero value opens read-write, creates no
// schema and waits [DefaultTimeout] for a server.
type Options struct {
	// ReadOnly opens a bolt file with a shared lock (so it waits, up to
	// Timeout, while a writer holds the file), an SQLite file in read-only
	// mode, and a file store directory read-only (filestore
	// Options.ReadOnly: a directory without the store's layout is an
	// error, and nothing is created); file, bolt and sqlite URLs then fail
	// if the directory or file does not exist, instead of creating it.
	// Network stores ignore it.
	ReadOnly bool

	// CreateSchema creates the tables of the postgres, mysql and sqlite
	// stores if they do not exist. Ignored with ReadOnly.
	CreateSchema bool

	// Timeout bounds connecting to and pinging the server, creating the
	// schema, and waiting for a bolt file's lock. Default: DefaultTimeout.
	Timeout time.Duration
}

// closerFunc adapts a function to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

var nopCloser = closerFunc(func() error { return nil })

// Open opens the store that rawURL describes (see the package
// documentation for the URLs) and checks that it answers. The returned
// Closer releases the store's client, connection pool or file; close it
// after the last use of the store. The store never closes it by itself.
//
// A malformed or unsupported URL gives an error wrapping [ErrBadURL]; a
// server that does not answer within Options.Timeout, or a file that
// cannot be opened, gives another one-line error. Neither shows a
// password.
func Open(ctx context.Context, rawURL string, opts Options) (kvsession.Store, io.Closer, error) {
	t, err := parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ReadOnly {
		opts.CreateSchema = false
	}
	s, c, what, err := open(ctx, t, opts)
	if err != nil {
		switch {
		case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
			err = fmt.Errorf("%v: %w", err, ctx.Err())
		case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			err = fmt.Errorf("no answer within %v: %w", opts.Timeout, err)
		}
		return nil, nil, &openError{url: Redact(rawURL), what: what, err: err}
	}
	return s, c, nil
}

// openError reports a store that could not be opened.
type openError struct {
	url  string
	what string
	err  error
}

func (e *openError) Error() string {
	return fmt.Sprintf("storeurl: %s: %s: %s", e.url, e.what, oneLine(e.err))
}

func (e *openError) Unwrap() error { return e.err }

// Phrases for what failed.
const (
	failReach  = "cannot connect"
	failOpen   = "cannot open"
	failSchema = "cannot create the schema"
)

func open(ctx context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	tctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	return t.scheme.open(ctx, tctx, t, opts)
}

func openMem(_, _ context.Context, _ *target, _ Options) (kvsession.Store, io.Closer, string, error) {
	return memstore.New(nil), nopCloser, "", nil
}

func openFile(_, _ context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	if opts.ReadOnly {
		if err := mustExist(t.path, true); err != nil {
			return nil, nil, failOpen, err
		}
	}
	s, err := filestore.New(t.path, &filestore.Options{ReadOnly: opts.ReadOnly})
	if err != nil {
		return nil, nil, failOpen, err
	}
	return s, nopCloser, "", nil
}

func openBolt(_, _ context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	if opts.ReadOnly {
		if err := mustExist(t.path, false); err != nil {
			return nil, nil, failOpen, err
		}
	} else if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
		return nil, nil, failOpen, err
	}
	db, err := bbolt.Open(t.path, 0o600, &bbolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, nil, failOpen, fmt.Errorf("%s is locked by another process (the application?) and stayed locked for %v", t.path, opts.Timeout)
	}
	if err != nil {
		return nil, nil, failOpen, err
	}
	s, err := boltstore.New(db, &boltstore.Options{Bucket: t.bucket})
	if err != nil {
		db.Close()
		return nil, nil, failOpen, err
	}
	return s, db, "", nil
}

func openSQLite(_, tctx context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	params := url.Values{}
	if opts.ReadOnly {
		if err := mustExist(t.path, false); err != nil {
			return nil, nil, failOpen, err
		}
		params.Set("mode", "ro")
		params.Add("_pragma", "busy_timeout(5000)")
	} else {
		if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
			return nil, nil, failOpen, err
		}
		if err := createPrivate(t.path); err != nil {
			return nil, nil, failOpen, err
		}
		// See "SQLite and bbolt" in the package documentation: a wait
		// for another process's lock ignores the context, so it is
		// kept well below kvsession's default StoreTimeout (3s).
		params.Add("_pragma", "busy_timeout("+strconv.Itoa(sqliteBusyTimeoutMillis)+")")
		params.Add("_pragma", "journal_mode(WAL)")
		params.Add("_pragma", "synchronous(NORMAL)")
	}
	dsn := "file:" + (&url.URL{Path: t.path}).EscapedPath() + "?" + params.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, failOpen, err
	}
	db.SetMaxOpenConns(t.maxConns)
	db.SetMaxIdleConns(t.maxConns)
	if err := db.PingContext(tctx); err != nil {
		db.Close()
		return nil, nil, failOpen, err
	}
	s, err := sqlitestore.New(db, &sqlitestore.Options{Table: t.table})
	if err != nil {
		db.Close()
		return nil, nil, failOpen, err
	}
	if opts.CreateSchema {
		if err := s.CreateSchema(tctx); err != nil {
			db.Close()
			return nil, nil, failSchema, err
		}
	}
	return s, db, "", nil
}

func openRedis(_, tctx context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	o := &redis.Options{
		Addr:                  t.addrs[0],
		Username:              t.username,
		Password:              t.password,
		DB:                    t.db,
		DialTimeout:           opts.Timeout,
		ContextTimeoutEnabled: true,
		PoolSize:              t.maxConns,
		MaxActiveConns:        t.maxConns,
		PipelinePoolSize:      -1, // pipelines share the bounded pool
	}
	if t.tls {
		host, _, _ := net.SplitHostPort(t.addrs[0])
		o.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return openRedisClient(tctx, t, func() redis.UniversalClient { return redis.NewClient(o) })
}

func openRedisCluster(_, tctx context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	return openRedisClient(tctx, t, func() redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 t.addrs,
			Username:              t.username,
			Password:              t.password,
			DialTimeout:           opts.Timeout,
			ContextTimeoutEnabled: true,
			PoolSize:              t.maxConns, // per node
			MaxActiveConns:        t.maxConns,
			PipelinePoolSize:      -1,
		})
	})
}

func openRedisSentinel(_, tctx context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	return openRedisClient(tctx, t, func() redis.UniversalClient {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            t.master,
			SentinelAddrs:         t.addrs,
			Username:              t.username,
			Password:              t.password,
			DB:                    t.db,
			DialTimeout:           opts.Timeout,
			ContextTimeoutEnabled: true,
			PoolSize:              t.maxConns,
			MaxActiveConns:        t.maxConns,
			PipelinePoolSize:      -1,
		})
	})
}

// openRedisClient opens a redisstore on the client that newClient makes,
// once a plain dial has reached one of t's servers.
func openRedisClient(tctx context.Context, t *target, newClient func() redis.UniversalClient) (kvsession.Store, io.Closer, string, error) {
	// A plain dial first: it fails fast and quietly where the client
	// would retry and log each attempt.
	if err := dialAny(tctx, t.addrs); err != nil {
		return nil, nil, failReach, err
	}
	client := newClient()
	s, err := redisstore.New(client, &redisstore.Options{Namespace: t.namespace})
	if err != nil {
		client.Close()
		return nil, nil, failOpen, err
	}
	if err := client.Ping(tctx).Err(); err != nil {
		client.Close()
		return nil, nil, failReach, err
	}
	return s, client, "", nil
}

func openMemcache(_, tctx context.Context, t *target, _ Options) (kvsession.Store, io.Closer, string, error) {
	client := memcache.New(t.addrs...)
	client.MaxIdleConns = t.maxConns // per server; the client has no bound on open connections
	s, err := memcachestore.New(client, &memcachestore.Options{Namespace: t.namespace})
	if err != nil {
		client.Close()
		return nil, nil, failOpen, err
	}
	if err := pingMemcache(tctx, client); err != nil {
		client.Close()
		return nil, nil, failReach, err
	}
	return s, client, "", nil
}

func openPostgres(ctx, tctx context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	cfg := t.pg
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.Timeout
	}
	cfg.MaxConns = int32(t.maxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, failReach, err
	}
	if err := pool.Ping(tctx); err != nil {
		pool.Close()
		return nil, nil, failReach, err
	}
	s, err := pgstore.New(pool, &pgstore.Options{Table: t.table})
	if err != nil {
		pool.Close()
		return nil, nil, failOpen, err
	}
	if opts.CreateSchema {
		if err := s.CreateSchema(tctx); err != nil {
			pool.Close()
			return nil, nil, failSchema, err
		}
	}
	return s, closerFunc(func() error { pool.Close(); return nil }), "", nil
}

func openMySQL(_, tctx context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error) {
	cfg := t.mysql
	if cfg.Timeout == 0 {
		cfg.Timeout = opts.Timeout
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, failOpen, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(t.maxConns)
	db.SetMaxIdleConns(t.maxConns)
	if err := db.PingContext(tctx); err != nil {
		db.Close()
		return nil, nil, failReach, err
	}
	s, err := mysqlstore.New(db, &mysqlstore.Options{Table: t.table})
	if err != nil {
		db.Close()
		return nil, nil, failOpen, err
	}
	if opts.CreateSchema {
		if err := s.CreateSchema(tctx); err != nil {
			s.Close()
			db.Close()
			return nil, nil, failSchema, err
		}
	}
	return s, closerFunc(func() error { return errors.Join(s.Close(), db.Close()) }), "", nil
}

// createPrivate creates an empty file at path, readable by its owner only,
// if nothing is there. SQLite gives the -wal, -shm and journal files it
// creates beside a database the database file's mode, so they are private
// too; SQLite itself would create all of them 0644.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// mustExist checks that path exists and is a directory (dir) or not.
func mustExist(path string, dir bool) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if dir {
			return fmt.Errorf("no such directory: %s", path)
		}
		return fmt.Errorf("no such file: %s", path)
	case err != nil:
		return err
	case dir && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	case !dir && fi.IsDir():
		return fmt.Errorf("%s is a directory, not a database file", path)
	}
	return nil
}

// dialAny checks that at least one of addrs accepts TCP connections, and
// returns the first error if none does.
func dialAny(ctx context.Context, addrs []string) error {
	var first error
	for _, addr := range addrs {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// pingMemcache runs client.Ping, which takes no context, bounded by ctx.
func pingMemcache(ctx context.Context, client *memcache.Client) error {
	done := make(chan error, 1)
	go func() { done <- client.Ping() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
