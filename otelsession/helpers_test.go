package otelsession_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

var discard = slog.New(slog.DiscardHandler)

// faultError is the error a faultStore injects.
type faultError struct{ op string }

func (e *faultError) Error() string { return "injected failure of " + e.op }

// faultStore wraps a store to count its calls by method, remember every
// key it was given, and fail the next calls of a method on request. It has
// only the methods of kvsession.Store.
type faultStore struct {
	next kvsession.Store

	mu    sync.Mutex
	calls map[string]int
	keys  map[string]bool
	users map[string]bool
	fail  map[string]int
}

func newFaultStore(next kvsession.Store) *faultStore {
	return &faultStore{next: next, calls: map[string]int{}, keys: map[string]bool{}, users: map[string]bool{}, fail: map[string]int{}}
}

// failNext makes the next n calls of method op fail.
func (f *faultStore) failNext(op string, n int) {
	f.mu.Lock()
	f.fail[op] += n
	f.mu.Unlock()
}

func (f *faultStore) enter(op, user, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if key != "" {
		f.keys[key] = true
	}
	if user != "" {
		f.users[user] = true
	}
	if f.fail[op] > 0 {
		f.fail[op]--
		return &faultError{op}
	}
	return nil
}

func (f *faultStore) callCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]int{}
	for k, v := range f.calls {
		m[k] = v
	}
	return m
}

func (f *faultStore) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := f.enter("Get", "", key); err != nil {
		return kvsession.Entry{}, err
	}
	return f.next.Get(ctx, key)
}

func (f *faultStore) Set(ctx context.Context, key string, value []byte, exp time.Time) error {
	if err := f.enter("Set", "", key); err != nil {
		return err
	}
	return f.next.Set(ctx, key, value, exp)
}

func (f *faultStore) Delete(ctx context.Context, key string) error {
	if err := f.enter("Delete", "", key); err != nil {
		return err
	}
	return f.next.Delete(ctx, key)
}

func (f *faultStore) CompareAndSwap(ctx context.Context, key string, value []byte, exp time.Time, old uint64) error {
	if err := f.enter("CompareAndSwap", "", key); err != nil {
		return err
	}
	return f.next.CompareAndSwap(ctx, key, value, exp, old)
}

func (f *faultStore) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	if err := f.enter("CompareAndDelete", "", key); err != nil {
		return err
	}
	return f.next.CompareAndDelete(ctx, key, old)
}

func (f *faultStore) Touch(ctx context.Context, key string, exp time.Time) error {
	if err := f.enter("Touch", "", key); err != nil {
		return err
	}
	return f.next.Touch(ctx, key, exp)
}

func (f *faultStore) AddUserKey(ctx context.Context, user, key string, exp time.Time) error {
	if err := f.enter("AddUserKey", user, key); err != nil {
		return err
	}
	return f.next.AddUserKey(ctx, user, key, exp)
}

func (f *faultStore) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := f.enter("UserKeys", user, ""); err != nil {
		return nil, err
	}
	keys, err := f.next.UserKeys(ctx, user)
	f.mu.Lock()
	for _, k := range keys {
		f.keys[k] = true
	}
	f.mu.Unlock()
	return keys, err
}

func (f *faultStore) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := f.enter("RemoveUserKey", user, key); err != nil {
		return err
	}
	return f.next.RemoveUserKey(ctx, user, key)
}

// telemetry is an SDK meter and tracer provider recording in memory.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	mp     *sdkmetric.MeterProvider
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t testing.TB) *telemetry {
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() {
		tel.mp.Shutdown(context.Background())
		tel.tp.Shutdown(context.Background())
	})
	return tel
}

func (tel *telemetry) collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// counter returns the sum of a counter's points whose attributes include
// every attribute of match.
func counter(rm metricdata.ResourceMetrics, name string, match ...attribute.KeyValue) int64 {
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if hasAll(p.Attributes, match) {
					n += p.Value
				}
			}
		}
	}
	return n
}

// histogramCount returns how many measurements the duration histogram's
// points whose attributes include match hold.
func histogramCount(rm metricdata.ResourceMetrics, match ...attribute.KeyValue) uint64 {
	var n uint64
	for _, p := range histogramPoints(rm) {
		if hasAll(p.Attributes, match) {
			n += p.Count
		}
	}
	return n
}

func histogramPoints(rm metricdata.ResourceMetrics) []metricdata.HistogramDataPoint[float64] {
	var points []metricdata.HistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "db.client.operation.duration" {
				points = append(points, m.Data.(metricdata.Histogram[float64]).DataPoints...)
			}
		}
	}
	return points
}

func hasAll(set attribute.Set, match []attribute.KeyValue) bool {
	for _, kv := range match {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// exported returns every string that the telemetry exports: metric names,
// descriptions, units and attributes (exemplars' included), span names,
// attributes, events, status descriptions, links and resources, each
// labelled with where it came from.
func (tel *telemetry) exported(rm metricdata.ResourceMetrics) []string {
	var out []string
	addAttrs := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			out = append(out, where+" "+string(kv.Key)+"="+kv.Value.String())
		}
	}
	addAttrs("resource", rm.Resource.Attributes())
	for _, sm := range rm.ScopeMetrics {
		out = append(out, "scope "+sm.Scope.Name)
		for _, m := range sm.Metrics {
			where := "metric " + m.Name
			out = append(out, where, where+" "+m.Description, where+" "+m.Unit)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					addAttrs(where, p.Attributes.ToSlice())
					for _, e := range p.Exemplars {
						addAttrs(where+" exemplar", e.FilteredAttributes)
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					addAttrs(where, p.Attributes.ToSlice())
					for _, e := range p.Exemplars {
						addAttrs(where+" exemplar", e.FilteredAttributes)
					}
				}
			default:
				out = append(out, fmt.Sprintf("%s unexpected data %T", where, d))
			}
		}
	}
	for _, s := range tel.spans.Ended() {
		where := "span " + s.Name()
		out = append(out, where, where+" status "+s.Status().Description)
		addAttrs(where, s.Attributes())
		addAttrs(where+" resource", s.Resource().Attributes())
		for _, e := range s.Events() {
			out = append(out, where+" event "+e.Name)
			addAttrs(where+" event "+e.Name, e.Attributes)
		}
		for _, l := range s.Links() {
			addAttrs(where+" link", l.Attributes)
		}
	}
	return out
}

// client drives requests through a Manager, each under a server span,
// with an injectable clock, and remembers every cookie value it saw.
type client struct {
	t       *testing.T
	tracer  trace.Tracer
	mu      sync.Mutex
	now     time.Time
	cookies []string
}

func (c *client) clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *client) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// do serves one request through m with the given cookie value (none if
// empty), running fn on its session, and returns the status code and the
// cookie value the response set ("" if none, or if it cleared it).
func (c *client) do(m *kvsession.Manager, cookie string, fn func(w http.ResponseWriter, s *kvsession.Session)) (int, string) {
	c.t.Helper()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fn(w, kvsession.From(r)) })
	h := m.Handler(app)
	req := httptest.NewRequest("GET", "https://example.com/", nil)
	if cookie != "" {
		req.Header.Set("Cookie", m.CookieName()+"="+cookie)
		c.remember(cookie)
	}
	ctx, span := c.tracer.Start(req.Context(), "GET /", trace.WithSpanKind(trace.SpanKindServer))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req.WithContext(ctx))
	span.End()
	got := ""
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == m.CookieName() {
			got = ck.Value
			c.remember(ck.Value)
		}
	}
	return rec.Code, got
}

func (c *client) remember(cookie string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cookies = append(c.cookies, cookie)
	if id, _, ok := strings.Cut(cookie, "."); ok {
		c.cookies = append(c.cookies, id)
	}
}

// must fails the test if err is not nil.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantNoSecrets fails if any exported string holds a cookie value, an ID,
// a store key (or its hash part) or a user ID.
func wantNoSecrets(t *testing.T, exported []string, cookies []string, f *faultStore, prefix string) {
	t.Helper()
	secrets := append([]string(nil), cookies...)
	f.mu.Lock()
	for k := range f.keys {
		secrets = append(secrets, k, strings.TrimPrefix(k, prefix))
	}
	for u := range f.users {
		secrets = append(secrets, u)
	}
	f.mu.Unlock()
	if len(secrets) == 0 || len(exported) == 0 {
		t.Fatalf("nothing to scan: %d secrets, %d exported strings", len(secrets), len(exported))
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, e := range exported {
			if strings.Contains(e, s) {
				t.Errorf("exported %q holds the secret %q", e, s)
			}
		}
	}
}

var errStop = errors.New("stop")

// newMem returns a memory store whose records never expire by its own
// clock during a test (the manager's clock decides expiry).
func newMem() *memstore.Store { return memstore.New(nil) }
