// Package rueidisstore is a [kvsession.Store] on Redis through rueidis
// ([github.com/redis/rueidis]): a standalone server, a Sentinel-managed
// primary or a Redis Cluster, all with one [rueidis.Client]. It keeps
// redisstore's key layout, record format and scripts, so that the two
// stores, given the same prefix, read and write the same sessions: an
// application can move from one to the other, or run both, without logging
// anyone out. It needs Redis 6.2 or later (SET ... PXAT, ZADD GT), and
// RESP3 (Redis 6 or later) for [Options.CacheTTL].
//
//	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"localhost:6379"}})
//	if err != nil {
//		log.Fatal(err)
//	}
//	store, err := rueidisstore.New(client, &rueidisstore.Options{Namespace: "myapp:"})
//
// # Why rueidis
//
// go-redis (and so redisstore) sends each command on a connection of its
// own and waits for the reply: under load, every request in flight holds a
// connection and costs Redis a read and a write of its own. rueidis
// pipelines the commands of concurrent callers on a few shared connections
// per node, writing them in one batch and reading the replies in order, so
// requests in flight share round trips and system calls. A session store
// makes one command per read-only request and two per modifying one, so
// this is where its throughput goes (bench/'s TestWrk measures it beside
// redisstore, scs and a bare server making the same GETs through rueidis).
//
// # Key layout
//
// Every key starts with [Options.Namespace] ("kvsession:" by default, as for
// redisstore). The record under store key k is the Redis string
// Namespace+"s:"+k; the user index of user u is the sorted set Namespace+"u:"+u.
// The two fixed tags keep a user name from ever naming a record, and a
// record key from ever naming a user index, whatever bytes either holds.
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
// as missing. Each user index member is a store key, scored with its index
// expiry in Unix milliseconds (+inf for none).
//
// # Expiry
//
// Redis decides when a record expires: every write sets the key's TTL to
// the record's expiry in the same command (SET key value PXAT ms, or a
// plain SET, which clears any TTL, for a record without expiry), never with
// a second EXPIRE. A record written or touched with an expiry in the past
// is deleted by that same command. Redis hides an expired key from every
// read at once and reclaims its memory by itself, so this store needs no
// cleanup and does not implement [kvsession.ExpiredDeleter]. A user index
// drops its expired entries whenever it is written or read, judged by
// Redis's clock (TIME) like the records, and its key expires with its
// latest entry.
//
// # Versions and atomicity
//
// Every write gives the record a new random 64-bit version, drawn in Go.
// [Store.CompareAndSwap], [Store.CompareAndDelete], [Store.Touch],
// [Store.AddUserKey] and [Store.UserKeys] are Lua scripts, redisstore's,
// run with EVALSHA and sent again with EVAL if the server has lost its
// script cache. Each touches a single key and so runs atomically, on a
// cluster too. On a version conflict the script of
// [Store.CompareAndSwap] returns the current record, so its error is a
// [*kvsession.ConflictError] holding it, with no extra round trip.
//
// # Client-side caching
//
// With [Options.CacheTTL] set, [Store.Get] serves session records from
// rueidis's client-side cache (DoCache): a read-only request then costs no
// round trip at all when its session was read recently. Redis's client
// tracking keeps the cache coherent: Redis remembers which keys a
// connection read and pushes an invalidation to it when one changes, and
// rueidis drops its copy on receipt. The invalidation arrives a network
// hop after the write; CacheTTL bounds the rest. A cached copy is never
// served more than CacheTTL after the read that fetched it (nor after the
// key's TTL on the server), whatever happens to the invalidation: a lost
// or late message, a slow reader. So:
//
//   - CacheTTL is the longest a session destroyed, regenerated away or
//     revoked on another instance can still be accepted by this one, for
//     requests that only read it. Choose it as you would the delay you
//     accept between "log out everywhere" and the last read of a stolen
//     cookie; a second is a reasonable default, and [MaxCacheTTL] caps it.
//   - Writes are never affected: every write is decided on the server.
//     A session saved from a stale copy fails its compare-and-swap (on a
//     version conflict the manager merges and saves again, so a stale
//     read costs one retry, never a lost update); one that is gone fails
//     with not found, and is not brought back (no resurrection).
//   - An instance reads its own writes at once. Redis sends the
//     invalidation after the write's reply, possibly on another
//     connection, so for CacheTTL after each of its writes of a record a
//     Store reads it from the server the first time, and then serves a
//     cached copy only if it was fetched after the write (or equals what
//     the server holds). A session written on every request is so never
//     cached, which spares Redis a tracked read and an invalidation per
//     request that no cache hit would repay.
//   - Revocation marks (the manager's keys holding "!r:") are always read
//     from the server. A session that binds a new ID to a user checks the
//     mark once, after indexing the ID, and gives the ID up if RevokeUser
//     wrote a new one meanwhile: a stale mark there would let the new ID
//     outlive the revocation for good, not for CacheTTL. For the same
//     reason the user index is never cached ([Store.UserKeys] is a
//     script, which is never cached). So revocation stays airtight: once
//     RevokeUser returns, no session bound before it can be written or
//     regenerated on any instance, and none can be read after CacheTTL.
//
// The cache lives in the client, per connection (rueidis's
// CacheSizeEachConn, 128 MiB by default, bounds each; a single client has
// up to four pipelining connections): size it for the sessions read within
// CacheTTL. The client must have caching on (rueidis's default, not
// DisableCache); a client without it serves every Get from the server. A
// cache miss costs one round trip, as without caching (rueidis sends
// CLIENT CACHING YES, PTTL and GET in one MULTI, more work for Redis than
// a GET). Caching helps read-mostly sessions; it does not speed up writes.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract and
// [kvsession.Lister]. [Store.Keys] walks the records with SCAN, never
// KEYS, one batch at a time, on every master the client knows (each
// master of a cluster in turn). As with SCAN itself, a key may be reported
// twice, and on a cluster a key migrated to another node during the walk
// may be missed.
//
// # Cluster and Sentinel
//
// Every command and script touches one key, so each runs on the node that
// owns that key's slot, and a record and its user's index may well live on
// different nodes. A key holding a hash tag ("{...}") is only hashed
// differently; since every operation names one key, that changes nothing.
// The keys the session manager writes never hold one. A hash tag in
// [Options.Namespace], though, sends all of the store's keys to one slot. On a
// cluster rueidis keeps one pipelining connection per node (its
// PipelineMultiplex default), and the cache is per node connection, kept
// coherent by that node. Behind Sentinel (ClientOption.Sentinel), rueidis
// follows the primary after a failover.
//
// # Replication and failover
//
// Redis replicates asynchronously: a delete acknowledged by the primary
// just before a failover can be undone by it (see redisstore's package
// documentation, which describes the window). This store has no
// equivalent of redisstore's WaitReplicas; use redisstore where a logout
// must survive a failover.
//
// # Timeouts and failures
//
// Every method checks its context first, and returns at once, with an
// error wrapping the context's, if it is done; rueidis applies the
// context's deadline to the wait for each reply, so the session manager's
// StoreTimeout holds. Errors from Redis are wrapped as
// "rueidisstore: <op>: <cause>", never name the key, and never read as
// [kvsession.ErrNotFound]: a server that is down, refuses connections or
// answers with an error is a failure, not a missing session. rueidis
// reconnects by itself, and drops a connection's cache with the
// connection, so no copy outlives the tracking that keeps it coherent.
//
// # Caveats
//
//   - The store does not own the client: close it yourself.
//   - rueidis's retries of read-only commands after a network error
//     (DisableRetry) apply to GET only; the scripts are not retried.
//   - Expiry has millisecond precision; an expiry is kept truncated to the
//     millisecond.
package rueidisstore
