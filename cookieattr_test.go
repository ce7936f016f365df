package kvsession_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

// getFails is a fault injector: the memory store whose reads fail.
type getFails struct{ kvsession.Store }

func (getFails) Get(context.Context, string) (kvsession.Entry, error) {
	return kvsession.Entry{}, errors.New("store down")
}

// Serve, for servers without net/http, sends the cookie Manager.Handler
// would send, reads it back from the Cookie header, sends nothing for a
// read, and on a store error leaves the response's headers alone.
func TestServe(t *testing.T) {
	store := memstore.New(nil)
	cfg := kvsession.Config{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}}
	m, err := kvsession.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resp := http.Header{}
	err = m.Serve(ctx, http.Header{"User-Agent": {"test"}}, "", resp, func(s *kvsession.Session) {
		if err := s.Set("user", "ada"); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := resp.Get("Set-Cookie")
	for _, want := range []string{"__Host-session=", "; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if resp.Get("Cache-Control") != "no-store" || resp.Get("Vary") != "Cookie" {
		t.Errorf("Cache-Control %q, Vary %q", resp.Get("Cache-Control"), resp.Get("Vary"))
	}
	cookie, _, _ := strings.Cut(sc, ";")

	resp = http.Header{}
	var user string
	err = m.Serve(ctx, http.Header{"Cookie": {"other=1; " + cookie}}, "", resp, func(s *kvsession.Session) {
		user, _ = kvsession.GetOr(s, "user", "")
	})
	if err != nil || user != "ada" || len(resp) != 0 {
		t.Errorf("read: user %q, err %v, headers %v; want ada, nil, none", user, err, resp)
	}

	down, err := kvsession.New(getFails{store}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp = http.Header{"X-Kept": {"1"}}
	err = down.Serve(ctx, http.Header{"Cookie": {cookie}}, "", resp, func(s *kvsession.Session) {
		if err := s.Set("user", "bob"); !errors.Is(err, kvsession.ErrLoad) {
			t.Errorf("Set on a failed load = %v, want ErrLoad", err)
		}
	})
	if !errors.Is(err, kvsession.ErrLoad) || len(resp) != 1 {
		t.Errorf("store down: err %v, headers %v; want ErrLoad and the headers untouched", err, resp)
	}
}
