// Package sqlitestore is a [kvsession.Store] in an SQLite database, reached
// through [database/sql]. It is written for modernc.org/sqlite, the pure Go
// (no cgo) driver, and uses only SQL that any SQLite driver accepts:
//
//	import _ "modernc.org/sqlite" // registers the driver "sqlite"
//
//	db, err := sql.Open("sqlite", "file:sessions.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
//	...
//	store, err := sqlitestore.New(db, nil)
//	...
//	err = store.CreateSchema(ctx) // once, at start-up
//
// # Connection settings
//
// SQLite lets one writer in at a time. Open the database with these pragmas
// in the DSN, so that they hold on every connection of the pool:
//
//   - busy_timeout(5000): a connection that finds the database locked waits
//     up to 5 s for it instead of failing at once with SQLITE_BUSY. Without
//     it, concurrent writers fail.
//   - journal_mode(WAL): readers do not block the writer nor the writer the
//     readers, and a commit costs one fsync of the log.
//   - synchronous(NORMAL) (optional, with WAL): fewer fsyncs; a power loss
//     may drop the last commits but never corrupts the database.
//
// The store never holds a transaction open across statements, so these
// settings are enough for any pool size. [database/sql.DB.SetMaxOpenConns]
// bounds the pool; a pool of one connection removes lock waits altogether at
// the cost of serialising readers. An in-memory database (":memory:") is
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
//	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
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
// statement in flight (sqlite3_interrupt) when its context is cancelled. A
// statement waiting for the write lock waits at most busy_timeout.
//
// Versions are random, so two versions of one key could in principle
// repeat; the chance is 2^-63 per pair, and a new version never equals the
// one CompareAndSwap replaces.
package sqlitestore
