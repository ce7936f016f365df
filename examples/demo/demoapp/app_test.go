package demoapp_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/examples/demo/demoapp"
	"github.com/kvsession/kvsession/filestore"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/storetest"
	"github.com/kvsession/kvsession/storeurl"
)

const cookieName = "kvsession-demo"

var testKey = []byte("demo-test-signing-key-0123456789")

var quiet = slog.New(slog.DiscardHandler)

// serve runs the demo on store behind a test server.
func serve(t *testing.T, store kvsession.Store) *httptest.Server {
	t.Helper()
	return serveConfig(t, store, demoapp.Config{})
}

// serveConfig runs the demo on store behind a test server, configured by
// cfg with the test's key, store name and logger.
func serveConfig(t *testing.T, store kvsession.Store, cfg demoapp.Config) *httptest.Server {
	t.Helper()
	cfg.Secrets, cfg.StoreName, cfg.Logger = [][]byte{testKey}, "test", quiet
	app, err := demoapp.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return srv
}

// client is one browser or script, with its own cookie jar.
type client struct {
	t   *testing.T
	srv *httptest.Server
	hc  *http.Client
	ua  string
}

func newClient(t *testing.T, srv *httptest.Server, ua string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{
		Transport:     srv.Client().Transport, // trusts the test server's certificate
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &client{t: t, srv: srv, hc: hc, ua: ua}
}

// do sends a request and returns the response with its body read.
func (c *client) do(method, path string, form url.Values, header http.Header) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.srv.URL+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", c.ua)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, string(b)
}

var jsonHeader = http.Header{"Accept": {"application/json"}}

// json sends a request as a script and decodes the JSON answer into v,
// failing unless the status is 200.
func (c *client) json(method, path string, form url.Values, v any) {
	c.t.Helper()
	resp, body := c.do(method, path, form, jsonHeader)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		c.t.Fatalf("%s %s: %v in %s", method, path, err, body)
	}
}

func (c *client) me() demoapp.Me {
	c.t.Helper()
	var me demoapp.Me
	c.json("GET", "/api/me", nil, &me)
	return me
}

// post sends a POST as a script and returns the /api/me it answers with.
func (c *client) post(path string, form url.Values) demoapp.Me {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	var me demoapp.Me
	c.json("POST", path, form, &me)
	return me
}

func (c *client) sessions() []demoapp.SessionJSON {
	c.t.Helper()
	var list []demoapp.SessionJSON
	c.json("GET", "/api/sessions", nil, &list)
	return list
}

// cookie returns the session cookie's value in the jar, or "".
func (c *client) cookie() string {
	u, _ := url.Parse(c.srv.URL)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == cookieName {
			return ck.Value
		}
	}
	return ""
}

// withCookie returns a new client that presents value as its session
// cookie: a replay of a copied cookie.
func (c *client) withCookie(value string) *client {
	r := newClient(c.t, c.srv, c.ua+" (replay)")
	u, _ := url.Parse(c.srv.URL)
	r.hc.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: value}})
	return r
}

func checkMe(t *testing.T, what string, got demoapp.Me, user string, count int) {
	t.Helper()
	if got.User != user || got.Count != count {
		t.Errorf("%s: me = %+v, want user %q count %d", what, got, user, count)
	}
}

func TestEndpoints(t *testing.T) {
	srv := serve(t, memstore.New(nil))
	c := newClient(t, srv, "test-agent/1.0")

	checkMe(t, "first visit", c.me(), "", 0)
	if c.cookie() != "" {
		t.Error("a read-only first visit set a cookie")
	}
	checkMe(t, "POST /count", c.post("/count", nil), "", 1)
	anon := c.cookie()
	if anon == "" {
		t.Fatal("no session cookie after POST /count")
	}

	c.post("/api/kv", url.Values{"key": {"a"}, "value": {"1"}})
	c.post("/api/kv", url.Values{"key": {"b"}, "value": {"two words"}})
	c.post("/api/kv", url.Values{"key": {"c"}, "value": {"3"}})
	c.post("/api/kv", url.Values{"key": {"c"}, "value": {""}}) // deletes c
	var kv map[string]string
	c.json("GET", "/api/kv", nil, &kv)
	if len(kv) != 2 || kv["a"] != "1" || kv["b"] != "two words" {
		t.Errorf("GET /api/kv = %v, want a=1 and b=two words", kv)
	}

	for _, tt := range []struct {
		path string
		form url.Values
	}{
		{"/login", url.Values{"user": {""}}},
		{"/login", url.Values{"user": {"   "}}},
		{"/login", url.Values{"user": {strings.Repeat("x", 65)}}},
		{"/login", url.Values{"user": {"a\x00b"}}},
		{"/api/kv", url.Values{"key": {""}, "value": {"x"}}},
		{"/api/kv", url.Values{"key": {"k"}, "value": {strings.Repeat("x", 1001)}}},
	} {
		resp, body := c.do("POST", tt.path, tt.form, jsonHeader)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("POST %s %v: status %d, body %s; want 400 with an error", tt.path, tt.form, resp.StatusCode, body)
		}
	}

	checkMe(t, "POST /login", c.post("/login", url.Values{"user": {" alice "}}), "alice", 1)
	if got := c.cookie(); got == "" || got == anon {
		t.Errorf("login kept the session ID (cookie %q, before %q); want a new one", got, anon)
	}
	c.json("GET", "/api/kv", nil, &kv)
	if len(kv) != 2 {
		t.Errorf("after login, GET /api/kv = %v: the data did not follow the new ID", kv)
	}
	checkMe(t, "the pre-login cookie, replayed", c.withCookie(anon).me(), "", 0)

	list := c.sessions()
	if len(list) != 1 || !list[0].Current || list[0].UserAgent != "test-agent/1.0" || list[0].ID == "" ||
		list[0].Created.IsZero() || list[0].LastSeen.Before(list[0].Created) || !list[0].ExpiresAt.After(list[0].LastSeen) {
		t.Errorf("GET /api/sessions = %+v, want this session only", list)
	}

	resp, page := c.do("GET", "/", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `<strong id="user">alice</strong>`) || !strings.Contains(page, "two words") ||
		!strings.Contains(page, "test-agent") || !strings.Contains(page, "this one") {
		t.Errorf("GET /: status %d, page:\n%s", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if resp, css := c.do("GET", "/static/style.css", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(css, "body") {
		t.Errorf("GET /static/style.css: status %d", resp.StatusCode)
	}

	resp, body := c.do("GET", "/healthz", nil, nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("GET /healthz: %d %q", resp.StatusCode, body)
	}

	loggedIn := c.cookie()
	checkMe(t, "POST /logout", c.post("/logout", nil), "", 0)
	if got := c.cookie(); got != "" {
		t.Errorf("after logout the jar still holds cookie %q", got)
	}
	replay := c.withCookie(loggedIn)
	checkMe(t, "the logged-in cookie, replayed after logout", replay.me(), "", 0)
	if list := replay.sessions(); len(list) != 0 {
		t.Errorf("GET /api/sessions with a dead cookie = %+v, want []", list)
	}
	if resp, body := c.do("GET", "/api/sessions", nil, jsonHeader); strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /api/sessions anonymous: %d %s, want []", resp.StatusCode, body)
	}
	if resp, body := c.do("GET", "/nowhere", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nowhere: %d %s", resp.StatusCode, body)
	}
	if resp, _ := c.do("GET", "/logout", nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /logout: %d, want 405", resp.StatusCode)
	}
}

// TestBrowserForms checks that POSTs without "Accept: application/json"
// answer with a redirect to the page, at the card the form is on.
func TestBrowserForms(t *testing.T) {
	srv := serve(t, memstore.New(nil))
	c := newClient(t, srv, "browser")
	other := newClient(t, srv, "other browser")
	other.post("/login", url.Values{"user": {"bob"}})
	for _, tt := range []struct {
		path string
		form url.Values
		to   string
	}{
		{"/count", url.Values{}, "/#counter"},
		{"/api/kv", url.Values{"key": {"k"}, "value": {"v"}}, "/#scratchpad"},
		{"/login", url.Values{"user": {"bob"}}, "/#who"},
		{"/revoke", url.Values{"id": {other.sessions()[0].ID}}, "/#sessions"},
		{"/logout-others", url.Values{}, "/#sessions"},
		{"/logout", url.Values{}, "/#who"},
	} {
		resp, body := c.do("POST", tt.path, tt.form, http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.to {
			t.Errorf("POST %s: status %d, Location %q, body %q; want 303 to %s", tt.path, resp.StatusCode, resp.Header.Get("Location"), body, tt.to)
		}
	}
	_, page := c.do("GET", "/", nil, nil)
	for _, id := range []string{"who", "counter", "scratchpad"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("the page has no element with id %q to return to", id)
		}
	}
	checkMe(t, "the other browser, revoked", other.me(), "", 0)
}

func TestLogoutOthers(t *testing.T) {
	srv := serve(t, memstore.New(nil))
	a := newClient(t, srv, "device-A")
	b := newClient(t, srv, "device-B")
	c := newClient(t, srv, "device-C")
	for _, x := range []*client{a, b, c} {
		x.post("/login", url.Values{"user": {"alice"}})
	}
	b.post("/count", nil)
	other := newClient(t, srv, "device-bob")
	other.post("/login", url.Values{"user": {"bob"}})

	list := a.sessions()
	if len(list) != 3 {
		t.Fatalf("alice has %d sessions, want 3: %+v", len(list), list)
	}
	var current []string
	var aID, cID string
	for _, s := range list {
		if s.Current {
			current = append(current, s.UserAgent)
			aID = s.ID
		}
		if s.UserAgent == "device-C" {
			cID = s.ID
		}
	}
	if !slices.Equal(current, []string{"device-A"}) {
		t.Errorf("current sessions seen by A: %v, want device-A only", current)
	}

	// One by one: A ends C's session.
	for _, id := range []string{"nope", aID} {
		if resp, _ := a.do("POST", "/revoke", url.Values{"id": {id}}, jsonHeader); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /revoke id=%s: status %d, want 400 (unknown, or the current session)", id, resp.StatusCode)
		}
	}
	if resp, _ := other.do("POST", "/revoke", url.Values{"id": {cID}}, jsonHeader); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bob revoking one of alice's sessions: status %d, want 400", resp.StatusCode)
	}
	checkMe(t, "C before the revocation", c.me(), "alice", 0)
	a.post("/revoke", url.Values{"id": {cID}})
	checkMe(t, "C after A revoked it", c.me(), "", 0)

	// All the others: A ends B's.
	checkMe(t, "A logs out the others", a.post("/logout-others", nil), "alice", 0)
	checkMe(t, "B after logout-others", b.me(), "", 0)
	if list := a.sessions(); len(list) != 1 || !list[0].Current {
		t.Errorf("alice's sessions after logout-others: %+v, want A's only", list)
	}
	checkMe(t, "bob, another user", other.me(), "bob", 0)
}

func TestCrossOriginPost(t *testing.T) {
	srv := serve(t, memstore.New(nil))
	c := newClient(t, srv, "browser")
	c.post("/count", nil)
	for _, h := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}},
		{"Origin": {"http://evil.example"}},
	} {
		for _, path := range []string{"/count", "/login", "/logout", "/logout-others", "/api/kv"} {
			resp, _ := c.do("POST", path, url.Values{"user": {"mallory"}, "key": {"k"}, "value": {"v"}}, h)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with %v: status %d, want 403", path, h, resp.StatusCode)
			}
		}
	}
	checkMe(t, "after the refused POSTs", c.me(), "", 1)
	resp, _ := c.do("POST", "/count", url.Values{}, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {srv.URL}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin POST: status %d, want 303", resp.StatusCode)
	}
	checkMe(t, "after a same-origin POST", c.me(), "", 2)
}

func TestPageEscapes(t *testing.T) {
	srv := serve(t, memstore.New(nil))
	c := newClient(t, srv, `<img src=x onerror=alert(1)>`)
	c.post("/login", url.Values{"user": {"<script>alert(1)</script>"}})
	c.post("/api/kv", url.Values{"key": {`"><b>k`}, "value": {"<i>v</i>"}})
	_, page := c.do("GET", "/", nil, nil)
	for _, raw := range []string{"<script>alert", "<b>k", "<i>v", "<img src=x"} {
		if strings.Contains(page, raw) {
			t.Errorf("the page contains %q unescaped", raw)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the page does not show the escaped user name")
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			app, err := demoapp.New(memstore.New(nil), demoapp.Config{Secrets: [][]byte{testKey}, Secure: secure, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(app)
			if secure {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			c := newClient(t, srv, "x")
			resp, _ := c.do("POST", "/count", url.Values{}, jsonHeader)
			cookies := resp.Cookies()
			if len(cookies) != 1 {
				t.Fatalf("cookies = %v, want one", cookies)
			}
			ck := cookies[0]
			wantName := cookieName
			if secure {
				wantName = "__Host-" + cookieName
			}
			if ck.Name != wantName || ck.Secure != secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge <= 0 {
				t.Errorf("cookie = %s; want %s, Secure=%v, HttpOnly, SameSite=Lax, Path=/, persistent", ck, wantName, secure)
			}
			checkMe(t, "next request", c.me(), "", 1)
		})
	}
}

// failingStore is a store whose every call fails, as a server that is down.
type failingStore struct{ kvsession.Store }

var errDown = errors.New("store is down")

func (failingStore) Get(context.Context, string) (kvsession.Entry, error) {
	return kvsession.Entry{}, errDown
}

func TestStoreDown(t *testing.T) {
	up := memstore.New(nil)
	down := &failingStore{up}
	upSrv, downSrv := serve(t, up), serve(t, down)

	c := newClient(t, upSrv, "x")
	c.post("/login", url.Values{"user": {"alice"}})
	cookie := c.cookie()

	d := newClient(t, downSrv, "x").withCookie(cookie)
	if resp, body := d.do("GET", "/healthz", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz with the store down: %d %s, want 503", resp.StatusCode, body)
	}
	resp, body := d.do("GET", "/api/me", nil, jsonHeader)
	if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 {
		t.Errorf("GET /api/me with the store down: %d %s, cookies %v; want 503 and the cookie left alone", resp.StatusCode, body, resp.Cookies())
	}
	var outage struct {
		Error      string `json:"error"`
		RetryAfter int    `json:"retry_after"`
	}
	if err := json.Unmarshal([]byte(body), &outage); err != nil || !strings.Contains(outage.Error, "safe") || outage.RetryAfter <= 0 {
		t.Errorf("GET /api/me with the store down: body %s (%v), want JSON saying the session is safe", body, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /api/me with the store down: Content-Type %q", ct)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra != fmt.Sprint(outage.RetryAfter) {
		t.Errorf("GET /api/me with the store down: Retry-After %q, retry_after %d", ra, outage.RetryAfter)
	}
	for _, req := range []struct{ method, path string }{{"GET", "/"}, {"POST", "/count"}} {
		var form url.Values
		if req.method == "POST" {
			form = url.Values{}
		}
		resp, page := d.do(req.method, req.path, form, http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the store down: %d, cookies %v, Retry-After %q; want 503, no cookie, Retry-After",
				req.method, req.path, resp.StatusCode, resp.Cookies(), resp.Header.Get("Retry-After"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") ||
			!strings.Contains(page, "Your session is safe") || !strings.Contains(page, "try again") {
			t.Errorf("%s %s with the store down: Content-Type %q, page:\n%s", req.method, req.path, ct, page)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s %s with the store down: Cache-Control %q, want no-store", req.method, req.path, cc)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s %s with the store down: Content-Security-Policy %q", req.method, req.path, csp)
		}
	}
	checkMe(t, "once the store is back", c.me(), "alice", 0)
}

// TestRestart checks that a new instance on the same file store and key
// keeps the sessions of the old one.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *filestore.Store {
		s, err := filestore.New(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := serve(t, open())
	c := newClient(t, first, "x")
	c.post("/login", url.Values{"user": {"alice"}})
	c.post("/count", nil)
	c.post("/api/kv", url.Values{"key": {"k"}, "value": {"v"}})
	first.Close()

	second := serve(t, open())
	c.srv = second // same host, new port: the jar sends the cookie
	checkMe(t, "after the restart", c.me(), "alice", 1)
	var kv map[string]string
	c.json("GET", "/api/kv", nil, &kv)
	if kv["k"] != "v" {
		t.Errorf("after the restart, GET /api/kv = %v", kv)
	}
}

// TestTwoInstancesShareRedis runs two instances with one key on one Redis:
// a session made on one is the same session on the other.
func TestTwoInstancesShareRedis(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
	b := make([]byte, 4)
	rand.Read(b)
	prefix := fmt.Sprintf("kvsession-demo-test-%x:", b)
	t.Cleanup(func() { deleteRedisKeys(t, addr, prefix) })

	var srvs []*httptest.Server
	for range 2 {
		store, closer, err := storeurl.Open(t.Context(), "redis://"+addr+"/0?namespace="+url.QueryEscape(prefix), storeurl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closer.Close() })
		srvs = append(srvs, serve(t, store))
	}
	c := newClient(t, srvs[0], "x")
	c.post("/login", url.Values{"user": {"alice"}})
	c.post("/count", nil)
	c.srv = srvs[1]
	checkMe(t, "on the second instance", c.me(), "alice", 1)
	c.post("/count", nil)
	c.srv = srvs[0]
	checkMe(t, "back on the first", c.me(), "alice", 2)
	if list := c.sessions(); len(list) != 1 || !list[0].Current {
		t.Errorf("sessions = %+v, want one, current", list)
	}
	old := c.cookie()
	c.srv = srvs[1]
	c.post("/logout", nil)
	c.srv = srvs[0]
	checkMe(t, "on the first, the cookie replayed after logout on the second", c.withCookie(old).me(), "", 0)
}

// deleteRedisKeys removes every key under prefix.
func deleteRedisKeys(t *testing.T, addr, prefix string) {
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		client.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("clean up Redis: %v", err)
	}
}

// clock is a settable clock for the application.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// noticeOf returns the text of the page's notice, or "" if it has none.
func noticeOf(page string) string {
	_, rest, ok := strings.Cut(page, `<p class="notice" id="notice" role="status">`)
	if !ok {
		return ""
	}
	text, _, _ := strings.Cut(rest, "</p>")
	return text
}

// TestNotice checks that a visitor whose session ended on the server, or
// expired, or whose cookie does not verify, is told so once, on the page
// and in /api/me; and that nobody else is.
func TestNotice(t *testing.T) {
	clk := &clock{now: time.Now()}
	store, err := filestore.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveConfig(t, store, demoapp.Config{Now: clk.Now})

	// A first visit, and an ordinary session: no notice.
	c := newClient(t, srv, "device-A")
	if me := c.me(); me.Notice != "" || me.Cause != "" {
		t.Errorf("first visit: me = %+v, want no notice", me)
	}
	if _, page := c.do("GET", "/", nil, nil); noticeOf(page) != "" {
		t.Errorf("first visit: page notice %q, want none", noticeOf(page))
	}
	c.post("/login", url.Values{"user": {"alice"}})
	if me := c.me(); me.Notice != "" || me.Cause != "" {
		t.Errorf("logged in: me = %+v, want no notice", me)
	}

	// Logged out from another device: told once in /api/me, then the
	// dead cookie is gone.
	b := newClient(t, srv, "device-B")
	b.post("/login", url.Values{"user": {"alice"}})
	c.post("/logout-others", nil)
	me := b.me()
	if me.User != "" || me.Cause != "ended" || !strings.Contains(me.Notice, "logged out from another device") {
		t.Errorf("after logout from another device: me = %+v, want cause ended and a notice", me)
	}
	if b.cookie() != "" {
		t.Errorf("after the notice the dead cookie is still in the jar")
	}
	if me := b.me(); me.Notice != "" || me.Cause != "" {
		t.Errorf("second request after logout from another device: me = %+v, want no notice", me)
	}

	// The same on the page.
	b.post("/login", url.Values{"user": {"alice"}})
	c.post("/logout-others", nil)
	_, page := b.do("GET", "/", nil, nil)
	if got := noticeOf(page); !strings.Contains(got, "logged out from another device") {
		t.Errorf("page after logout from another device: notice %q", got)
	}
	if _, page := b.do("GET", "/", nil, nil); noticeOf(page) != "" {
		t.Errorf("page, second time: notice %q, want none", noticeOf(page))
	}

	// A form posted with a dead session (a page left open): the POST
	// starts a new session, and the page it returns to tells why.
	b.post("/login", url.Values{"user": {"alice"}})
	c.post("/logout-others", nil)
	resp, _ := b.do("POST", "/count", url.Values{}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /count: status %d, want 303", resp.StatusCode)
	}
	_, page = b.do("GET", "/", nil, nil)
	if got := noticeOf(page); !strings.Contains(got, "logged out from another device") {
		t.Errorf("page after a POST with a dead session: notice %q", got)
	}
	if me := b.me(); me.Notice != "" || me.Count != 1 {
		t.Errorf("after the notice: me = %+v, want count 1 and no notice", me)
	}

	// A login from a dead session is no news: the user just logged in.
	b.post("/login", url.Values{"user": {"alice"}})
	c.post("/logout-others", nil)
	if me := b.post("/login", url.Values{"user": {"alice"}}); me.User != "alice" || me.Notice != "" || me.Cause != "" {
		t.Errorf("login from a dead session: me = %+v, want alice and no notice", me)
	}
	if me := b.me(); me.User != "alice" || me.Notice != "" {
		t.Errorf("after a login from a dead session: me = %+v, want alice and no notice", me)
	}

	// Expired: idle for longer than the idle timeout.
	clk.Advance(25 * time.Hour)
	_, page = c.do("GET", "/", nil, nil)
	if got := noticeOf(page); !strings.Contains(got, "Your session expired") {
		t.Errorf("page after 25 idle hours: notice %q", got)
	}
	if me := c.me(); me.Notice != "" || me.User != "" {
		t.Errorf("after the expiry notice: me = %+v, want anonymous and no notice", me)
	}
	if me := b.me(); me.Cause != "expired" || !strings.Contains(me.Notice, "Your session expired") {
		t.Errorf("/api/me after 25 idle hours: me = %+v, want cause expired", me)
	}

	// A cookie that does not verify.
	x := newClient(t, srv, "x").withCookie("not-a-signed-id")
	if me := x.me(); me.Cause != "invalid_cookie" || me.Notice == "" {
		t.Errorf("a forged cookie: me = %+v, want cause invalid_cookie", me)
	}
	if me := x.me(); me.Notice != "" {
		t.Errorf("a forged cookie, second request: me = %+v, want no notice", me)
	}
}
