// Package middlewaretest holds what the framework middleware modules
// (ginsession, echosession, fibersession), the adapters and the examples
// test alike: a fault-injecting store, a store that runs a hook inside a
// save's window, and the checks of the session cookie's rules. It is internal: its
// API is not promised to users.
package middlewaretest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

// HookStore wraps a real store and runs an armed hook once, before the
// next CompareAndSwap: a concurrent request landing inside a save's
// load-to-write window, at a chosen moment instead of by chance.
type HookStore struct {
	kvsession.Store
	mu   sync.Mutex
	hook func()
}

// Arm sets the hook that the next CompareAndSwap runs before it goes to
// the store.
func (h *HookStore) Arm(hook func()) {
	h.mu.Lock()
	h.hook = hook
	h.mu.Unlock()
}

// Fired reports whether the armed hook has run (true if none is armed), so
// a test can tell that it raced as meant.
func (h *HookStore) Fired() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hook == nil
}

// CompareAndSwap runs the armed hook, if any, then the store's.
func (h *HookStore) CompareAndSwap(ctx context.Context, key string, v []byte, exp time.Time, old uint64) error {
	h.mu.Lock()
	hook := h.hook
	h.hook = nil
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return h.Store.CompareAndSwap(ctx, key, v, exp, old)
}

// ErrDown is the failure a FaultStore injects.
var ErrDown = errors.New("store down")

// FaultStore wraps a real store, counts its reads and writes, and fails them on
// demand: a fault injector around the memory store, not a mock.
type FaultStore struct {
	kvsession.Store
	Gets, Writes         atomic.Int64
	FailGets, FailWrites atomic.Bool
}

func (f *FaultStore) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	f.Gets.Add(1)
	if f.FailGets.Load() {
		return kvsession.Entry{}, ErrDown
	}
	return f.Store.Get(ctx, key)
}

func (f *FaultStore) write() error {
	f.Writes.Add(1)
	if f.FailWrites.Load() {
		return ErrDown
	}
	return nil
}

func (f *FaultStore) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.Set(ctx, key, v, exp)
}

func (f *FaultStore) CompareAndSwap(ctx context.Context, key string, v []byte, exp time.Time, old uint64) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.CompareAndSwap(ctx, key, v, exp, old)
}

func (f *FaultStore) Delete(ctx context.Context, key string) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *FaultStore) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.CompareAndDelete(ctx, key, old)
}

func (f *FaultStore) Touch(ctx context.Context, key string, exp time.Time) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.Touch(ctx, key, exp)
}

// Counts returns the store reads and writes so far.
func (f *FaultStore) Counts() (gets, writes int64) { return f.Gets.Load(), f.Writes.Load() }

// NewManager returns a manager with the default (production) cookie rules
// over a FaultStore memory store.
func NewManager(t *testing.T) (*kvsession.Manager, *FaultStore) {
	t.Helper()
	st := &FaultStore{Store: memstore.New(nil)}
	m, err := kvsession.New(st, kvsession.Config{
		Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

// SessionCookie returns the one Set-Cookie line for the session cookie in h,
// or "" if there is none; more than one fails the test.
func SessionCookie(t *testing.T, m *kvsession.Manager, h http.Header) string {
	t.Helper()
	var got []string
	for _, v := range h.Values("Set-Cookie") {
		if strings.HasPrefix(v, m.CookieName()+"=") {
			got = append(got, v)
		}
	}
	switch len(got) {
	case 0:
		return ""
	case 1:
		return got[0]
	}
	t.Fatalf("%d session cookies in one response: %q", len(got), got)
	return ""
}

// Pair returns the name=value of a Set-Cookie line, for a Cookie header.
func Pair(setCookie string) string {
	p, _, _ := strings.Cut(setCookie, ";")
	return p
}

// CheckCookieRules checks the attributes and cache headers that go with a
// session cookie that is set (or cleared, when cleared is true).
func CheckCookieRules(t *testing.T, m *kvsession.Manager, h http.Header, cleared bool) {
	t.Helper()
	c := SessionCookie(t, m, h)
	if c == "" {
		t.Fatal("no session cookie in the response")
	}
	if m.CookieName() != "__Host-session" {
		t.Errorf("cookie name %q, want the __Host- default", m.CookieName())
	}
	for _, attr := range []string{"; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"} {
		if !strings.Contains(c, attr) {
			t.Errorf("Set-Cookie %q lacks %q", c, attr)
		}
	}
	if strings.Contains(c, "Domain=") {
		t.Errorf("Set-Cookie %q has a Domain", c)
	}
	if got := strings.Contains(c, "Max-Age=0"); got != cleared {
		t.Errorf("Set-Cookie %q: cleared = %v, want %v", c, got, cleared)
	}
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", h.Get("Cache-Control"))
	}
	if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Cookie") {
		t.Errorf("Vary = %q, want Cookie", h.Values("Vary"))
	}
}
