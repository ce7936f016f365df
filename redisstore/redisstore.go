package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/redisfmt"
	"github.com/kvsession/kvsession/internal/sharedread"
	"github.com/redis/go-redis/v9"
)

var (
	_ kvsession.Store  = (*Store)(nil)
	_ kvsession.Lister = (*Store)(nil)
)

func init() {
	// Only *Store itself: a wrapper is another type and keeps Get's copy.
	// The manager's load then shares the reply's bytes instead of copying
	// the value out.
	sharedread.Register(func(store any) sharedread.Get {
		if s, ok := store.(*Store); ok {
			return redisfmt.SharedRead("redisstore", s.read, errMalformed)
		}
		return nil
	})
}

// DefaultNamespace is the namespace of a Store whose Options leave
// Namespace empty.
const DefaultNamespace = "kvsession:"

// DefaultPrefix is the old name of [DefaultNamespace].
//
// Deprecated: use DefaultNamespace.
const DefaultPrefix = DefaultNamespace

// DefaultWaitTimeout is how long a delete waits for replicas when
// [Options.WaitReplicas] is set and [Options.WaitTimeout] is not.
const DefaultWaitTimeout = time.Second

// ErrNotReplicated is wrapped by the error of a delete that the primary
// carried out but that fewer than [Options.WaitReplicas] replicas
// acknowledged within [Options.WaitTimeout]: a failover to one of the
// others may bring the deleted record back.
var ErrNotReplicated = errors.New("redisstore: not acknowledged by enough replicas")

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Namespace is put before every Redis key the store writes, so that
	// several stores, or a store and unrelated data, can share one Redis
	// database. Records live under Namespace+"s:" and user indexes under
	// Namespace+"u:". It is the store's own: a Manager's
	// Config.KeyPrefix, which starts the store keys the Manager writes,
	// comes after it. On a cluster, a Namespace holding a hash tag
	// ("{app}:") puts every key of the store in one slot, and so on one
	// node: it works, but it does not scale. Default: [DefaultNamespace].
	Namespace string

	// Prefix is the old name of Namespace. Setting both is an error.
	//
	// Deprecated: use Namespace.
	Prefix string

	// WaitReplicas, if positive, makes every delete ([Store.Delete] and
	// [Store.CompareAndDelete], which the manager's Destroy, Regenerate,
	// Revoke and RevokeUser use) wait, with Redis's WAIT on the same
	// connection, until at least this many replicas of the key's primary
	// have acknowledged it. If fewer do within WaitTimeout, the delete
	// returns an error wrapping [ErrNotReplicated]. Without it, a logout
	// acknowledged just before a failover can be undone by it (see
	// "Replication and failover" in the package documentation). It must
	// not be negative. Default: 0, no waiting.
	WaitReplicas int

	// WaitTimeout bounds each wait for replicas. It must be shorter than
	// the client's ReadTimeout (which bounds the reply to WAIT) and should
	// be well under the manager's StoreTimeout (which bounds the whole
	// call); it is rounded up to whole milliseconds. Setting it without
	// WaitReplicas is an error. Default: [DefaultWaitTimeout] when
	// WaitReplicas is set.
	WaitTimeout time.Duration
}

// Store keeps records in Redis: standalone, behind Sentinel, or in a
// Cluster, through one [redis.UniversalClient]. It is safe for concurrent
// use. Create one with [New].
type Store struct {
	client       redis.UniversalClient
	recPrefix    string // namespace + "s:"
	usrPrefix    string // namespace + "u:"
	waitReplicas int
	waitTimeout  time.Duration
}

// New returns a Store that keeps its records in Redis through client. The
// caller keeps ownership of client: closing it is the caller's job, after
// the last use of the Store. A nil opts means the zero Options. It returns
// an error, and no Store, if client is nil or an option is invalid (see
// [Options]).
//
// New makes no network call. The client's own options decide timeouts and
// retries; set ContextTimeoutEnabled in them so that the deadline of the
// context passed to each call bounds that call (see the package doc).
func New(client redis.UniversalClient, opts *Options) (*Store, error) {
	var readTimeout time.Duration // of the client, if known; <= 0 for none
	switch c := client.(type) {
	case nil:
		return nil, errors.New("redisstore: new: nil client")
	case *redis.Client:
		if c == nil {
			return nil, errors.New("redisstore: new: nil *redis.Client")
		}
		readTimeout = c.Options().ReadTimeout
	case *redis.ClusterClient:
		if c == nil {
			return nil, errors.New("redisstore: new: nil *redis.ClusterClient")
		}
		readTimeout = c.Options().ReadTimeout
	case *redis.Ring:
		if c == nil {
			return nil, errors.New("redisstore: new: nil *redis.Ring")
		}
		readTimeout = c.Options().ReadTimeout
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Prefix != "" && o.Namespace != "":
		return nil, fmt.Errorf("redisstore: new: both Namespace %q and its deprecated alias Prefix %q are set", o.Namespace, o.Prefix)
	case o.Prefix != "":
		o.Namespace = o.Prefix
	case o.Namespace == "":
		o.Namespace = DefaultNamespace
	}
	switch {
	case o.WaitReplicas < 0:
		return nil, fmt.Errorf("redisstore: new: WaitReplicas %d is negative", o.WaitReplicas)
	case o.WaitTimeout < 0:
		return nil, fmt.Errorf("redisstore: new: WaitTimeout %v is negative", o.WaitTimeout)
	case o.WaitTimeout > 0 && o.WaitReplicas == 0:
		return nil, fmt.Errorf("redisstore: new: WaitTimeout %v is set but WaitReplicas is 0", o.WaitTimeout)
	case o.WaitReplicas > 0 && o.WaitTimeout == 0:
		o.WaitTimeout = DefaultWaitTimeout
	}
	o.WaitTimeout = (o.WaitTimeout + time.Millisecond - 1).Truncate(time.Millisecond) // WAIT counts milliseconds; 0 would block forever
	if o.WaitReplicas > 0 && readTimeout > 0 && o.WaitTimeout >= readTimeout {
		return nil, fmt.Errorf("redisstore: new: WaitTimeout %v is not shorter than the client's ReadTimeout %v, which would cut every wait short", o.WaitTimeout, readTimeout)
	}
	return &Store{
		client:       client,
		recPrefix:    o.Namespace + redisfmt.RecordTag,
		usrPrefix:    o.Namespace + redisfmt.UserTag,
		waitReplicas: o.WaitReplicas,
		waitTimeout:  o.WaitTimeout,
	}, nil
}

// errMalformed reports a value under the store's namespace that this
// package did not write. It reads as missing.
var errMalformed = fmt.Errorf("malformed record: %w: %w", kvsession.ErrCorrupt, kvsession.ErrNotFound)

// wrap turns an error from go-redis into one of the store's: redis.Nil
// becomes ErrNotFound, and an error that happened while ctx was done also
// wraps ctx's error, which go-redis does not always do.
func wrap(ctx context.Context, op string, err error) error {
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: %s: %w", op, kvsession.ErrNotFound)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redisstore: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

func notFound(op string) error {
	return fmt.Errorf("redisstore: %s: %w", op, kvsession.ErrNotFound)
}

func conflict(op string) error {
	return fmt.Errorf("redisstore: %s: %w", op, kvsession.ErrConflict)
}

// Get implements [kvsession.Store] with one GET.
func (s *Store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	b, err := s.read(ctx, key)
	if err != nil {
		return kvsession.Entry{}, err
	}
	e, ok := redisfmt.Decode(b)
	if !ok {
		return kvsession.Entry{}, fmt.Errorf("redisstore: get: %w", errMalformed)
	}
	return e, nil
}

// read returns the stored string of the record under key.
func (s *Store) read(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("redisstore: get: %w", err)
	}
	b, err := s.client.Get(ctx, s.recPrefix+key).Result()
	if err != nil {
		return "", wrap(ctx, "get", err)
	}
	return b, nil
}

// setArgs returns the arguments of a SET of rec with expiry ms.
func setArgs(key string, rec []byte, ms int64) []any {
	if ms == 0 {
		return []any{"set", key, rec}
	}
	return []any{"set", key, rec, "pxat", ms}
}

// Set implements [kvsession.Store] with one SET ... PXAT, which writes the
// value and its expiry together (or clears the expiry, for a zero
// expiresAt). An expiresAt in the past deletes the record.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: set: %w", err)
	}
	ms := redisfmt.ExpiryMillis(expiresAt)
	rec := redisfmt.Encode(value, ms)
	cmd := redis.NewStatusCmd(ctx, setArgs(s.recPrefix+key, rec, ms)...)
	if err := s.client.Process(ctx, cmd); err != nil {
		return wrap(ctx, "set", err)
	}
	return nil
}

// Delete implements [kvsession.Store] with one DEL. With
// [Options.WaitReplicas] it runs delWaitScript and WAIT instead, pipelined
// on one connection.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	if s.waitReplicas > 0 {
		_, err := s.runWaiting(ctx, "delete", delWaitScript, key, func(any) bool { return true })
		return err
	}
	if err := s.client.Del(ctx, s.recPrefix+key).Err(); err != nil {
		return wrap(ctx, "delete", err)
	}
	return nil
}

// The scripts, each touching one key (see redisfmt for their arguments and
// results).
var (
	casScript      = redis.NewScript(redisfmt.CAS)
	cadScript      = redis.NewScript(redisfmt.CAD)
	touchScript    = redis.NewScript(redisfmt.Touch)
	delWaitScript  = redis.NewScript(redisfmt.DelWait)
	cadWaitScript  = redis.NewScript(redisfmt.CADWait)
	addUserScript  = redis.NewScript(redisfmt.AddUser)
	userKeysScript = redis.NewScript(redisfmt.UserKeys)
)

// runScript runs a conditional script and maps its result to an error. A
// string result is the current record after a version conflict, returned in
// a *kvsession.ConflictError.
func (s *Store) runScript(ctx context.Context, op string, sc *redis.Script, key string, args ...any) error {
	res, err := sc.Run(ctx, s.client, []string{s.recPrefix + key}, args...).Result()
	if err != nil {
		return wrap(ctx, op, err)
	}
	switch r := res.(type) {
	case string:
		current, ok := redisfmt.Decode(r)
		if !ok {
			return fmt.Errorf("redisstore: %s: %w", op, errMalformed)
		}
		return fmt.Errorf("redisstore: %s: %w", op, &kvsession.ConflictError{Current: current})
	case int64:
		switch r {
		case redisfmt.ReplyMissing:
			return notFound(op)
		case redisfmt.ReplyConflict:
			return conflict(op)
		case redisfmt.ReplyDone:
			return nil
		}
	}
	return fmt.Errorf("redisstore: %s: unexpected script reply %T", op, res)
}

// CompareAndSwap implements [kvsession.Store] with one script
// that compares the version and SETs the record with its expiry. On a
// version conflict the same script returns the current record, in a
// *kvsession.ConflictError.
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: compare and swap: %w", err)
	}
	ms := redisfmt.ExpiryMillis(expiresAt)
	rec := redisfmt.Encode(value, ms)
	return s.runScript(ctx, "compare and swap", casScript, key, redisfmt.VersionBytes(old), rec, strconv.FormatInt(ms, 10))
}

// CompareAndDelete implements [kvsession.Store] with one script.
// With [Options.WaitReplicas] the script is followed by WAIT on the same
// connection, unless it found another version (which deleted nothing).
func (s *Store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	const op = "compare and delete"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if s.waitReplicas == 0 {
		return s.runScript(ctx, op, cadScript, key, redisfmt.VersionBytes(old))
	}
	res, err := s.runWaiting(ctx, op, cadWaitScript, key, func(res any) bool { return res != int64(1) }, redisfmt.VersionBytes(old))
	if err != nil {
		return err
	}
	switch res {
	case int64(0):
		return notFound(op)
	case int64(1):
		return conflict(op)
	case int64(2):
		return nil
	}
	return fmt.Errorf("redisstore: %s: unexpected script reply %T", op, res)
}

// pipeliner is a client that can pipeline commands on one connection.
type pipeliner interface {
	Pipeline() redis.Pipeliner
}

// primaryFor returns a client of the primary that holds k, whose pipelines
// run on one connection to it.
func (s *Store) primaryFor(ctx context.Context, k string) (pipeliner, error) {
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, k)
	case *redis.Ring:
		return c.GetShardClientForKey(k)
	}
	return s.client, nil
}

// runWaiting runs sc on key and then WAIT for s.waitReplicas replicas,
// pipelined on one connection to the key's primary, so that WAIT follows
// the script's write. It returns the script's result; if check says that
// result wrote something, too few acknowledgements give an error wrapping
// ErrNotReplicated.
func (s *Store) runWaiting(ctx context.Context, op string, sc *redis.Script, key string, check func(any) bool, args ...any) (any, error) {
	k := s.recPrefix + key
	node, err := s.primaryFor(ctx, k)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	run := func(eval bool) (*redis.Cmd, *redis.Cmd) {
		pipe := node.Pipeline()
		var cmd *redis.Cmd
		if eval {
			cmd = sc.Eval(ctx, pipe, []string{k}, args...)
		} else {
			cmd = sc.EvalSha(ctx, pipe, []string{k}, args...)
		}
		wait := pipe.Do(ctx, "wait", s.waitReplicas, s.waitTimeout.Milliseconds())
		pipe.Exec(ctx) // errors are in the commands
		return cmd, wait
	}
	cmd, wait := run(false)
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd, wait = run(true) // the server lost its script cache; nothing was written
	}
	if err := cmd.Err(); err != nil {
		if c, ok := s.client.(*redis.ClusterClient); ok {
			if _, moved := redis.IsMovedError(err); moved {
				c.ReloadState(ctx) // the slot moved: the next call goes to its new primary
			}
		}
		return nil, wrap(ctx, op, err)
	}
	res := cmd.Val()
	if !check(res) {
		return res, nil
	}
	n, err := wait.Int64()
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	if n < int64(s.waitReplicas) {
		return nil, fmt.Errorf("redisstore: %s: done on the primary, but %d of the %d replicas required acknowledged it within %v: %w",
			op, n, s.waitReplicas, s.waitTimeout, ErrNotReplicated)
	}
	return res, nil
}

// Touch implements [kvsession.Store] with one script that rewrites the
// expiry in the record's header and the key's TTL, leaving the value and
// the version alone. An expiresAt in the past deletes the record.
func (s *Store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: touch: %w", err)
	}
	ms := redisfmt.ExpiryMillis(expiresAt)
	hdr := redisfmt.ExpiryBytes(ms)
	return s.runScript(ctx, "touch", touchScript, key, hdr, strconv.FormatInt(ms, 10))
}

// scanner is the part of a client that Keys needs.
type scanner interface {
	Scan(ctx context.Context, cursor uint64, match string, count int64) *redis.ScanCmd
}

// nodes returns the clients to SCAN: every master of a cluster, every
// shard of a ring, or the client itself.
func (s *Store) nodes(ctx context.Context) ([]scanner, error) {
	var (
		mu    sync.Mutex
		nodes []scanner
	)
	collect := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		nodes = append(nodes, c)
		mu.Unlock()
		return nil
	}
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, collect); err != nil {
			return nil, err
		}
	case *redis.Ring:
		if err := c.ForEachShard(ctx, collect); err != nil {
			return nil, err
		}
	default:
		nodes = append(nodes, s.client)
	}
	return nodes, nil
}

// Keys implements [kvsession.Lister] with SCAN, never KEYS: on a cluster it
// walks every master in turn, one batch at a time, and calls fn from the
// calling goroutine only. As with SCAN itself, a key may be reported more
// than once if Redis rehashes during the walk, and a key that a cluster
// migrates to another node during the walk may be missed.
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: keys: %w", err)
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return wrap(ctx, "keys", err)
	}
	scans := make([]redisfmt.Scanner, len(nodes))
	for i, n := range nodes {
		scans[i] = func(cursor uint64, match string) ([]string, uint64, error) {
			if err := ctx.Err(); err != nil {
				return nil, 0, fmt.Errorf("redisstore: keys: %w", err)
			}
			keys, next, err := n.Scan(ctx, cursor, match, redisfmt.ScanBatch).Result()
			if err != nil {
				return nil, 0, wrap(ctx, "keys", err)
			}
			return keys, next, nil
		}
	}
	return redisfmt.WalkKeys(scans, s.recPrefix, prefix, fn)
}

// The user index of a user is a sorted set at Namespace+"u:"+user: members
// are store keys (without the namespace), scores their index expiry in
// Unix milliseconds, +inf for none. Its scripts read Redis's clock, which
// also decides when records expire.

// AddUserKey implements [kvsession.UserIndex] with one script.
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: add user key: %w", err)
	}
	score := redisfmt.UserScore(redisfmt.ExpiryMillis(expiresAt))
	if err := addUserScript.Run(ctx, s.client, []string{s.usrPrefix + user}, key, score).Err(); err != nil {
		return wrap(ctx, "add user key", err)
	}
	return nil
}

// UserKeys implements [kvsession.UserIndex] with one script, which also
// drops the user's expired entries.
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisstore: user keys: %w", err)
	}
	keys, err := userKeysScript.Run(ctx, s.client, []string{s.usrPrefix + user}).StringSlice()
	if err != nil {
		return nil, wrap(ctx, "user keys", err)
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex] with one ZREM.
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: remove user key: %w", err)
	}
	if err := s.client.ZRem(ctx, s.usrPrefix+user, key).Err(); err != nil {
		return wrap(ctx, "remove user key", err)
	}
	return nil
}
