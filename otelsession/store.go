package otelsession

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/nonblocking"
)

// op is a store method.
type op uint8

const (
	opGet op = iota
	opSet
	opDelete
	opCompareAndSwap
	opCompareAndDelete
	opTouch
	opAddUserKey
	opUserKeys
	opRemoveUserKey
	opKeys
	opDeleteExpired
	numOps
)

var opNames = [numOps]string{
	"Get", "Set", "Delete", "CompareAndSwap", "CompareAndDelete", "Touch",
	"AddUserKey", "UserKeys", "RemoveUserKey", "Keys", "DeleteExpired",
}

// dbSystems maps the repository's store packages to db.system.name.
var dbSystems = map[string]string{
	"redisstore":    "redis",
	"memcachestore": "memcached",
	"pgstore":       "postgresql",
	"sqlitestore":   "sqlite",
}

// Store returns s instrumented: every call is timed in
// db.client.operation.duration, counted in kvsession.store.errors when it
// fails, and traced as a client span when its context carries a span that
// records. The result has exactly the optional capabilities of s ([kvsession.Lister],
// [kvsession.ExpiredDeleter], both or neither) and passes every argument,
// result and error through unchanged (the context gains the call's span,
// if any). Methods of s outside those interfaces (Close, say) are not
// forwarded: call them on s. A nil s gives nil, which kvsession.New refuses.
//
// A wrapped in-process store (a *memstore.Store) keeps what the Manager
// grants it: its calls, which never block, get no Config.StoreTimeout
// timer. Unless Options.TimeInProcessStores is set, they are not timed
// either.
func (o *Observer) Store(s kvsession.Store) kvsession.Store {
	if s == nil {
		return nil
	}
	w := &store{o: o, next: s, inProcess: nonblocking.Is(s)}
	w.timed = !w.inProcess || o.opts.TimeInProcessStores
	w.name = o.opts.StoreName
	if w.name == "" {
		w.name = packageName(s)
	}
	w.system = o.opts.DBSystem
	if w.system == "" {
		w.system = dbSystems[w.name]
	}
	base := []attribute.KeyValue{AttrStore.String(w.name)}
	if w.system != "" {
		base = append(base, AttrSystem.String(w.system))
	}
	for i := range numOps {
		opAttrs := append([]attribute.KeyValue{AttrOperation.String(opNames[i])}, base...)
		w.opAttrs[i] = opAttrs
		w.okOpts[i] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(opAttrs...))}
		w.spanNames[i] = opNames[i] + " " + w.name
	}
	l, lists := s.(kvsession.Lister)
	d, sweeps := s.(kvsession.ExpiredDeleter)
	switch {
	case lists && sweeps:
		return &listSweepStore{w, l, d}
	case lists:
		return &listStore{w, l}
	case sweeps:
		return &sweepStore{w, d}
	}
	return w
}

// packageName returns the last element of the package path of s's type.
func packageName(s any) string {
	t := reflect.TypeOf(s)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	p := t.PkgPath()
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if p == "" {
		return "store"
	}
	return p
}

// store instruments the methods of [kvsession.Store]; the types below add
// the optional capabilities, one type per combination.
type store struct {
	o            *Observer
	next         kvsession.Store
	inProcess    bool // next never blocks (internal/nonblocking)
	timed        bool // calls are timed in the duration histogram
	name, system string
	opAttrs      [numOps][]attribute.KeyValue
	okOpts       [numOps][]metric.RecordOption
	spanNames    [numOps]string
}

type listStore struct {
	*store
	l kvsession.Lister
}

type sweepStore struct {
	*store
	d kvsession.ExpiredDeleter
}

type listSweepStore struct {
	*store
	l kvsession.Lister
	d kvsession.ExpiredDeleter
}

// A wrapper of a store that never blocks never blocks either: the
// Manager may skip the store timeout's timer for it, as for the store.
func init() {
	nonblocking.Register(func(s any) bool {
		switch w := s.(type) {
		case *store:
			return w.inProcess
		case *listStore:
			return w.inProcess
		case *sweepStore:
			return w.inProcess
		case *listSweepStore:
			return w.inProcess
		}
		return false
	})
}

var (
	_ kvsession.Store          = (*store)(nil)
	_ kvsession.Lister         = (*listStore)(nil)
	_ kvsession.ExpiredDeleter = (*sweepStore)(nil)
	_ kvsession.Lister         = (*listSweepStore)(nil)
	_ kvsession.ExpiredDeleter = (*listSweepStore)(nil)
)

// call is one store call in flight.
type call struct {
	ctx   context.Context
	span  trace.Span
	timed bool          // the duration histogram records: start is set
	start time.Duration // since epoch
}

// epoch is the origin of the calls' start times: time.Since(epoch) reads
// only the monotonic clock, where time.Now reads the wall clock too, which
// costs as much again on some virtual machines.
var epoch = time.Now()

// begin starts timing a call, and a span if ctx carries a span that
// records (or a sampled remote parent). key is the store key the call
// concerns, or "".
func (w *store) begin(ctx context.Context, op op, key string) call {
	c := call{ctx: ctx}
	if parent := trace.SpanFromContext(ctx); parent.IsRecording() || parent.SpanContext().IsSampled() {
		attrs := w.opAttrs[op]
		if w.o.opts.LogIDs {
			if id := logID(w.o.opts.KeyPrefix, key); id != "" {
				attrs = append(attrs[:len(attrs):len(attrs)], AttrLogID.String(id))
			}
		}
		c.ctx, c.span = w.o.tracer.Start(ctx, w.spanNames[op],
			trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	}
	if c.timed = w.timed && w.o.duration.Enabled(ctx); c.timed {
		c.start = time.Since(epoch)
	}
	return c
}

// end records a call that returned err. stopped is the error a Keys
// callback returned, if any.
func (w *store) end(c *call, op op, err, stopped error) {
	var d float64
	if c.timed {
		d = (time.Since(epoch) - c.start).Seconds()
	}
	outcome, etype := "ok", ""
	switch {
	case err == nil:
	case stopped != nil && errors.Is(err, stopped):
		outcome = "stopped"
	case errors.Is(err, kvsession.ErrNotFound):
		outcome = "not_found"
	case errors.Is(err, kvsession.ErrConflict):
		outcome = "conflict"
	default:
		outcome, etype = "error", errorType(err)
	}
	switch {
	case etype != "":
		set := attribute.NewSet(append(w.opAttrs[op][:len(w.opAttrs[op]):len(w.opAttrs[op])], AttrErrorType.String(etype))...)
		if c.timed {
			w.o.duration.Record(c.ctx, d, metric.WithAttributeSet(set))
		}
		w.o.errors.Add(c.ctx, 1, metric.WithAttributeSet(set))
	case c.timed:
		// Without a span of this call, the measurement has no trace to
		// link an exemplar to: an empty context spares the SDK's exemplar
		// filter a walk up the request's context.
		ctx := c.ctx
		if c.span == nil {
			ctx = context.Background()
		}
		w.o.duration.Record(ctx, d, w.okOpts[op]...)
	}
	if c.span != nil {
		c.span.SetAttributes(AttrOutcome.String(outcome))
		if etype != "" {
			c.span.SetAttributes(AttrErrorType.String(etype))
			c.span.SetStatus(codes.Error, etype)
		}
		c.span.End()
	}
}

// logID returns the log ID kvsession gives the session stored under key,
// or "" if key is not a session's key (a revocation mark, say).
func logID(prefix, key string) string {
	const hashLen, logIDLen = 43, 12 // base64url of SHA-256; kvsession's log ID
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || len(rest) != hashLen {
		return ""
	}
	for _, b := range []byte(rest) {
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return ""
		}
	}
	return rest[:logIDLen]
}

// errorType returns the error.type of a failed call: "timeout",
// "canceled", "unsupported", or the Go type of the innermost error in
// err's chain that is more than a message (such as "*net.OpError"), else
// "_OTHER". It never holds the error's text, which may name a key.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errors.ErrUnsupported):
		return "unsupported"
	}
	typ := "_OTHER"
	for range 32 {
		if t := fmt.Sprintf("%T", err); !plainError[t] {
			typ = t
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				err = es[0]
				continue
			}
			err = nil
		default:
			err = nil
		}
		if err == nil {
			break
		}
	}
	return typ
}

// plainError holds the standard library's error types that carry only a
// message and wrapped errors.
var plainError = map[string]bool{
	"*errors.errorString": true,
	"*errors.joinError":   true,
	"*fmt.wrapError":      true,
	"*fmt.wrapErrors":     true,
}

// Get implements [kvsession.Store].
func (w *store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	c := w.begin(ctx, opGet, key)
	e, err := w.next.Get(c.ctx, key)
	w.end(&c, opGet, err, nil)
	return e, err
}

// Set implements [kvsession.Store].
func (w *store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	c := w.begin(ctx, opSet, key)
	err := w.next.Set(c.ctx, key, value, expiresAt)
	w.end(&c, opSet, err, nil)
	return err
}

// Delete implements [kvsession.Store].
func (w *store) Delete(ctx context.Context, key string) error {
	c := w.begin(ctx, opDelete, key)
	err := w.next.Delete(c.ctx, key)
	w.end(&c, opDelete, err, nil)
	return err
}

// CompareAndSwap implements [kvsession.Store].
func (w *store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	c := w.begin(ctx, opCompareAndSwap, key)
	err := w.next.CompareAndSwap(c.ctx, key, value, expiresAt, old)
	w.end(&c, opCompareAndSwap, err, nil)
	return err
}

// CompareAndDelete implements [kvsession.Store].
func (w *store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	c := w.begin(ctx, opCompareAndDelete, key)
	err := w.next.CompareAndDelete(c.ctx, key, old)
	w.end(&c, opCompareAndDelete, err, nil)
	return err
}

// Touch implements [kvsession.Store].
func (w *store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	c := w.begin(ctx, opTouch, key)
	err := w.next.Touch(c.ctx, key, expiresAt)
	w.end(&c, opTouch, err, nil)
	return err
}

// AddUserKey implements [kvsession.UserIndex].
func (w *store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	c := w.begin(ctx, opAddUserKey, key)
	err := w.next.AddUserKey(c.ctx, user, key, expiresAt)
	w.end(&c, opAddUserKey, err, nil)
	return err
}

// UserKeys implements [kvsession.UserIndex].
func (w *store) UserKeys(ctx context.Context, user string) ([]string, error) {
	c := w.begin(ctx, opUserKeys, "")
	keys, err := w.next.UserKeys(c.ctx, user)
	w.end(&c, opUserKeys, err, nil)
	return keys, err
}

// RemoveUserKey implements [kvsession.UserIndex].
func (w *store) RemoveUserKey(ctx context.Context, user, key string) error {
	c := w.begin(ctx, opRemoveUserKey, key)
	err := w.next.RemoveUserKey(c.ctx, user, key)
	w.end(&c, opRemoveUserKey, err, nil)
	return err
}

// keys instruments a Keys walk. Its duration includes the time fn takes.
func (w *store) keys(ctx context.Context, l kvsession.Lister, prefix string, fn func(key string) error) error {
	c := w.begin(ctx, opKeys, "")
	var stopped error
	err := l.Keys(c.ctx, prefix, func(key string) error {
		err := fn(key)
		if err != nil {
			stopped = err
		}
		return err
	})
	w.end(&c, opKeys, err, stopped)
	return err
}

// deleteExpired instruments a sweep.
func (w *store) deleteExpired(ctx context.Context, d kvsession.ExpiredDeleter) (int, error) {
	c := w.begin(ctx, opDeleteExpired, "")
	n, err := d.DeleteExpired(c.ctx)
	w.end(&c, opDeleteExpired, err, nil)
	return n, err
}

// Keys implements [kvsession.Lister].
func (w *listStore) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	return w.keys(ctx, w.l, prefix, fn)
}

// DeleteExpired implements [kvsession.ExpiredDeleter].
func (w *sweepStore) DeleteExpired(ctx context.Context) (int, error) {
	return w.deleteExpired(ctx, w.d)
}

// Keys implements [kvsession.Lister].
func (w *listSweepStore) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	return w.keys(ctx, w.l, prefix, fn)
}

// DeleteExpired implements [kvsession.ExpiredDeleter].
func (w *listSweepStore) DeleteExpired(ctx context.Context) (int, error) {
	return w.deleteExpired(ctx, w.d)
}
