package ginsession_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

// errDown is the failure the faulty store injects.
var errDown = errors.New("store down")

// faulty wraps a real store, counts its reads and writes, and fails them on
// demand: a fault injector around the memory store, not a mock.
type faulty struct {
	kvsession.Store
	gets, writes         atomic.Int64
	failGets, failWrites atomic.Bool
}

func (f *faulty) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	f.gets.Add(1)
	if f.failGets.Load() {
		return kvsession.Entry{}, errDown
	}
	return f.Store.Get(ctx, key)
}

func (f *faulty) write() error {
	f.writes.Add(1)
	if f.failWrites.Load() {
		return errDown
	}
	return nil
}

func (f *faulty) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.Set(ctx, key, v, exp)
}

func (f *faulty) CompareAndSwap(ctx context.Context, key string, v []byte, exp time.Time, old uint64) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.CompareAndSwap(ctx, key, v, exp, old)
}

func (f *faulty) Delete(ctx context.Context, key string) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *faulty) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.CompareAndDelete(ctx, key, old)
}

func (f *faulty) Touch(ctx context.Context, key string, exp time.Time) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.Store.Touch(ctx, key, exp)
}

// counts returns the store reads and writes so far.
func (f *faulty) counts() (gets, writes int64) { return f.gets.Load(), f.writes.Load() }

// newManager returns a manager with the default (production) cookie rules
// over a faulty memory store.
func newManager(t *testing.T) (*kvsession.Manager, *faulty) {
	t.Helper()
	st := &faulty{Store: memstore.New(nil)}
	m, err := kvsession.New(st, kvsession.Config{
		Keys:   [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

// sessionCookie returns the one Set-Cookie line for the session cookie in h,
// or "" if there is none; more than one fails the test.
func sessionCookie(t *testing.T, m *kvsession.Manager, h http.Header) string {
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

// pair returns the name=value of a Set-Cookie line, for a Cookie header.
func pair(setCookie string) string {
	p, _, _ := strings.Cut(setCookie, ";")
	return p
}

// checkCookieRules checks the attributes and cache headers that go with a
// session cookie that is set (or cleared, when cleared is true).
func checkCookieRules(t *testing.T, m *kvsession.Manager, h http.Header, cleared bool) {
	t.Helper()
	c := sessionCookie(t, m, h)
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
