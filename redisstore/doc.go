// Package redisstore is a [kvsession.Store] on Redis, through go-redis: a
// standalone server, a Sentinel-managed primary ([redis.NewFailoverClient])
// or a Redis Cluster ([redis.NewClusterClient]), all with one type, since
// [New] takes any [redis.UniversalClient]. It needs Redis 6.2 or later
// (SET ... PXAT, ZADD GT).
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
//	store, err := redisstore.New(client, &redisstore.Options{Namespace: "myapp:"})
//	if err != nil {
//		log.Fatal(err) // a bad option
//	}
//
// # Key layout
//
// Every key starts with the store's namespace, [Options.Namespace]
// ("kvsession:" by default). The record under store key k is the Redis
// string Namespace+"s:"+k; the user index of user u is the sorted set
// Namespace+"u:"+u. The two fixed tags keep a user
// name from ever naming a record, and a record key from ever naming a user
// index, whatever bytes either holds.
//
// A Manager's Config.KeyPrefix is part of the store key k, after the
// namespace and the tag: with KeyPrefix "app1:", a session's record is
// "kvsession:s:app1:" followed by the hash of its ID. The namespace
// belongs to the store (one per application or per data set sharing the
// database); the key prefix belongs to the Manager (one per application
// sharing the store).
//
// With a Manager's default Config (no KeyPrefix), a session's record is
// "kvsession:s:" followed by the hash of its ID, the index of user u is
// "kvsession:u:u", and u's revocation mark, a record too, is
// "kvsession:s:!r:" followed by a hash of u.
//
// A record's string is a 17-byte header, then the value:
//
//	byte 0      format, 1
//	bytes 1-8   version, a random non-zero uint64, big-endian
//	bytes 9-16  expiry, Unix milliseconds, big-endian; 0 for none
//	bytes 17-   value
//
// so that [Store.Get] is one GET that returns value, expiry and version
// together. A value under Namespace+"s:" that does not have this form reads
// as missing.
//
// Each user index member is a store key, scored with its index expiry in
// Unix milliseconds (+inf for none).
//
// # Expiry
//
// Redis decides when a record expires: every write sets the key's TTL to
// the record's expiry in the same command (SET key value PXAT ms, or a
// plain SET, which clears any TTL, for a record without expiry), never with
// a second EXPIRE. A record written or touched with an expiry in the past is
// deleted by that same command. Redis hides an expired key from every read
// at once and reclaims its memory by itself, so this store needs no
// cleanup and does not implement [kvsession.ExpiredDeleter].
//
// A user index drops its expired entries whenever it is written or read,
// judged by Redis's clock (TIME) like the records, and its key expires with
// its latest entry.
//
// # Versions and atomicity
//
// Every write gives the record a new random 64-bit version, drawn in Go, so
// that versions do not repeat for a key even after the key is deleted and
// written again (a counter kept in Redis would be deleted with the record):
// a write reuses the version a stale caller holds with a chance of 2^-64.
// [Store.CompareAndSwap], [Store.CompareAndDelete], [Store.Touch],
// [Store.AddUserKey] and [Store.UserKeys] are Lua scripts, run with EVALSHA
// and sent again with EVAL if the server has lost its script cache (after a
// restart, say). Each one touches a single key and so runs atomically, on
// a cluster too. [Store.Touch] rewrites the 8 expiry bytes of the header
// and the TTL, not the value, and keeps the version. On a version conflict
// the script of [Store.CompareAndSwap] returns the current record, so its
// error is a [*kvsession.ConflictError] holding it, with no extra round trip.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract and
// [kvsession.Lister]; Redis expires keys by itself, so it needs no
// [kvsession.ExpiredDeleter].
//
// [Store.Keys] walks the records with SCAN, never KEYS, one batch at a
// time: on a cluster it scans every master in turn, on a [redis.Ring] every
// shard. As with SCAN itself, a key may be reported twice, and on a cluster
// a key migrated to another node during the walk may be missed.
//
// # Cluster and Sentinel
//
// Every command and script touches one key, so each runs on the node that
// owns that key's slot, and a record and its user's index may well live on
// different nodes. A key holding a hash tag ("{...}") is only hashed
// differently; since every operation names one key, that changes nothing.
// The keys the session manager writes never hold one. A hash tag in
// [Options.Namespace], though, sends all of the store's keys to one slot.
//
// Behind Sentinel, go-redis follows the primary after a failover.
//
// # Replication and failover
//
// Redis replicates asynchronously: a write is acknowledged by the primary
// before any replica has it, and a failover (Sentinel or Cluster promoting
// a replica) loses the writes that replica had not received. For a save
// that means the session reads as it was before it, or as missing. For a
// delete it is worse: a logout ([kvsession.Session.Destroy]), a
// [kvsession.Manager.Revoke] or [kvsession.Manager.RevokeUser], or the
// old ID's delete in Regenerate, acknowledged just before a failover, is
// undone by it, and a cookie that the user or an administrator believed
// dead works again. By default the store does not wait for replicas.
//
// [Options.WaitReplicas] closes that window: after each delete the store
// sends WAIT numreplicas timeout on the same connection (pipelined after
// the delete, to the primary that owns the key, on a cluster too), and the
// delete returns nil only once that many replicas have it. If fewer
// acknowledge it within [Options.WaitTimeout], it returns an error wrapping
// [ErrNotReplicated]: the record is deleted on the primary, but a failover
// now could bring it back, and the manager reports the logout (or the
// revocation) as failed, with a store error event, rather than as done.
// A later delete of the same key waits again, and succeeds once the
// replicas have caught up. Sentinel and Cluster promote the reachable
// replica with the most replicated data, so 1 suffices while a replica
// that acknowledged stays reachable; wait for more to survive losing it
// too. Keep WaitTimeout well under the manager's StoreTimeout. Each
// delete then costs a replication round trip, and fails while too few
// replicas are up: this trades availability of logout for its durability.
// Only deletes wait: writes, touches and the user index do not (a user
// index entry that a failover brings back names a session that is gone,
// which readers skip and remove). On a cluster, a delete that meets a slot
// migration fails with MOVED, and the next attempt goes to the new owner.
// Redis's WAIT does not make Redis strongly consistent: a replica that
// acknowledged can still lose the write in a crash of its own before it
// is promoted.
//
// # Timeouts and failures
//
// Every method checks its context first, and returns at once, with an error
// wrapping the context's, if it is done. go-redis applies a context's
// deadline to the network only when the client's ContextTimeoutEnabled
// option is set; otherwise a call on a hung server waits for the client's
// ReadTimeout (3 seconds by default) whatever the context says. Set it, so
// that the session manager's StoreTimeout holds.
//
// Errors from Redis are wrapped as "redisstore: <op>: <cause>", never name
// the key, and never read as [kvsession.ErrNotFound]: a server that is down, refuses
// connections or answers with an error is a failure, not a missing session.
// After a server restart the client reconnects by itself (once dials have
// failed PoolSize times in a row, go-redis probes the server once a second,
// so calls may go on failing for up to a second after it is back), and
// records written before the restart work as before if the server kept its
// data (RDB or AOF). The restart empties the script cache; the scripts are
// sent again with EVAL when EVALSHA finds them missing.
//
// # Caveats
//
//   - The store does not own the client: close it yourself.
//   - go-redis sends every command to a primary unless the client is told
//     otherwise. With ReadOnly, RouteByLatency or RouteRandomly on a cluster
//     client, Get may be served by a replica, which hides expired keys too
//     but may lag: a request can then read a version older than the last
//     write, and its next CompareAndSwap fails with a conflict. The scripts
//     always run on primaries.
//   - Expiry has millisecond precision; an expiry is kept truncated to the
//     millisecond.
package redisstore
