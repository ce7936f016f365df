package otelsession_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/nonblocking"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/otelsession"
	"github.com/kvsession/kvsession/storetest"
)

// TestConformance runs the store contract's kit on an instrumented
// memory store recording to SDK providers: the wrapper keeps every promise
// of the store under it.
func TestConformance(t *testing.T) {
	tel := newTelemetry(t)
	obs, err := otelsession.New(otelsession.Options{MeterProvider: tel.mp, TracerProvider: tel.tp, LogIDs: true})
	must(t, err)
	storetest.Run(t, storetest.Harness{NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
		return obs.Store(memstore.New(&memstore.Options{Now: c.Now}))
	}})
}

// Stores with each combination of the optional capabilities.
type (
	bareStore   struct{ kvsession.Store }
	listerStore struct {
		kvsession.Store
		kvsession.Lister
	}
	sweeperStore struct {
		kvsession.Store
		kvsession.ExpiredDeleter
	}
	fullStore struct {
		kvsession.Store
		kvsession.Lister
		kvsession.ExpiredDeleter
	}
)

// TestCapabilities checks that a wrapped store has exactly the optional
// capabilities of the store it wraps, and that they reach it.
func TestCapabilities(t *testing.T) {
	tel := newTelemetry(t)
	obs, err := otelsession.New(otelsession.Options{MeterProvider: tel.mp, TracerProvider: tel.tp, TimeInProcessStores: true})
	must(t, err)
	for _, newStore := range []func(m *memstore.Store) kvsession.Store{
		func(m *memstore.Store) kvsession.Store { return bareStore{m} },
		func(m *memstore.Store) kvsession.Store { return listerStore{m, m} },
		func(m *memstore.Store) kvsession.Store { return sweeperStore{m, m} },
		func(m *memstore.Store) kvsession.Store { return fullStore{m, m, m} },
		func(m *memstore.Store) kvsession.Store { return m },
	} {
		s := newStore(memstore.New(nil))
		t.Run(fmt.Sprintf("%T", s), func(t *testing.T) {
			w := obs.Store(s)
			_, lists := s.(kvsession.Lister)
			_, sweeps := s.(kvsession.ExpiredDeleter)
			l, wLists := w.(kvsession.Lister)
			d, wSweeps := w.(kvsession.ExpiredDeleter)
			if wLists != lists || wSweeps != sweeps {
				t.Fatalf("wrapped: Lister %v, ExpiredDeleter %v; the store: %v, %v", wLists, wSweeps, lists, sweeps)
			}
			ctx := t.Context()
			must(t, w.Set(ctx, "cap:"+t.Name(), []byte("v"), time.Now().Add(-time.Second))) // already expired
			if lists {
				found := false
				must(t, l.Keys(ctx, "cap:"+t.Name(), func(string) error { found = true; return nil }))
				if !found {
					t.Error("Keys did not reach the store")
				}
			}
			if sweeps {
				if n, err := d.DeleteExpired(ctx); err != nil || n != 1 {
					t.Errorf("DeleteExpired = %d, %v; want 1, nil", n, err)
				}
			}
		})
	}
	rm := tel.collect(t)
	if got := histogramCount(rm, otelsession.AttrOperation.String("Keys")); got != 3 {
		t.Errorf("%d Keys calls measured, want 3", got)
	}
	if got := histogramCount(rm, otelsession.AttrOperation.String("DeleteExpired"), otelsession.AttrStore.String("memstore")); got != 1 {
		t.Errorf("%d DeleteExpired calls on memstore measured, want 1", got)
	}
}

// TestPassThrough checks that results and errors come back unchanged,
// that answers (not found, conflict) are not counted as failures, and
// that a Keys walk stopped by its callback is not a store error.
func TestPassThrough(t *testing.T) {
	tel := newTelemetry(t)
	obs, err := otelsession.New(otelsession.Options{MeterProvider: tel.mp, TracerProvider: tel.tp, StoreName: "mem", DBSystem: "other"})
	must(t, err)
	fault := newFaultStore(memstore.New(nil))
	w := obs.Store(fault)
	ctx, span := tel.tp.Tracer("test").Start(t.Context(), "test")
	defer span.End()

	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	must(t, w.Set(ctx, "k", []byte("v"), exp))
	e, err := w.Get(ctx, "k")
	want, _ := fault.next.Get(ctx, "k")
	if err != nil || string(e.Value) != "v" || !e.ExpiresAt.Equal(want.ExpiresAt) || e.Version != want.Version {
		t.Errorf("Get = %+v, %v; want %+v", e, err, want)
	}
	if _, err := w.Get(ctx, "missing"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get(missing): %v", err)
	}
	if err := w.CompareAndSwap(ctx, "k", []byte("w"), exp, e.Version+1); !errors.Is(err, kvsession.ErrConflict) {
		t.Errorf("CompareAndSwap with a stale version: %v", err)
	}
	fault.failNext("Touch", 1)
	err = w.Touch(ctx, "k", exp)
	var fe *faultError
	if !errors.As(err, &fe) || err != error(fe) {
		t.Errorf("Touch: %v, want the store's own error", err)
	}
	mem := memstore.New(nil)
	ls := obs.Store(listerStore{mem, mem}).(kvsession.Lister)
	ls.(kvsession.Store).Set(ctx, "p:1", []byte("v"), exp)
	if err := ls.Keys(ctx, "p:", func(string) error { return errStop }); err != errStop {
		t.Errorf("Keys stopped by its callback: %v, want the callback's error", err)
	}

	rm := tel.collect(t)
	if got := counter(rm, "kvsession.store.errors"); got != 1 {
		t.Errorf("kvsession.store.errors = %d, want 1 (the Touch)", got)
	}
	if got := counter(rm, "kvsession.store.errors", otelsession.AttrOperation.String("Touch"), otelsession.AttrSystem.String("other"), otelsession.AttrStore.String("mem")); got != 1 {
		t.Errorf("kvsession.store.errors for Touch = %d, want 1", got)
	}
	outcomes := map[string]string{}
	for _, s := range tel.spans.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			set := attribute.NewSet(s.Attributes()...)
			v, _ := set.Value(otelsession.AttrOutcome)
			outcomes[s.Name()] += v.AsString() + " "
		}
	}
	for name, want := range map[string]string{
		"Get mem":            "ok not_found ",
		"CompareAndSwap mem": "conflict ",
		"Touch mem":          "error ",
		"Keys mem":           "stopped ",
	} {
		if outcomes[name] != want {
			t.Errorf("%s outcomes %q, want %q (all: %v)", name, outcomes[name], want, outcomes)
		}
	}
}

// TestNoSpanWithoutParent checks that a store call whose context carries
// no span is measured but not traced.
func TestNoSpanWithoutParent(t *testing.T) {
	tel := newTelemetry(t)
	obs, err := otelsession.New(otelsession.Options{MeterProvider: tel.mp, TracerProvider: tel.tp, TimeInProcessStores: true})
	must(t, err)
	w := obs.Store(memstore.New(nil))
	if _, err := w.Get(t.Context(), "k"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Fatal(err)
	}
	if n := len(tel.spans.Ended()); n != 0 {
		t.Errorf("%d spans, want none", n)
	}
	if got := histogramCount(tel.collect(t), otelsession.AttrOperation.String("Get"), otelsession.AttrStore.String("memstore")); got != 1 {
		t.Errorf("%d Get durations, want 1", got)
	}
}

// TestSpanOnlyUnderARecordingParent checks that a store call gets a span
// under a parent that records or a sampled remote parent, and none under a
// parent that does not record (a request that sampling left out), where
// it is only measured.
func TestSpanOnlyUnderARecordingParent(t *testing.T) {
	tel := newTelemetry(t)
	obs, err := otelsession.New(otelsession.Options{MeterProvider: tel.mp, TracerProvider: tel.tp, TimeInProcessStores: true})
	must(t, err)
	w := obs.Store(memstore.New(nil))
	sc := func(flags trace.TraceFlags, remote bool) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: flags, Remote: remote,
		})
	}
	recording, span := tel.tp.Tracer("test").Start(t.Context(), "request")
	defer span.End()
	for _, c := range []struct {
		name  string
		ctx   context.Context
		spans int
	}{
		{"recording parent", recording, 1},
		{"sampled remote parent", trace.ContextWithRemoteSpanContext(t.Context(), sc(trace.FlagsSampled, true)), 1},
		{"unsampled remote parent", trace.ContextWithRemoteSpanContext(t.Context(), sc(0, true)), 0},
		{"unsampled local parent", trace.ContextWithSpanContext(t.Context(), sc(0, false)), 0},
	} {
		before := len(tel.spans.Ended())
		if _, err := w.Get(c.ctx, "k"); !errors.Is(err, kvsession.ErrNotFound) {
			t.Fatal(err)
		}
		if got := len(tel.spans.Ended()) - before; got != c.spans {
			t.Errorf("%s: %d store spans, want %d", c.name, got, c.spans)
		}
	}
	if got := histogramCount(tel.collect(t), otelsession.AttrOperation.String("Get")); got != 4 {
		t.Errorf("%d Get durations, want 4 (every call measured)", got)
	}
}

// TestErrorType checks error.type for the usual failures: never the
// error's text.
func TestErrorType(t *testing.T) {
	tel := newTelemetry(t)
	obs, err := otelsession.New(otelsession.Options{MeterProvider: tel.mp})
	must(t, err)
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("redisstore: get s:abc: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("memstore: get: %w", context.Canceled), "canceled"},
		{fmt.Errorf("x: %w", errors.ErrUnsupported), "unsupported"},
		{fmt.Errorf("pgstore: get s:abc: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), "*net.OpError"},
		{errors.New("pgstore: key s:abc: broken"), "_OTHER"},
		{errors.Join(errors.New("a"), &faultError{"b"}), "_OTHER"},
		{fmt.Errorf("w: %w", &faultError{"Get"}), "*otelsession_test.faultError"},
	} {
		w := obs.Store(errStore{c.err})
		if _, err := w.Get(t.Context(), "k"); err != c.err {
			t.Errorf("Get: %v, want %v", err, c.err)
		}
		if got := counter(tel.collect(t), "kvsession.store.errors", otelsession.AttrErrorType.String(c.want)); got == 0 {
			t.Errorf("%v: no error counted with error.type %q", c.err, c.want)
		}
	}
}

// errStore fails every Get with err.
type errStore struct{ err error }

func (s errStore) Get(context.Context, string) (kvsession.Entry, error) {
	return kvsession.Entry{}, s.err
}
func (s errStore) Set(context.Context, string, []byte, time.Time) error { return s.err }
func (s errStore) Delete(context.Context, string) error                 { return s.err }
func (s errStore) CompareAndSwap(context.Context, string, []byte, time.Time, uint64) error {
	return s.err
}
func (s errStore) CompareAndDelete(context.Context, string, uint64) error      { return s.err }
func (s errStore) Touch(context.Context, string, time.Time) error              { return s.err }
func (s errStore) AddUserKey(context.Context, string, string, time.Time) error { return s.err }
func (s errStore) UserKeys(context.Context, string) ([]string, error)          { return nil, s.err }
func (s errStore) RemoveUserKey(context.Context, string, string) error         { return s.err }

// A wrapped memory store keeps what the bare one has: no store timer per
// call (the Manager sees a store that never blocks), and, unless asked
// for, no duration per call, which would cost about as much as the call.
// Its failures and spans are unaffected; any other store is timed.
func TestInProcessStore(t *testing.T) {
	tel := newTelemetry(t)
	obs, err := otelsession.New(otelsession.Options{MeterProvider: tel.mp, TracerProvider: tel.tp})
	if err != nil {
		t.Fatal(err)
	}
	mem := obs.Store(memstore.New(nil))
	if !nonblocking.Is(mem) {
		t.Error("a wrapped *memstore.Store is not seen as non-blocking: the Manager would put a timer on every call")
	}
	other := obs.Store(struct{ kvsession.Store }{memstore.New(nil)})
	if nonblocking.Is(other) {
		t.Error("a wrapped store of another type is seen as non-blocking: it would lose its timeout")
	}
	ctx := t.Context()
	for _, s := range []kvsession.Store{mem, other} {
		if _, err := s.Get(ctx, "absent"); !errors.Is(err, kvsession.ErrNotFound) {
			t.Fatalf("Get = %v", err)
		}
	}
	if n := histogramCount(tel.collect(t), otelsession.AttrOperation.String("Get")); n != 1 {
		t.Errorf("%d Get durations, want 1: the other store's, not the memory store's", n)
	}
}
