// Package otelsession records OpenTelemetry metrics and traces for
// kvsession: lifecycle counters from the manager's event hook, and the
// duration, errors and spans of every store call from a store wrapper.
// Nothing it records carries a session ID, a store key or a cookie value.
//
// # Wiring
//
//	obs, err := otelsession.New(otelsession.Options{
//		MeterProvider:  mp,           // default: the global provider
//		TracerProvider: tp,           // default: the global provider
//		OnEvent:        cfg.OnEvent,  // the application's own hook, if any, still called
//	})
//	...
//	cfg.OnEvent = obs.OnEvent
//	m, err := kvsession.New(obs.Store(store), cfg)
//
// [Observer.Store] forwards every method of [kvsession.Store], and
// [kvsession.Lister] and [kvsession.ExpiredDeleter] exactly when the
// wrapped store has them, passing arguments, results and errors through
// unchanged. Store spans are children of the span in the call's context, so
// put the session middleware under the application's HTTP tracing (such as
// otelhttp): a store call whose context carries no span that records (nor a
// sampled remote parent) gets none, and is only measured.
//
// A wrapped in-process store (a *memstore.Store) keeps what the manager
// grants the bare one: its calls, which never block, get no
// Config.StoreTimeout timer. They are counted when they fail and traced
// like any call, but not timed unless Options.TimeInProcessStores is set:
// timing a call that takes some 100 ns costs about twice that, and says
// nothing about the store.
//
// # Metrics
//
// Counters (Int64Counter, attributes none unless listed), from
// [Observer.OnEvent]:
//
//	kvsession.sessions.created      {session}   EventCreated
//	kvsession.sessions.regenerated  {session}   EventRegenerated
//	kvsession.sessions.destroyed    {session}   EventDestroyed (Session.Destroy)
//	kvsession.sessions.expired      {session}   EventExpired
//	kvsession.sessions.revoked      {session}   EventRevoked (deleted by an Admin);
//	                                            kvsession.revocation = "session" (Revoke) |
//	                                            "user" (RevokeUser) | "cap" (Config.MaxUserSessions)
//	kvsession.users.revoked         {user}      EventUserRevoked (RevokeUser calls that completed)
//	kvsession.cookies.invalid       {cookie}    EventInvalidCookie
//	kvsession.sessions.unknown      {session}   EventUnknownID
//	kvsession.conflicts.merged      {conflict}  EventConflict (each merge-and-retry)
//	kvsession.saves.dropped         {save}      EventSaveDropped (after a concurrent destroy or regenerate)
//	kvsession.records.corrupt       {record}    EventCorruptRecord
//	kvsession.sessions.degraded     {session}   EventDegraded
//	kvsession.changes.late          {change}    EventLateChange
//
// From the store wrapper ([Observer.Store]), following OpenTelemetry's
// database client conventions:
//
//	db.client.operation.duration    s (Float64Histogram, buckets 1ms 5ms 10ms 50ms 100ms 500ms 1s 5s 10s)
//	kvsession.store.errors          {error} (Int64Counter), failed calls
//
// both with the attributes
//
//	db.operation.name   the Store method: Get, Set, Delete, CompareAndSwap,
//	                    CompareAndDelete, Touch, AddUserKey, UserKeys,
//	                    RemoveUserKey, Keys, DeleteExpired
//	db.system.name      redis, memcached, postgresql, sqlite, or Options.DBSystem;
//	                    absent where unknown
//	kvsession.store     Options.StoreName, default the store's package name
//	error.type          on failure only: "timeout", "canceled", "unsupported",
//	                    the Go type of the underlying error (such as
//	                    "*net.OpError"), or "_OTHER"
//
// A call that returns an error wrapping [kvsession.ErrNotFound] or
// [kvsession.ErrConflict] has not failed: those are answers (no such
// session, a concurrent change), measured without error.type.
//
// There is no active-sessions gauge: no store here counts live sessions
// cheaply. Redis, SQL and file stores would have to scan every key or row
// (and check each one's deadlines) on every collection, memcached cannot
// list at all, and memstore's Len counts records, revocation marks and
// expired records not yet swept included, which is not the number of
// active sessions. (The demo, examples/demo, counts them with a bounded
// walk every few seconds, which suits a demo.)
//
// # Prometheus
//
// Through the OpenTelemetry Prometheus exporter
// (go.opentelemetry.io/otel/exporters/prometheus, see the example) the names
// take Prometheus's form: dots become underscores, counters end in _total,
// units in braces are dropped and seconds are spelled out:
//
//	kvsession_sessions_created_total 3
//	kvsession_sessions_revoked_total{kvsession_revocation="user"} 2
//	kvsession_store_errors_total{db_operation_name="Get",db_system_name="redis",error_type="timeout",kvsession_store="redisstore"} 1
//	db_client_operation_duration_seconds_bucket{db_operation_name="Get",kvsession_store="memstore",le="0.001"} 41
//
// (with otelprom.WithoutScopeInfo; otherwise each series also carries the
// otel_scope_ labels of ScopeName). The demo serves them at /metrics.
//
// # Overhead
//
// BenchmarkReadOverhead serves a read-only request (one memstore Get
// through a Manager, about 1.5 µs on a 2-core VM) through each variant in
// turn. Median ratios to the bare memstore
// (go test -run NONE -bench ReadOverhead -count 6), with SDK v1.47:
//
//	no-op providers                      1.02-1.09
//	SDK meter                            0.98-1.10 (about 1.03; the memory store's
//	                                               calls are not timed)
//	SDK meter, unsampled request span    0.99-1.01 (no store span under a parent
//	                                               that does not record)
//	SDK meter and tracer                 1.53-1.60 (a span per store call, against
//	                                               a bare request under the same
//	                                               sampled span)
//
// With TimeInProcessStores the meter costs about 0.3 µs per store call
// (1.25 on this benchmark): the SDK's Record with a prebuilt attribute set
// costs about 160 ns and the two monotonic clock reads about 55 ns. The
// wrapper allocates nothing on a successful call. Against a store that
// answers over the network those 0.3 µs are added to a round trip of tens
// of microseconds, well under 5%.
//
// # Traces
//
// Each store call whose context carries a span that records gets a child
// span of kind client named after the method and the store ("Get
// redisstore"), with
// db.operation.name, db.system.name, kvsession.store, kvsession.outcome
// ("ok", "not_found", "conflict", "stopped" for a Keys walk its callback
// ended, "error") and, on failure, error.type and an Error status whose
// description is the error type. A save that meets concurrent changes shows
// as several CompareAndSwap spans, the first ones with outcome "conflict".
// OnEvent adds each lifecycle event to the span of its context as a span
// event named "kvsession " plus the event's name ("kvsession conflict
// merged"), with error.type where the event has an error and
// kvsession.revocation on a revocation.
//
// No span, span event or metric holds a session ID, store key, user ID,
// cookie value or error message (which may name a key). With
// Options.LogIDs, spans and span events carry kvsession.session.log_id, the
// short hash that kvsession logs (kvsession.Event.LogID): enough to match a
// trace with the logs, useless as a cookie. It is off by default, and never
// on metrics.
package otelsession
