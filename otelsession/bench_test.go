package otelsession_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/otelsession"
)

// BenchmarkRead measures a read-only request (one memstore Get through a
// Manager) without and with the instrumentation. Compare each variant with
// Bare (or TracedBare for the traced ones):
//
//	Bare                 a bare *memstore.Store: no instrumentation, no timer
//	Noop                 wrapped, no-op providers
//	Metrics              wrapped, SDK meter, no-op tracer (memory store calls not timed)
//	MetricsTimed         the same with TimeInProcessStores: every call timed
//	TracedBare           Bare under a sampled SDK request span
//	Traced               Metrics under a sampled SDK request span: a store span per call
func BenchmarkRead(b *testing.B) {
	mem := func(obs *otelsession.Observer) kvsession.Store {
		if obs == nil {
			return memstore.New(nil)
		}
		return obs.Store(memstore.New(nil))
	}
	b.Run("Bare", func(b *testing.B) {
		benchRead(b, mem(nil), kvsession.Config{}, nil)
	})
	b.Run("Noop", func(b *testing.B) {
		obs := newBenchObserver(b, otelsession.Options{MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()})
		benchRead(b, mem(obs), kvsession.Config{}, nil)
	})
	b.Run("Metrics", func(b *testing.B) {
		tel := newTelemetry(b)
		obs := newBenchObserver(b, otelsession.Options{MeterProvider: tel.mp, TracerProvider: tracenoop.NewTracerProvider()})
		benchRead(b, mem(obs), kvsession.Config{}, nil)
	})
	b.Run("MetricsTimed", func(b *testing.B) {
		tel := newTelemetry(b)
		obs := newBenchObserver(b, otelsession.Options{MeterProvider: tel.mp, TracerProvider: tracenoop.NewTracerProvider(), TimeInProcessStores: true})
		benchRead(b, mem(obs), kvsession.Config{}, nil)
	})
	b.Run("TracedBare", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider() // samples every span, exports none
		benchRead(b, mem(nil), kvsession.Config{}, tp.Tracer("bench"))
	})
	b.Run("Traced", func(b *testing.B) {
		tel := newTelemetry(b)
		tp := sdktrace.NewTracerProvider()
		obs := newBenchObserver(b, otelsession.Options{MeterProvider: tel.mp, TracerProvider: tp})
		benchRead(b, mem(obs), kvsession.Config{}, tp.Tracer("bench"))
	})
}

func newBenchObserver(b *testing.B, opts otelsession.Options) *otelsession.Observer {
	obs, err := otelsession.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return obs
}

// benchRead serves read-only requests of one stored session, each under a
// request span from tracer if it is not nil.
func benchRead(b *testing.B, store kvsession.Store, cfg kvsession.Config, tracer trace.Tracer) {
	h, req := readHandler(b, store, cfg, tracer)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}

// readHandler returns a handler under a Manager on store, each request
// under a request span from tracer if it is not nil, and a request that
// reads the count of a stored session.
func readHandler(b *testing.B, store kvsession.Store, cfg kvsession.Config, tracer trace.Tracer) (http.Handler, *http.Request) {
	cfg.Secrets = [][]byte{testKey}
	cfg.Logger = discard
	m, err := kvsession.New(store, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var h http.Handler = m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if r.URL.Path == "/set" {
			if err := s.Set("count", 1); err != nil {
				b.Error(err)
			}
			return
		}
		if n, err := kvsession.Get[int](s, "count"); err != nil || n != 1 {
			b.Error(n, err)
		}
	}))
	if tracer != nil {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := tracer.Start(r.Context(), "GET /get", trace.WithSpanKind(trace.SpanKindServer))
			next.ServeHTTP(w, r.WithContext(ctx))
			span.End()
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/set", nil))
	cookie := strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0]
	if cookie == "" {
		b.Fatal("no cookie")
	}
	req := httptest.NewRequest("GET", "https://example.com/get", nil)
	req.Header.Set("Cookie", cookie)
	return h, req
}

// BenchmarkReadOverhead serves the read-only request of BenchmarkRead
// through each variant in turn, a few requests each per round, so that
// every variant meets the same load on a busy machine, and reports each
// variant's median round time over Bare's ("Noop/Bare" and so on),
// Traced's over TracedBare's, and Unsampled's (Metrics under a request span
// that is not sampled, as most are with ratio sampling) over
// UnsampledBare's. 1.05 is 5% slower.
func BenchmarkReadOverhead(b *testing.B) {
	tel := newTelemetry(b)
	tp := sdktrace.NewTracerProvider()
	noop := newBenchObserver(b, otelsession.Options{MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()})
	metrics := newBenchObserver(b, otelsession.Options{MeterProvider: tel.mp, TracerProvider: tracenoop.NewTracerProvider()})
	timed := newBenchObserver(b, otelsession.Options{MeterProvider: tel.mp, TracerProvider: tracenoop.NewTracerProvider(), TimeInProcessStores: true})
	traced := newBenchObserver(b, otelsession.Options{MeterProvider: tel.mp, TracerProvider: tp})
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())) // request spans that do not record
	unsampled := newBenchObserver(b, otelsession.Options{MeterProvider: tel.mp, TracerProvider: never})
	variants := []struct {
		name string
		h    http.Handler
		req  *http.Request
	}{
		{name: "Bare"},
		{name: "Noop"},
		{name: "Metrics"},
		{name: "MetricsTimed"},
		{name: "TracedBare"},
		{name: "Traced"},
		{name: "UnsampledBare"},
		{name: "Unsampled"},
	}
	variants[0].h, variants[0].req = readHandler(b, memstore.New(nil), kvsession.Config{}, nil)
	variants[1].h, variants[1].req = readHandler(b, noop.Store(memstore.New(nil)), kvsession.Config{}, nil)
	variants[2].h, variants[2].req = readHandler(b, metrics.Store(memstore.New(nil)), kvsession.Config{}, nil)
	variants[3].h, variants[3].req = readHandler(b, timed.Store(memstore.New(nil)), kvsession.Config{}, nil)
	variants[4].h, variants[4].req = readHandler(b, memstore.New(nil), kvsession.Config{}, tp.Tracer("bench"))
	variants[5].h, variants[5].req = readHandler(b, traced.Store(memstore.New(nil)), kvsession.Config{}, tp.Tracer("bench"))
	variants[6].h, variants[6].req = readHandler(b, memstore.New(nil), kvsession.Config{}, never.Tracer("bench"))
	variants[7].h, variants[7].req = readHandler(b, unsampled.Store(memstore.New(nil)), kvsession.Config{}, never.Tracer("bench"))
	const perRound = 32
	rounds := make([][]time.Duration, len(variants))
	for b.Loop() {
		for i, v := range variants {
			start := time.Now()
			for range perRound {
				rec := httptest.NewRecorder()
				v.h.ServeHTTP(rec, v.req)
				if rec.Code != http.StatusOK {
					b.Fatal(v.name, rec.Code, rec.Body)
				}
			}
			rounds[i] = append(rounds[i], time.Since(start))
		}
	}
	median := func(ds []time.Duration) float64 {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return float64(ds[len(ds)/2])
	}
	for i, v := range variants[1:4] {
		b.ReportMetric(median(rounds[i+1])/median(rounds[0]), v.name+"/Bare")
	}
	b.ReportMetric(median(rounds[5])/median(rounds[4]), "Traced/TracedBare")
	b.ReportMetric(median(rounds[7])/median(rounds[6]), "Unsampled/UnsampledBare")
	b.ReportMetric(median(rounds[0])/perRound, "Bare-ns/req")
}

// BenchmarkGet measures one store Get, bare and wrapped (SDK meter, no-op
// tracer): the wrapper's own cost per call.
func BenchmarkGet(b *testing.B) {
	tel := newTelemetry(b)
	obs := newBenchObserver(b, otelsession.Options{MeterProvider: tel.mp, TracerProvider: tracenoop.NewTracerProvider()})
	for _, c := range []struct {
		name string
		s    kvsession.Store
	}{{"bare", memstore.New(nil)}, {"wrapped", obs.Store(memstore.New(nil))}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := b.Context()
			c.s.Set(ctx, "k", []byte("0123456789012345678901234567890123456789"), time.Now().Add(time.Hour))
			for b.Loop() {
				c.s.Get(ctx, "k")
			}
		})
	}
}
