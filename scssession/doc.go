// Package scssession lets an [scs] application keep its session data in any
// kvsession backend: memcached, Redis (standalone, Sentinel, Cluster),
// PostgreSQL, MySQL, SQLite, bbolt, files or memory. It is one assignment:
//
//	sm := scs.New()
//	sm.Store, err = scssession.New(redisstore.New(client, nil), scssession.Config{})
//
// [Store] implements scs's Store and CtxStore. scs keeps doing what it does:
// it mints the token, sends the cookie, encodes the session into a blob and
// decides its expiry; the adapter stores that blob under a key made of
// Config.KeyPrefix and a SHA-256 of the token, so the store never holds a
// usable token, with the expiry scs passes as the backend's own TTL.
//
// # What scs users do not get
//
// scs hands the store an opaque blob, so none of kvsession's session-level
// guarantees reach an scs application, only its backends:
//
//   - No merging of concurrent changes: two requests of one session that
//     change different keys still lose one of the changes (the last commit
//     wins), as with every scs store.
//   - No per-user index, no "log out everywhere" and no revocation through
//     kvsession's Manager, Admin or command-line tool: those read
//     kvsession records, and an scs blob is not one. Keep scs records under
//     their own prefix (the default "scs:") and do not point kvsession's
//     tools at it: they would report the blobs as corrupt records.
//   - No signed cookie: the cookie holds scs's own token (32 random bytes),
//     which is what scs checks.
//   - No All and so no SessionManager.Iterate: the store holds only hashes
//     of the tokens, and Iterate needs the tokens themselves.
//
// # Expiry
//
// Find never returns a record past the expiry given to Commit: the backend
// enforces it (kvsession's Store contract). Backends whose engine has no
// TTL (files, SQL, bbolt) keep expired records until a sweep: call
// [Store.Cleanup] periodically.
//
// [scs]: https://github.com/alexedwards/scs
package scssession
