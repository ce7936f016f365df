package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestMetricsAndPanel serves the demo on its default store, logs one user
// in on two devices and logs the other out from the first, and checks
// that /metrics serves the counters in the Prometheus text format and that
// the page's panel and /stats show the same numbers.
func TestMetricsAndPanel(t *testing.T) {
	t.Setenv("KVSESSION_SECRET", "")
	addr, _ := start(t, "-data", filepath.Join(t.TempDir(), "kvsession-demo-data"))
	base := "http://" + addr
	newClient := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar}
	}
	do := func(c *http.Client, method, path string, form url.Values) string {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
		}
		return string(body)
	}
	a, b := newClient(), newClient()
	do(a, "POST", "/login", url.Values{"user": {"alice"}})
	do(a, "POST", "/count", nil)
	do(b, "POST", "/login", url.Values{"user": {"alice"}})
	do(a, "POST", "/logout-others", nil) // revokes b's session
	do(b, "GET", "/api/me", nil)         // b learns it
	do(a, "GET", "/static/style.css", nil)
	const requests = 5 // the static file is not counted

	metrics := do(newClient(), "GET", "/metrics", nil)
	for _, want := range []string{
		"# TYPE kvsession_sessions_created_total counter",
		"kvsession_sessions_created_total 2",
		`kvsession_sessions_revoked_total{kvsession_revocation="user"} 1`,
		"kvsession_users_revoked_total 1",
		"kvsession_sessions_unknown_total 1",
		"demo_http_requests_total " + strconv.Itoa(requests),
		"demo_sessions_active 1",
		"# TYPE db_client_operation_duration_seconds histogram",
		`db_client_operation_duration_seconds_bucket{db_operation_name="Get",kvsession_store="filestore",le="0.001"}`,
	} {
		// want is a whole line, or one without its value
		if !slices.ContainsFunc(strings.Split(metrics, "\n"), func(line string) bool {
			return line == want || strings.HasPrefix(line, want+" ")
		}) {
			t.Errorf("/metrics lacks the line %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", metrics)
	}

	for _, path := range []string{"/", "/stats"} {
		page := do(newClient(), "GET", path, nil)
		stat := func(id string) string {
			m := regexp.MustCompile(`<dd id="` + id + `">([^<]*)</dd>`).FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("%s: no #%s in the panel:\n%s", path, id, page)
			}
			return m[1]
		}
		if got := stat("stat-active"); got != "1" {
			t.Errorf("%s: active sessions %q, want 1", path, got)
		}
		if got, _ := strconv.Atoi(stat("stat-requests")); got < requests {
			t.Errorf("%s: requests %d, want at least %d", path, got, requests)
		}
		if got := stat("stat-revocations"); got != "1" {
			t.Errorf("%s: revocations %q, want 1", path, got)
		}
		if got := stat("stat-merges"); got != "0" {
			t.Errorf("%s: merges %q, want 0", path, got)
		}
		for _, id := range []string{"stat-p50", "stat-p99"} {
			if got := stat(id); !regexp.MustCompile(`^[0-9.]+ (µs|ms|s)$`).MatchString(got) {
				t.Errorf("%s: %s %q, want a duration", path, id, got)
			}
		}
	}
	if page := do(newClient(), "GET", "/stats", nil); !strings.Contains(page, `<meta http-equiv="refresh" content="5">`) {
		t.Error("/stats does not reload itself")
	}
}

// TestQuantile checks the panel's percentiles against the true ones:
// durations recorded in two attribute sets of different ranges (so at
// different scales) merge into one histogram whose quantiles are within a
// bucket's width (a few percent) of the exact ones.
func TestQuantile(t *testing.T) {
	reader := sdkmetric.NewManualReader(sdkmetric.WithAggregationSelector(func(sdkmetric.InstrumentKind) sdkmetric.Aggregation {
		return sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}
	}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	h, err := mp.Meter("test").Float64Histogram("d")
	if err != nil {
		t.Fatal(err)
	}
	var values []float64
	fast := metric.WithAttributes(attribute.String("op", "Get"))
	slow := metric.WithAttributes(attribute.String("op", "Set"))
	for i := 1; i <= 900; i++ { // 10 µs to 9 ms
		v := float64(i) * 10e-6
		h.Record(context.Background(), v, fast)
		values = append(values, v)
	}
	for i := 1; i <= 100; i++ { // 20 ms to 40 ms: a finer scale
		v := 20e-3 + float64(i)*0.2e-3
		h.Record(context.Background(), v, slow)
		values = append(values, v)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	points := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.ExponentialHistogram[float64]).DataPoints
	if len(points) != 2 || points[0].Scale == points[1].Scale {
		t.Fatalf("want two points at different scales, got %d", len(points))
	}
	merged := mergeExponential(points)
	if merged.count != uint64(len(values)) {
		t.Errorf("merged count %d, want %d", merged.count, len(values))
	}
	slices.Sort(values)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.95, 0.99} {
		want := values[int(math.Ceil(q*float64(len(values))))-1]
		got := merged.quantile(q)
		if math.Abs(got-want)/want > 0.05 {
			t.Errorf("quantile %v = %g, want %g within 5%%", q, got, want)
		}
	}
	if got := (exponential{}).quantile(0.5); got != 0 {
		t.Errorf("quantile of nothing = %g, want 0", got)
	}
}
