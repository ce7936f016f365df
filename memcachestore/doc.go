// Package memcachestore is a [kvsession.Store] on memcached, through
// github.com/bradfitz/gomemcache. Memcached is a cache: it may evict any
// record under memory pressure and loses everything when it restarts, which
// logs the affected users out. Size it so that it never evicts (watch the
// "evictions" statistic), or choose a store that persists.
//
//	client := memcache.New("127.0.0.1:11211")
//	client.MaxIdleConns = 64 // at least the peak number of concurrent requests
//	store, err := memcachestore.New(client, nil)
//	if err != nil {
//		log.Fatal(err) // a bad option
//	}
//
// # Key layout
//
// Memcached keys are at most 250 bytes without spaces or control
// characters, and session keys are arbitrary bytes, so every key is
// encoded: a record lives under
//
//	Namespace + "s:" + base64url(sha256(key))
//
// and a user's index under Namespace + "u:" + base64url(sha256(user)), both
// of fixed length, distinct for distinct keys (barring a SHA-256
// collision), and confined to the store's namespace ([Options.Namespace],
// default "kvsession:"). The key is the store key, which starts with the
// Manager's Config.KeyPrefix (none by default): applications sharing one
// memcached use different namespaces, or different key prefixes.
//
// # Item format
//
// A record is an item whose Flags are 1 and whose value is its expiry
// (8 bytes, big-endian Unix milliseconds, 0 for none) followed by the
// session data. Memcached does not return an item's expiry on a read, so the
// expiry travels in the value. The record's version is the item's CAS
// unique, which memcached changes on every store.
//
// # Expiry
//
// The application's clock (time.Now) decides expiry: Get reads a record
// whose stored expiry has passed as missing, to the millisecond, and so do
// the conditional writes. Memcached's own expiry only reclaims memory, and
// is set so that it never fires first: the time left, rounded up to whole
// seconds, plus one second, because memcached's clock ticks once a second.
// So a record may hold memcached's memory for up to two seconds after it
// reads as missing. A write whose expiry has already passed removes the
// record at once.
//
// Memcached reads an expiration of more than 30 days (2592000 s) as an
// absolute Unix time, not as seconds from now. Store sends lifetimes up to
// 30 days as relative seconds (which no clock skew between the application
// and memcached can disturb) and longer ones as absolute Unix times.
// Lifetimes reaching past January 2038, beyond an int32 Unix time, get no
// memcached expiry at all and are expired by the read check alone.
//
// # Versions and conditional writes
//
// [Store.CompareAndSwap] reads the record (to check its expiry and version)
// and then writes it with memcached's cas command carrying the old version,
// so that a write that happened in between makes it fail with ErrConflict:
// two round trips.
//
// Memcached has no conditional delete. [Store.CompareAndDelete] uses cas
// to replace the record, only if its version is still the old one, with an
// empty tombstone item (Flags 2) whose expiration is negative, which
// memcached treats as expired at once. The replacement and the version check
// are one atomic cas: a concurrent write makes it fail with ErrConflict,
// and a write after it is not affected. Readers never see the tombstone.
//
// [Store.Touch] cannot use memcached's touch command, which would leave the
// expiry stored in the value stale: it rewrites the whole item with cas,
// retrying if a concurrent write intervenes. Touch therefore changes the
// record's version, and costs a read and a write of the value.
//
// # Capabilities
//
// Store implements the whole [kvsession.Store] contract. Memcached cannot
// enumerate its keys and expires items by itself, so Store does not
// implement [kvsession.Lister] or [kvsession.ExpiredDeleter]: tools that
// list sessions cannot list them in memcached.
//
// # User index
//
// The user index keeps one item per user: a list of (key, expiry) pairs,
// changed by read-modify-cas loops (at most 32 tries, with a short random
// back-off). Each change drops the user's expired entries; the item expires
// with its last entry. Every change rewrites the whole item.
//
// The index is bounded: it holds at most [Options.MaxUserKeys] entries
// ([DefaultMaxUserKeys], 1000, by default: about 55 KB with the manager's
// keys, well within memcached's 1 MiB items). When an AddUserKey would go
// past the cap, the entries that expire first are dropped (an entry without
// expiry counts as the latest; on a tie the entry added last stays). If
// memcached still refuses the item as too large (a server run with a small
// -I, or very long store keys), the index keeps its latest-expiring half,
// and so on, until it fits. So adding to a full index never fails, and
// neither does the login that adds to it.
//
// What a dropped entry costs: its session ends. A session the index did
// not name could not be found by [kvsession.Manager.UserSessions] or ended
// by [kvsession.Manager.RevokeUser] ("log out everywhere"), so AddUserKey
// deletes the sessions whose entries it drops, and revocation stays
// airtight. In effect MaxUserKeys is a cap on the live sessions of one
// user, ending those closest to their end. Raise it if a user may
// legitimately hold more sessions at once (each entry costs its key's
// length plus about 10 bytes in the item, and each login rewrites the
// item), or use a store whose index is not one item.
//
// The index is subject to eviction like any item: an evicted index forgets
// the user's sessions (which "log out everywhere" then cannot find) while
// the sessions themselves may survive. That is one more reason to run
// memcached without evictions.
//
// User IDs, like keys, are hashed into the item's key, so a user ID of any
// length and bytes (spaces, newlines, NUL) gives a valid memcached key, and
// distinct users distinct items.
//
// # Caveats
//
// gomemcache takes no context. Every method checks its context before each
// call to memcached, but a call in flight is bounded by the client's
// Timeout (500 ms by default), not by the context.
//
// A pooled connection to a memcached that has restarted fails on its next
// use. Store retries a call that fails that way (connection reset or closed
// by the server) on another connection, up to the client's MaxIdleConns
// times, so that a restart reads as an empty memcached rather than as
// errors. A cas retried that way reports ErrConflict if its first attempt
// did reach the server; callers then re-read, as after any conflict.
//
// Versions are memcached CAS uniques: memcached must not run with -C (CAS
// disabled); Get reports an error if it does. A memcached restart starts the
// CAS counter again, so an old version could in principle match a record
// created under the same key after the restart; session keys are random and
// never reused, so this does not arise for sessions.
//
// Values are limited by memcached's item size (-I, 1 MB by default) minus
// the 8-byte header and the key.
package memcachestore
