package kvsession_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
)

func TestNewSessionRoundTrip(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()

	r := h.mustDo(c, "/count", "1")
	ck := setCookieFor(r, "session")
	if ck == nil {
		t.Fatal("first write sent no session cookie")
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("cookie attributes = %+v, want Secure HttpOnly SameSite=Lax Path=/ no Domain", ck)
	}
	if ck.MaxAge != 0 || !ck.Expires.IsZero() {
		t.Errorf("default cookie has MaxAge %d Expires %v, want a browser-session cookie", ck.MaxAge, ck.Expires)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := r.header.Values("Vary"); !containsAny(strings.Join(got, ","), "Cookie") {
		t.Errorf("Vary = %q, want Cookie", got)
	}
	h.mustDo(c, "/count", "2")
	h.mustDo(c, "/count", "3")
	if n := h.store.Len(); n != 1 {
		t.Errorf("store holds %d records, want 1", n)
	}
}

// K2: a request that never touches the session costs nothing; one that
// only reads writes nothing and sends no cookie.
func TestReadOnlyAndUntouchedRequests(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/set?key=a&value=1", "set")

	before := h.store.calls()
	r := h.mustDo(c, "/untouched", "ok")
	if got := h.store.calls() - before; got != 0 {
		t.Errorf("untouched request made %d store calls, want 0", got)
	}
	if hasSetCookie(r) {
		t.Errorf("untouched request sent Set-Cookie %q", r.header.Values("Set-Cookie"))
	}

	gets, writes := h.store.gets.Load(), h.store.writes()
	r = h.mustDo(c, "/get?key=a", "1")
	if g, w := h.store.gets.Load()-gets, h.store.writes()-writes; g != 1 || w != 0 {
		t.Errorf("read-only request made %d reads and %d writes, want 1 and 0", g, w)
	}
	if hasSetCookie(r) {
		t.Errorf("read-only request sent Set-Cookie")
	}

	// A change to a browser-session cookie's session saves the data and
	// leaves the cookie alone: it would be sent again unchanged.
	writes = h.store.writes()
	r = h.mustDo(c, "/set?key=a&value=2", "set")
	if h.store.writes()-writes != 1 || hasSetCookie(r) {
		t.Errorf("update: %d writes, Set-Cookie %q; want 1 write and no cookie", h.store.writes()-writes, r.header.Values("Set-Cookie"))
	}
	h.mustDo(c, "/get?key=a", "2")
	h.mustDo(c, "/set?key=a&value=1", "set")

	// A visitor without a cookie who only reads gets no session at all.
	fresh := h.client()
	calls := h.store.calls()
	r = h.mustDo(fresh, "/get?key=a", "")
	if hasSetCookie(r) || h.store.calls() != calls {
		t.Errorf("read by a new visitor: Set-Cookie %v, %d store calls; want none", hasSetCookie(r), h.store.calls()-calls)
	}
	// Writing the same value again is no change and costs no write.
	writes = h.store.writes()
	h.mustDo(c, "/set?key=a&value=1", "set")
	if w := h.store.writes() - writes; w != 0 {
		t.Errorf("setting an unchanged value made %d writes, want 0", w)
	}
}

// K3: the session is saved before the first byte of the body, so a
// handler that streams still sends the cookie.
func TestSavedBeforeFirstByte(t *testing.T) {
	clk := newClock()
	store := newFaultStore(clk.Now)
	m, err := kvsession.New(store, kvsession.Config{Secrets: [][]byte{testKey}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var setsAtWrite int64
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kvsession.From(r).Set("k", "v")
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("first"))
		setsAtWrite = store.sets.Load()
		http.NewResponseController(w).Flush()
		w.Write([]byte(" second"))
	}))
	rec := newRecorder()
	h.ServeHTTP(rec, newRequest("/", ""))
	if setsAtWrite != 1 {
		t.Errorf("store writes when the first byte went out = %d, want 1", setsAtWrite)
	}
	if store.sets.Load() != 1 {
		t.Errorf("store writes = %d, want exactly 1", store.sets.Load())
	}
	if rec.Result().Header.Get("Set-Cookie") == "" || rec.Body.String() != "first second" {
		t.Errorf("response: cookie %q body %q", rec.Result().Header.Get("Set-Cookie"), rec.Body.String())
	}
}

// K4: an unknown ID is never adopted.
func TestUnknownIDNotAdopted(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/count", "1")
	old := h.sessionCookie(c)
	h.mustDo(c, "/destroy", "destroyed")

	r := h.raw("/count", "session="+old)
	if r.body != "1" {
		t.Fatalf("count with a destroyed session's cookie = %q, want a fresh session (1)", r.body)
	}
	ck := setCookieFor(r, "session")
	if ck == nil || ck.Value == old {
		t.Errorf("write on an unknown ID: cookie %v, want a new ID, never the presented one", ck)
	}
}

// K5: Regenerate gives a new ID, keeps the data, and kills the old ID.
func TestRegenerate(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/set?key=name&value=ada", "set")
	old := h.sessionCookie(c)
	h.mustDo(c, "/regenerate", "regenerated")
	nw := h.sessionCookie(c)
	if nw == old || nw == "" {
		t.Fatalf("cookie after Regenerate = %q, want a new one (old %q)", nw, old)
	}
	h.mustDo(c, "/get?key=name", "ada")
	if r := h.raw("/get?key=name", "session="+old); r.body != "" {
		t.Errorf("old ID after Regenerate still reads %q", r.body)
	}
	if n := h.store.Len(); n != 1 {
		t.Errorf("store holds %d records after Regenerate, want 1", n)
	}
}

// K6: Destroy deletes the data at once and clears the cookie.
func TestDestroy(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/set?key=name&value=ada", "set")
	old := h.sessionCookie(c)
	r := h.mustDo(c, "/destroy", "destroyed")
	ck := setCookieFor(r, "session")
	if ck == nil || ck.MaxAge >= 0 && ck.Value != "" {
		t.Errorf("Destroy sent cookie %v, want one that clears it", ck)
	}
	if h.sessionCookie(c) != "" {
		t.Errorf("browser still holds a session cookie after Destroy")
	}
	if n := h.store.Len(); n != 0 {
		t.Errorf("store holds %d records after Destroy, want 0", n)
	}
	if r := h.raw("/get?key=name", "session="+old); r.body != "" {
		t.Errorf("replayed cookie after Destroy reads %q, want an empty session", r.body)
	}
}

// K7: lifetime (absolute) and idle timeout, enforced on the server.
func TestExpiry(t *testing.T) {
	t.Run("Lifetime", func(t *testing.T) {
		h := newHarness(t, kvsession.Config{Lifetime: time.Hour})
		c := h.client()
		h.mustDo(c, "/count", "1")
		for range 5 { // activity does not extend an absolute lifetime
			h.clock.Advance(10 * time.Minute)
			h.mustDo(c, "/count", "")
		}
		h.clock.Advance(11 * time.Minute)
		h.mustDo(c, "/count", "1")
	})
	t.Run("Idle", func(t *testing.T) {
		h := newHarness(t, kvsession.Config{Lifetime: 24 * time.Hour, IdleTimeout: 30 * time.Minute})
		c := h.client()
		h.mustDo(c, "/count", "1")
		for i := range 10 { // activity within the idle timeout keeps it alive
			h.clock.Advance(20 * time.Minute)
			h.mustDo(c, "/get?key=count", "")
			_ = i
		}
		h.mustDo(c, "/count", "2")
		h.clock.Advance(31 * time.Minute)
		h.mustDo(c, "/count", "1")
	})
	t.Run("IdleRefreshIsRateLimited", func(t *testing.T) {
		h := newHarness(t, kvsession.Config{IdleTimeout: 30 * time.Minute, IdleRefresh: 5 * time.Minute})
		c := h.client()
		h.mustDo(c, "/count", "1")
		touches, sets, cas := h.store.touches.Load(), h.store.sets.Load(), h.store.cas.Load()
		for range 10 {
			h.clock.Advance(time.Minute)
			r := h.mustDo(c, "/get?key=count", "")
			if hasSetCookie(r) {
				t.Fatal("idle refresh sent a cookie")
			}
		}
		if got := h.store.touches.Load() - touches; got != 2 {
			t.Errorf("10 reads over 10 minutes with IdleRefresh 5m made %d touches, want 2", got)
		}
		if h.store.sets.Load() != sets || h.store.cas.Load() != cas {
			t.Errorf("idle refresh rewrote the data")
		}
	})
	t.Run("ServerSideWhateverTheCookie", func(t *testing.T) {
		h := newHarness(t, kvsession.Config{Lifetime: time.Hour, Permanent: true})
		c := h.client()
		h.mustDo(c, "/count", "1")
		cookie := h.sessionCookie(c)
		h.clock.Advance(2 * time.Hour)
		if r := h.raw("/count", "session="+cookie); r.body != "1" {
			t.Errorf("an expired session's cookie replayed still counts: %q", r.body)
		}
	})
}

func TestPermanentCookies(t *testing.T) {
	h := newHarness(t, kvsession.Config{Lifetime: 2 * time.Hour})
	c := h.client()
	r := h.mustDo(c, "/permanent?on=1", "ok")
	ck := setCookieFor(r, "session")
	if ck == nil || ck.MaxAge != 7200 {
		t.Fatalf("permanent session cookie = %v, want Max-Age 7200", ck)
	}
	h.clock.Advance(time.Hour)
	r = h.mustDo(c, "/count", "1")
	if ck := setCookieFor(r, "session"); ck == nil || ck.MaxAge != 3600 {
		t.Errorf("permanent cookie after an hour = %v, want Max-Age 3600 (the lifetime is absolute)", ck)
	}
	r = h.mustDo(c, "/permanent?on=0", "ok")
	if ck := setCookieFor(r, "session"); ck == nil || ck.MaxAge != 0 {
		t.Errorf("cookie after SetPermanent(false) = %v, want a browser-session cookie", ck)
	}

	hp := newHarness(t, kvsession.Config{Permanent: true})
	if ck := setCookieFor(hp.mustDo(hp.client(), "/count", "1"), "session"); ck == nil || ck.MaxAge != 86400 {
		t.Errorf("cookie with Config.Permanent = %v, want Max-Age 86400", ck)
	}
}

// K10: two applications share a store without collisions.
func TestKeyPrefixesShareAStore(t *testing.T) {
	clk := newClock()
	store := newFaultStore(clk.Now)
	m1, _ := kvsession.New(store, kvsession.Config{Secrets: [][]byte{testKey}, KeyPrefix: "app1:", Now: clk.Now})
	m2, _ := kvsession.New(store, kvsession.Config{Secrets: [][]byte{testKey}, KeyPrefix: "app2:", Now: clk.Now})
	rec := newRecorder()
	m1.Handler(app()).ServeHTTP(rec, newRequest("/set?key=a&value=one", ""))
	cookie := rec.Result().Header.Get("Set-Cookie")
	value := strings.TrimPrefix(strings.Split(cookie, ";")[0], "session=")
	rec2 := newRecorder()
	m2.Handler(app()).ServeHTTP(rec2, newRequest("/get?key=a", "session="+value))
	if rec2.Body.String() != "" {
		t.Errorf("app2 read app1's session through the same cookie: %q", rec2.Body.String())
	}
	var keys []string
	store.Keys(t.Context(), "", func(k string) error { keys = append(keys, k); return nil })
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "app1:") {
		t.Errorf("store keys = %q, want one under app1:", keys)
	}
}

// K11: values of ordinary Go types round-trip.
func TestValuesRoundTrip(t *testing.T) {
	type profile struct {
		Name  string
		Tags  []string
		Since time.Time
		Score float64
	}
	want := profile{"Ada", []string{"a", "b"}, time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC), 1.5}
	clk := newClock()
	store := newFaultStore(clk.Now)
	m, _ := kvsession.New(store, kvsession.Config{Secrets: [][]byte{testKey}, Now: clk.Now})

	var cookie string
	step := func(fn func(s *kvsession.Session)) {
		rec := newRecorder()
		m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fn(kvsession.From(r))
		})).ServeHTTP(rec, newRequest("/", cookie))
		if c := rec.Result().Header.Get("Set-Cookie"); c != "" {
			cookie = strings.Split(c, ";")[0]
		}
	}
	step(func(s *kvsession.Session) {
		for k, v := range map[string]any{
			"string": "héllo \"quoted\" \n", "int": 1 << 60, "uint8": uint8(200), "bool": true,
			"time": want.Since, "struct": want, "map": map[string]int{"x": 1}, "slice": []float64{0.5, 2},
		} {
			if err := s.Set(k, v); err != nil {
				t.Fatalf("Set(%s): %v", k, err)
			}
		}
	})
	step(func(s *kvsession.Session) {
		check := func(name string, ok bool, got any) {
			if !ok {
				t.Errorf("%s came back as %#v", name, got)
			}
		}
		str, _ := kvsession.Get[string](s, "string")
		check("string", str == "héllo \"quoted\" \n", str)
		i, _ := kvsession.Get[int](s, "int")
		check("int", i == 1<<60, i)
		u, _ := kvsession.Get[uint8](s, "uint8")
		check("uint8", u == 200, u)
		b, _ := kvsession.Get[bool](s, "bool")
		check("bool", b, b)
		tm, _ := kvsession.Get[time.Time](s, "time")
		check("time", tm.Equal(want.Since), tm)
		p, _ := kvsession.Get[profile](s, "struct")
		check("struct", p.Name == want.Name && p.Since.Equal(want.Since) && len(p.Tags) == 2 && p.Score == 1.5, p)
		mp, _ := kvsession.Get[map[string]int](s, "map")
		check("map", mp["x"] == 1, mp)
		sl, _ := kvsession.Get[[]float64](s, "slice")
		check("slice", len(sl) == 2 && sl[1] == 2, sl)
		if _, err := kvsession.Get[int](s, "string"); err == nil {
			t.Error("Get[int] of a string value gave no error")
		}
		if _, err := kvsession.Get[int](s, "absent"); err == nil || !strings.Contains(err.Error(), "no value") {
			t.Errorf("Get of an absent key = %v, want ErrNoValue", err)
		}
		keys, _ := s.Names()
		check("keys", len(keys) == 8 && keys[0] == "bool", keys)
	})
}

func TestSetRejectsUnencodableAndDeepValues(t *testing.T) {
	clk := newClock()
	m, _ := kvsession.New(newFaultStore(clk.Now), kvsession.Config{Secrets: [][]byte{testKey}, Now: clk.Now})
	m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if err := s.Set("f", func() {}); err == nil {
			t.Error("Set of a func gave no error")
		}
		var deep any = 1
		for range 100 {
			deep = []any{deep}
		}
		if err := s.Set("deep", deep); err == nil {
			t.Error("Set of a value nested 100 deep gave no error")
		}
		if s.IsModified() {
			t.Error("failed Sets modified the session")
		}
	})).ServeHTTP(newRecorder(), newRequest("/", ""))
}

func TestNoMiddleware(t *testing.T) {
	s := kvsession.From(newRequest("/", ""))
	if s != nil {
		t.Fatal("From returned a session without the middleware")
	}
	if err := s.Set("a", 1); err != kvsession.ErrNoSession {
		t.Errorf("Set on a nil session = %v, want ErrNoSession", err)
	}
	if _, err := kvsession.Get[int](s, "a"); err != kvsession.ErrNoSession {
		t.Errorf("Get on a nil session = %v, want ErrNoSession", err)
	}
}

// Config.Header: an API client without cookies carries the token in a
// header; without the option, that header is ignored.
func TestHeaderTransport(t *testing.T) {
	h := newHarness(t, kvsession.Config{Header: "x-session-token"})
	if got := h.m.TokenHeader(); got != "X-Session-Token" {
		t.Errorf("TokenHeader() = %q, want the canonical X-Session-Token", got)
	}
	rec := newRecorder()
	start := newRequest("/set?key=a&value=b", "")
	start.Header["X-Session-Token"] = []string{""} // an API client starting a session
	h.m.Handler(app()).ServeHTTP(rec, start)
	token := rec.Header().Get("X-Session-Token")
	if token == "" {
		t.Fatal("no token in the response header")
	}
	req := newRequest("/get?key=a", "")
	req.Header.Set("X-Session-Token", token)
	rec = newRecorder()
	h.m.Handler(app()).ServeHTTP(rec, req)
	if rec.Body.String() != "b" {
		t.Errorf("read with the header token = %q, want b", rec.Body.String())
	}

	plain := newHarness(t, kvsession.Config{})
	rec = newRecorder()
	plain.m.Handler(app()).ServeHTTP(rec, newRequest("/set?key=a&value=b", ""))
	cookie := setCookieFor(response{cookies: rec.Result().Cookies()}, "session")
	for _, req := range []*http.Request{
		newRequest("/get?key=a&session="+cookie.Value, ""),
		func() *http.Request {
			r := newRequest("/get?key=a", "")
			r.Header.Set("X-Session-Token", cookie.Value)
			return r
		}(),
	} {
		before := plain.store.calls()
		rec = newRecorder()
		plain.m.Handler(app()).ServeHTTP(rec, req)
		if rec.Body.String() != "" || plain.store.calls() != before {
			t.Errorf("an ID outside the cookie was used: read %q", rec.Body.String())
		}
	}
}

// The token goes back in Config.Header only to an API client, one that sent
// the header and no cookie that verified: never to a browser's cookie-only
// request, and never to a request whose cookie verified even if a page
// script added the header, or a script could read the HttpOnly token.
func TestHeaderTokenOnlyForHeaderClients(t *testing.T) {
	h := newHarness(t, kvsession.Config{Header: "X-Session-Token"})
	type req struct {
		path   string
		cookie string
		header []string // nil: no header at all
	}
	serve := func(q req) *httptest.ResponseRecorder {
		t.Helper()
		r := newRequest(q.path, q.cookie)
		if q.header != nil {
			r.Header["X-Session-Token"] = q.header
		}
		rec := newRecorder()
		h.m.Handler(app()).ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("%+v: status %d", q, rec.Code)
		}
		return rec
	}
	cookieOf := func(rec *httptest.ResponseRecorder) string {
		t.Helper()
		ck := setCookieFor(response{cookies: rec.Result().Cookies()}, "session")
		if ck == nil {
			t.Fatal("no Set-Cookie")
		}
		return "session=" + ck.Value
	}
	// Browsers: cookie only, or the cookie plus a header a script added.
	newRec := serve(req{path: "/set?key=a&value=b"})
	cookie := cookieOf(newRec)
	browser := []struct {
		name string
		rec  *httptest.ResponseRecorder
	}{{"new session, no header", newRec}}
	for _, hdr := range [][]string{nil, {""}, {"forged"}, {strings.TrimPrefix(cookie, "session=")}} {
		for _, path := range []string{"/permanent?on=1", "/regenerate", "/permanent?on=0", "/login?user=u"} {
			rec := serve(req{path: path, cookie: cookie, header: hdr})
			cookie = cookieOf(rec)
			browser = append(browser, struct {
				name string
				rec  *httptest.ResponseRecorder
			}{fmt.Sprintf("%s with header %q", path, hdr), rec})
		}
	}
	browser = append(browser, struct {
		name string
		rec  *httptest.ResponseRecorder
	}{"destroy with an empty header", serve(req{path: "/destroy", cookie: cookie, header: []string{""}})})
	for _, b := range browser {
		if !hasSetCookie(response{header: b.rec.Header()}) {
			t.Errorf("%s: no Set-Cookie", b.name)
		}
		if v, ok := b.rec.Header()["X-Session-Token"]; ok {
			t.Errorf("%s: a cookie request got the token header %q", b.name, v)
		}
	}

	// API clients: the header, empty to start, and no valid cookie.
	rec := serve(req{path: "/set?key=a&value=b", cookie: "session=garbage", header: []string{""}})
	token := rec.Header().Get("X-Session-Token")
	if token == "" {
		t.Fatal("an API client starting a session got no token")
	}
	rec = serve(req{path: "/regenerate", header: []string{token}})
	next := rec.Header().Get("X-Session-Token")
	if next == "" || next == token {
		t.Fatalf("regenerate through the header gave token %q, want a new one", next)
	}
	if got := serve(req{path: "/get?key=a", header: []string{next}}).Body.String(); got != "b" {
		t.Errorf("the regenerated token reads %q, want b", got)
	}
	rec = serve(req{path: "/destroy", header: []string{next}})
	if v, ok := rec.Header()["X-Session-Token"]; !ok || len(v) != 1 || v[0] != "" {
		t.Errorf("destroy through the header: token header %q, want present and empty", v)
	}
}

func TestSessionSizeLimit(t *testing.T) {
	h := newHarness(t, kvsession.Config{MaxRecordBytes: 4096})
	var errs []error
	h.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		errs = append(errs, s.Set("small", strings.Repeat("x", 1000)))
		errs = append(errs, s.Set("big", strings.Repeat("x", 4000)))
		errs = append(errs, s.Set("small2", strings.Repeat("x", 1000)))
	})).ServeHTTP(newRecorder(), newRequest("/", ""))
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("Sets within the limit failed: %v", errs)
	}
	if !errorIs(errs[1], kvsession.ErrTooLarge) {
		t.Errorf("Set above MaxRecordBytes = %v, want ErrTooLarge", errs[1])
	}
	var keys []string
	h.store.Keys(t.Context(), "", func(k string) error { keys = append(keys, k); return nil })
	if len(keys) != 1 {
		t.Fatalf("store keys = %q, want the one session saved without the oversized value", keys)
	}
	e, _ := h.store.Get(t.Context(), keys[0])
	if len(e.Value) > 4096 || len(e.Value) < 2000 {
		t.Errorf("stored record is %d bytes", len(e.Value))
	}
}

func TestManagerKey(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/count", "1")
	key, err := h.m.StoreKey(h.sessionCookie(c))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Get(t.Context(), key); err != nil {
		t.Errorf("Key of the client's cookie names no record: %v", err)
	}
	if _, err := h.m.StoreKey("forged"); !errorIs(err, kvsession.ErrInvalidCookie) {
		t.Errorf("Key of a forged cookie = %v, want ErrInvalidCookie", err)
	}
	if err := h.m.Revoke(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	h.mustDo(c, "/count", "1")
}

func TestManagerValues(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/set?key=name&value=ada", "set")
	key, _ := h.m.StoreKey(h.sessionCookie(c))
	values, err := h.m.Values(t.Context(), key)
	if err != nil || string(values["name"]) != `"ada"` || len(values) != 1 {
		t.Errorf("Values = %s, %v; want name \"ada\"", values, err)
	}
	if _, err := h.m.Values(t.Context(), "s:absent"); !errorIs(err, kvsession.ErrNotFound) {
		t.Errorf("Values of a missing key = %v, want ErrNotFound", err)
	}
}

// A conflict on a store that returns the current record costs one extra
// write and no extra read, and both changes land.
func TestConflictMergeCost(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	c := h.client()
	h.mustDo(c, "/set?key=a&value=1", "set")
	cookie := "session=" + h.sessionCookie(c)

	loaded, proceed, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		h.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := kvsession.From(r)
			s.Has("a")
			close(loaded)
			<-proceed
			s.Set("b", "2")
		})).ServeHTTP(newRecorder(), newRequest("/", cookie))
	}()
	<-loaded
	h.m.Handler(app()).ServeHTTP(newRecorder(), newRequest("/set?key=c&value=3", cookie))
	gets, cas := h.store.gets.Load(), h.store.cas.Load()
	close(proceed)
	<-done
	if g, w := h.store.gets.Load()-gets, h.store.cas.Load()-cas; g != 0 || w != 2 {
		t.Errorf("the conflicting save made %d reads and %d compare-and-swaps, want 0 and 2", g, w)
	}
	rec := newRecorder()
	h.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, _ := kvsession.From(r).Names()
		fmt.Fprint(w, keys)
	})).ServeHTTP(rec, newRequest("/", cookie))
	if rec.Body.String() != "[a b c]" {
		t.Errorf("after the merge the session holds %s, want [a b c]", rec.Body.String())
	}
}

// Sessions work at every ID size Config.IDBits allows, shorter and longer
// than the default.
func TestIDSizes(t *testing.T) {
	for _, bits := range []int{128, 256, 1024} {
		h := newHarness(t, kvsession.Config{IDBits: bits})
		c := h.client()
		h.mustDo(c, "/count", "1")
		h.mustDo(c, "/count", "2")
		value := h.sessionCookie(c)
		id, _, _ := strings.Cut(value, ".")
		if want := base64.RawURLEncoding.EncodedLen(bits / 8); len(id) != want {
			t.Errorf("IDBits %d: the cookie's ID has %d characters, want %d", bits, len(id), want)
		}
	}
}

// Session metadata is bounded whatever the request carries: proxy
// middleware often copies a client-supplied X-Forwarded-For into
// RemoteAddr, so only a parsed IP address is kept, and the user agent is
// cut to 512 bytes at a UTF-8 boundary.
func TestMetadataIsBounded(t *testing.T) {
	h := newHarness(t, kvsession.Config{RecordRemoteAddr: true})
	huge := strings.Repeat("1.2.3.4, ", 1<<17) // 1.1 MB
	for _, tc := range []struct{ remote, ua, wantRemote, wantUA string }{
		{"192.0.2.1:54321", "curl/8", "192.0.2.1", "curl/8"},
		{"[2001:db8::1]:443", "", "2001:db8::1", ""},
		{"[fe80::1%" + strings.Repeat("z", 10000) + "]:80", "", "fe80::1", ""},
		{"[::ffff:192.0.2.7]:80", "", "192.0.2.7", ""},
		{"203.0.113.9", "", "203.0.113.9", ""},
		{huge, strings.Repeat("é", 1<<19), "", strings.Repeat("é", 256)},
		{"not an address\x00\r\n", "x" + strings.Repeat("€", 200), "", "x" + strings.Repeat("€", 170)},
	} {
		r := newRequest("/login?user=meta", "")
		r.RemoteAddr = tc.remote
		r.Header.Set("User-Agent", tc.ua)
		var size int
		h.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := kvsession.From(r)
			if err := s.SetUser("meta"); err != nil {
				t.Fatal(err)
			}
		})).ServeHTTP(newRecorder(), r)
		infos, err := h.m.UserSessions(t.Context(), "meta")
		if err != nil || len(infos) != 1 {
			t.Fatalf("UserSessions = %d, %v; want 1", len(infos), err)
		}
		info := infos[0]
		if info.RemoteAddr != tc.wantRemote || info.UserAgent != tc.wantUA {
			t.Errorf("RemoteAddr %.40q, UA %.40q: stored %.60q, %d-byte UA; want %q, %d bytes", tc.remote, tc.ua, info.RemoteAddr, len(info.UserAgent), tc.wantRemote, len(tc.wantUA))
		}
		vals, err := h.m.Values(t.Context(), info.Key)
		if err != nil {
			t.Fatal(err)
		}
		size = len(info.UserAgent) + len(info.RemoteAddr) + len(vals)
		if size > 600 {
			t.Errorf("metadata of %d bytes stored for a %d-byte RemoteAddr", size, len(tc.remote))
		}
		if _, err := h.m.RevokeUser(t.Context(), "meta", false); err != nil {
			t.Fatal(err)
		}
	}
}

// SetUser refuses a user ID over MaxUserBytes and changes nothing; one of
// exactly MaxUserBytes works.
func TestSetUserBound(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	for _, tc := range []struct {
		n       int
		wantErr bool
	}{{kvsession.MaxUserBytes, false}, {kvsession.MaxUserBytes + 1, true}, {1 << 20, true}} {
		user := strings.Repeat("u", tc.n)
		h.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := kvsession.From(r)
			err := s.SetUser(user)
			if got := errors.Is(err, kvsession.ErrInvalidUser); got != tc.wantErr {
				t.Errorf("SetUser(%d bytes) = %v, want ErrInvalidUser: %v", tc.n, err, tc.wantErr)
			}
			if got, _ := s.User(); tc.wantErr && got != "" {
				t.Errorf("a refused SetUser bound the session to %d bytes", len(got))
			}
		})).ServeHTTP(newRecorder(), newRequest("/", ""))
	}
}
