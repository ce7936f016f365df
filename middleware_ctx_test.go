package kvsession_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

type otherKey struct{}

// The context the middleware gives a handler carries the session, passes
// every other value and the request's cancellation through, and so do the
// contexts a handler derives from it.
func TestHandlerContext(t *testing.T) {
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{Keys: [][]byte{testKey}, Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), otherKey{}, "other"))
	stop := errors.New("client went away")
	ran := false
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		s := kvsession.From(r)
		if s == nil {
			t.Fatal("no session in the request's context")
		}
		child, cancelChild := context.WithCancel(r.Context())
		defer cancelChild()
		if got := kvsession.FromContext(child); got != s {
			t.Errorf("a derived context gives session %p, want %p", got, s)
		}
		if got := kvsession.FromContext(context.WithoutCancel(r.Context())); got != s {
			t.Errorf("context.WithoutCancel gives session %p, want %p", got, s)
		}
		if got := child.Value(otherKey{}); got != "other" {
			t.Errorf("the request's other value reads %v, want other", got)
		}
		cancel(stop)
		<-child.Done()
		if !errors.Is(context.Cause(child), stop) {
			t.Errorf("the derived context ended with %v, want the request's cause", context.Cause(child))
		}
		if err := r.Context().Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("the request's context: %v, want context.Canceled", err)
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(parent))
	if !ran {
		t.Fatal("the handler did not run")
	}
}
