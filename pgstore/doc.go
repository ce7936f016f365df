// Package pgstore is a [kvsession.Store] on PostgreSQL, through a
// [github.com/jackc/pgx/v5/pgxpool.Pool] that the application opens and
// configures. Several processes can share one database, and records survive
// restarts.
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db.internal/app")
//	...
//	store, err := pgstore.New(pool, nil)
//	...
//	err = store.CreateSchema(ctx) // once, at start-up or deploy time
//
// The Store is safe for concurrent use. [New] does no I/O, and nothing in
// this package starts a goroutine.
//
// # Schema
//
// [Store.CreateSchema] creates two tables and their indexes if they do not
// exist yet. With the default table name it runs, in one transaction
// serialised by an advisory lock:
//
//	CREATE TABLE IF NOT EXISTS "kvsession_sessions" (
//		"key"        bytea PRIMARY KEY,
//		"value"      bytea NOT NULL,
//		"expires_at" timestamptz,
//		"version"    bigint NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "kvsession_sessions_expires_idx"
//		ON "kvsession_sessions" ("expires_at");
//	CREATE TABLE IF NOT EXISTS "kvsession_sessions_users" (
//		"user"       bytea NOT NULL,
//		"key"        bytea NOT NULL,
//		"expires_at" timestamptz,
//		PRIMARY KEY ("user", "key")
//	);
//	CREATE INDEX IF NOT EXISTS "kvsession_sessions_users_expires_idx"
//		ON "kvsession_sessions_users" ("expires_at");
//
// Keys and user names are stored as bytea, so any byte is allowed and keys
// compare byte by byte whatever the database's collation: "A" and "a" are
// different keys. A NULL expires_at means that the record never expires.
// version is a random non-zero 63-bit number drawn for every write, so a
// version is never reused under a key, even after the key is deleted and
// written again. The primary key of the user table also serves lookups by
// user.
//
// [Options].Table renames both tables: the user index table is always the
// session table's name followed by "_users", and the index names follow the
// same pattern. The name may be schema-qualified ("app.sessions"); it is
// always quoted, so its case is kept. Use a role that can create tables for
// CreateSchema, or run the statements above yourself (with your table name)
// and give the application's role SELECT, INSERT, UPDATE and DELETE.
//
// # Clock
//
// One clock decides expiry: the application's, [Options].Now (time.Now by
// default). The expires_at columns hold the instants the caller passes, and
// every read and every conditional write compares them with a now that the
// store reads from Options.Now and sends as a query parameter; the
// database's own now() is never used. Keep the clocks of the processes that
// share a database in sync (NTP), as for any distributed expiry.
// PostgreSQL keeps timestamps to the microsecond.
//
// # Expiry
//
// PostgreSQL has no native TTL. A record whose expiry has passed reads as
// missing at once (and Set, CompareAndSwap and Touch treat it as absent),
// but its row stays until [Store.DeleteExpired] removes it. Call that
// periodically, for instance with the manager's cleanup helper, every few
// minutes. It deletes in batches of 1000 rows, each its own statement, skips
// rows that other transactions hold locked (the next sweep gets them),
// checks its context between batches, and also sweeps the user index table.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract (its Touch keeps
// the version) and both optional capabilities, [kvsession.Lister] and
// [kvsession.ExpiredDeleter]. Get, Set, Delete,
// Touch, CompareAndSwap and CompareAndDelete are one statement each;
// CompareAndSwap and CompareAndDelete run a second SELECT only when they
// fail, to tell [kvsession.ErrNotFound] from [kvsession.ErrConflict]; that
// SELECT reads the current record, which a conflict returns in a
// [*kvsession.ConflictError].
// [Store.Keys] walks the key range in key order, 1000 keys per query
// (keyset pagination), and calls its callback between queries, with no
// connection held.
//
// # Failures
//
// Errors are wrapped as "pgstore: <operation>: <cause>" and keep the
// driver's error for errors.As (a *pgconn.PgError, say). A database error
// is never reported as [kvsession.ErrNotFound]. A call whose context ends
// returns promptly with an error wrapping the context's error. By default
// pgx then only closes the connection, so a statement that the server had
// already received may still complete (a cancelled Set may land later); to
// have pgx ask the server to cancel the statement as well, set the pool's
// ConnConfig.BuildContextWatcherHandler to return a
// [github.com/jackc/pgx/v5/pgconn.CancelRequestContextWatcherHandler].
// Conditional writes stay safe either way: a late CompareAndSwap still
// checks the version.
//
// When the pool hands out a connection that has died since its last use
// (the server restarted, or an administrator terminated the backend), the
// store retries by itself, at most once per pooled connection: always when
// the driver guarantees that the statement never reached the server or the
// server reports that it was terminated before running it (SQLSTATE 57P01,
// 57P02), and, for the calls that are safe to repeat (every call except
// CompareAndSwap and CompareAndDelete), on any broken connection. It never
// retries a failed connection attempt. pgxpool itself checks a connection
// that was idle for more than a second before handing it out.
//
// # Connection pool
//
// The store opens no connections of its own: it uses the pool it is given,
// and a call that finds every connection busy waits for one, a wait that
// counts against its context. Bound the pool below the server's
// max_connections (100 by default) divided among the processes that share
// the server, or a burst of requests from several processes exhausts it and
// every call fails with "too many clients" (SQLSTATE 53300), for every
// client of the server. pgxpool bounds its pool by default (the larger of 4
// and the number of CPUs); set the bound with pool_max_conns in the
// connection string or Config.MaxConns:
//
//	cfg, err := pgxpool.ParseConfig("postgres://app@db.internal/app")
//	...
//	cfg.MaxConns = 10
//	pool, err := pgxpool.NewWithConfig(ctx, cfg)
//
// # Caveats
//
// The store works with any pgx query execution mode, including the simple
// protocol that PgBouncer in transaction mode needs. Sessions belong in a
// table of their own: DeleteExpired and CreateSchema act on the configured
// tables only, and nothing else should write to them.
package pgstore
