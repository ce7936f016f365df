// Package storeurl opens a [kvsession.Store] described by a URL, so that a
// program can take its store from a flag or an environment variable. The
// demo application and the kvsession command use it.
//
//	store, closer, err := storeurl.Open(ctx, "redis://127.0.0.1:6379/0", storeurl.Options{})
//	if err != nil {
//		log.Fatal(err) // one line: a bad URL, or a server that does not answer
//	}
//	defer closer.Close()
//
// The library itself never parses URLs or DSNs: its stores take clients
// that the application configures. This package is the convenience on top,
// and it imports every backend module, so a program that uses it downloads
// every driver.
//
// # URLs
//
//	mem:                                           memstore, in this process only
//	file:///abs/dir                                filestore, a directory of files
//	bolt:///abs/file.db[?bucket=kvsession]         boltstore, a bbolt file
//	sqlite:///abs/file.db[?table=kvsession_sessions]
//	                                               sqlitestore (modernc.org/sqlite)
//	redis://[user:pass@]host[:6379][/db]           redisstore, one server
//	rediss://[user:pass@]host[:6379][/db]          the same over TLS
//	redis+cluster://[user:pass@]host:port,host:port
//	                                               redisstore on a Redis Cluster
//	redis+sentinel://[user:pass@]host:port,host:port/master[/db]
//	                                               redisstore on the primary that
//	                                               Sentinel names
//	memcache://host[:11211][,host:port...]         memcachestore
//	postgres://user[:pass]@host[:5432]/db[?sslmode=disable]
//	                                               pgstore (pgx); postgresql:// too
//	mysql://user[:pass]@host[:3306]/db             mysqlstore (go-sql-driver/mysql)
//
//	Parameters (a scheme refuses any it does not take):
//
//	namespace (redis, rediss, redis+cluster, redis+sentinel, memcache): the
//	    store's own namespace, put before every key it writes (redisstore,
//	    memcachestore Options.Namespace; default kvsession:)
//	table (sqlite, postgres, mysql): the session table (Options.Table)
//	bucket (bolt): the top-level bucket (boltstore Options.Bucket)
//	max_conns (sqlite, redis, rediss, redis+cluster, redis+sentinel, memcache,
//	    postgres, mysql): the most connections the store's pool opens at once, 1 to
//	    10000 (default 10; 1 for sqlite)
//
//	postgres and mysql pass any other parameter to their driver.
//
// Paths must be absolute (three slashes: file:///var/lib/app/sessions). Ports
// default to the server's usual one. User names and passwords are
// percent-encoded, as in any URL. [Schemes] and [Synopsis] give the table
// above to programs that document their store flag.
//
// The namespace parameter is the store's, not the application's: the
// application's Config.KeyPrefix starts the store keys that its Manager
// writes, inside the store's namespace, and is no part of the URL. A
// prefix parameter, the old name of namespace, is an error that says so.
//
// max_conns bounds the connections the store's pool opens at once; a
// request that finds every connection busy waits for one, within its
// context. The default is [DefaultMaxConns], and [DefaultSQLiteMaxConns]
// for sqlite (see "SQLite and bbolt"); the largest is [MaxMaxConns]. For
// redis and rediss it bounds the client's one pool (pipelines included);
// for redis+cluster and redis+sentinel, the pool of each server. For
// memcache it bounds the idle connections kept per server: the memcached
// client has no bound on the connections it opens, so memcached's own -c
// limit (1024 by default) is what bounds them. Size it below what the
// server allows (MariaDB's max_connections, 151 by default; PostgreSQL's,
// 100), divided among the processes that share the server.
//
// The postgres and mysql schemes pass every other parameter to their driver
// (sslmode, connect_timeout, tls, ...), which rejects the ones it does not
// know, except the parameters of the other schemes, which they refuse;
// pgxpool's pool_max_conns is refused in favour of max_conns.
//
// # SQLite and bbolt
//
// Both let one writer in at a time, and their own waits for that lock do
// not end with a request's context, so these URLs open them where a
// request waits for its turn within its deadline: 32 concurrent writers
// through a kvsession.Manager with the default Config (StoreTimeout 3s)
// run without a store error (this package's load tests run them for 60s
// in CI).
//
// sqlite: opens a read-write database with one connection (max_conns=1)
// and these pragmas, explained in the sqlitestore package documentation
// under "Connection settings":
//
//	busy_timeout(1000)   a lock that another process holds: wait 1s, then fail
//	journal_mode(WAL)    readers and the writer do not block each other
//	synchronous(NORMAL)  no fsync per commit; the log is synced at checkpoints
//
// With one connection the store's statements queue in the pool, within
// their contexts, instead of on SQLite's lock, where SQLite ignores them;
// the busy timeout, well below the 3s StoreTimeout, bounds a wait for
// another process (the kvsession command, say); and every WAL checkpoint
// restarts the log, so the -wal file stays about 4 MB. A power loss may
// drop the last commits (synchronous NORMAL), never the database. A bigger
// max_conns lets reads run in parallel, but writes then wait for each
// other on SQLite's lock, and under load some fail.
//
// bolt: opens the file with bbolt's defaults (an fsync per commit). The
// boltstore package waits for bbolt's write lock within each write's
// context (see "Concurrent writes" in its documentation).
//
// # Opening
//
// [Open] checks the URL first: a bad one gives an error wrapping [ErrBadURL]
// that names what is wrong (an unknown scheme, a relative path, a missing
// host, ...). It then connects and pings the server, or opens the file,
// within [Options.Timeout], so that a server that is down fails at once
// with a one-line error rather than at the first request. Errors show the
// URL with its password replaced by "xxxxx" ([Redact]).
//
// [Options.ReadOnly] opens bolt files with a shared lock and SQLite files in
// read-only mode, and makes file, bolt and sqlite URLs fail if the directory
// or file does not exist instead of creating it. Network stores ignore it.
// [Options.CreateSchema] creates the tables of the SQL stores if they do not
// exist.
package storeurl
