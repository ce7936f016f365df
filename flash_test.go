package kvsession_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net/http"
	"testing"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
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

// TestPeekAndTakeFlashes: PeekFlashes reads without removing or writing;
// TakeFlashes removes exactly the messages named, through the merge: a
// message a concurrent request added after the peek stays pending, and
// one a concurrent request already took is not taken twice.
func TestPeekAndTakeFlashes(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	ctx := t.Context()
	s := h.m.Open(ctx, "")
	for _, m := range []string{"one", "two"} {
		if err := s.AddFlash(m); err != nil {
			t.Fatal(err)
		}
	}
	token, err := s.Commit()
	if err != nil || token == "" {
		t.Fatalf("Commit = %q, %v", token, err)
	}

	writes := h.store.writes()
	reader := h.m.Open(ctx, token)
	peeked, err := kvsession.PeekFlashes[string](reader)
	if err != nil || len(peeked) != 2 || peeked[0].Value != "one" || peeked[1].Value != "two" || peeked[0].ID == peeked[1].ID {
		t.Fatalf("PeekFlashes = %+v, %v; want one, two with distinct IDs", peeked, err)
	}
	if again, _ := kvsession.PeekFlashes[string](reader); len(again) != 2 {
		t.Fatalf("a second PeekFlashes = %+v: peeking removed messages", again)
	}

	// Meanwhile one request adds a message and another takes "one".
	adder := h.m.Open(ctx, token)
	if err := adder.AddFlash("three"); err != nil {
		t.Fatal(err)
	}
	if _, err := adder.Commit(); err != nil {
		t.Fatal(err)
	}
	other := h.m.Open(ctx, token)
	if err := other.TakeFlashes(peeked[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Commit(); err != nil { // only read: no write
		t.Fatal(err)
	}
	if got := h.store.writes() - writes; got != 2 {
		t.Errorf("the adder, the taker and a reader that peeked made %d writes, want 2", got)
	}

	// The reader, loaded before both, takes what it peeked.
	late := h.m.Open(ctx, token)
	if _, err := kvsession.PeekFlashes[string](late); err != nil {
		t.Fatal(err)
	}
	stale := h.m.Open(ctx, token)
	if _, err := stale.Has("x"); err != nil { // loaded now, saved after late
		t.Fatal(err)
	}
	if err := late.AddFlash("four"); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := stale.TakeFlashes(peeked[0].ID, peeked[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := stale.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := kvsession.Flashes[string](h.m.Open(ctx, token))
	if err != nil || len(got) != 2 || got[0] != "three" || got[1] != "four" {
		t.Errorf("after taking one and two = %q, %v; want three, four (added concurrently)", got, err)
	}
}

// TestTakeFlashesIgnoresUnknownIDs: IDs of no pending message change
// nothing and cost no write.
func TestTakeFlashesIgnoresUnknownIDs(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	ctx := t.Context()
	s := h.m.Open(ctx, "")
	if err := s.AddFlash("kept"); err != nil {
		t.Fatal(err)
	}
	token, err := s.Commit()
	if err != nil {
		t.Fatal(err)
	}
	writes := h.store.writes()
	s = h.m.Open(ctx, token)
	if err := s.TakeFlashes("no-such-id"); err != nil {
		t.Fatal(err)
	}
	if s.IsModified() {
		t.Error("TakeFlashes of an unknown ID modified the session")
	}
	if _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := h.store.writes() - writes; got != 0 {
		t.Errorf("TakeFlashes of an unknown ID made %d writes, want 0", got)
	}
	if got, _ := kvsession.Flashes[string](h.m.Open(ctx, token)); len(got) != 1 || got[0] != "kept" {
		t.Errorf("Flashes = %q, want [kept]", got)
	}
}

// Flashes in two steps, for code that learns later which messages were
// shown (an adapter, a template that may fail): PeekFlashes reads them,
// TakeFlashes removes those shown and no others.
func ExamplePeekFlashes() {
	secret := make([]byte, 32)
	rand.Read(secret)
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{Secrets: [][]byte{secret}})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	s := m.Open(ctx, "")
	s.AddFlash("saved")
	token, err := s.Commit()
	if err != nil {
		log.Fatal(err)
	}

	s = m.Open(ctx, token)
	pending, err := kvsession.PeekFlashes[string](s)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range pending {
		fmt.Println("shown:", f.Value)
		s.TakeFlashes(f.ID)
	}
	s.Commit()

	left, _ := kvsession.Flashes[string](m.Open(ctx, token))
	fmt.Println("left:", len(left))
	// Output:
	// shown: saved
	// left: 0
}
