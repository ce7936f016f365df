package kvsession_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kvsession/kvsession"
)

// TestLogsCarryNoIDs runs every lifecycle path with logs and events
// captured at the most verbose level and checks that no cookie value, ID
// or part of one appears in any of them.
func TestLogsCarryNoIDs(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	var events []string
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHarness(t, kvsession.Config{
		Logger: logger,
		OnEvent: func(_ context.Context, e kvsession.Event) {
			mu.Lock()
			events = append(events, fmt.Sprintf("%v %s %v %v %d", e.Kind, e.LogID, e.Err, e.Revocation, e.Count))
			mu.Unlock()
		},
	})
	c := h.client()
	var cookies []string
	remember := func() {
		t.Helper()
		ck := h.sessionCookie(c)
		if ck == "" {
			t.Fatalf("no session cookie after step %d", len(cookies))
		}
		cookies = append(cookies, ck)
	}
	h.mustDo(c, "/count", "1")
	remember()
	h.mustDo(c, "/login?user=ada", "logged in")
	remember()
	h.mustDo(c, "/regenerate", "regenerated")
	remember()
	h.raw("/get?key=x", "session="+cookies[0]) // unknown ID
	tampered := []byte(cookies[2])
	tampered[3] ^= 1
	h.raw("/get?key=x", "session="+string(tampered)) // invalid cookie
	h.store.setFaults(errStoreDown, errStoreDown, false)
	h.do(c, "/count") // store error
	h.store.setFaults(nil, nil, false)
	h.mustDo(c, "/destroy", "destroyed")
	// revocations name no user
	const user = "grace-7f3c9e@example.org"
	d := h.client()
	h.mustDo(d, "/login?user="+user, "logged in")
	if ck := h.sessionCookie(d); ck != "" {
		cookies = append(cookies, ck)
	} else {
		t.Fatal("no session cookie after the login")
	}
	if _, err := h.m.RevokeUser(t.Context(), user, false); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	all := logs.String() + strings.Join(events, "\n")
	mu.Unlock()
	if !strings.Contains(all, "regenerated") || !strings.Contains(all, "store error") || !strings.Contains(all, "invalid cookie") || !strings.Contains(all, "user revoked") {
		t.Fatalf("the captured logs miss events they should have:\n%s", all)
	}
	if strings.Contains(all, user) {
		t.Errorf("logs or events name the user %q", user)
	}
	for _, ck := range append(cookies, string(tampered)) {
		id, mac, _ := strings.Cut(ck, ".")
		secrets := []string{ck, id, mac, id[:16], mac[:16]}
		if raw, err := base64.RawURLEncoding.DecodeString(id); err == nil {
			secrets = append(secrets, string(raw), fmt.Sprintf("%x", raw)[:16])
		}
		for _, secret := range secrets {
			if secret != "" && strings.Contains(all, secret) {
				t.Errorf("logs or events contain %q, part of a session cookie", secret)
			}
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A client that goes away mid-request cancels its context; the failed
// store call is reported, but logged as information, not as a store fault.
func TestCanceledRequestIsNotLoggedAsError(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var kinds []kvsession.EventKind
	h := newHarness(t, kvsession.Config{Logger: logger, OnEvent: func(_ context.Context, e kvsession.Event) {
		mu.Lock()
		kinds = append(kinds, e.Kind)
		mu.Unlock()
	}})
	c := h.client()
	h.mustDo(c, "/count", "1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := newRecorder()
	h.m.Handler(app()).ServeHTTP(rec, newRequest("/count", "session="+h.sessionCookie(c)).WithContext(ctx))

	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(kinds, kvsession.EventStoreError) {
		t.Fatalf("events %v: want a store error for the canceled request", kinds)
	}
	if !strings.Contains(logs.String(), "level=INFO msg=\"kvsession: store error\"") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a canceled request was logged as:\n%s\nwant the store error at INFO and nothing at ERROR", logs.String())
	}
}
