package kvsession_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kvsession/kvsession"
)

// tamperCase sends cookie header values that must all be rejected before
// any store call, without a 5xx, giving a fresh session.
func checkRejected(t *testing.T, h *harness, name, cookieHeader string) {
	t.Helper()
	before := h.store.calls()
	rec := newRecorder()
	h.m.Handler(app()).ServeHTTP(rec, newRequest("/get?key=secret", cookieHeader))
	if rec.Code >= 500 {
		t.Errorf("%s: status %d", name, rec.Code)
	}
	if got := h.store.calls() - before; got != 0 {
		t.Errorf("%s: %d store calls for an invalid cookie, want 0", name, got)
	}
	if rec.Body.String() != "" {
		t.Errorf("%s: read %q through an invalid cookie", name, rec.Body.String())
	}
}

func validCookie(t *testing.T, h *harness) string {
	t.Helper()
	c := h.client()
	h.mustDo(c, "/set?key=secret&value=s3cret", "set")
	v := h.sessionCookie(c)
	if v == "" {
		t.Fatal("no cookie")
	}
	if r := h.raw("/get?key=secret", "session="+v); r.body != "s3cret" {
		t.Fatalf("the untampered cookie reads %q, want s3cret", r.body)
	}
	return v
}

func TestTamperedCookiesAreRejectedWithoutStoreCalls(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	v := validCookie(t, h)
	other := validCookie(t, h)

	t.Run("BitFlips", func(t *testing.T) {
		for i := range len(v) {
			for bit := range 8 {
				b := []byte(v)
				b[i] ^= 1 << bit
				checkRejected(t, h, "flip", "session="+string(b))
			}
		}
	})
	t.Run("Truncation", func(t *testing.T) {
		for i := range len(v) {
			checkRejected(t, h, "truncate", "session="+v[:i])
		}
	})
	t.Run("Extension", func(t *testing.T) {
		for _, ext := range []string{v + "A", v + "=", "A" + v, v + v, v + ".", v + "\x00"} {
			checkRejected(t, h, "extend", "session="+ext)
		}
	})
	t.Run("MACSplice", func(t *testing.T) {
		id1, mac1, _ := strings.Cut(v, ".")
		id2, mac2, _ := strings.Cut(other, ".")
		checkRejected(t, h, "splice", "session="+id1+"."+mac2)
		checkRejected(t, h, "splice", "session="+id2+"."+mac1)
	})
	t.Run("NameSwap", func(t *testing.T) {
		// A cookie issued under another name, with the same key, does not
		// verify under this one: the name is inside the MAC.
		hOther := newHarness(t, kvsession.Config{CookieName: "other"})
		rec := newRecorder()
		hOther.m.Handler(app()).ServeHTTP(rec, newRequest("/set?key=a&value=b", ""))
		ck := setCookieFor(response{cookies: rec.Result().Cookies()}, "other")
		if ck == nil {
			t.Fatal("no cookie from the other manager")
		}
		checkRejected(t, h, "name swap", "session="+ck.Value)
	})
	t.Run("HostileValues", func(t *testing.T) {
		for _, hv := range []string{
			"", " ", "\"\"", strings.Repeat("A", 5000), "\x00", "a\r\nSet-Cookie: x=y", "../../etc/passwd",
			"ключ", "%00", strings.Repeat(".", 87), "null", "undefined", "{\"id\":1}",
		} {
			checkRejected(t, h, "hostile", "session="+hv)
		}
		checkRejected(t, h, "many cookies", strings.Repeat("session=x; ", 2000))
	})
	t.Run("PercentEncodedName", func(t *testing.T) {
		hh := newHarness(t, kvsession.Config{CookieName: "__Host-session"})
		rec := newRecorder()
		hh.m.Handler(app()).ServeHTTP(rec, newRequest("/set?key=secret&value=s3cret", ""))
		ck := setCookieFor(response{cookies: rec.Result().Cookies()}, "__Host-session")
		if ck == nil {
			t.Fatal("no __Host- cookie")
		}
		checkRejected(t, hh, "percent-encoded name", "%5F%5FHost-session="+ck.Value)
		checkRejected(t, hh, "prefix-less name", "session="+ck.Value)
	})
	t.Run("RemovedKey", func(t *testing.T) {
		// A cookie signed by a key that is no longer configured is invalid.
		hNew := newHarness(t, kvsession.Config{Secrets: [][]byte{[]byte("a-new-key-0123456789abcdefghijkl")}})
		checkRejected(t, hNew, "removed key", "session="+v)
	})
}

// Several cookies with the session's name: the first that verifies wins,
// whatever precedes it.
func TestDuplicateCookies(t *testing.T) {
	h := newHarness(t, kvsession.Config{})
	v := validCookie(t, h)
	w := validCookie(t, h)
	for _, tc := range []struct{ header, want string }{
		{"session=garbage; session=" + v, "s3cret"},
		{"session=" + v + "; session=" + w, "s3cret"},
		{"other=1; session=\"" + v + "\"", "s3cret"},
	} {
		r := h.raw("/get?key=secret", tc.header)
		if r.code != http.StatusOK || r.body != tc.want {
			t.Errorf("Cookie %q: %d %q, want %q", tc.header, r.code, r.body, tc.want)
		}
	}
	// The session used is the first valid one: writes go to it.
	h.raw("/set?key=secret&value=changed", "session="+w+"; session="+v)
	if r := h.raw("/get?key=secret", "session="+w); r.body != "changed" {
		t.Errorf("write with two valid cookies went elsewhere: first reads %q", r.body)
	}
	if r := h.raw("/get?key=secret", "session="+v); r.body != "s3cret" {
		t.Errorf("write with two valid cookies changed the second: %q", r.body)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey := []byte("the-old-key-0123456789abcdefghij")
	newKey := []byte("the-new-key-0123456789abcdefghij")
	clk := newClock()
	store := newFaultStore(clk.Now)
	mOld, _ := kvsession.New(store, kvsession.Config{Secrets: [][]byte{oldKey}, Now: clk.Now})
	mBoth, _ := kvsession.New(store, kvsession.Config{Secrets: [][]byte{newKey, oldKey}, Now: clk.Now})
	mNew, _ := kvsession.New(store, kvsession.Config{Secrets: [][]byte{newKey}, Now: clk.Now})

	rec := newRecorder()
	mOld.Handler(app()).ServeHTTP(rec, newRequest("/set?key=secret&value=s3cret", ""))
	oldCookie := strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0]

	// While the old key is listed, its cookies work and are re-signed.
	rec = newRecorder()
	mBoth.Handler(app()).ServeHTTP(rec, newRequest("/get?key=secret", oldCookie))
	if rec.Body.String() != "s3cret" {
		t.Fatalf("old-key cookie under rotation reads %q", rec.Body.String())
	}
	resigned := strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0]
	if resigned == "" || resigned == oldCookie {
		t.Fatalf("old-key cookie was not re-signed: %q", resigned)
	}
	// A change made with an old-key cookie re-signs it too.
	rec = newRecorder()
	mBoth.Handler(app()).ServeHTTP(rec, newRequest("/set?key=other&value=1", oldCookie))
	if got := strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0]; got != resigned {
		t.Errorf("update with an old-key cookie sent %q, want the re-signed %q", got, resigned)
	}
	rec = newRecorder()
	mNew.Handler(app()).ServeHTTP(rec, newRequest("/get?key=secret", resigned))
	if rec.Body.String() != "s3cret" {
		t.Errorf("re-signed cookie under the new key alone reads %q", rec.Body.String())
	}
	// Once the old key is gone, old cookies give a fresh session, not a 5xx.
	rec = newRecorder()
	mNew.Handler(app()).ServeHTTP(rec, newRequest("/get?key=secret", oldCookie))
	if rec.Code != http.StatusOK || rec.Body.String() != "" {
		t.Errorf("old-key cookie after removal: %d %q, want 200 and an empty session", rec.Code, rec.Body.String())
	}
}

// A cookie planted under the session cookie's name next to a Unicode space
// ("\u2000__Host-session") is an ordinary cookie that a sibling subdomain
// can set, even over plain HTTP. It must never pass for the __Host- cookie:
// alone it gives a fresh session with no store call; next to the real
// cookie, the real one is used, whichever comes first (a planted cookie
// with a longer Path does). This is the class of PortSwigger's "Cookie
// Chaos" (2025): every rune strings.TrimSpace strips, and invisible ones.
func TestUnicodeSpacedNameIsAnotherCookie(t *testing.T) {
	h := newHarness(t, kvsession.Config{CookieName: "__Host-session"})
	session := func(value string) string {
		t.Helper()
		c := h.client()
		h.mustDo(c, "/set?key=secret&value="+value, "set")
		v := h.sessionCookie(c)
		if v == "" {
			t.Fatal("no __Host-session cookie")
		}
		return v
	}
	attacker, victim := session("attacker"), session("victim")
	spaces := []string{"\u0085", "\u00a0", "\u1680", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u200b", "\ufeff"}
	for r := '\u2000'; r <= '\u200a'; r++ {
		spaces = append(spaces, string(r))
	}
	for _, sp := range spaces {
		for _, planted := range []string{sp + "__Host-session", "__Host-session" + sp, sp + "__Host-session" + sp} {
			checkRejected(t, h, fmt.Sprintf("%q alone", planted), planted+"="+attacker)
			for _, header := range []string{
				planted + "=" + attacker + "; __Host-session=" + victim,
				"__Host-session=" + victim + "; " + planted + "=" + attacker,
			} {
				if r := h.raw("/get?key=secret", header); r.code != http.StatusOK || r.body != "victim" {
					t.Errorf("Cookie %q: %d %q, want the victim's own session", header, r.code, r.body)
				}
			}
		}
	}
}

// With the defaults (Secure, Path "/", no Domain) the cookie is a __Host-
// cookie, which browsers let only this origin set over HTTPS; other
// settings get the tightest prefix they allow.
func TestDefaultCookieName(t *testing.T) {
	for _, tc := range []struct {
		cfg  kvsession.Config
		want string
	}{
		{kvsession.Config{}, "__Host-session"},
		{kvsession.Config{CookiePath: "/app"}, "__Secure-session"},
		{kvsession.Config{CookieDomain: "example.com"}, "__Secure-session"},
		{kvsession.Config{InsecureCookie: true}, "session"},
		{kvsession.Config{CookieName: "sid"}, "sid"},
	} {
		tc.cfg.Secrets = [][]byte{testKey}
		m, err := kvsession.New(newFaultStore(newClock().Now), tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.CookieName(); got != tc.want {
			t.Errorf("CookieName() with %+v = %q, want %q", tc.cfg, got, tc.want)
		}
		rec := newRecorder()
		m.Handler(app()).ServeHTTP(rec, newRequest("/set?key=a&value=b", ""))
		if ck := setCookieFor(response{cookies: rec.Result().Cookies()}, tc.want); ck == nil {
			t.Errorf("Set-Cookie %q, want a cookie named %q", rec.Result().Header.Values("Set-Cookie"), tc.want)
		}
	}
}
