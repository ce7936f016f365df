package otelsession_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/otelsession"
)

// scripted is a Manager on an instrumented memory store under a fault
// injector, recording to in-memory SDK providers.
type scripted struct {
	*client
	tel    *telemetry
	obs    *otelsession.Observer
	mem    kvsession.Store
	fault  *faultStore
	store  kvsession.Store
	m      *kvsession.Manager
	events map[kvsession.EventKind]int // seen by the application's own hook
}

func newScripted(t *testing.T, opts otelsession.Options) *scripted {
	tel := newTelemetry(t)
	sc := &scripted{
		client: &client{t: t, tracer: tel.tp.Tracer("test"), now: time.Now()},
		tel:    tel,
		events: map[kvsession.EventKind]int{},
	}
	opts.MeterProvider, opts.TracerProvider = tel.mp, tel.tp
	opts.OnEvent = func(_ context.Context, e kvsession.Event) {
		sc.mu.Lock()
		sc.events[e.Kind]++
		sc.mu.Unlock()
	}
	obs, err := otelsession.New(opts)
	must(t, err)
	sc.obs = obs
	sc.mem = newMem()
	sc.fault = newFaultStore(sc.mem)
	sc.store = obs.Store(sc.fault)
	sc.m = sc.manager(t, false)
	return sc
}

func (sc *scripted) manager(t *testing.T, degrade bool) *kvsession.Manager {
	m, err := kvsession.New(sc.store, kvsession.Config{
		Secrets:            [][]byte{testKey},
		OnEvent:            sc.obs.OnEvent,
		Logger:             discard,
		Now:                sc.clock,
		DegradeOnLoadError: degrade,
	})
	must(t, err)
	return m
}

// wantCode fails unless the request got the status code want.
func wantCode(t *testing.T, step string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d", step, got, want)
	}
}

func set(t *testing.T, key string, v any) func(http.ResponseWriter, *kvsession.Session) {
	return func(_ http.ResponseWriter, s *kvsession.Session) { must(t, s.Set(key, v)) }
}

func wantValue(t *testing.T, key string, want int) func(http.ResponseWriter, *kvsession.Session) {
	return func(_ http.ResponseWriter, s *kvsession.Session) {
		t.Helper()
		got, err := kvsession.Get[int](s, key)
		if err != nil || got != want {
			t.Errorf("Get(%q) = %d, %v; want %d", key, got, err, want)
		}
	}
}

func wantNone(t *testing.T, key string) func(http.ResponseWriter, *kvsession.Session) {
	return func(_ http.ResponseWriter, s *kvsession.Session) {
		t.Helper()
		if got, err := kvsession.Get[int](s, key); !errors.Is(err, kvsession.ErrNoValue) {
			t.Errorf("Get(%q) = %d, %v; want ErrNoValue (a new session)", key, got, err)
		}
	}
}

// TestScriptedRequests runs a scripted sequence of requests and admin
// calls through a Manager and checks that every counter holds exactly the
// expected count, that every store call was measured and traced under its
// request's span, and that nothing exported holds an ID, key, user or
// cookie value.
func TestScriptedRequests(t *testing.T) {
	sc := newScripted(t, otelsession.Options{})
	m, ctx := sc.m, t.Context()

	// new, read, write
	code, c1 := sc.do(m, "", set(t, "n", 1))
	wantCode(t, "new", code, 200)
	if c1 == "" {
		t.Fatal("new: no cookie")
	}
	code, _ = sc.do(m, c1, wantValue(t, "n", 1))
	wantCode(t, "read", code, 200)
	code, _ = sc.do(m, c1, set(t, "n", 2))
	wantCode(t, "write", code, 200)

	// a conflict: another request saves between this one's load and save
	code, _ = sc.do(m, c1, func(_ http.ResponseWriter, s *kvsession.Session) {
		wantValue(t, "n", 2)(nil, s)
		code, _ := sc.do(m, c1, set(t, "b", 1))
		wantCode(t, "concurrent write", code, 200)
		must(t, s.Set("a", 1))
	})
	wantCode(t, "conflict", code, 200)
	code, _ = sc.do(m, c1, func(_ http.ResponseWriter, s *kvsession.Session) {
		wantValue(t, "a", 1)(nil, s)
		wantValue(t, "b", 1)(nil, s)
	})
	wantCode(t, "merged", code, 200)

	// an invalid cookie: no store call
	code, _ = sc.do(m, c1[:len(c1)-2]+"AA", wantNone(t, "n"))
	wantCode(t, "invalid cookie", code, 200)

	// log in: bind to a user and regenerate
	code, c2 := sc.do(m, c1, func(_ http.ResponseWriter, s *kvsession.Session) {
		must(t, s.SetUser("alice@example.com"))
		must(t, s.Regenerate())
	})
	wantCode(t, "regenerate", code, 200)
	if c2 == "" || c2 == c1 {
		t.Fatalf("regenerate: cookie %q", c2)
	}
	code, _ = sc.do(m, c1, wantNone(t, "n")) // the old ID is dead
	wantCode(t, "old cookie", code, 200)

	// a second device, then revoke the user
	code, c3 := sc.do(m, "", func(_ http.ResponseWriter, s *kvsession.Session) {
		must(t, s.SetUser("alice@example.com"))
		must(t, s.Set("device", 2))
	})
	wantCode(t, "second device", code, 200)
	if c3 == "" {
		t.Fatal("second device: no cookie")
	}
	rctx, span := sc.tracer.Start(ctx, "revoke user")
	n, err := m.RevokeUser(rctx, "alice@example.com", false)
	span.End()
	must(t, err)
	if n != 2 {
		t.Fatalf("RevokeUser removed %d sessions, want 2", n)
	}
	code, _ = sc.do(m, c2, wantNone(t, "n"))
	wantCode(t, "revoked cookie", code, 200)

	// a store failure on load: 503, then the session works again
	code, c4 := sc.do(m, "", set(t, "x", 4))
	wantCode(t, "new 4", code, 200)
	sc.fault.failNext("Get", 1)
	code, _ = sc.do(m, c4, func(_ http.ResponseWriter, s *kvsession.Session) {
		if _, err := kvsession.Get[int](s, "x"); !errors.Is(err, kvsession.ErrLoad) {
			t.Errorf("Get during the failure: %v, want ErrLoad", err)
		}
	})
	wantCode(t, "store failure", code, http.StatusServiceUnavailable)
	code, _ = sc.do(m, c4, wantValue(t, "x", 4))
	wantCode(t, "after the failure", code, 200)

	// the same failure, degraded
	sc.fault.failNext("Get", 1)
	code, _ = sc.do(sc.manager(t, true), c4, func(_ http.ResponseWriter, s *kvsession.Session) {
		if !s.Degraded() {
			t.Error("not degraded")
		}
	})
	wantCode(t, "degraded", code, 200)

	// revoke one session by its key
	key, err := m.StoreKey(c4)
	must(t, err)
	rctx, span = sc.tracer.Start(ctx, "revoke")
	must(t, m.Revoke(rctx, key))
	span.End()

	// destroy
	code, c5 := sc.do(m, "", set(t, "y", 5))
	wantCode(t, "new 5", code, 200)
	code, cleared := sc.do(m, c5, func(_ http.ResponseWriter, s *kvsession.Session) { must(t, s.Destroy()) })
	wantCode(t, "destroy", code, 200)
	if cleared != "" {
		t.Errorf("destroy: cookie %q, want it cleared", cleared)
	}

	// a save dropped after a concurrent destroy
	code, c6 := sc.do(m, "", set(t, "z", 6))
	wantCode(t, "new 6", code, 200)
	code, _ = sc.do(m, c6, func(_ http.ResponseWriter, s *kvsession.Session) {
		wantValue(t, "z", 6)(nil, s)
		code, _ := sc.do(m, c6, func(_ http.ResponseWriter, s *kvsession.Session) { must(t, s.Destroy()) })
		wantCode(t, "concurrent destroy", code, 200)
		must(t, s.Set("z", 7))
	})
	wantCode(t, "dropped", code, 200)

	// a corrupt record, written behind the manager's back
	code, c7 := sc.do(m, "", set(t, "w", 7))
	wantCode(t, "new 7", code, 200)
	key, err = m.StoreKey(c7)
	must(t, err)
	must(t, sc.mem.Set(ctx, key, []byte("not a record"), time.Now().Add(time.Hour)))
	code, _ = sc.do(m, c7, wantNone(t, "w"))
	wantCode(t, "corrupt", code, 200)

	// a change after the response started
	code, _ = sc.do(m, "", func(w http.ResponseWriter, s *kvsession.Session) {
		w.Write([]byte("started"))
		if err := s.Set("late", 1); !errors.Is(err, kvsession.ErrResponseStarted) {
			t.Errorf("late Set: %v, want ErrResponseStarted", err)
		}
	})
	wantCode(t, "late change", code, 200)

	// expiry, by the manager's clock
	code, c8 := sc.do(m, "", set(t, "v", 8))
	wantCode(t, "new 8", code, 200)
	sc.advance(25 * time.Hour)
	code, _ = sc.do(m, c8, wantNone(t, "v"))
	wantCode(t, "expired", code, 200)

	rm := sc.tel.collect(t)
	for _, c := range []struct {
		name  string
		match []attribute.KeyValue
		want  int64
	}{
		{"kvsession.sessions.created", nil, 7},
		{"kvsession.sessions.regenerated", nil, 1},
		{"kvsession.sessions.destroyed", nil, 2},
		{"kvsession.sessions.expired", nil, 1},
		{"kvsession.sessions.revoked", []attribute.KeyValue{otelsession.AttrRevocation.String("user")}, 2},
		{"kvsession.sessions.revoked", []attribute.KeyValue{otelsession.AttrRevocation.String("session")}, 1},
		{"kvsession.users.revoked", nil, 1},
		{"kvsession.cookies.invalid", nil, 1},
		{"kvsession.sessions.unknown", nil, 2},
		{"kvsession.conflicts.merged", nil, 1},
		{"kvsession.saves.dropped", nil, 1},
		{"kvsession.records.corrupt", nil, 1},
		{"kvsession.sessions.degraded", nil, 1},
		{"kvsession.changes.late", nil, 1},
		{"kvsession.store.errors", nil, 2},
		{"kvsession.store.errors", []attribute.KeyValue{
			otelsession.AttrOperation.String("Get"),
			otelsession.AttrErrorType.String("*otelsession_test.faultError"),
			otelsession.AttrStore.String("otelsession_test"),
		}, 2},
	} {
		if got := counter(rm, c.name, c.match...); got != c.want {
			t.Errorf("%s %v = %d, want %d", c.name, c.match, got, c.want)
		}
	}

	wantDocumented(t, rm)

	// The application's own hook saw every event, store errors included.
	sc.mu.Lock()
	if got := sc.events[kvsession.EventStoreError]; got != 2 {
		t.Errorf("the chained hook saw %d store errors, want 2", got)
	}
	for kind, want := range map[kvsession.EventKind]int{kvsession.EventDestroyed: 2, kvsession.EventRevoked: 3, kvsession.EventUserRevoked: 1} {
		if got := sc.events[kind]; got != want {
			t.Errorf("the chained hook saw %d %v events, want %d", got, kind, want)
		}
	}
	sc.mu.Unlock()

	// Every store call was measured and traced, each span a child of its
	// request's (or admin call's) span.
	calls := sc.fault.callCounts()
	total := 0
	for op, n := range calls {
		total += n
		if got := histogramCount(rm, otelsession.AttrOperation.String(op)); got != uint64(n) {
			t.Errorf("%s: %d durations recorded, want %d (one per call)", op, got, n)
		}
	}
	for _, op := range []string{"Get", "Set", "CompareAndSwap", "CompareAndDelete", "Delete", "AddUserKey", "UserKeys", "RemoveUserKey"} {
		if calls[op] == 0 {
			t.Errorf("the script made no %s call", op)
		}
	}
	if got := histogramCount(rm, otelsession.AttrErrorType.String("*otelsession_test.faultError")); got != 2 {
		t.Errorf("%d durations with error.type, want 2", got)
	}
	for _, p := range histogramPoints(rm) {
		if p.Sum < 0 || p.Count == 0 {
			t.Errorf("histogram point %v: count %d, sum %v", p.Attributes.ToSlice(), p.Count, p.Sum)
		}
		if _, ok := p.Attributes.Value(otelsession.AttrSystem); ok {
			t.Errorf("db.system.name set for an unknown store: %v", p.Attributes.ToSlice())
		}
	}

	parents := map[trace.SpanID]string{}
	for _, s := range sc.tel.spans.Ended() {
		if s.SpanKind() != trace.SpanKindClient {
			parents[s.SpanContext().SpanID()] = s.Name()
		}
	}
	storeSpans, conflicts, failed := 0, 0, 0
	for _, s := range sc.tel.spans.Ended() {
		if s.SpanKind() != trace.SpanKindClient {
			continue
		}
		storeSpans++
		if _, ok := parents[s.Parent().SpanID()]; !ok {
			t.Errorf("store span %q has no request span as parent", s.Name())
		}
		attrs := attribute.NewSet(s.Attributes()...)
		op, _ := attrs.Value(otelsession.AttrOperation)
		if want := op.AsString() + " otelsession_test"; s.Name() != want {
			t.Errorf("span name %q, want %q", s.Name(), want)
		}
		outcome, _ := attrs.Value(otelsession.AttrOutcome)
		switch outcome.AsString() {
		case "conflict":
			conflicts++
		case "error":
			failed++
			if s.Status().Code != codes.Error || s.Status().Description != "*otelsession_test.faultError" {
				t.Errorf("failed span status %v", s.Status())
			}
		case "ok", "not_found":
		default:
			t.Errorf("span %q: outcome %q", s.Name(), outcome.AsString())
		}
		if _, ok := attrs.Value(otelsession.AttrLogID); ok {
			t.Errorf("span %q carries a log ID without Options.LogIDs", s.Name())
		}
	}
	if storeSpans != total {
		t.Errorf("%d store spans, want %d (one per call)", storeSpans, total)
	}
	if conflicts != 1 || failed != 2 {
		t.Errorf("%d conflict spans and %d failed ones, want 1 and 2", conflicts, failed)
	}

	wantNoSecrets(t, sc.tel.exported(rm), sc.cookies, sc.fault, "s:")
}

// TestCapCountsAsRevoked checks that a session ended by the per-user cap
// counts as revoked, by "cap", and not as destroyed.
func TestCapCountsAsRevoked(t *testing.T) {
	sc := newScripted(t, otelsession.Options{})
	m, err := kvsession.New(sc.store, kvsession.Config{
		Secrets:         [][]byte{testKey},
		OnEvent:         sc.obs.OnEvent,
		Logger:          discard,
		Now:             sc.clock,
		MaxUserSessions: 1,
	})
	must(t, err)
	login := func(_ http.ResponseWriter, s *kvsession.Session) { must(t, s.SetUser("bob@example.com")) }
	_, first := sc.do(m, "", login)
	sc.advance(time.Minute)
	_, second := sc.do(m, "", login)
	if first == "" || second == "" {
		t.Fatal("no cookie")
	}
	code, _ := sc.do(m, first, wantNone(t, "n"))
	wantCode(t, "capped", code, 200)
	rm := sc.tel.collect(t)
	if got := counter(rm, "kvsession.sessions.revoked", otelsession.AttrRevocation.String("cap")); got != 1 {
		t.Errorf("kvsession.sessions.revoked {cap} = %d, want 1", got)
	}
	if got := counter(rm, "kvsession.sessions.destroyed"); got != 0 {
		t.Errorf("kvsession.sessions.destroyed = %d, want 0", got)
	}
	wantNoSecrets(t, sc.tel.exported(rm), sc.cookies, sc.fault, "s:")
}

// TestLogIDs checks that Options.LogIDs puts the session's log ID, and
// nothing more, on its store spans and span events.
func TestLogIDs(t *testing.T) {
	sc := newScripted(t, otelsession.Options{LogIDs: true})
	m := sc.m
	_, c1 := sc.do(m, "", set(t, "n", 1))
	var logID string
	sc.do(m, c1, func(_ http.ResponseWriter, s *kvsession.Session) {
		must(t, s.Set("n", 2))
		logID = s.LogID()
	})
	sc.do(m, c1, func(_ http.ResponseWriter, s *kvsession.Session) { must(t, s.Destroy()) })
	if logID == "" {
		t.Fatal("no log ID")
	}
	byOp := map[string]int{}
	events := 0
	for _, s := range sc.tel.spans.Ended() {
		attrs := attribute.NewSet(s.Attributes()...)
		if s.SpanKind() == trace.SpanKindClient {
			op, _ := attrs.Value(otelsession.AttrOperation)
			if id, ok := attrs.Value(otelsession.AttrLogID); ok {
				if id.AsString() != logID {
					t.Errorf("%s span: log ID %q, want %q", s.Name(), id.AsString(), logID)
				}
				byOp[op.AsString()]++
			}
		}
		for _, e := range s.Events() {
			for _, kv := range e.Attributes {
				if kv.Key == otelsession.AttrLogID {
					events++
					if kv.Value.AsString() != logID {
						t.Errorf("event %q: log ID %q, want %q", e.Name, kv.Value.AsString(), logID)
					}
				}
			}
		}
	}
	for _, op := range []string{"Set", "Get", "CompareAndSwap", "Delete"} {
		if byOp[op] == 0 {
			t.Errorf("no %s span carries the log ID (by operation: %v)", op, byOp)
		}
	}
	if events != 2 { // created, destroyed
		t.Errorf("%d span events carry the log ID, want 2", events)
	}
	rm := sc.tel.collect(t)
	for _, p := range histogramPoints(rm) {
		if _, ok := p.Attributes.Value(otelsession.AttrLogID); ok {
			t.Errorf("a metric carries the log ID: %v", p.Attributes.ToSlice())
		}
	}
	wantNoSecrets(t, sc.tel.exported(rm), sc.cookies, sc.fault, "s:")
}
