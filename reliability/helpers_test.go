package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
)

// The pieces every test shares: a small application, a client that keeps
// its cookies by hand, a model of a user that knows what its session must
// hold, a bounded load runner, and helpers for servers of the tests' own.

// secret signs the session IDs of every manager in these tests.
var secret = []byte("kvsession reliability tests: at least 32 bytes of key")

const cookieName = "session"

func isCI() bool { return os.Getenv("CI") == "true" }

// randHex returns n random bytes in hex, for unique names.
func randHex() string { return fmt.Sprintf("%016x", rand.Uint64()) }

// events counts the manager's lifecycle events by kind.
type events struct{ n [16]atomic.Int64 }

func (e *events) on(_ context.Context, ev kvsession.Event) {
	if k := int(ev.Kind); k >= 0 && k < len(e.n) {
		e.n[k].Add(1)
	}
}

func (e *events) String() string {
	var parts []string
	for k := range e.n {
		if n := e.n[k].Load(); n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", kvsession.EventKind(k), n))
		}
	}
	return strings.Join(parts, " ")
}

// newManager returns a manager on store with the tests' key, a plain-HTTP
// cookie (the tests' servers are http://127.0.0.1) and no logging; ev, if
// not nil, counts the events.
func newManager(t testing.TB, store kvsession.Store, cfg kvsession.Config, ev *events) *kvsession.Manager {
	t.Helper()
	cfg.Secrets = [][]byte{secret}
	cfg.InsecureCookie = true
	cfg.Logger = slog.New(slog.DiscardHandler)
	if ev != nil {
		cfg.OnEvent = ev.on
	}
	m, err := kvsession.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// problems collects failures found in goroutines, keeping the first few
// messages and counting the rest, so that a broken run cannot flood the log.
type problems struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (p *problems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if len(p.first) < 20 {
		p.first = append(p.first, fmt.Sprintf(format, args...))
	}
}

// report fails t if anything was collected.
func (p *problems) report(t testing.TB, what string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n > 0 {
		t.Errorf("%d %s; the first ones:\n\t%s", p.n, what, strings.Join(p.first, "\n\t"))
	}
}

// The application.

// app is the application handler under the middleware. Each simulated
// user stores its own name under "user"; the client says in a header which
// name its session must hold (X-Expect-User) or may hold (X-Maybe-User,
// when a failed request left it unsure whether the session still exists),
// and the handler records every request that saw something else: an empty
// session where there was one, or another user's data.
type app struct {
	bad       problems     // what handlers saw that they must not have
	loadErrs  atomic.Int64 // handlers that got an error wrapping ErrLoad
	storeErrs atomic.Int64 // Regenerate or Destroy calls that met a store error
}

// result is the application's response body.
type result struct {
	User string            `json:"user"`
	N    int64             `json:"n"`
	New  bool              `json:"new"`
	Vals map[string]string `json:"vals,omitempty"`
}

// reqTiming collects, for the soak's overhead figures, the time a request
// spent in the application handler (next) and, within it, in session
// calls, the save included (session).
type reqTiming struct{ next, session time.Duration }

type timingKey struct{}

// timed runs f, adding its duration to the request's session time if the
// request is being timed.
func timed(r *http.Request, f func()) {
	rt, _ := r.Context().Value(timingKey{}).(*reqTiming)
	if rt == nil {
		f()
		return
	}
	t0 := time.Now()
	f()
	rt.session += time.Since(t0)
}

// The operations, chosen by the query parameter op:
//
//	anon     touches no session
//	login    user=NAME: a new session (Regenerate, as on a real login)
//	         holding user=NAME and n=0, bound to NAME with SetUser
//	read     returns user, n, and the values of p1 and p2
//	write    v=N: sets n
//	set      k=KEY, v=VALUE: sets KEY (a string)
//	regen    Regenerate
//	destroy  Destroy
//	dump     returns every value
func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op := q.Get("op")
	var res result
	if op != "anon" {
		s := kvsession.From(r)
		var err error
		if op == "login" {
			err = a.login(r, s, q.Get("user"))
			res.User = q.Get("user")
		} else {
			err = a.op(r, s, op, q, &res)
		}
		if err != nil {
			if errors.Is(err, kvsession.ErrLoad) {
				// The session could not be loaded: write nothing, and the
				// middleware answers with its error response.
				a.loadErrs.Add(1)
				return
			}
			if errors.Is(err, errStoreWork) {
				// Regenerate or Destroy met the store down: they do their
				// store work at once and return its error, which an
				// application answers as the middleware would. The old
				// session is left as it was.
				a.storeErrs.Add(1)
				http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
				return
			}
			a.bad.add("op %s: unexpected session error: %v", op, err)
			http.Error(w, "unexpected session error", http.StatusInternalServerError)
			return
		}
	}
	// The first byte of the header saves the session (timed as session
	// work); a failed save replaces the response.
	timed(r, func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
	})
	json.NewEncoder(w).Encode(&res)
}

// errStoreWork marks an error of Regenerate or Destroy, which do their
// store work when called: a store error, not a bug of the handler's.
var errStoreWork = errors.New("session store work failed")

// storeWork marks err, from Regenerate or Destroy, as the store's. An error
// wrapping ErrEnded is no failure: the session ended concurrently.
func storeWork(err error) error {
	if err == nil || errors.Is(err, kvsession.ErrLoad) {
		return err
	}
	if errors.Is(err, kvsession.ErrEnded) {
		return nil
	}
	return fmt.Errorf("%w: %w", errStoreWork, err)
}

func (a *app) login(r *http.Request, s *kvsession.Session, name string) error {
	var err error
	timed(r, func() {
		if err = storeWork(s.Regenerate()); err != nil {
			return
		}
		if err = s.Set("user", name); err != nil {
			return
		}
		if err = s.SetUser(name); err != nil {
			return
		}
		err = s.Set("n", 0)
	})
	return err
}

func (a *app) op(r *http.Request, s *kvsession.Session, op string, q url.Values, res *result) error {
	user, err := a.checkUser(r, s)
	if err != nil {
		return err
	}
	res.User = user
	timed(r, func() {
		switch op {
		case "read":
			if res.N, err = kvsession.Get[int64](s, "n"); errors.Is(err, kvsession.ErrNoValue) {
				err = nil
			}
			if err != nil {
				return
			}
			if res.New, err = s.IsNew(); err != nil {
				return
			}
			for _, k := range []string{"p1", "p2"} {
				v, gerr := kvsession.Get[string](s, k)
				if errors.Is(gerr, kvsession.ErrNoValue) {
					continue
				}
				if gerr != nil {
					err = gerr
					return
				}
				if res.Vals == nil {
					res.Vals = map[string]string{}
				}
				res.Vals[k] = v
			}
		case "write":
			var v int64
			if v, err = strconv.ParseInt(q.Get("v"), 10, 64); err == nil {
				err = s.Set("n", v)
			}
		case "set":
			err = s.Set(q.Get("k"), q.Get("v"))
		case "regen":
			err = storeWork(s.Regenerate())
		case "destroy":
			err = storeWork(s.Destroy())
		case "dump":
			var keys []string
			if keys, err = s.Names(); err != nil {
				return
			}
			res.Vals = map[string]string{}
			for _, k := range keys {
				var raw json.RawMessage
				if raw, err = kvsession.Get[json.RawMessage](s, k); err != nil {
					return
				}
				res.Vals[k] = string(raw)
			}
		default:
			err = fmt.Errorf("unknown op %q", op)
		}
	})
	return err
}

// checkUser reads the session's user and records a request that sees what
// it must not: an empty session where the client's session had a user, or
// another user's name. An error (wrapping ErrLoad if the store is down) is
// returned for the caller to handle.
func (a *app) checkUser(r *http.Request, s *kvsession.Session) (string, error) {
	var user string
	var err error
	timed(r, func() { user, err = kvsession.Get[string](s, "user") })
	if errors.Is(err, kvsession.ErrNoValue) {
		user, err = "", nil
	}
	if err != nil {
		if !errors.Is(err, kvsession.ErrLoad) {
			a.bad.add("reading the user: an error not wrapping ErrLoad: %v", err)
		}
		return "", err
	}
	expect, maybe := r.Header.Get("X-Expect-User"), r.Header.Get("X-Maybe-User")
	switch {
	case expect != "" && user == "":
		a.bad.add("the handler of %s ran with an empty session where there was one", expect)
	case expect != "" && user != expect:
		a.bad.add("the handler of %s saw the session of %s", expect, user)
	case maybe != "" && user != "" && user != maybe:
		a.bad.add("the handler of %s saw the session of %s", maybe, user)
	}
	return user, nil
}

// The client.

// client sends the application's requests over real HTTP, keeping no
// cookie jar: each simulated user keeps its own cookie, so that every
// Set-Cookie can be checked.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string, conns int) *client {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &client{base: base, hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// reply is what one request got.
type reply struct {
	op         string
	user       string // the simulated user's name, if any
	status     int    // 0 on a transport error
	err        error  // a transport or decoding error
	start      time.Time
	dur        time.Duration
	setCookies []string     // every Set-Cookie header
	cookie     *http.Cookie // the session cookie set or cleared, if any
	res        result
}

func (r reply) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

func (r reply) String() string {
	if r.err != nil {
		return fmt.Sprintf("%s: %v after %v", r.op, r.err, r.dur.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s: %d after %v", r.op, r.status, r.dur.Round(time.Millisecond))
}

// request describes one request of a simulated user.
type request struct {
	op     string
	cookie string // the session cookie's value, or ""
	expect string // X-Expect-User
	maybe  string // X-Maybe-User
	params []string
}

func (c *client) do(ctx context.Context, rq request) reply {
	q := url.Values{"op": {rq.op}}
	for i := 0; i+1 < len(rq.params); i += 2 {
		q.Set(rq.params[i], rq.params[i+1])
	}
	rp := reply{op: rq.op, start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/?"+q.Encode(), nil)
	if err != nil {
		rp.err = err
		return rp
	}
	if rq.cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: rq.cookie})
	}
	if rq.expect != "" {
		req.Header.Set("X-Expect-User", rq.expect)
	}
	if rq.maybe != "" {
		req.Header.Set("X-Maybe-User", rq.maybe)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		rp.dur = time.Since(rp.start)
		rp.err = err
		return rp
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	rp.dur = time.Since(rp.start)
	rp.status = resp.StatusCode
	rp.setCookies = resp.Header.Values("Set-Cookie")
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName {
			rp.cookie = ck
		}
	}
	if err != nil {
		rp.err = err
	} else if rp.status == http.StatusOK {
		if err := json.Unmarshal(body, &rp.res); err != nil {
			rp.err = fmt.Errorf("decoding %q: %w", body, err)
		}
	}
	return rp
}

// The model of a user.

type userState int

const (
	noSession userState = iota // no cookie
	certain                    // the session exists and holds user=name
	uncertain                  // a failed regenerate or destroy may have ended it
)

// simUser is a simulated user: it logs in, reads and writes its session,
// regenerates and destroys it, and checks every answer against what it
// knows the session must hold. Its mutex is held during a request, so that
// a test can take a snapshot of it while the load runs.
type simUser struct {
	mu      sync.Mutex
	name    string
	cookie  string
	state   userState
	acked   int64   // the last value of n that a 200 acknowledged, or read
	pending []int64 // values of n written by failed requests since: they may have landed
	seq     int64   // the last value written
	pairTok string  // p1 and p2 both hold this after a successful pair, "" if unknown
}

func newUsers(prefix string, n int) []*simUser {
	us := make([]*simUser, n)
	for i := range us {
		us[i] = &simUser{name: fmt.Sprintf("%s-%d", prefix, i)}
	}
	return us
}

// snapshot is a user's cookie and state at some instant.
type snapshot struct {
	cookie string
	state  userState
}

func (u *simUser) snapshot() snapshot {
	u.mu.Lock()
	defer u.mu.Unlock()
	return snapshot{u.cookie, u.state}
}

// markUncertain says that the user's session may be gone (a memcached
// restart).
func (u *simUser) markUncertain() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == certain {
		u.state = uncertain
	}
}

// mix weighs the operations a load picks for a user that has a session.
type mix struct{ read, write, pair, regen, destroy, anon int }

func (m mix) pick(rng *rand.Rand) string {
	total := m.read + m.write + m.pair + m.regen + m.destroy + m.anon
	n := rng.IntN(total)
	for _, c := range []struct {
		w  int
		op string
	}{{m.read, "read"}, {m.write, "write"}, {m.pair, "pair"}, {m.regen, "regen"}, {m.destroy, "destroy"}, {m.anon, "anon"}} {
		if n < c.w {
			return c.op
		}
		n -= c.w
	}
	return "read"
}

// step runs one operation chosen by mx (a login if the user has no
// session, a read if it is unsure) and returns its replies.
func (u *simUser) step(ctx context.Context, c *client, rng *rand.Rand, mx mix, p *problems) []reply {
	u.mu.Lock()
	defer u.mu.Unlock()
	op := "login"
	switch u.state {
	case certain:
		op = mx.pick(rng)
	case uncertain:
		op = "read"
	}
	return u.run(ctx, c, op, p)
}

// do runs one operation.
func (u *simUser) do(ctx context.Context, c *client, op string, p *problems) []reply {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.run(ctx, c, op, p)
}

// run sends the requests of op and updates the model; u.mu is held. Every
// reply is checked: a failure is a 503 without Set-Cookie, and a success
// is what the model allows.
func (u *simUser) run(ctx context.Context, c *client, op string, p *problems) []reply {
	rs := u.runOp(ctx, c, op, p)
	for i := range rs {
		rs[i].user = u.name
	}
	return rs
}

func (u *simUser) runOp(ctx context.Context, c *client, op string, p *problems) []reply {
	rq := request{op: op, cookie: u.cookie}
	switch u.state {
	case certain:
		rq.expect = u.name
	case uncertain:
		rq.maybe = u.name
	}
	check := func(r reply) {
		if r.err != nil {
			p.add("%s of %s: %v", r.op, u.name, r.err)
			return
		}
		if !r.ok() {
			if r.status != http.StatusServiceUnavailable {
				p.add("%s of %s: status %d, want 2xx or 503", r.op, u.name, r.status)
			}
			if len(r.setCookies) > 0 {
				p.add("%s of %s failed with %d but sent Set-Cookie %q", r.op, u.name, r.status, r.setCookies)
			}
		}
	}
	switch op {
	case "anon":
		r := c.do(ctx, request{op: "anon"})
		check(r)
		if r.ok() && len(r.setCookies) > 0 {
			p.add("a request that never touched the session sent Set-Cookie %q", r.setCookies)
		}
		return []reply{r}

	case "login":
		rq = request{op: "login", params: []string{"user", u.name}}
		r := c.do(ctx, rq)
		check(r)
		if r.ok() {
			if r.cookie == nil || r.cookie.Value == "" || r.cookie.MaxAge < 0 {
				p.add("login of %s: 200 without a session cookie (%q)", u.name, r.setCookies)
				return []reply{r}
			}
			u.cookie, u.state, u.acked, u.pending, u.pairTok = r.cookie.Value, certain, 0, nil, ""
		}
		return []reply{r}

	case "read":
		r := c.do(ctx, rq)
		check(r)
		if !r.ok() {
			return []reply{r}
		}
		if len(r.setCookies) > 0 {
			p.add("read of %s: a read-only request sent Set-Cookie %q", u.name, r.setCookies)
		}
		switch {
		case r.res.User == u.name:
			if r.res.New {
				p.add("read of %s: the session holds the user but says it is new", u.name)
			}
			if r.res.N != u.acked && !slices.Contains(u.pending, r.res.N) {
				p.add("read of %s: n = %d, want the acknowledged %d or one of the unacknowledged %v: an acknowledged write was lost",
					u.name, r.res.N, u.acked, u.pending)
			}
			u.acked, u.pending = r.res.N, nil
			if u.pairTok != "" && (r.res.Vals["p1"] != u.pairTok || r.res.Vals["p2"] != u.pairTok) {
				p.add("read of %s: p1, p2 = %q, %q after two concurrent writes of %q: an update was lost",
					u.name, r.res.Vals["p1"], r.res.Vals["p2"], u.pairTok)
			}
			u.state = certain
		case r.res.User == "" && u.state == uncertain:
			// The failed request that made us unsure did end the session.
			u.cookie, u.state = "", noSession
		default:
			p.add("read of %s: 200 with user %q (state %d)", u.name, r.res.User, u.state)
			u.cookie, u.state = "", noSession
		}
		return []reply{r}

	case "write":
		u.seq++
		v := u.seq
		rq.params = []string{"v", strconv.FormatInt(v, 10)}
		r := c.do(ctx, rq)
		check(r)
		if r.ok() {
			if r.cookie != nil && r.cookie.Value != u.cookie {
				p.add("write of %s: the cookie changed on a plain write", u.name)
			}
			u.acked, u.pending = v, nil
		} else if len(u.pending) < 1000 {
			u.pending = append(u.pending, v)
		}
		return []reply{r}

	case "pair":
		// Two concurrent requests of one session change different keys:
		// both must land (the compare-and-swap merge).
		tok := randHex()
		rs := make([]reply, 2)
		var wg sync.WaitGroup
		for i, k := range []string{"p1", "p2"} {
			r := rq
			r.op, r.params = "set", []string{"k", k, "v", tok}
			wg.Go(func() { rs[i] = c.do(ctx, r) })
		}
		wg.Wait()
		u.pairTok = tok
		for _, r := range rs {
			r.op = "pair"
			check(r)
			if !r.ok() {
				u.pairTok = ""
			}
		}
		return rs

	case "regen":
		r := c.do(ctx, rq)
		check(r)
		switch {
		case r.ok() && (r.cookie == nil || r.cookie.Value == "" || r.cookie.MaxAge < 0):
			p.add("regen of %s: 200 without a new cookie (%q)", u.name, r.setCookies)
		case r.ok() && r.cookie.Value == u.cookie:
			p.add("regen of %s: the cookie did not change", u.name)
		case r.ok():
			u.cookie, u.state = r.cookie.Value, certain
		default:
			// The new copy may have been written and the old one
			// deleted without the client getting the new cookie.
			u.state = uncertain
		}
		return []reply{r}

	case "destroy":
		r := c.do(ctx, rq)
		check(r)
		switch {
		case r.ok() && (r.cookie == nil || r.cookie.MaxAge >= 0):
			p.add("destroy of %s: 200 without clearing the cookie (%q)", u.name, r.setCookies)
		case r.ok():
			u.cookie, u.state = "", noSession
		default:
			u.state = uncertain
		}
		return []reply{r}
	}
	panic("unknown op " + op)
}

// The load.

// load runs simulated users from several goroutines until halted, each
// goroutine owning its own users, so that the requests of one user never
// overlap (but for the deliberate pairs).
type load struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	reqs  atomic.Int64
	once  sync.Once
	start time.Time
}

// startLoad runs users from workers goroutines, at most maxSteps steps
// each, calling observe (from the worker's goroutine) with every reply.
func startLoad(ctx context.Context, c *client, users []*simUser, workers, maxSteps int, mx mix, p *problems, observe func(reply)) *load {
	l := &load{stop: make(chan struct{}), start: time.Now()}
	for w := range workers {
		var mine []*simUser
		for i := w; i < len(users); i += workers {
			mine = append(mine, users[i])
		}
		rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(w)))
		l.wg.Go(func() {
			for range maxSteps {
				select {
				case <-l.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				u := mine[rng.IntN(len(mine))]
				failed := false
				for _, r := range u.step(ctx, c, rng, mx, p) {
					l.reqs.Add(1)
					if observe != nil {
						observe(r)
					}
					failed = failed || !r.ok()
				}
				if failed {
					time.Sleep(2 * time.Millisecond) // no busy loop while the store is down
				}
			}
		})
	}
	return l
}

// halt stops the load and waits for its goroutines.
func (l *load) halt() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// verifyAll reads every user's session once, retrying a 503 for up to
// patience (a client reconnecting to a restarted server). It returns how
// many users still had their session.
func verifyAll(ctx context.Context, t testing.TB, c *client, users []*simUser, patience time.Duration, p *problems) int {
	t.Helper()
	deadline := time.Now().Add(patience)
	alive := 0
	for _, u := range users {
		if u.snapshot().state == noSession {
			continue
		}
		for {
			rs := u.do(ctx, c, "read", p)
			if rs[0].ok() {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("read of %s still fails %v after the server came back: %v", u.name, patience, rs[0])
				return alive
			}
			time.Sleep(50 * time.Millisecond)
		}
		if u.snapshot().state == certain {
			alive++
		}
	}
	return alive
}

// Servers of the tests' own.

// requireBinary makes sure that bin is in PATH. Without it the test is
// skipped, except under CI=true, where it fails, after installing aptPkg
// with apt-get first if aptPkg is not empty.
func requireBinary(t *testing.T, bin, aptPkg string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err == nil {
		return
	}
	if !isCI() {
		t.Skipf("%s is not in PATH", bin)
	}
	if aptPkg != "" {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		for _, args := range [][]string{
			{"update", "-q"},
			{"install", "-y", "-q", "--no-install-recommends", aptPkg},
		} {
			cmd := exec.CommandContext(ctx, "apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s is not in PATH, and apt-get %s failed: %v\n%s", bin, args[0], err, out)
			}
		}
		if _, err := exec.LookPath(bin); err == nil {
			return
		}
	}
	t.Fatalf("%s is not in PATH; under CI=true it must be", bin)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// daemon is a server process that a test starts, kills and restarts.
type daemon struct {
	t     *testing.T
	name  string
	argv  []string
	ready func() bool // reports whether the server answers
	cmd   *exec.Cmd
	done  chan struct{}
}

func newDaemon(t *testing.T, ready func() bool, argv ...string) *daemon {
	d := &daemon{t: t, name: argv[0], argv: argv, ready: ready}
	t.Cleanup(d.kill)
	return d
}

// start starts the server and waits, 10 seconds at most, until it answers.
func (d *daemon) start() {
	d.t.Helper()
	d.cmd = exec.Command(d.argv[0], d.argv[1:]...)
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	done := make(chan struct{})
	d.done = done
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(done)
	}(d.cmd)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			d.t.Fatalf("%s exited at start", d.name)
		default:
		}
		if d.ready() {
			return
		}
	}
	d.t.Fatalf("%s does not answer 10s after its start", d.name)
}

// kill sends SIGKILL and waits for the process to end; it does nothing if
// the process is not running.
func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.t.Errorf("%s (pid %d) did not exit 10s after SIGKILL", d.name, d.cmd.Process.Pid)
	}
	d.cmd = nil
}

// dialable reports whether something accepts TCP connections on addr.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// pct formats a share.
func pct(n, of int64) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}
