// Package mysqlstore is a [kvsession.Store] on MariaDB or MySQL, through a
// [database/sql.DB] opened by the application with the driver
// [github.com/go-sql-driver/mysql]. Several processes can share one
// database, and records survive restarts.
//
//	db, err := sql.Open("mysql", "app:secret@tcp(db.internal:3306)/app")
//	...
//	store, err := mysqlstore.New(db, nil)
//	...
//	defer store.Close()
//	err = store.CreateSchema(ctx) // once, at start-up or deploy time
//
// The Store is safe for concurrent use. [New] does no I/O, and nothing in
// this package starts a goroutine. It is tested on MariaDB 10.11 and written
// for MySQL 8 as well.
//
// # Schema
//
// [Store.CreateSchema] creates two InnoDB tables if they do not exist yet.
// With the default table name it runs:
//
//	CREATE TABLE IF NOT EXISTS `kvsession_sessions` (
//		`key`        VARBINARY(255) NOT NULL,
//		`value`      LONGBLOB NOT NULL,
//		`expires_at` BIGINT NULL,
//		`version`    BIGINT NOT NULL,
//		PRIMARY KEY (`key`),
//		KEY `expires_at` (`expires_at`)
//	) ENGINE=InnoDB;
//	CREATE TABLE IF NOT EXISTS `kvsession_sessions_users` (
//		`user`       VARBINARY(255) NOT NULL,
//		`key`        VARBINARY(255) NOT NULL,
//		`expires_at` BIGINT NULL,
//		PRIMARY KEY (`user`, `key`),
//		KEY `expires_at` (`expires_at`)
//	) ENGINE=InnoDB;
//
// Keys and user names are binary strings, so any byte is allowed and keys
// compare byte by byte whatever the server's character set and collation:
// "A" and "a" are different keys. Keys are limited to 255 bytes (the
// contract's keys have at most 250): a longer key is rejected by writes
// with an error, and reads as missing, so that a server not in strict mode
// can never truncate two keys into one. User IDs of any length work (the
// manager allows up to kvsession.MaxUserBytes): one shorter than 255 bytes
// is stored as it is; a longer one is stored as a 255-byte hashed form,
// "kvsession-user-sha256:", underscores, then the hex SHA-256 of the user
// ID, so two long user IDs never share a row, and no hashed form equals a
// short user ID (they differ in length). The previous version stored a
// user ID of exactly 255 bytes as it is: reads and removals look for that
// form too (unless the user ID itself starts with the tag), so such
// sessions indexed before an upgrade stay listed and revocable. The schema
// is unchanged. expires_at is the
// expiry in Unix microseconds, NULL for a record that never expires; no
// DATETIME column is involved, so neither the server's nor the connection's
// time zone matters. version is a random non-zero 63-bit number drawn for
// every write, so a version is never reused under a key, even after the key
// is deleted and written again. The primary key of the user table also
// serves lookups by user.
//
// [Options].Table renames both tables: the user index table is always the
// session table's name followed by "_users". Use an account that can create
// tables for CreateSchema, or run the statements above yourself (with your
// table name) and give the application's account SELECT, INSERT, UPDATE
// and DELETE.
//
// # Clock
//
// One clock decides expiry: the application's, [Options].Now (time.Now by
// default). The expires_at columns hold the instants the caller passes, and
// every read and every conditional write compares them with a now that the
// store reads from Options.Now and sends as a query parameter; the server's
// NOW() is never used. Keep the clocks of the processes that share a
// database in sync (NTP), as for any distributed expiry.
//
// # Expiry
//
// MariaDB and MySQL have no native TTL. A record whose expiry has passed
// reads as missing at once (and Set, CompareAndSwap and Touch treat it as
// absent), but its row stays until [Store.DeleteExpired] removes it. Call
// that periodically, for instance with the manager's cleanup helper, every
// few minutes. It deletes in batches of 1000 rows (DELETE ... ORDER BY
// expires_at, key LIMIT 1000, so each batch is deterministic), checks its
// context between batches, and also sweeps the user index table.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract (its Touch keeps
// the version) and both optional capabilities, [kvsession.Lister] and
// [kvsession.ExpiredDeleter]. Get, Set
// (INSERT ... ON DUPLICATE KEY UPDATE), Delete, Touch, CompareAndSwap and
// CompareAndDelete are one statement each. CompareAndSwap and
// CompareAndDelete run a second SELECT only when they change no row, to tell
// [kvsession.ErrNotFound] from [kvsession.ErrConflict] (that SELECT reads the
// current record, which a conflict returns in a [*kvsession.ConflictError]);
// Touch does the same to tell a missing record from one that already had
// the requested expiry.
// So the store is correct whether or not the DSN sets clientFoundRows:
// without it MariaDB counts changed rows rather than matched ones, and only
// Touch can match a row without changing it (CompareAndSwap always writes a
// new version). [Store.Keys] walks the key range in key order, 1000 keys
// per query (keyset pagination), and calls its callback between queries,
// with no connection held.
//
// # Prepared statements
//
// The store prepares each of its statements the first time it runs it and
// keeps the [database/sql.Stmt], which database/sql prepares again on each
// connection that needs it: a call then costs one round trip whatever the
// DSN says (without interpolateParams=true, running an unprepared statement
// with arguments takes two). [Store.Close] releases these statements; it
// does not close the [database/sql.DB].
//
// # Connection pool
//
// Bound the handle's pool: database/sql opens as many connections as there
// are calls in flight, so without a bound a burst of concurrent requests
// exhausts the server's max_connections (151 by default) and every load
// then fails with Error 1040 (too many connections), for this application
// and for every other client of the server. Call
// [database/sql.DB.SetMaxOpenConns] with a bound well under max_connections
// divided among the processes that share the server; a call that finds
// every connection busy waits for one, within its context. Call
// [database/sql.DB.SetMaxIdleConns] with the same number: database/sql
// keeps only two idle connections by default, so under concurrent load most
// calls would open a connection, and prepare their statement on it, anew.
//
//	db.SetMaxOpenConns(10)
//	db.SetMaxIdleConns(10)
//
// # Failures
//
// Errors are wrapped as "mysqlstore: <operation>: <cause>" and keep the
// driver's error for errors.As (a *mysql.MySQLError, say). A database error
// is never reported as [kvsession.ErrNotFound]. A call whose context ends
// returns promptly with an error wrapping the context's error; the driver
// then closes the connection but does not kill the statement on the server,
// so a statement that the server had already received may still complete
// (a cancelled Set may land later). Conditional writes stay safe: a late
// CompareAndSwap still checks the version.
//
// A pooled connection that the server closed (a restart, a failover,
// wait_timeout, KILL) is noticed by the driver before it sends anything, and
// database/sql then retries on another connection, so such failures do not
// reach the caller. A statement that loses a deadlock (error 1213) was rolled
// back, and the store runs it again, up to three times in all.
//
// # Caveats
//
// Values are limited by the server's max_allowed_packet (16 MiB by default
// on MariaDB). Sessions belong in tables of their own: DeleteExpired and
// CreateSchema act on the configured tables only, and nothing else should
// write to them.
package mysqlstore
