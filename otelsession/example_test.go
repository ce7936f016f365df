package otelsession_test

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/otelsession"
)

// Serve the session metrics to Prometheus at /metrics.
func Example_prometheus() {
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		log.Fatal(err)
	}
	obs, err := otelsession.New(otelsession.Options{
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)),
		// TracerProvider: the application's, for a span per store call.
		// A network store's calls are timed by default; the memory
		// store's only with this.
		TimeInProcessStores: true,
	})
	if err != nil {
		log.Fatal(err)
	}

	secret := make([]byte, 32)
	rand.Read(secret) // in production, load it from your secret store
	m, err := kvsession.New(obs.Store(memstore.New(nil)), kvsession.Config{
		Secrets: [][]byte{secret},
		OnEvent: obs.OnEvent,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		kvsession.From(r).Set("visited", true)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	srv := httptest.NewTLSServer(m.Handler(mux))
	defer srv.Close()

	for range 3 {
		resp, err := srv.Client().Get(srv.URL) // no cookie jar: three new sessions
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if line := lines.Text(); strings.HasPrefix(line, "kvsession_sessions_created") ||
			strings.HasPrefix(line, `db_client_operation_duration_seconds_count{db_operation_name="Set"`) {
			fmt.Println(line)
		}
	}
	// Output:
	// db_client_operation_duration_seconds_count{db_operation_name="Set",kvsession_store="memstore"} 3
	// kvsession_sessions_created_total 3
}
