package demoapp_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession/examples/demo/demoapp"
	"github.com/kvsession/kvsession/memstore"
)

// TestStatsPanel checks the metrics panel: on the page and alone at
// /stats (reloading itself) with Config.Stats, its numbers formatted; no
// panel and no /stats without it; and a page that still renders when the
// numbers cannot be read.
func TestStatsPanel(t *testing.T) {
	stats := demoapp.Stats{
		ActiveSessions: 10000, ActiveAtLeast: true,
		Requests: 1234, Merges: 5, Revocations: 2,
		StoreCalls: 99, StoreP50: 41300 * time.Nanosecond, StoreP99: 2500 * time.Microsecond,
	}
	var fail error
	srv := serveConfig(t, memstore.New(nil), demoapp.Config{Stats: func(context.Context) (demoapp.Stats, error) { return stats, fail }})
	c := newClient(t, srv, "test")
	for _, path := range []string{"/", "/stats"} {
		resp, page := c.do("GET", path, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		for _, want := range []string{
			`<dd id="stat-active">10000+</dd>`,
			`<dd id="stat-requests">1234</dd>`,
			`<dd id="stat-merges">5</dd>`,
			`<dd id="stat-revocations">2</dd>`,
			`<dd id="stat-p50">41.3 µs</dd>`,
			`<dd id="stat-p99">2.5 ms</dd>`,
			`href="/metrics"`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("GET %s lacks %s", path, want)
			}
		}
		if refresh := strings.Contains(page, `http-equiv="refresh"`); refresh != (path == "/stats") {
			t.Errorf("GET %s: reloads itself: %v", path, refresh)
		}
	}
	if c.cookie() != "" {
		t.Error("reading the panel made a session")
	}

	stats = demoapp.Stats{ActiveSessions: -1}
	_, page := c.do("GET", "/stats", nil, nil)
	for _, want := range []string{`<dd id="stat-active">n/a</dd>`, `<dd id="stat-p50">–</dd>`} {
		if !strings.Contains(page, want) {
			t.Errorf("a store that cannot count, before any call: /stats lacks %s", want)
		}
	}

	fail = errors.New("collect failed")
	if resp, page := c.do("GET", "/", nil, nil); resp.StatusCode != http.StatusOK || strings.Contains(page, `id="metrics"`) {
		t.Errorf("the numbers failing: GET / = %d, panel shown: %v; want the page without it", resp.StatusCode, strings.Contains(page, `id="metrics"`))
	}

	plain := newClient(t, serve(t, memstore.New(nil)), "test")
	if _, page := plain.do("GET", "/", nil, nil); strings.Contains(page, `id="metrics"`) {
		t.Error("a panel without Config.Stats")
	}
	if resp, _ := plain.do("GET", "/stats", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /stats without Config.Stats: %d, want 404", resp.StatusCode)
	}
}
