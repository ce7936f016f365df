package memstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/sharedread"
)

// A Store offers the manager its shared read, which returns the stored
// bytes themselves (a write replaces them, never changes them), and a
// wrapper around a Store does not: it keeps Get's copy.
func TestSharedRead(t *testing.T) {
	s := New(nil)
	get := sharedread.For(s)
	if get == nil {
		t.Fatal("a *Store registers no shared read")
	}
	if sharedread.For(struct{ *Store }{s}) != nil {
		t.Error("a wrapper around a *Store has the shared read: it must keep Get's copy")
	}
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.Set(ctx, "k", []byte("one"), exp); err != nil {
		t.Fatal(err)
	}
	first, gotExp, version, err := get(ctx, "k")
	e, _ := s.Get(ctx, "k")
	if err != nil || string(first) != "one" || !gotExp.Equal(exp) || version != e.Version {
		t.Fatalf("shared read = %q, %v, %d, %v; Get gives %q, %v, %d", first, gotExp, version, err, e.Value, e.ExpiresAt, e.Version)
	}
	if again, _, _, _ := get(ctx, "k"); &again[0] != &first[0] {
		t.Error("the shared read copied the stored bytes")
	}
	if err := s.Set(ctx, "k", []byte("two"), exp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, []byte("one")) {
		t.Errorf("a write changed the bytes a shared read returned: %q", first)
	}
	if _, _, _, err := get(ctx, "missing"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("shared read of a missing key = %v, want ErrNotFound", err)
	}
}
