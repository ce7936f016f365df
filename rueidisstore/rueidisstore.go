package rueidisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/redisfmt"
	"github.com/kvsession/kvsession/internal/sharedread"
	"github.com/redis/rueidis"
)

var (
	_ kvsession.Store  = (*Store)(nil)
	_ kvsession.Lister = (*Store)(nil)
)

func init() {
	// Only *Store itself: a wrapper is another type and keeps Get's copy.
	// The manager's load then shares the reply's bytes instead of copying
	// the value out (with CacheTTL, the cached reply's, which other reads share).
	sharedread.Register(func(store any) sharedread.Get {
		if s, ok := store.(*Store); ok {
			return redisfmt.SharedRead("rueidisstore", s.get, errMalformed)
		}
		return nil
	})
}

// DefaultNamespace is the key namespace of a Store whose Options leave Namespace
// empty: the same as redisstore's, so that the two stores share data by
// default.
const DefaultNamespace = "kvsession:"

// MaxCacheTTL is the longest [Options.CacheTTL] accepted. The cache TTL is
// the longest a destroyed or revoked session can still be read by another
// instance; a longer bound is not a session store's to offer.
const MaxCacheTTL = time.Minute

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Namespace is put before every Redis key the store writes, as with
	// redisstore: records live under Namespace+"s:" and user indexes under
	// Namespace+"u:". A redisstore.Store and a Store with the same Namespace on
	// the same Redis read and write the same sessions. On a cluster, a
	// Namespace holding a hash tag ("{app}:") puts every key of the store in
	// one slot, and so on one node. Default: [DefaultNamespace].
	Namespace string

	// CacheTTL, if positive, serves [Store.Get] of session records from
	// rueidis's client-side cache (DoCache), kept coherent by Redis's
	// client tracking (RESP3): Redis tells the client when a key it read
	// changes, and the client drops its copy. CacheTTL is the hard bound
	// on staleness should that message be late or lost: a cached copy is
	// never served longer than CacheTTL after it was read, nor past the
	// key's TTL on the server. It is therefore the longest a session
	// destroyed or revoked on another instance can still be accepted by
	// this one, for requests that only read: any write to such a session
	// is decided on the server and fails at once. This instance reads its
	// own writes at once, whatever CacheTTL says. Revocation marks are
	// never cached (see "Client-side caching" in the package
	// documentation). The client must have been built with caching on
	// (rueidis's default; not DisableCache), or Get reads the server every
	// time. At most [MaxCacheTTL]. Default: 0, no caching.
	CacheTTL time.Duration
}

// Store keeps records in Redis through a [rueidis.Client]: standalone,
// behind Sentinel, or in a Cluster. Concurrent calls share round trips:
// rueidis pipelines the commands in flight on one connection per node. It
// is safe for concurrent use. Create one with [New].
type Store struct {
	client    rueidis.Client
	recPrefix string // prefix + "s:"
	usrPrefix string // prefix + "u:"
	cacheTTL  time.Duration
	recent    *recentWrites // nil without caching
}

// New returns a Store that keeps its records in Redis through client. The
// caller keeps ownership of client: closing it is the caller's job, after
// the last use of the Store. A nil opts means the zero Options. It returns
// an error, and no Store, if client is nil or an option is invalid.
//
// New makes no network call.
func New(client rueidis.Client, opts *Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("rueidisstore: new: nil client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	switch {
	case o.CacheTTL < 0:
		return nil, fmt.Errorf("rueidisstore: new: CacheTTL %v is negative", o.CacheTTL)
	case o.CacheTTL > MaxCacheTTL:
		return nil, fmt.Errorf("rueidisstore: new: CacheTTL %v is above MaxCacheTTL %v", o.CacheTTL, MaxCacheTTL)
	}
	s := &Store{
		client:    client,
		recPrefix: o.Namespace + redisfmt.RecordTag,
		usrPrefix: o.Namespace + redisfmt.UserTag,
		cacheTTL:  o.CacheTTL,
	}
	if o.CacheTTL > 0 {
		s.recent = newRecentWrites(o.CacheTTL)
	}
	return s, nil
}

// errMalformed reports a value under the store's namespace that is not a
// record of this format. It reads as missing.
var errMalformed = fmt.Errorf("malformed record: %w: %w", kvsession.ErrCorrupt, kvsession.ErrNotFound)

// wrap turns an error from rueidis into one of the store's: a nil reply
// becomes ErrNotFound, and an error that happened while ctx was done also
// wraps ctx's error.
func wrap(ctx context.Context, op string, err error) error {
	if rueidis.IsRedisNil(err) {
		return notFound(op)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("rueidisstore: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("rueidisstore: %s: %w", op, err)
}

func notFound(op string) error {
	return fmt.Errorf("rueidisstore: %s: %w", op, kvsession.ErrNotFound)
}

func conflict(op string) error {
	return fmt.Errorf("rueidisstore: %s: %w", op, kvsession.ErrConflict)
}

// isMark reports whether key is a revocation mark of the manager ("!r:",
// which no session key holds: session keys are the manager's prefix and
// URL-safe base64). Get reads marks from the server: a session binding a
// new ID checks the mark once, and a stale mark there would let the ID
// outlive a revocation for good, not for CacheTTL.
func isMark(key string) bool { return strings.Contains(key, "!r:") }

// Get implements [kvsession.Store] with one GET; with [Options.CacheTTL],
// served from the client-side cache where it may.
func (s *Store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	b, err := s.get(ctx, key)
	if err != nil {
		return kvsession.Entry{}, err
	}
	// Decode copies the value out of the reply's string.
	e, ok := redisfmt.Decode(b)
	if !ok {
		return kvsession.Entry{}, fmt.Errorf("rueidisstore: get: %w", errMalformed)
	}
	return e, nil
}

// get returns the stored string of the record under key. ToString shares
// the reply's string, which a cached reply also keeps.
func (s *Store) get(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("rueidisstore: get: %w", err)
	}
	b, err := s.read(ctx, key, s.recPrefix+key).ToString()
	if err != nil {
		return "", wrap(ctx, "get", err)
	}
	return b, nil
}

// read sends the GET of Redis key k, for store key key: through the cache
// if there is one, unless key is a revocation mark or the read is the
// first since this store's own write of k (see recentWrites).
func (s *Store) read(ctx context.Context, key, k string) rueidis.RedisResult {
	if s.recent == nil || isMark(key) {
		return s.client.Do(ctx, s.client.B().Get().Key(k).Build())
	}
	w := s.recent.get(k)
	switch {
	case w == nil:
		return s.client.DoCache(ctx, s.client.B().Get().Key(k).Cache(), s.cacheTTL)
	case w.reads.Add(1) == 1:
		return s.client.Do(ctx, s.client.B().Get().Key(k).Build())
	default:
		return s.afterWrite(ctx, k, w, s.client.DoCache(ctx, s.client.B().Get().Key(k).Cache(), s.cacheTTL))
	}
}

// afterWrite checks a cached read of k, which this store wrote (w), against
// the write. A copy fetched after the write returned
// (its expiry is later than w's deadline) is current; so is one equal to what the
// server holds now. Either way the cache holds nothing older, and k is
// forgotten. Otherwise (a copy fetched before the write, whose
// invalidation is still on its way) Get returns what the server holds.
func (s *Store) afterWrite(ctx context.Context, k string, w *recentWrite, cached rueidis.RedisResult) rueidis.RedisResult {
	if cached.CachePXAT() > w.deadline {
		s.recent.forget(k, w)
		return cached
	}
	fresh := s.client.Do(ctx, s.client.B().Get().Key(k).Build())
	if sameReply(cached, fresh) {
		s.recent.forget(k, w)
	}
	return fresh
}

// sameReply reports whether two GET replies are the same value, or both
// nil (no key).
func sameReply(a, b rueidis.RedisResult) bool {
	av, aerr := a.ToString()
	bv, berr := b.ToString()
	if aerr != nil || berr != nil {
		return rueidis.IsRedisNil(aerr) && rueidis.IsRedisNil(berr)
	}
	return av == bv
}

// wrote records, with caching on, that this instance has just changed the
// record under key, so that its own later reads skip any cached copy.
func (s *Store) wrote(key string) {
	if s.recent != nil {
		s.recent.add(s.recPrefix + key)
	}
}

// Set implements [kvsession.Store] with one SET ... PXAT, which writes the
// value and its expiry together (or clears the expiry, for a zero
// expiresAt). An expiresAt in the past deletes the record.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rueidisstore: set: %w", err)
	}
	ms := redisfmt.ExpiryMillis(expiresAt)
	rec := rueidis.BinaryString(redisfmt.Encode(value, ms))
	v := s.client.B().Set().Key(s.recPrefix + key).Value(rec)
	var cmd rueidis.Completed
	if ms == 0 {
		cmd = v.Build()
	} else {
		cmd = v.PxatMillisecondsTimestamp(ms).Build()
	}
	err := s.client.Do(ctx, cmd).Error()
	s.wrote(key)
	if err != nil {
		return wrap(ctx, "set", err)
	}
	return nil
}

// Delete implements [kvsession.Store] with one DEL.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rueidisstore: delete: %w", err)
	}
	err := s.client.Do(ctx, s.client.B().Del().Key(s.recPrefix+key).Build()).Error()
	s.wrote(key)
	if err != nil {
		return wrap(ctx, "delete", err)
	}
	return nil
}

// The scripts, each touching one key (see redisfmt for their arguments and
// results). Exec sends EVALSHA, and EVAL if the server has lost its script
// cache.
var (
	casScript      = rueidis.NewLuaScript(redisfmt.CAS)
	cadScript      = rueidis.NewLuaScript(redisfmt.CAD)
	touchScript    = rueidis.NewLuaScript(redisfmt.Touch)
	addUserScript  = rueidis.NewLuaScript(redisfmt.AddUser)
	userKeysScript = rueidis.NewLuaScript(redisfmt.UserKeys)
)

// runScript runs a conditional script on the record under key and maps its
// result to an error. A string result is the current record after a
// version conflict, returned in a *kvsession.ConflictError.
func (s *Store) runScript(ctx context.Context, op string, sc *rueidis.Lua, key string, args ...string) error {
	res := sc.Exec(ctx, s.client, []string{s.recPrefix + key}, args)
	s.wrote(key) // it may have written, even if the reply is lost
	msg, err := res.ToMessage()
	if err != nil {
		return wrap(ctx, op, err)
	}
	if msg.IsString() {
		r, _ := msg.ToString()
		current, ok := redisfmt.Decode(r)
		if !ok {
			return fmt.Errorf("rueidisstore: %s: %w", op, errMalformed)
		}
		return fmt.Errorf("rueidisstore: %s: %w", op, &kvsession.ConflictError{Current: current})
	}
	n, err := msg.ToInt64()
	if err != nil {
		return fmt.Errorf("rueidisstore: %s: unexpected script reply: %w", op, err)
	}
	switch n {
	case redisfmt.ReplyMissing:
		return notFound(op)
	case redisfmt.ReplyConflict:
		return conflict(op)
	case redisfmt.ReplyDone:
		return nil
	}
	return fmt.Errorf("rueidisstore: %s: unexpected script reply %d", op, n)
}

// CompareAndSwap implements [kvsession.Store] with one script that
// compares the version and SETs the record with its expiry, on the server:
// a read served from a stale cached copy makes it fail with a conflict,
// never overwrite a newer record. On a version conflict the same script
// returns the current record, in a *kvsession.ConflictError.
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rueidisstore: compare and swap: %w", err)
	}
	ms := redisfmt.ExpiryMillis(expiresAt)
	rec := redisfmt.Encode(value, ms)
	return s.runScript(ctx, "compare and swap", casScript, key,
		rueidis.BinaryString(redisfmt.VersionBytes(old)), rueidis.BinaryString(rec), strconv.FormatInt(ms, 10))
}

// CompareAndDelete implements [kvsession.Store] with one script.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rueidisstore: compare and delete: %w", err)
	}
	return s.runScript(ctx, "compare and delete", cadScript, key, rueidis.BinaryString(redisfmt.VersionBytes(old)))
}

// Touch implements [kvsession.Store] with one script that rewrites the
// expiry in the record's header and the key's TTL, leaving the value and
// the version alone. An expiresAt in the past deletes the record.
func (s *Store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rueidisstore: touch: %w", err)
	}
	ms := redisfmt.ExpiryMillis(expiresAt)
	return s.runScript(ctx, "touch", touchScript, key, rueidis.BinaryString(redisfmt.ExpiryBytes(ms)), strconv.FormatInt(ms, 10))
}

// masters returns a client for every node that holds keys: the client's
// nodes whose ROLE is master (a cluster's masters, or the one server).
func (s *Store) masters(ctx context.Context) ([]rueidis.Client, error) {
	var out []rueidis.Client
	for _, n := range s.client.Nodes() {
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil {
			return nil, err
		}
		if len(role) > 0 {
			if r, _ := role[0].ToString(); r != "master" {
				continue
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// Keys implements [kvsession.Lister] with SCAN, never KEYS: it walks every
// master in turn (every master of a cluster), one batch at a time, and
// calls fn from the calling goroutine only. As with SCAN itself, a key may
// be reported more than once if Redis rehashes during the walk, and a key
// that a cluster migrates to another node during the walk may be missed.
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rueidisstore: keys: %w", err)
	}
	nodes, err := s.masters(ctx)
	if err != nil {
		return wrap(ctx, "keys", err)
	}
	scans := make([]redisfmt.Scanner, len(nodes))
	for i, n := range nodes {
		scans[i] = func(cursor uint64, match string) ([]string, uint64, error) {
			if err := ctx.Err(); err != nil {
				return nil, 0, fmt.Errorf("rueidisstore: keys: %w", err)
			}
			e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(match).Count(redisfmt.ScanBatch).Build()).AsScanEntry()
			if err != nil {
				return nil, 0, wrap(ctx, "keys", err)
			}
			return e.Elements, e.Cursor, nil
		}
	}
	return redisfmt.WalkKeys(scans, s.recPrefix, prefix, fn)
}

// AddUserKey implements [kvsession.UserIndex] with one script.
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rueidisstore: add user key: %w", err)
	}
	score := redisfmt.UserScore(redisfmt.ExpiryMillis(expiresAt))
	if err := addUserScript.Exec(ctx, s.client, []string{s.usrPrefix + user}, []string{key, score}).Error(); err != nil {
		return wrap(ctx, "add user key", err)
	}
	return nil
}

// UserKeys implements [kvsession.UserIndex] with one script, which also
// drops the user's expired entries. It always reads the server: the index
// is never cached.
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rueidisstore: user keys: %w", err)
	}
	keys, err := userKeysScript.Exec(ctx, s.client, []string{s.usrPrefix + user}, nil).AsStrSlice()
	if err != nil {
		return nil, wrap(ctx, "user keys", err)
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex] with one ZREM.
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rueidisstore: remove user key: %w", err)
	}
	if err := s.client.Do(ctx, s.client.B().Zrem().Key(s.usrPrefix+user).Member(key).Build()).Error(); err != nil {
		return wrap(ctx, "remove user key", err)
	}
	return nil
}
