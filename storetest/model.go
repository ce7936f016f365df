package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
)

// The model-based check: seeded, bounded, reproducible sequences of
// requests (new sessions, reads, writes, logins, regenerates, destroys,
// revocations, store failures, and pairs of concurrent requests on one
// session) run against the store under a Manager, each response checked
// against a small reference model of what the package promises. A failing
// seed is shrunk to the shortest sequence that still fails, and printed.

// modelClients and modelUsers size the simulated world.
const (
	modelClients = 3
	modelUsers   = 2
)

// stepKind is one kind of step of a model run.
type stepKind int

const (
	stepRead stepKind = iota
	stepWrite
	stepLogin
	stepRegenerate
	stepDestroy
	stepRevoke
	stepFailedWrite        // a write while the store fails every call
	stepConcurrentWrites   // two requests change different keys at once
	stepWriteDuringDestroy // a write that saves after a concurrent Destroy
	stepWriteDuringRegen   // a write that saves after a concurrent Regenerate
	stepDropCookie         // the client forgets its cookie
	stepKinds
)

type step struct {
	kind   stepKind
	client int
	user   int
	value  int
}

func (s step) String() string {
	names := [...]string{"read", "write", "login", "regenerate", "destroy", "revoke-user", "write-while-store-down",
		"concurrent-writes", "write-during-destroy", "write-during-regenerate", "drop-cookie"}
	switch s.kind {
	case stepRevoke:
		return fmt.Sprintf("%s(u%d)", names[s.kind], s.user)
	case stepLogin:
		return fmt.Sprintf("client%d.%s(u%d)", s.client, names[s.kind], s.user)
	case stepWrite, stepFailedWrite, stepConcurrentWrites, stepWriteDuringDestroy, stepWriteDuringRegen:
		return fmt.Sprintf("client%d.%s(%d)", s.client, names[s.kind], s.value)
	}
	return fmt.Sprintf("client%d.%s", s.client, names[s.kind])
}

func randomSteps(seed uint64, n int) []step {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	steps := make([]step, n)
	for i := range steps {
		steps[i] = step{
			kind:   stepKind(rng.IntN(int(stepKinds))),
			client: rng.IntN(modelClients),
			user:   rng.IntN(modelUsers),
			value:  i,
		}
	}
	return steps
}

// failingStore wraps the store under test and, while down is set, fails
// every call: a store outage.
type failingStore struct {
	kvsession.Store
	down atomic.Bool
}

var errOutage = errors.New("storetest: injected store outage")

func (f *failingStore) fail() error {
	if f.down.Load() {
		return errOutage
	}
	return nil
}

func (f *failingStore) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := f.fail(); err != nil {
		return kvsession.Entry{}, err
	}
	return f.Store.Get(ctx, key)
}

func (f *failingStore) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.Set(ctx, key, v, exp)
}

func (f *failingStore) Delete(ctx context.Context, key string) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *failingStore) CompareAndSwap(ctx context.Context, key string, v []byte, exp time.Time, old uint64) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.CompareAndSwap(ctx, key, v, exp, old)
}

func (f *failingStore) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.CompareAndDelete(ctx, key, old)
}

func (f *failingStore) Touch(ctx context.Context, key string, exp time.Time) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.Touch(ctx, key, exp)
}

func (f *failingStore) AddUserKey(ctx context.Context, user, key string, exp time.Time) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.AddUserKey(ctx, user, key, exp)
}

// modelSession is what the model expects of one client's session.
type modelSession struct {
	live   bool
	user   int // -1: none
	values map[string]string
}

// modelRun is one run of a sequence against the real store.
type modelRun struct {
	m      *kvsession.Manager
	store  *failingStore
	users  []string
	cookie [modelClients]string // each client's Cookie header, "" for none
	want   [modelClients]modelSession
	dead   []string // cookies that must read as empty from now on
}

var modelRuns atomic.Uint64

func newModelRun(t *testing.T, e *env) *modelRun {
	fs := &failingStore{Store: e.store}
	m, err := kvsession.New(fs, kvsession.Config{
		Secrets: [][]byte{sessionTestKey}, KeyPrefix: e.prefix, Now: e.clock.Now, Logger: discardLogger,
		StoreTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &modelRun{m: m, store: fs}
	run := modelRuns.Add(1)
	for u := range modelUsers {
		r.users = append(r.users, fmt.Sprintf("%smodel-%d-u%d", e.prefix, run, u))
	}
	for c := range r.want {
		r.want[c].user = -1
	}
	return r
}

// request runs fn as a handler with client c's cookie and returns the
// status and the new Cookie header ("" none, "deleted" cleared).
func (r *modelRun) request(c int, fn func(s *kvsession.Session) error) (int, string, error) {
	var herr error
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	if r.cookie[c] != "" {
		req.Header.Set("Cookie", r.cookie[c])
	}
	r.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		herr = fn(kvsession.From(req))
	})).ServeHTTP(rec, req)
	next := ""
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == r.m.CookieName() {
			next = ck.Name + "=" + ck.Value
			if ck.MaxAge < 0 {
				next = "deleted"
			}
		}
	}
	return rec.Code, next, herr
}

// adopt applies a response's cookie to client c, as a browser would.
func (r *modelRun) adopt(c int, next string) {
	switch next {
	case "":
	case "deleted":
		r.kill(c)
		r.cookie[c] = ""
	default:
		if r.cookie[c] != next {
			r.kill(c)
		}
		r.cookie[c] = next
	}
}

func (r *modelRun) kill(c int) {
	if r.cookie[c] != "" {
		r.dead = append(r.dead, r.cookie[c])
	}
}

// read returns the values the cookie reads.
func (r *modelRun) read(cookie string) (map[string]string, error) {
	got := map[string]string{}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	var herr error
	r.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s := kvsession.From(req)
		keys, err := s.Names()
		if err != nil {
			herr = err
			return
		}
		for _, k := range keys {
			v, err := kvsession.Get[string](s, k)
			if err != nil {
				herr = err
				return
			}
			got[k] = v
		}
	})).ServeHTTP(rec, req)
	if herr == nil && rec.Code != http.StatusOK {
		herr = fmt.Errorf("status %d", rec.Code)
	}
	return got, herr
}

// write sets key to value in client c's session, as the model expects.
func (r *modelRun) expectWrite(c int, key, value string) {
	w := &r.want[c]
	if !w.live {
		*w = modelSession{live: true, user: -1, values: map[string]string{}}
	}
	w.values[key] = value
}

func (r *modelRun) expectEnded(c int) {
	r.want[c] = modelSession{user: -1}
}

// do runs one step and checks its direct outcome; check verifies every
// client against the model afterwards.
func (r *modelRun) do(st step) error {
	c, key, value := st.client, fmt.Sprint("k", st.value%4), fmt.Sprint(st.value)
	set := func(s *kvsession.Session) error { return s.Set(key, value) }
	switch st.kind {
	case stepRead:
		return nil // check reads every client
	case stepWrite:
		code, next, err := r.request(c, set)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("write: %d %v", code, err)
		}
		r.adopt(c, next)
		r.expectWrite(c, key, value)
	case stepLogin:
		user := r.users[st.user]
		code, next, err := r.request(c, func(s *kvsession.Session) error {
			if err := s.SetUser(user); err != nil {
				return err
			}
			return s.Regenerate()
		})
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("login: %d %v", code, err)
		}
		r.adopt(c, next)
		w := &r.want[c]
		if !w.live {
			*w = modelSession{live: true, values: map[string]string{}}
		}
		w.user = st.user
	case stepRegenerate:
		code, next, err := r.request(c, func(s *kvsession.Session) error { return s.Regenerate() })
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("regenerate: %d %v", code, err)
		}
		if r.want[c].live && (next == "" || next == "deleted") {
			return fmt.Errorf("regenerate of a live session sent cookie %q, want a new one", next)
		}
		r.adopt(c, next)
	case stepDestroy:
		code, next, err := r.request(c, func(s *kvsession.Session) error { return s.Destroy() })
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("destroy: %d %v", code, err)
		}
		if r.cookie[c] != "" && next != "deleted" {
			return fmt.Errorf("destroy sent cookie %q, want it cleared", next)
		}
		r.adopt(c, next)
		r.expectEnded(c)
	case stepRevoke:
		if _, err := r.m.RevokeUser(context.Background(), r.users[st.user], false); err != nil {
			return fmt.Errorf("revoke: %v", err)
		}
		for i := range r.want {
			if r.want[i].live && r.want[i].user == st.user {
				r.expectEnded(i)
				r.kill(i)
			}
		}
	case stepFailedWrite:
		r.store.down.Store(true)
		code, next, _ := r.request(c, set)
		r.store.down.Store(false)
		if code < 500 || next != "" {
			return fmt.Errorf("write with the store down: status %d, cookie %q; want a 5xx and no cookie", code, next)
		}
	case stepConcurrentWrites:
		other := fmt.Sprint("c", st.value)
		release, err := r.paused(c, func(s *kvsession.Session) error { return s.Set(other, value) })
		if err != nil {
			return err
		}
		code, next, err := r.request(c, set)
		late := release()
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("concurrent write: %d %v", code, err)
		}
		if !r.want[c].live {
			// Both requests started without a session: each made its own;
			// the browser keeps the cookie of the response it got last.
			r.adopt(c, next)
			r.expectWrite(c, key, value)
			if late != "" {
				r.cookie[c] = late // the first session lives on, unreachable
				r.want[c] = modelSession{live: true, user: -1, values: map[string]string{other: value}}
			}
			return nil
		}
		r.adopt(c, next)
		r.expectWrite(c, key, value)
		r.expectWrite(c, other, value)
	case stepWriteDuringDestroy, stepWriteDuringRegen:
		if !r.want[c].live {
			return nil
		}
		release, err := r.paused(c, set)
		if err != nil {
			return err
		}
		change := func(s *kvsession.Session) error { return s.Destroy() }
		if st.kind == stepWriteDuringRegen {
			change = func(s *kvsession.Session) error { return s.Regenerate() }
		}
		code, next, err := r.request(c, change)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%v: %d %v", st, code, err)
		}
		old := r.cookie[c]
		if late := release(); late != "" {
			return fmt.Errorf("a save after a concurrent %v sent cookie %q", st, late)
		}
		r.adopt(c, next)
		if st.kind == stepWriteDuringDestroy {
			r.expectEnded(c)
		}
		r.dead = append(r.dead, old) // the late write must not revive it
	case stepDropCookie:
		r.cookie[c] = ""
		r.want[c] = modelSession{user: -1}
		// The session lives on in the store, unreachable; nothing to check.
	}
	return nil
}

// paused starts a request of client c that loads the session and waits;
// release lets it make change and save, and returns its new cookie.
func (r *modelRun) paused(c int, change func(s *kvsession.Session) error) (release func() string, err error) {
	loaded, proceed := make(chan struct{}), make(chan struct{})
	done := make(chan string, 1)
	var once sync.Once
	go func() {
		_, next, _ := r.request(c, func(s *kvsession.Session) error {
			_, err := s.Names()
			once.Do(func() { close(loaded) })
			if err != nil {
				return err
			}
			<-proceed
			return change(s)
		})
		done <- next
	}()
	select {
	case <-loaded:
	case next := <-done:
		return nil, fmt.Errorf("the paused request ended before loading (cookie %q)", next)
	}
	return func() string { close(proceed); return <-done }, nil
}

// check compares every client's session, and every dead cookie, with the
// model.
func (r *modelRun) check() error {
	for c := range r.want {
		got, err := r.read(r.cookie[c])
		if err != nil {
			return fmt.Errorf("client%d read: %v", c, err)
		}
		want := r.want[c].values
		if !r.want[c].live {
			want = map[string]string{}
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("client%d reads %v, the model says %v", c, got, want)
		}
	}
	for _, cookie := range r.dead {
		got, err := r.read(cookie)
		if err != nil {
			return fmt.Errorf("dead cookie read: %v", err)
		}
		if len(got) != 0 {
			return fmt.Errorf("a dead cookie (destroyed, regenerated or revoked) reads %v", got)
		}
	}
	return nil
}

// runModel runs steps on a fresh run and returns the first failure, and
// the index of the step that showed it.
func runModel(t *testing.T, e *env, steps []step) (int, error) {
	r := newModelRun(t, e)
	for i, st := range steps {
		if err := r.do(st); err != nil {
			return i, err
		}
		if err := r.check(); err != nil {
			return i, err
		}
	}
	return -1, nil
}

// shrink returns the shortest subsequence of steps (found greedily, by
// removing one step at a time) that still fails.
func shrink(t *testing.T, e *env, steps []step, budget int) []step {
	for changed := true; changed && budget > 0; {
		changed = false
		for i := 0; i < len(steps) && budget > 0; i++ {
			cand := append(append([]step(nil), steps[:i]...), steps[i+1:]...)
			budget--
			if _, err := runModel(t, e, cand); err != nil {
				steps, changed = cand, true
				i--
			}
		}
	}
	return steps
}

// modelSeeds and modelSteps bound the model check: each seed is one run.
const (
	modelSeeds = 6
	modelSteps = 30
)

func testModel(t *testing.T, e *sessionEnv) {
	seeds, n := modelSeeds, modelSteps
	if testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		steps := randomSteps(seed, n)
		i, err := runModel(t, e.env, steps)
		if err == nil {
			continue
		}
		failing := shrink(t, e.env, steps[:i+1], 200)
		var b strings.Builder
		for j, st := range failing {
			fmt.Fprintf(&b, "\n\t%2d. %v", j+1, st)
		}
		t.Errorf("seed %d fails at step %d (%v): %v\nshortest failing sequence (%d steps):%s",
			seed, i+1, steps[i], err, len(failing), b.String())
	}
}
