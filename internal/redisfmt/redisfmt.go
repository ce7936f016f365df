// Package redisfmt is what the two Redis stores, redisstore (on go-redis)
// and rueidisstore (on rueidis), share so that each reads and writes the
// other's data: the key tags, the record format and the Lua scripts. It is
// not promised to users.
//
// The key of the record under store key k is Prefix+[RecordTag]+k, a Redis
// string; the user index of user u is the sorted set Prefix+[UserTag]+u,
// whose members are store keys scored with their index expiry in Unix
// milliseconds (+inf for none). A record's string is a [HeaderSize]-byte
// header, then the value:
//
//	byte 0      format, RecordFormat
//	bytes 1-8   version, a random non-zero uint64, big-endian
//	bytes 9-16  expiry, Unix milliseconds, big-endian; 0 for none
//	bytes 17-   value
package redisfmt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/sharedread"
)

// The tags after the store's prefix: they keep a user name from ever naming
// a record, and a record key from ever naming a user index.
const (
	RecordTag = "s:"
	UserTag   = "u:"
)

// The record header.
const (
	RecordFormat = 1
	HeaderSize   = 17
	VersionOff   = 1
	ExpiryOff    = 9
)

// ExpiryMillis returns the expiry of t for the header and PXAT: 0 for the
// zero time, and at least 1 otherwise, so that an instant at or before the
// Unix epoch still reads as past rather than as "never".
func ExpiryMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

// NewVersion returns a random non-zero version. Versions are random rather
// than counted so that they do not repeat for a key even after the key is
// deleted and written again: a counter kept in Redis would die with the
// record. The chance that a write reuses the one version a stale caller
// holds is 2^-64.
func NewVersion() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

// Encode returns the stored form of a record with a new version.
func Encode(value []byte, expMillis int64) []byte {
	b := make([]byte, HeaderSize+len(value))
	b[0] = RecordFormat
	binary.BigEndian.PutUint64(b[VersionOff:], NewVersion())
	binary.BigEndian.PutUint64(b[ExpiryOff:], uint64(expMillis))
	copy(b[HeaderSize:], value)
	return b
}

// VersionBytes returns v as the scripts compare it: 8 bytes, big-endian.
func VersionBytes(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// ExpiryBytes returns the header's expiry field for ms, as [Touch] writes it.
func ExpiryBytes(ms int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(ms)) }

// DecodeShared is Decode without the copy, for a store's shared read
// (package sharedread): value shares b's bytes, which the caller must never
// write to, since b is a string (and, from a client-side cache, other
// readers' too).
func DecodeShared(b string) (value []byte, expiresAt time.Time, version uint64, ok bool) {
	if len(b) < HeaderSize || b[0] != RecordFormat {
		return nil, time.Time{}, 0, false
	}
	if n := len(b) - HeaderSize; n > 0 {
		value = unsafe.Slice(unsafe.StringData(b[HeaderSize:]), n)
	} else {
		value = []byte{}
	}
	version = binary.BigEndian.Uint64([]byte(b[VersionOff:ExpiryOff]))
	if ms := int64(binary.BigEndian.Uint64([]byte(b[ExpiryOff:HeaderSize]))); ms != 0 {
		expiresAt = time.UnixMilli(ms)
	}
	return value, expiresAt, version, true
}

// SharedRead returns a store's shared read (package sharedread) made of
// read, which gives the stored string of the record under a store key. A
// string that is not a record gives an error that names the store (name)
// and wraps malformed.
func SharedRead(name string, read func(ctx context.Context, key string) (string, error), malformed error) sharedread.Get {
	return func(ctx context.Context, key string) ([]byte, time.Time, uint64, error) {
		b, err := read(ctx, key)
		if err != nil {
			return nil, time.Time{}, 0, err
		}
		v, exp, version, ok := DecodeShared(b)
		if !ok {
			return nil, time.Time{}, 0, fmt.Errorf("%s: get: %w", name, malformed)
		}
		return v, exp, version, nil
	}
}

// Decode parses the stored form of a record. It reports false if b is not
// a record of this format. The Entry's Value is a copy: the caller owns it.
func Decode(b string) (kvsession.Entry, bool) {
	v, exp, version, ok := DecodeShared(b)
	if !ok {
		return kvsession.Entry{}, false
	}
	return kvsession.Entry{Value: bytes.Clone(v), ExpiresAt: exp, Version: version}, true
}

// GlobEscape quotes the characters that Redis glob patterns treat
// specially, so that SCAN's MATCH sees s literally.
func GlobEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ScanBatch is the COUNT hint of each SCAN: how many hash buckets Redis
// visits per call, and so roughly how many keys a call returns.
const ScanBatch = 1000

// The scripts below each touch one key, so they run on a cluster too.
// Their arguments are strings and they never turn a version into a Lua
// number (a double, which cannot hold 64 bits). The 1 they compare the
// first byte with is RecordFormat. The conditional ones return 0 when no
// live record of this format exists under the key, 1 on a version conflict
// and 2 on success; CAS returns the whole current record, a string,
// instead of 1, so that the caller gets it without another read.

// The integer replies of the conditional scripts, as both stores read them.
const (
	ReplyMissing  = 0 // no live record of this format under the key
	ReplyConflict = 1 // another version is stored
	ReplyDone     = 2 // done
)

// CAS: ARGV[1] is the expected version (8 bytes), ARGV[2] the new record,
// ARGV[3] its expiry in Unix milliseconds ("0" for none).
const CAS = `
local h = redis.call('GETRANGE', KEYS[1], 0, 16)
if #h < 17 or string.byte(h, 1) ~= 1 then return 0 end
if string.sub(h, 2, 9) ~= ARGV[1] then return redis.call('GET', KEYS[1]) end
if ARGV[3] == '0' then
	redis.call('SET', KEYS[1], ARGV[2])
else
	redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
end
return 2
`

// CAD: ARGV[1] is the expected version (8 bytes).
const CAD = `
local h = redis.call('GETRANGE', KEYS[1], 0, 16)
if #h < 17 or string.byte(h, 1) ~= 1 then return 0 end
if string.sub(h, 2, 9) ~= ARGV[1] then return 1 end
redis.call('DEL', KEYS[1])
return 2
`

// Touch: ARGV[1] is the new expiry header field (8 bytes), ARGV[2] the
// same expiry in Unix milliseconds ("0" for none). It rewrites the 8 bytes
// of the header in place, not the value, and keeps the version.
const Touch = `
local h = redis.call('GETRANGE', KEYS[1], 0, 16)
if #h < 17 or string.byte(h, 1) ~= 1 then return 0 end
redis.call('SETRANGE', KEYS[1], 9, ARGV[1])
if ARGV[2] == '0' then
	redis.call('PERSIST', KEYS[1])
else
	redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 2
`

// The scripts of a waiting delete (followed by WAIT on the same
// connection) always write, even when the record is already gone (a SET
// and a DEL of the absent key, which leave it absent). WAIT counts the
// replicas that have the connection's last write, and Redis versions differ
// on whether a command that changed nothing moves that mark; a connection
// that wrote nothing would count every replica at once, though an earlier
// delete of the record (one that reported too few replicas, or a first
// attempt that the client retried on another connection) may not have
// reached them. Redis replicates a script's effects, so the SET and DEL
// reach the replicas after that earlier delete.

// DelWait deletes KEYS[1] and returns how many keys it deleted.
const DelWait = `
local n = redis.call('DEL', KEYS[1])
if n == 0 then
	redis.call('SET', KEYS[1], '')
	redis.call('DEL', KEYS[1])
end
return n
`

// CADWait is CAD for a waiting delete. ARGV[1] is the expected version (8
// bytes).
const CADWait = `
local h = redis.call('GETRANGE', KEYS[1], 0, 16)
if #h < 17 or string.byte(h, 1) ~= 1 then
	if redis.call('EXISTS', KEYS[1]) == 0 then
		redis.call('SET', KEYS[1], '')
		redis.call('DEL', KEYS[1])
	end
	return 0
end
if string.sub(h, 2, 9) ~= ARGV[1] then return 1 end
redis.call('DEL', KEYS[1])
return 2
`

// The user index scripts read Redis's clock, which also decides when
// records expire.

// AddUser: KEYS[1] is the user index, ARGV[1] the key, ARGV[2] its expiry
// score. It drops expired entries, adds the pair keeping the later expiry
// (ZADD GT), and sets the set's own expiry to its latest entry's.
const AddUser = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #top == 0 then return 0 end
if top[2] == 'inf' then
	redis.call('PERSIST', KEYS[1])
else
	redis.call('PEXPIREAT', KEYS[1], top[2])
end
return 1
`

// UserKeys drops the expired entries of the user index KEYS[1] and returns
// the others.
const UserKeys = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`

// UserScore returns the index score of a key expiring at ms (0: never).
func UserScore(ms int64) string {
	if ms == 0 {
		return "+inf"
	}
	return strconv.FormatInt(ms, 10)
}

// A Scanner sends one SCAN cursor MATCH match COUNT ScanBatch to one node
// and returns the keys and the next cursor. It checks its context first,
// and returns errors as its store reports them.
type Scanner func(cursor uint64, match string) (keys []string, next uint64, err error)

// WalkKeys calls fn, from the calling goroutine only, for every record key
// (without recPrefix) that starts with prefix, walking each node's scan in
// turn, one batch at a time. It stops at the first error of a scan or of
// fn and returns it as it is. As with SCAN itself, a key may be reported
// more than once.
func WalkKeys(nodes []Scanner, recPrefix, prefix string, fn func(key string) error) error {
	match := GlobEscape(recPrefix+prefix) + "*"
	for _, scan := range nodes {
		var cursor uint64
		for {
			keys, next, err := scan(cursor, match)
			if err != nil {
				return err
			}
			for _, k := range keys {
				k, ok := strings.CutPrefix(k, recPrefix)
				if !ok || !strings.HasPrefix(k, prefix) {
					continue // cannot happen with a correct MATCH; be safe
				}
				if err := fn(k); err != nil {
					return err
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return nil
}
