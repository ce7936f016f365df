package demoapp

import (
	"fmt"
	"net/http"
	"time"
)

// Stats are the numbers of the page's metrics panel (Config.Stats).
type Stats struct {
	// ActiveSessions is the number of live sessions in the store, or -1
	// if the store cannot list its sessions (memcached). ActiveAtLeast
	// means that counting stopped there: there are at least that many.
	ActiveSessions int
	ActiveAtLeast  bool

	// Requests counts the requests this instance served since it
	// started, Merges the concurrent changes to one session that its saves
	// merged, and Revocations the sessions it ended from another device
	// ("Log out" in the session list, "Log out all other sessions"); a
	// user's logout of their own session is not one.
	Requests    int64
	Merges      int64
	Revocations int64

	// StoreCalls is the number of store calls timed since the instance
	// started, and StoreP50 and StoreP99 the median and 99th percentile of
	// their durations; both percentiles are zero before the first call.
	StoreCalls         uint64
	StoreP50, StoreP99 time.Duration
}

// statsRefresh is how often the live panel (/stats) reloads, in seconds.
const statsRefresh = 5

// statsData is what the panel template shows.
type statsData struct {
	Stats
	Refresh int // seconds between reloads of /stats; 0 on the page
}

// latency formats a store call's duration for the panel: "–" before the
// first call, then microseconds below a millisecond and milliseconds
// below a second, with two or three significant digits.
func latency(calls uint64, d time.Duration) string {
	switch {
	case calls == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3g s", d.Seconds())
}

// stats reads the panel's numbers. It reports false, after logging why,
// if there is no panel or its numbers could not be read.
func (a *App) stats(r *http.Request) (statsData, bool) {
	if a.cfg.Stats == nil {
		return statsData{}, false
	}
	s, err := a.cfg.Stats(r.Context())
	if err != nil {
		a.cfg.Logger.WarnContext(r.Context(), "demo: read the metrics panel", "err", err)
		return statsData{}, false
	}
	return statsData{Stats: s}, true
}

// statsPage serves the live panel alone, reloading every few seconds
// (a meta refresh: the page runs no script).
func (a *App) statsPage(w http.ResponseWriter, r *http.Request) {
	d, ok := a.stats(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	d.Refresh = statsRefresh
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := a.statsTmpl.Execute(w, d); err != nil {
		a.cfg.Logger.ErrorContext(r.Context(), "demo: render metrics panel", "err", err)
	}
}
