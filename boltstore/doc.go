// Package boltstore is a [kvsession.Store] in a bbolt database
// (go.etcd.io/bbolt): an embedded, transactional key-value file, for one
// process that wants its sessions to survive restarts without running a
// server.
//
//	db, err := bbolt.Open("sessions.db", 0o600, &bbolt.Options{Timeout: time.Second})
//	...
//	store, err := boltstore.New(db, nil)
//
// Give bbolt.Open the mode 0o600, as above: bbolt creates the file with
// the mode it is given, and the file holds every session's data, so any
// looser mode lets other local users read them. bbolt creates no other
// file. The storeurl package's bolt: scheme opens files this way.
//
// # Layout
//
// New creates, if missing, a top-level bucket ([Options.Bucket], default
// "kvsession") holding three buckets:
//
//	records  key -> format (1 byte, 1) | expiresAt (8) | version (8) | value
//	users    uvarint(len(user)) | user | key -> expiresAt (8)
//	expiry   expiresAt (8) | kind (1 byte: 'r' record, 'u' user entry) | records or users key -> empty
//
// Integers are big-endian. expiresAt is Unix milliseconds, 0 for no expiry
// (instants at or before the epoch are stored as 1, so they stay expired).
// Keys are stored as they are, byte for byte: any key is valid and keys
// that differ only in case stay distinct. The expiry bucket indexes every
// record and user entry that has an expiry, ordered by it, so that a sweep
// reads only what has expired.
//
// # Expiry
//
// One clock decides expiry: the application's ([Options.Now], time.Now by
// default). A record whose expiry is not after now reads as missing at once;
// it stays in the file until [Store.DeleteExpired] removes it. DeleteExpired
// walks the expiry bucket from its oldest entry and deletes at most 1000
// entries per write transaction, so other writers get the database between
// batches. Schedule it, for example with the root package's cleanup helper.
//
// # Versions
//
// Every write that changes a value takes the records bucket's next sequence
// number as the record's version: versions never repeat within a database
// file, not even across a delete and a re-creation of the key. Conditional
// writes ([Store.CompareAndSwap], [Store.CompareAndDelete], [Store.Touch])
// read, check and write in one update transaction, and a version conflict
// returns the record read in a [*kvsession.ConflictError]. Touch keeps the
// version.
//
// # Concurrent writes
//
// Every write is a bbolt update transaction, and bbolt runs one at a time:
// writes are serialised and, unless the database was opened with NoSync,
// each costs an fsync, so the disk's fsync rate bounds how many writes a
// second the store does. The store's own writes take turns, in the order
// they arrive. bbolt waits for its write lock without a context, so a
// write waits for it in a goroutine of its own, and for that goroutine
// within its context: a write whose context ends while it waits, for its
// turn or for a transaction that another user of the same *bbolt.DB holds,
// returns the context's error at once and changes nothing, even once the
// lock is free. Once its transaction has started, it runs to its end (a
// commit and its fsync are never cut short) and the write returns its
// result. At most one such goroutine per Store waits for the lock at a
// time. Under kvsession's manager, whose Config.StoreTimeout bounds every
// store call, a request that waits too long for its turn fails with the
// timeout instead of hanging. Reads do not wait for writes.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract and both optional
// capabilities, [kvsession.Lister] and [kvsession.ExpiredDeleter].
//
// # Caveats
//
// bbolt holds an exclusive lock on the file while it is open for writing:
// one process per file. A second process that opens it waits for the lock
// (give [bbolt.Options.Timeout] so it fails instead of hanging). A
// command-line tool that inspects the sessions should run while the
// application is stopped, or open the file with bbolt.Options{ReadOnly:
// true}, which takes a shared lock and so also waits for the application to
// close the file. On a read-only database, New creates nothing, reads
// work, and writes fail.
//
// bbolt has no notion of a context. Every method checks its context before
// each transaction (and DeleteExpired and Keys between batches), writes
// wait for bbolt's write lock within their context (see "Concurrent
// writes"), and a transaction that has started runs to its end.
//
// A record that does not decode (too short, unknown format, version 0) reads
// as missing, and the next Set replaces it.
//
// Store never keeps a slice that bbolt returns beyond its transaction: it
// copies what it returns.
package boltstore
