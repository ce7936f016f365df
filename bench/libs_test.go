package bench

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	scsmem "github.com/alexedwards/scs/v2/memstore"
	"github.com/boj/redistore"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/sharedread"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/redis/go-redis/v9"
)

// The libraries under test, each on each store, behind the same app. Each
// instance counts its store calls: reads and writes as the library asks for
// them (through a wrapper of its store, or inside the store we wrote), and,
// on Redis, network round trips as the client sends them.

// counts are the store calls of one instance.
type counts struct {
	reads     atomic.Int64 // record reads
	writes    atomic.Int64 // record writes, conditional writes, touches and deletes
	readBytes atomic.Int64 // bytes of the records read
	rtt       atomic.Int64 // Redis commands (round trips), PING and scripts included
}

// countRead, countWrite and countRTT add one call to c; a nil c counts
// nothing (an instance built with options.uncounted).
func (c *counts) countRead(bytes int) {
	if c != nil {
		c.reads.Add(1)
		c.readBytes.Add(int64(bytes))
	}
}

func (c *counts) countWrite() {
	if c != nil {
		c.writes.Add(1)
	}
}

func (c *counts) countRTT() {
	if c != nil {
		c.rtt.Add(1)
	}
}

func (c *counts) reset() {
	c.reads.Store(0)
	c.writes.Store(0)
	c.readBytes.Store(0)
	c.rtt.Store(0)
}

// options select a variant of an instance.
type options struct {
	idle bool // an idle timeout of 30 minutes
	// uncounted: no call counting, the library on its store as a user
	// runs it. TestWrk measures throughput so: the counters' atomic
	// adds, which two cores contend for, are no part of any library's
	// cost and none of the floors pays them.
	uncounted bool
}

// counted returns the counts that an instance's stores and clients add
// to, or nil under o.uncounted.
func (in *instance) counted(o options) *counts {
	if o.uncounted {
		return nil
	}
	return in.counts
}

const idleTimeout = 30 * time.Minute

// instance is one library on one store, serving the app.
type instance struct {
	handler http.Handler
	counts  *counts

	// For BenchmarkScale and the tests: the kvsession memory store, the
	// Redis client and the prefix its keys live under.
	kvMem  *memstore.Store
	kvMgr  *kvsession.Manager
	client *redis.Client
	prefix string
}

// library builds instances of one library.
type library struct {
	name      string
	idle      bool // has an idle timeout, for the IDLE scenario
	redisOnly bool // new skips store=mem
	new       func(tb testing.TB, store string, o options) *instance
}

var libraries = []library{
	{name: "kvsession", idle: true, new: newKVSession},
	// kvsession on rueidisstore (rueidis_test.go), without and with
	// client-side caching.
	{name: "kvsession-rueidis", idle: true, redisOnly: true, new: newKVRueidis},
	{name: "kvsession-rueidis-cache", idle: true, redisOnly: true, new: newKVRueidisCached},
	{name: "scs", idle: true, new: newSCS},
	{name: "gorilla", idle: false, new: newGorilla}, // gorilla/sessions has no idle timeout
}

var stores = []string{"mem", "redis"}

// signingKey is the 32-byte secret every library signs its cookies with.
var signingKey = []byte("bench-key-0123456789abcdef012345")

// --- kvsession -------------------------------------------------------------

type kvSess struct{ s *kvsession.Session }

func (k kvSess) String(key string) (string, error) { return kvValue[string](k.s, key) }
func (k kvSess) Int(key string) (int, error)       { return kvValue[int](k.s, key) }
func (k kvSess) Set(key string, v any) error       { return k.s.Set(key, v) }
func (k kvSess) Map(key string) (map[string]string, error) {
	return kvValue[map[string]string](k.s, key)
}
func (k kvSess) Profile(key string) (Profile, error)  { return kvValue[Profile](k.s, key) }
func (k kvSess) Strings(key string) ([]string, error) { return kvValue[[]string](k.s, key) }

func kvValue[T any](s *kvsession.Session, key string) (T, error) {
	v, err := kvsession.Get[T](s, key)
	if errors.Is(err, kvsession.ErrNoValue) {
		return v, errNoValue
	}
	return v, err
}

// countingKV counts the calls a manager makes to its store. Being a
// wrapper, it would get the StoreTimeout deadline (a timer per call) that a
// manager skips for a bare *memstore.Store; the memory-store instance sets
// Config.StoreTimeout to NoStoreTimeout so that it measures what a user of
// memstore gets. For the same reason it offers the manager the shared read
// of the store it wraps (internal/sharedread), counted as a Get, when that
// store offers one, as memstore and the Redis stores do.
var _ kvsession.Store = (*countingKV)(nil)

func init() {
	sharedread.Register(func(store any) sharedread.Get {
		w, ok := store.(*countingKV)
		if !ok {
			return nil
		}
		get := sharedread.For(w.Store)
		if get == nil {
			return nil
		}
		return func(ctx context.Context, key string) ([]byte, time.Time, uint64, error) {
			v, exp, version, err := get(ctx, key)
			w.c.countRead(len(v))
			return v, exp, version, err
		}
	})
}

type countingKV struct {
	kvsession.Store // the user index, which the scenarios do not use
	c               *counts
}

func (w *countingKV) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	e, err := w.Store.Get(ctx, key)
	w.c.countRead(len(e.Value))
	return e, err
}

func (w *countingKV) Set(ctx context.Context, key string, value []byte, exp time.Time) error {
	w.c.countWrite()
	return w.Store.Set(ctx, key, value, exp)
}

func (w *countingKV) Delete(ctx context.Context, key string) error {
	w.c.countWrite()
	return w.Store.Delete(ctx, key)
}

func (w *countingKV) CompareAndSwap(ctx context.Context, key string, value []byte, exp time.Time, old uint64) error {
	w.c.countWrite()
	return w.Store.CompareAndSwap(ctx, key, value, exp, old)
}

func (w *countingKV) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	w.c.countWrite()
	return w.Store.CompareAndDelete(ctx, key, old)
}

func (w *countingKV) Touch(ctx context.Context, key string, exp time.Time) error {
	w.c.countWrite()
	return w.Store.Touch(ctx, key, exp)
}

func newKVSession(tb testing.TB, store string, o options) *instance {
	in := &instance{counts: new(counts)}
	var st kvsession.Store
	cfg := kvsession.Config{Secrets: [][]byte{signingKey}}
	switch store {
	case "mem":
		in.kvMem = memstore.New(nil)
		st = in.kvMem
		cfg.StoreTimeout = kvsession.NoStoreTimeout // as for a bare memstore
	case "redis":
		in.client, in.prefix = newRedis(tb, "kvsession", in.counted(o))
		rs, err := redisstore.New(in.client, &redisstore.Options{Namespace: in.prefix})
		if err != nil {
			tb.Fatal(err)
		}
		st = rs
	}
	return in.serveKV(tb, st, cfg, o)
}

// serveKV makes in a kvsession manager on st, its calls counted, serving
// the app.
func (in *instance) serveKV(tb testing.TB, st kvsession.Store, cfg kvsession.Config, o options) *instance {
	if o.idle {
		cfg.IdleTimeout = idleTimeout
	}
	if !o.uncounted {
		st = &countingKV{st, in.counts}
	}
	m, err := kvsession.New(st, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	in.kvMgr = m
	in.handler = m.Handler(app(func(r *http.Request) kvSess { return kvSess{kvsession.From(r)} }, nil))
	return in
}

// --- scs -------------------------------------------------------------------

type scsSess struct {
	m   *scs.SessionManager
	ctx context.Context
}

func (s scsSess) String(key string) (string, error) {
	v, ok := s.m.Get(s.ctx, key).(string)
	if !ok {
		return "", errNoValue
	}
	return v, nil
}

func (s scsSess) Int(key string) (int, error) {
	v, ok := s.m.Get(s.ctx, key).(int)
	if !ok {
		return 0, errNoValue
	}
	return v, nil
}

func (s scsSess) Set(key string, v any) error {
	s.m.Put(s.ctx, key, v)
	return nil
}

func (s scsSess) Map(key string) (map[string]string, error) {
	return scsValue[map[string]string](s, key)
}
func (s scsSess) Profile(key string) (Profile, error)  { return scsValue[Profile](s, key) }
func (s scsSess) Strings(key string) ([]string, error) { return scsValue[[]string](s, key) }

func scsValue[T any](s scsSess, key string) (T, error) {
	v, ok := s.m.Get(s.ctx, key).(T)
	if !ok {
		return v, errNoValue
	}
	return v, nil
}

// countingSCS counts the calls scs makes to its store. It offers both the
// plain and the context methods; scs prefers the latter, and the wrapper
// passes them on to the store's own when it has them (goredisstore).
type countingSCS struct {
	s scs.Store
	c *counts
}

var _ scs.CtxStore = (*countingSCS)(nil)

func (w *countingSCS) Find(token string) ([]byte, bool, error) {
	return w.FindCtx(context.Background(), token)
}

func (w *countingSCS) Commit(token string, b []byte, expiry time.Time) error {
	return w.CommitCtx(context.Background(), token, b, expiry)
}

func (w *countingSCS) Delete(token string) error { return w.DeleteCtx(context.Background(), token) }

func (w *countingSCS) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var (
		b     []byte
		found bool
		err   error
	)
	if cs, ok := w.s.(scs.CtxStore); ok {
		b, found, err = cs.FindCtx(ctx, token)
	} else {
		b, found, err = w.s.Find(token)
	}
	w.c.countRead(len(b))
	return b, found, err
}

func (w *countingSCS) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	w.c.countWrite()
	if cs, ok := w.s.(scs.CtxStore); ok {
		return cs.CommitCtx(ctx, token, b, expiry)
	}
	return w.s.Commit(token, b, expiry)
}

func (w *countingSCS) DeleteCtx(ctx context.Context, token string) error {
	w.c.countWrite()
	if cs, ok := w.s.(scs.CtxStore); ok {
		return cs.DeleteCtx(ctx, token)
	}
	return w.s.Delete(token)
}

func newSCS(tb testing.TB, store string, o options) *instance {
	in := &instance{counts: new(counts)}
	sm := scs.New() // gob codec, 24 h lifetime, tokens kept as they are
	switch store {
	case "mem":
		// The default memstore.New starts a cleanup goroutine that ticks
		// each minute; without it, a run leaks no goroutine. Lookups are
		// the same.
		sm.Store = scsmem.NewWithCleanupInterval(0)
	case "redis":
		in.client, in.prefix = newRedis(tb, "scs", in.counted(o))
		sm.Store = goredisstore.NewWithPrefix(in.client, in.prefix)
	}
	if !o.uncounted {
		sm.Store = &countingSCS{sm.Store, in.counts}
	}
	if o.idle {
		sm.IdleTimeout = idleTimeout
	}
	in.handler = sm.LoadAndSave(app(func(r *http.Request) scsSess { return scsSess{sm, r.Context()} }, nil))
	return in
}

// --- gorilla/sessions ------------------------------------------------------

type gorillaSess struct {
	s   *sessions.Session
	err error
}

func (g gorillaSess) String(key string) (string, error) {
	if g.err != nil {
		return "", g.err
	}
	v, ok := g.s.Values[key].(string)
	if !ok {
		return "", errNoValue
	}
	return v, nil
}

func (g gorillaSess) Int(key string) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	v, ok := g.s.Values[key].(int)
	if !ok {
		return 0, errNoValue
	}
	return v, nil
}

func (g gorillaSess) Set(key string, v any) error {
	if g.err != nil {
		return g.err
	}
	g.s.Values[key] = v
	return nil
}

func (g gorillaSess) Map(key string) (map[string]string, error) {
	return gorillaValue[map[string]string](g, key)
}
func (g gorillaSess) Profile(key string) (Profile, error)  { return gorillaValue[Profile](g, key) }
func (g gorillaSess) Strings(key string) ([]string, error) { return gorillaValue[[]string](g, key) }

func gorillaValue[T any](g gorillaSess, key string) (T, error) {
	var v T
	if g.err != nil {
		return v, g.err
	}
	v, ok := g.s.Values[key].(T)
	if !ok {
		return v, errNoValue
	}
	return v, nil
}

const gorillaCookie = "session"

func newGorilla(tb testing.TB, store string, o options) *instance {
	if o.idle {
		tb.Fatal("gorilla/sessions has no idle timeout")
	}
	in := &instance{counts: new(counts)}
	var st sessions.Store
	switch store {
	case "mem":
		ms := newGorillaMemStore(in.counted(o), signingKey)
		ms.MaxAge(86400) // the 24 h of the others
		st = ms
	case "redis":
		needRedis(tb)
		in.prefix = newRedisPrefix(tb, "gorilla")
		rs, err := newBojStore(in.counted(o), signingKey)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { rs.Close() })
		rs.SetKeyPrefix(in.prefix)
		rs.SetMaxLength(16 << 10) // as for the memory store: room above the 2 KB session
		rs.SetMaxAge(86400)
		st = rs
	}
	from := func(r *http.Request) gorillaSess {
		s, err := st.Get(r, gorillaCookie)
		return gorillaSess{s, err}
	}
	save := func(w http.ResponseWriter, r *http.Request, g gorillaSess) error { return g.s.Save(r, w) }
	in.handler = app(from, save)
	return in
}

// newBojStore returns a boj/redistore store whose pool is the one
// redistore.NewRediStore builds (10 idle connections, a PING on every
// borrow), with its connections wrapped to count commands in c unless c is
// nil.
func newBojStore(c *counts, keyPairs ...[]byte) (*redistore.RediStore, error) {
	pool := &redigo.Pool{
		MaxIdle:     10,
		IdleTimeout: 240 * time.Second,
		TestOnBorrow: func(c redigo.Conn, t time.Time) error {
			_, err := c.Do("PING")
			return err
		},
		Dial: func() (redigo.Conn, error) {
			conn, err := redigo.Dial("tcp", redisAddr)
			if err != nil {
				return nil, err
			}
			if c == nil {
				return conn, nil
			}
			return &countingConn{conn, c}, nil
		},
	}
	return redistore.NewRediStoreWithPool(pool, keyPairs...)
}

// countingConn counts the commands that boj/redistore sends through redigo.
type countingConn struct {
	redigo.Conn
	c *counts
}

func (cc *countingConn) Do(cmd string, args ...any) (any, error) {
	if cmd == "" { // a flush of pending replies, no command
		return cc.Conn.Do(cmd, args...)
	}
	cc.c.countRTT()
	switch strings.ToUpper(cmd) {
	case "GET":
		cc.c.reads.Add(1)
	case "SET", "SETEX", "DEL":
		cc.c.writes.Add(1)
	}
	reply, err := cc.Conn.Do(cmd, args...)
	if b, ok := reply.([]byte); ok && strings.EqualFold(cmd, "GET") {
		cc.c.readBytes.Add(int64(len(b)))
	}
	return reply, err
}

// --- the harness floor: the same app with no session middleware -----------

func newNoSession(testing.TB, string, options) *instance {
	return &instance{
		counts:  new(counts),
		handler: app(func(*http.Request) noSess { return noSess{} }, nil),
	}
}

type noSess struct{}

func (noSess) String(string) (string, error)         { return "", errNoValue }
func (noSess) Int(string) (int, error)               { return 0, errNoValue }
func (noSess) Set(string, any) error                 { return nil }
func (noSess) Map(string) (map[string]string, error) { return nil, errNoValue }
func (noSess) Profile(string) (Profile, error)       { return Profile{}, errNoValue }
func (noSess) Strings(string) ([]string, error)      { return nil, errNoValue }
