package kvsession_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/kvsession/kvsession"
)

// TestStoreCorruptRecordIsReported checks that a record the store itself
// cannot parse (its Get returns an error wrapping ErrNotFound and
// ErrCorrupt, as the file store does for a damaged file) is reported as
// EventCorruptRecord, not as an unknown ID, and reads as a fresh session.
func TestStoreCorruptRecordIsReported(t *testing.T) {
	clk := newClock()
	store := newFaultStore(clk.Now)
	var mu sync.Mutex
	var events []kvsession.EventKind
	m, err := kvsession.New(store, kvsession.Config{
		Secrets: [][]byte{testKey}, Now: clk.Now, CookieName: "session", Logger: discardLogger,
		OnEvent: func(_ context.Context, e kvsession.Event) {
			mu.Lock()
			events = append(events, e.Kind)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	m.Handler(app()).ServeHTTP(rec, newRequest("/count", ""))
	cookie := rec.Result().Header.Get("Set-Cookie")

	corrupt := fmt.Errorf("somestore: get: %w: %w", kvsession.ErrCorrupt, kvsession.ErrNotFound)
	store.setFaults(corrupt, nil, false)
	events = nil
	var cause kvsession.NewCause
	rec = newRecorder()
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if _, err := kvsession.Get[int](s, "count"); err != nil && !errorIs(err, kvsession.ErrNoValue) {
			t.Errorf("Get on a corrupt record: %v, want no value", err)
		}
		var err error
		if cause, err = s.NewCause(); err != nil {
			t.Errorf("NewCause: %v", err)
		}
	})).ServeHTTP(rec, newRequest("/", cookie))
	if rec.Code != http.StatusOK {
		t.Errorf("a corrupt record answered %d, want 200 with a fresh session", rec.Code)
	}
	if !containsEvent(events, kvsession.EventCorruptRecord) || containsEvent(events, kvsession.EventUnknownID) {
		t.Errorf("events = %v, want a corrupt record and no unknown ID", events)
	}
	if cause != kvsession.CauseEnded {
		t.Errorf("NewCause = %v, want CauseEnded", cause)
	}
}
