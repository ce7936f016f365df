// Package sqlitestore is a [kvsession.Store] in an SQLite database, reached
// through [database/sql]. It is written for modernc.org/sqlite, the pure Go
// (no cgo) driver, and uses only SQL that any SQLite driver accepts:
//
//	import _ "modernc.org/sqlite" // registers the driver "sqlite"
//
//	db, err := sql.Open("sqlite", "file:sessions.db?_pragma=busy_timeout(1000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
//	...
//	db.SetMaxOpenConns(1) // see "Connection settings"
//	store, err := sqlitestore.New(db, nil)
//	...
//	err = store.CreateSchema(ctx) // once, at start-up
//
// # Connection settings
//
// SQLite lets one writer in at a time, and a statement that finds the
// database locked waits for the lock (up to busy_timeout) without looking
// at its context: a cancelled request or an expired Config.StoreTimeout
// does not end that wait. Give the *sql.DB these settings, which storeurl's
// sqlite: scheme uses, so that concurrent requests wait for their turn
// within their deadline:
//
//   - db.SetMaxOpenConns(1): one connection. The store's statements then
//     queue in database/sql's pool, where a wait ends with the request's
//     context, and never wait for each other on SQLite's lock. SQLite
//     commits one write at a time anyway, so one connection loses no write
//     throughput; it also runs reads one at a time, which costs little
//     beside a session store's writes (on two cores, reads through the
//     manager ran as fast on one connection as on ten). A bigger pool lets
//     reads run in parallel, but concurrent writes then wait for each
//     other on SQLite's lock, where SQLite's busy handler serves them in no
//     order and their contexts are ignored: under load, some of them fail
//     ("database is locked", or a StoreTimeout once the wait ends).
//   - busy_timeout(1000): how long a statement waits for a lock that
//     another process holds (the kvsession command cleaning up, say)
//     before it fails with SQLITE_BUSY. Keep it well below the manager's
//     StoreTimeout (3 s by default): the wait ignores the context, so a
//     longer one holds the request, and with one connection every request
//     behind it, past their deadlines. Without busy_timeout, such a
//     statement fails at once.
//   - journal_mode(WAL): readers do not block the writer nor the writer the
//     readers (another process reading, with mode=ro, does not stop the
//     application's writes), and a commit appends to the log. SQLite
//     checkpoints the log into the database when it passes 1000 pages
//     (wal_autocheckpoint, about 4 MB), and starts it again from its
//     beginning once no reader still uses it: with one connection that is
//     every checkpoint, so the -wal file stays about 4 MB. Many concurrent
//     readers on a bigger pool can keep a checkpoint from restarting the
//     log, which then grows.
//   - synchronous(NORMAL), with WAL: a commit does not wait for an fsync
//     (the log is synced at checkpoints). A power loss or an OS crash may
//     drop the last commits, the last sessions created or changed, but
//     never corrupts the database; a crash of the application alone loses
//     nothing. Leave it out (FULL) to sync every commit, at the cost of an
//     fsync per write.
//
// Give the pragmas in the DSN, as above, so that they hold on every
// connection the pool opens. The store never holds a transaction open
// across statements, nor a connection while it calls back into your code,
// so one connection never deadlocks. An in-memory database (":memory:") is
// private to one connection: use it only with SetMaxOpenConns(1).
//
// # File permissions
//
// SQLite creates the database file, and the -wal, -shm and journal files
// beside it, with mode 0644 less the umask: with the usual umask of 022,
// any local user can read them, and so every session's data. SQLite gives
// the files it creates beside a database the database file's own mode, so
// create the database file yourself, readable by its owner only, before
// you open it (an empty file is an empty database):
//
//	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
//	...
//	f.Close()
//	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(1000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
//
// or keep the database in a directory that only the application's user
// can enter (mode 0700). A file created with a looser mode keeps it: chmod
// it to 0600, as well as its -wal and -shm files, while the application is
// stopped. The storeurl package's sqlite: scheme creates the file 0600.
//
// # Schema
//
// [Store.CreateSchema] creates the tables and indexes if they do not exist
// (it is idempotent). With the default table name it runs:
//
//	CREATE TABLE IF NOT EXISTS "kvsession_sessions" (
//		key        BLOB    NOT NULL PRIMARY KEY, -- the key's bytes, compared bytewise
//		value      BLOB    NOT NULL,
//		expires_at INTEGER NOT NULL,             -- Unix milliseconds; 0 means never
//		version    INTEGER NOT NULL              -- random, 1 to 2^63-1
//	);
//	CREATE INDEX IF NOT EXISTS "kvsession_sessions_expires_at"
//		ON "kvsession_sessions" (expires_at);
//	CREATE TABLE IF NOT EXISTS "kvsession_sessions_users" (
//		user       BLOB    NOT NULL,
//		key        BLOB    NOT NULL,
//		expires_at INTEGER NOT NULL,             -- Unix milliseconds; 0 means never
//		PRIMARY KEY (user, key)
//	);
//	CREATE INDEX IF NOT EXISTS "kvsession_sessions_users_expires_at"
//		ON "kvsession_sessions_users" (expires_at);
//
// [Options.Table] renames the first table; the others take its name plus
// the suffixes shown. Names are always quoted, so a keyword (order) is a
// valid name; names that start with sqlite_ are SQLite's, and [New]
// refuses them. Keys and users are stored as BLOBs, so any bytes are a
// valid key and keys that differ only in case ("A" and "a") stay distinct.
// To manage the schema with a migration tool, run the same statements there
// and skip CreateSchema.
//
// # Expiry
//
// One clock decides expiry: the application's ([Options.Now], time.Now by
// default), passed to every statement as a parameter. SQLite's own clock is
// never read. A record whose expires_at is not after now reads as missing
// at once; its row stays until [Store.DeleteExpired] removes it, in batches
// of 1000 rows, one statement (and so one short write lock) per batch.
// Schedule DeleteExpired, for example with the root package's cleanup
// helper.
//
// # Versions
//
// Every write that changes a value gives the record a new random version
// from 1 to 2^63-1 (SQLite integers are signed), different from the one it
// replaces. [Store.CompareAndSwap], [Store.CompareAndDelete] and
// [Store.Touch] are single conditional UPDATE or DELETE statements; when one
// changes no row, a follow-up SELECT tells ErrNotFound from ErrConflict,
// and reads the current record, which a conflict of CompareAndSwap or
// CompareAndDelete returns in a [*kvsession.ConflictError].
// [Store.Touch] keeps the version.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract and both optional
// capabilities, [kvsession.Lister] and [kvsession.ExpiredDeleter].
//
// # Caveats
//
// A row that does not hold what the store writes (a NULL or a TEXT where an
// integer belongs, a version of 0) reads as missing rather than failing, and
// the next Set replaces it.
//
// Every method checks its context before it starts, and database/sql
// passes the context to the driver: modernc.org/sqlite interrupts a
// statement in flight (sqlite3_interrupt) when its context is cancelled.
// A statement waiting for a lock is not interrupted: it waits up to
// busy_timeout, whatever its context (see "Connection settings").
//
// Versions are random, so two versions of one key could in principle
// repeat; the chance is 2^-63 per pair, and a new version never equals the
// one CompareAndSwap replaces.
package sqlitestore
