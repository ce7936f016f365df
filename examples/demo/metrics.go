package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/examples/demo/demoapp"
	"github.com/kvsession/kvsession/otelsession"
)

// The demo's own metrics, beside otelsession's.
const (
	metricRequests = "demo.http.requests"
	metricActive   = "demo.sessions.active"
)

// maxCounted bounds the walk that counts the active sessions.
const maxCounted = 10000

// activeTTL is how long a count of the active sessions is reused.
const activeTTL = 5 * time.Second

// telemetry is the demo's observability: otelsession's metrics of the
// sessions and the store, plus the requests served and the active
// sessions, exported in the Prometheus text format at /metrics and read
// back for the page's panel.
//
// The panel reads a second reader of the same meter provider, one that
// aggregates durations in exponential histograms, whose buckets are a few
// percent wide at any scale: its percentiles are within that of the true
// ones, where /metrics keeps otelsession's coarser fixed buckets.
type telemetry struct {
	obs      *otelsession.Observer
	registry *prometheus.Registry
	panel    *sdkmetric.ManualReader
	requests metric.Int64Counter
	active   *activeCount
}

// newTelemetry returns the demo's telemetry for the sessions kept in
// store (the bare store: counting the active sessions is not measured).
func newTelemetry(store kvsession.Store) (*telemetry, error) {
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, err
	}
	panel := sdkmetric.NewManualReader(sdkmetric.WithAggregationSelector(func(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
		if k == sdkmetric.InstrumentKindHistogram {
			return sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}
		}
		return sdkmetric.DefaultAggregationSelector(k)
	}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithReader(panel))
	obs, err := otelsession.New(otelsession.Options{MeterProvider: mp})
	if err != nil {
		return nil, err
	}
	admin, err := kvsession.NewAdmin(store, kvsession.AdminConfig{ReadOnly: true, Logger: quiet})
	if err != nil {
		return nil, err
	}
	t := &telemetry{obs: obs, registry: registry, panel: panel, active: &activeCount{admin: admin}}
	meter := mp.Meter("github.com/kvsession/kvsession/examples/demo")
	if t.requests, err = meter.Int64Counter(metricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Requests served, apart from /metrics, /stats and static files.")); err != nil {
		return nil, err
	}
	_, err = meter.Int64ObservableGauge(metricActive, metric.WithUnit("{session}"),
		metric.WithDescription("Live sessions in the store, counted up to 10000 at most every 5 seconds; absent if the store cannot list them."),
		metric.WithInt64Callback(func(ctx context.Context, o metric.Int64Observer) error {
			if n, _, err := t.active.get(ctx); err == nil {
				o.Observe(int64(n))
			}
			return nil
		}))
	if err != nil {
		return nil, err
	}
	return t, nil
}

// quiet discards the logs of the counting Admin, which reports nothing
// the application's own manager would not.
var quiet = slog.New(slog.DiscardHandler)

// handler serves /metrics and passes every other request to next,
// counting those that are not /stats or static files.
func (t *telemetry) handler(next http.Handler) http.Handler {
	metrics := promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/metrics":
			metrics.ServeHTTP(w, r)
			return
		case r.URL.Path != "/stats" && !strings.HasPrefix(r.URL.Path, "/static/"):
			t.requests.Add(r.Context(), 1)
		}
		next.ServeHTTP(w, r)
	})
}

// stats reads the panel's numbers (demoapp.Config.Stats).
func (t *telemetry) stats(ctx context.Context) (demoapp.Stats, error) {
	var rm metricdata.ResourceMetrics
	if err := t.panel.Collect(ctx, &rm); err != nil {
		return demoapp.Stats{}, err
	}
	s := demoapp.Stats{ActiveSessions: -1}
	var durations []metricdata.ExponentialHistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				var n int64
				for _, p := range data.DataPoints {
					n += p.Value
				}
				switch m.Name {
				case metricRequests:
					s.Requests = n
				case "kvsession.conflicts.merged":
					s.Merges = n
				case "kvsession.sessions.revoked":
					s.Revocations = n
				}
			case metricdata.ExponentialHistogram[float64]:
				if m.Name == "db.client.operation.duration" {
					durations = append(durations, data.DataPoints...)
				}
			}
		}
	}
	// The gauge's callback ran in this Collect: the count is cached.
	if n, more, err := t.active.get(ctx); err == nil {
		s.ActiveSessions, s.ActiveAtLeast = n, more
	}
	h := mergeExponential(durations)
	s.StoreCalls = h.count
	s.StoreP50 = seconds(h.quantile(0.5))
	s.StoreP99 = seconds(h.quantile(0.99))
	return s, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// activeCount counts the live sessions of a store, at most once per
// activeTTL, up to maxCounted.
type activeCount struct {
	admin *kvsession.Admin

	mu   sync.Mutex
	at   time.Time // of the last count; zero before the first
	n    int
	more bool  // the walk stopped at maxCounted
	err  error // the store cannot list, or failed
}

var errEnough = errors.New("demo: counted enough sessions")

// get returns the number of live sessions, and whether there are more.
func (c *activeCount) get(ctx context.Context) (int, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < activeTTL {
		return c.n, c.more, c.err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	n := 0
	err := c.admin.Walk(ctx, func(key string, _ kvsession.Entry, _ kvsession.SessionInfo, err error) error {
		if err == nil && c.admin.IsSessionKey(key) {
			n++
			if n >= maxCounted {
				return errEnough
			}
		}
		return nil
	})
	c.more = errors.Is(err, errEnough)
	if c.more {
		err = nil
	}
	c.at, c.n, c.err = time.Now(), n, err
	return c.n, c.more, c.err
}

// exponential is exponential histogram points merged at one scale: count
// values, zero of them zero (or too small to bucket), and counts[i] in
// (base^(offset+i), base^(offset+i+1)], where base = 2^(2^-scale).
type exponential struct {
	scale  int32
	count  uint64
	zero   uint64
	offset int
	counts []uint64
}

// mergeExponential merges the positive buckets of points (durations have
// no negative ones) at the coarsest scale among them.
func mergeExponential(points []metricdata.ExponentialHistogramDataPoint[float64]) exponential {
	var h exponential
	if len(points) == 0 {
		return h
	}
	h.scale = points[0].Scale
	for _, p := range points {
		h.scale = min(h.scale, p.Scale)
	}
	byIndex := map[int]uint64{}
	for _, p := range points {
		h.count += p.Count
		h.zero += p.ZeroCount
		shift := p.Scale - h.scale
		for i, n := range p.PositiveBucket.Counts {
			byIndex[(int(p.PositiveBucket.Offset)+i)>>shift] += n
		}
	}
	if len(byIndex) == 0 {
		return h
	}
	indexes := slices.Sorted(maps.Keys(byIndex))
	h.offset = indexes[0]
	h.counts = make([]uint64, indexes[len(indexes)-1]-h.offset+1)
	for _, i := range indexes {
		h.counts[i-h.offset] = byIndex[i]
	}
	return h
}

// quantile returns the q-quantile of the values, 0 < q < 1: the geometric
// middle of the bucket that holds it, within half a bucket's width of it.
// It returns 0 for no values.
func (h exponential) quantile(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.count))) // the rank-th smallest value
	seen := h.zero
	if rank <= seen {
		return 0
	}
	for i, n := range h.counts {
		if seen += n; rank <= seen {
			return math.Exp2((float64(h.offset+i) + 0.5) * math.Exp2(-float64(h.scale)))
		}
	}
	return math.Exp2(float64(h.offset+len(h.counts)) * math.Exp2(-float64(h.scale)))
}
