package kvsession_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

// A visit counter: the count lives on the server, the browser holds only a
// signed session ID.
func Example() {
	secret := make([]byte, 32)
	rand.Read(secret) // in production, load it from your secret store

	m, err := kvsession.New(memstore.New(nil), kvsession.Config{Secrets: [][]byte{secret}})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		n, err := kvsession.Get[int](s, "visits")
		if err != nil && !errors.Is(err, kvsession.ErrNoValue) {
			return // the store failed: the middleware answers 503
		}
		if err := s.Set("visits", n+1); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d", n+1)
	})
	srv := httptest.NewTLSServer(m.Handler(mux))
	defer srv.Close()

	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	// Output:
	// visit 1
	// visit 2
	// visit 3
}

// Log in: bind the session to the user and give it a new ID, so that an
// ID planted before login (session fixation) is worthless afterwards.
func ExampleSession_Regenerate() {
	login := func(w http.ResponseWriter, r *http.Request) {
		// ... check the user's credentials first.
		s := kvsession.From(r)
		if err := s.SetUser(r.FormValue("user")); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		if err := s.Regenerate(); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
	_ = login
}

// Log out: the data is deleted on the server and the cookie cleared.
func ExampleSession_Destroy() {
	logout := func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).Destroy(); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
	_ = logout
}

// Show a user's devices and log out all the others.
func ExampleManager_UserSessions() {
	var m *kvsession.Manager // from kvsession.New
	devices := func(w http.ResponseWriter, r *http.Request) {
		user, err := kvsession.From(r).User()
		if err != nil || user == "" {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if _, err := m.RevokeUser(r.Context(), user, true); err != nil {
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
		}
		sessions, err := m.UserSessions(r.Context(), user)
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		for _, s := range sessions {
			fmt.Fprintf(w, "%s %s last seen %s current=%v\n", s.LogID, s.UserAgent, s.LastSeen, s.Current)
		}
	}
	_ = devices
}

// Rotate keys: sign with the new key, keep accepting the old one until
// the cookies it signed have expired.
func ExampleConfig_keyRotation() {
	newKey, oldKey := make([]byte, 32), make([]byte, 32)
	rand.Read(newKey) // in production both come from a secret store
	rand.Read(oldKey)
	cfg := kvsession.Config{Secrets: [][]byte{newKey, oldKey}}
	_, err := kvsession.New(memstore.New(nil), cfg)
	fmt.Println(err)
	// Output: <nil>
}

// A session outside the middleware: a background job (or a WebSocket
// handler after the upgrade) opens the session a cookie value names,
// changes it, and commits it, with the same guarantees as a request.
func ExampleManager_Open() {
	secret := make([]byte, 32)
	rand.Read(secret)
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{Secrets: [][]byte{secret}})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	s := m.Open(ctx, "") // no token yet: a new session
	s.Set("step", 1)
	token, err := s.Commit()
	if err != nil {
		log.Fatal(err)
	}

	s = m.Open(ctx, token) // later, with the token the client sent back
	step, _ := kvsession.Get[int](s, "step")
	s.Set("step", step+1)
	s.AddFlash("step done")
	if _, err := s.Commit(); err != nil {
		log.Fatal(err)
	}

	s = m.Open(ctx, token)
	step, _ = kvsession.Get[int](s, "step")
	flashes, _ := kvsession.Flashes[string](s)
	s.Commit()
	fmt.Println(step, flashes)
	// Output: 2 [step done]
}

// A sweep that says how far it is: the store reports the records removed
// so far after each batch (memstore sweeps in one).
func ExampleWithSweepProgress() {
	now := time.Now()
	store := memstore.New(&memstore.Options{Now: func() time.Time { return now }})
	for _, key := range []string{"a", "b", "c"} {
		store.Set(context.Background(), key, []byte("v"), now.Add(time.Minute))
	}
	now = now.Add(time.Hour)

	ctx := kvsession.WithSweepProgress(context.Background(), func(deleted int) {
		fmt.Println("deleted so far:", deleted)
	})
	n, err := store.DeleteExpired(ctx)
	fmt.Println("deleted:", n, err)
	// Output:
	// deleted so far: 3
	// deleted: 3 <nil>
}
