package kvsession_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/kvsession/kvsession"
)

func TestPopAndGetOr(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	cookie := h.loggedIn("ada") // holds v = "1"
	h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if v, err := kvsession.Pop[string](s, "v"); err != nil || v != "1" {
			t.Errorf("Pop = %q, %v; want 1", v, err)
		}
		if _, err := kvsession.Pop[string](s, "v"); !errors.Is(err, kvsession.ErrNoValue) {
			t.Errorf("a second Pop = %v, want ErrNoValue", err)
		}
		if v, err := kvsession.GetOr(s, "v", "fallback"); err != nil || v != "fallback" {
			t.Errorf("GetOr of a missing value = %q, %v", v, err)
		}
		s.Set("n", "not a number")
		if _, err := kvsession.GetOr(s, "n", 7); err == nil {
			t.Error("GetOr of a value that is no int returned no error")
		}
	})
	if h.live(cookie) {
		t.Error("Pop did not delete the value")
	}
	// A store failure is never turned into the fallback.
	h.store.setFaults(errStoreDown, nil, false)
	h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
		if _, err := kvsession.GetOr(kvsession.From(r), "v", "fallback"); !errors.Is(err, kvsession.ErrLoad) {
			t.Errorf("GetOr with the store down = %v, want ErrLoad", err)
		}
	})
	h.store.setFaults(nil, nil, false)
}

func TestFlashes(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	cookie := h.loggedIn("ada")
	h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		for _, m := range []string{"saved", "logged in"} {
			if err := s.AddFlash(m); err != nil {
				t.Fatal(err)
			}
		}
	})
	read := func() []string {
		var got []string
		h.serveWith(cookie, nil, func(w http.ResponseWriter, r *http.Request) {
			var err error
			if got, err = kvsession.Flashes[string](kvsession.From(r)); err != nil {
				t.Fatal(err)
			}
		})
		return got
	}
	if got := read(); len(got) != 2 || got[0] != "saved" || got[1] != "logged in" {
		t.Errorf("Flashes = %q, want both, oldest first", got)
	}
	if got := read(); len(got) != 0 {
		t.Errorf("Flashes read twice = %q, want none the second time", got)
	}
	if !h.live(cookie) {
		t.Error("reading flashes changed the other values")
	}
}
