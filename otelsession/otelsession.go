package otelsession

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvsession/kvsession"
)

// ScopeName is the instrumentation scope of the meter and tracer.
const ScopeName = "github.com/kvsession/kvsession/otelsession"

// The attribute keys this package sets. Standard ones follow
// OpenTelemetry's database client conventions; the others are in the
// kvsession namespace.
const (
	// AttrOperation is db.operation.name: the Store method, such as "Get".
	AttrOperation = attribute.Key("db.operation.name")
	// AttrSystem is db.system.name: the database behind the store, set
	// only where it is known (see Options.DBSystem).
	AttrSystem = attribute.Key("db.system.name")
	// AttrErrorType is error.type: set on a store call that failed.
	AttrErrorType = attribute.Key("error.type")
	// AttrStore names the store (see Options.StoreName).
	AttrStore = attribute.Key("kvsession.store")
	// AttrOutcome is a store call's outcome, on spans: "ok",
	// "not_found", "conflict", "stopped" (a Keys walk stopped by its
	// caller) or "error".
	AttrOutcome = attribute.Key("kvsession.outcome")
	// AttrRevocation says what revoked a session (kvsession.Event.Revocation):
	// "session" (Admin.Revoke), "user" (Admin.RevokeUser) or "cap"
	// (Config.MaxUserSessions).
	AttrRevocation = attribute.Key("kvsession.revocation")
	// AttrLogID is the session's short log ID (kvsession.Event.LogID),
	// on spans only, and only with Options.LogIDs.
	AttrLogID = attribute.Key("kvsession.session.log_id")
)

// Options configures an [Observer]. The zero value uses the global
// providers and records no log IDs.
type Options struct {
	// MeterProvider makes the meter. Default: otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// TracerProvider makes the tracer. Default: otel.GetTracerProvider().
	TracerProvider trace.TracerProvider

	// TimeInProcessStores times the calls of in-process stores (a
	// *memstore.Store) in db.client.operation.duration too. Default: false:
	// such a call takes about as long as timing it (two clock reads and a
	// histogram update, some 200 ns), so its duration says nothing about
	// the store and would make every request noticeably slower. Their
	// failures are still counted and their calls still traced.
	TimeInProcessStores bool

	// OnEvent, if set, is called with every event after the Observer has
	// counted it: the application's own hook, so that
	// cfg.OnEvent = obs.OnEvent keeps it.
	OnEvent func(ctx context.Context, e kvsession.Event)

	// LogIDs puts the session's log ID (the short hash that kvsession
	// logs, kvsession.Event.LogID) on store spans and span events, as
	// kvsession.session.log_id, so that a trace can be matched with the
	// logs. Default: false, no identifier of a session on any span. Log
	// IDs never go on metrics.
	LogIDs bool

	// KeyPrefix is the manager's Config.KeyPrefix, used with LogIDs to
	// derive the log ID from a store key. Default: none, the manager's
	// default.
	KeyPrefix string

	// StoreName is the kvsession.store attribute of a store's metrics
	// and spans. Default: the package name of the store's type, such as
	// "memstore" or "redisstore".
	StoreName string

	// DBSystem is the db.system.name attribute. Default: "redis" for
	// redisstore, "memcached" for memcachestore, "postgresql" for pgstore
	// and "sqlite" for sqlitestore; none for the others (mysqlstore serves
	// both "mysql" and "mariadb": say which here).
	DBSystem string
}

// Observer records the metrics and traces of a [kvsession.Manager]: its
// OnEvent method counts lifecycle events, and the stores it wraps with
// [Observer.Store] time every call. An Observer is safe for concurrent
// use.
type Observer struct {
	opts     Options
	tracer   trace.Tracer
	events   []metric.Int64Counter // by kvsession.EventKind
	revoked  metric.Int64Counter
	users    metric.Int64Counter
	errors   metric.Int64Counter
	duration metric.Float64Histogram

	revokedBy [revocations][]metric.AddOption // by kvsession.Revocation
}

// revocations bounds the kvsession.Revocation values counted apart.
const revocations = kvsession.RevocationCap + 1

// eventCounters lists the counter of each event kind.
var eventCounters = []struct {
	kind              kvsession.EventKind
	name, unit, descr string
}{
	{kvsession.EventCreated, "kvsession.sessions.created", "{session}", "Sessions stored for the first time."},
	{kvsession.EventRegenerated, "kvsession.sessions.regenerated", "{session}", "Sessions moved to a new ID."},
	{kvsession.EventDestroyed, "kvsession.sessions.destroyed", "{session}", "Sessions destroyed by Session.Destroy."},
	{kvsession.EventExpired, "kvsession.sessions.expired", "{session}", "Requests whose cookie named a session past its lifetime or idle timeout."},
	{kvsession.EventInvalidCookie, "kvsession.cookies.invalid", "{cookie}", "Session cookies that failed verification (forged, tampered or signed by a retired key)."},
	{kvsession.EventUnknownID, "kvsession.sessions.unknown", "{session}", "Validly signed cookies that named no stored session."},
	{kvsession.EventCorruptRecord, "kvsession.records.corrupt", "{record}", "Stored records that did not decode."},
	{kvsession.EventConflict, "kvsession.conflicts.merged", "{conflict}", "Concurrent changes met by a save and merged before it tried again."},
	{kvsession.EventSaveDropped, "kvsession.saves.dropped", "{save}", "Saves dropped because a concurrent request destroyed or regenerated the session."},
	{kvsession.EventDegraded, "kvsession.sessions.degraded", "{session}", "Requests that went on with an empty, unsaved session after a failed load (Config.DegradeOnLoadError)."},
	{kvsession.EventLateChange, "kvsession.changes.late", "{change}", "Changes refused because the response had started."},
}

// New returns an Observer that records to the providers of opts.
func New(opts Options) (*Observer, error) {
	if opts.MeterProvider == nil {
		opts.MeterProvider = otel.GetMeterProvider()
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = otel.GetTracerProvider()
	}
	meter := opts.MeterProvider.Meter(ScopeName)
	o := &Observer{opts: opts, tracer: opts.TracerProvider.Tracer(ScopeName)}
	var err error
	for _, c := range eventCounters {
		for int(c.kind) >= len(o.events) {
			o.events = append(o.events, nil)
		}
		if o.events[c.kind], err = meter.Int64Counter(c.name, metric.WithUnit(c.unit), metric.WithDescription(c.descr)); err != nil {
			return nil, fmt.Errorf("otelsession: counter %s: %w", c.name, err)
		}
	}
	if o.revoked, err = meter.Int64Counter("kvsession.sessions.revoked", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions deleted by an Admin: Revoke, RevokeUser or the per-user cap.")); err != nil {
		return nil, fmt.Errorf("otelsession: counter kvsession.sessions.revoked: %w", err)
	}
	if o.users, err = meter.Int64Counter("kvsession.users.revoked", metric.WithUnit("{user}"),
		metric.WithDescription("Completed Admin.RevokeUser calls.")); err != nil {
		return nil, fmt.Errorf("otelsession: counter kvsession.users.revoked: %w", err)
	}
	if o.errors, err = meter.Int64Counter("kvsession.store.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Store calls that failed, by operation and error type.")); err != nil {
		return nil, fmt.Errorf("otelsession: counter kvsession.store.errors: %w", err)
	}
	if o.duration, err = meter.Float64Histogram("db.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of store calls."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10)); err != nil {
		return nil, fmt.Errorf("otelsession: histogram db.client.operation.duration: %w", err)
	}
	for r := kvsession.RevocationSession; r < revocations; r++ {
		o.revokedBy[r] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrRevocation.String(r.String())))}
	}
	return o, nil
}

// OnEvent counts a lifecycle event, adds it to the span of ctx (if that
// span is recording) as a span event named "kvsession " plus the event's
// name, and then calls Options.OnEvent. Set it as Config.OnEvent (and
// AdminConfig.OnEvent for an Admin of its own).
func (o *Observer) OnEvent(ctx context.Context, e kvsession.Event) {
	switch {
	case e.Kind == kvsession.EventRevoked:
		if e.Revocation < revocations {
			o.revoked.Add(ctx, 1, o.revokedBy[e.Revocation]...)
		} else {
			o.revoked.Add(ctx, 1)
		}
	case e.Kind == kvsession.EventUserRevoked:
		o.users.Add(ctx, 1)
	case e.Kind > 0 && int(e.Kind) < len(o.events) && o.events[e.Kind] != nil:
		o.events[e.Kind].Add(ctx, 1)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		var attrs []attribute.KeyValue
		if o.opts.LogIDs && e.LogID != "" {
			attrs = append(attrs, AttrLogID.String(e.LogID))
		}
		if e.Err != nil {
			attrs = append(attrs, AttrErrorType.String(errorType(e.Err)))
		}
		if e.Revocation != kvsession.RevocationNone {
			attrs = append(attrs, AttrRevocation.String(e.Revocation.String()))
		}
		span.AddEvent("kvsession "+e.Kind.String(), trace.WithAttributes(attrs...))
	}
	if o.opts.OnEvent != nil {
		o.opts.OnEvent(ctx, e)
	}
}
