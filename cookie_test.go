package kvsession

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
)

func testSigner(keys ...string) *signer {
	var kb [][]byte
	for _, k := range keys {
		kb = append(kb, []byte(k))
	}
	return newSigner("session", 32, kb)
}

var (
	key1 = "key-one-0123456789abcdefghijklmn"
	key2 = "key-two-0123456789abcdefghijklmn"
)

func TestSignVerify(t *testing.T) {
	s := testSigner(key1)
	id := bytes.Repeat([]byte{0xAB}, 32)
	v := s.sign(id)
	if len(v) != s.valLen || strings.ContainsAny(v, "=+/ ;,\"") {
		t.Errorf("cookie value %q: want %d URL-safe characters without padding", v, s.valLen)
	}
	got, stale := s.verify(nil, v)
	if !bytes.Equal(got, id) || stale {
		t.Errorf("verify(sign(id)) = %x, stale %v", got, stale)
	}

	rotated := testSigner(key2, key1)
	got, stale = rotated.verify(nil, v)
	if !bytes.Equal(got, id) || !stale {
		t.Errorf("verify under rotation = %x, stale %v; want the ID, stale", got, stale)
	}
	if got, _ := testSigner(key2).verify(nil, v); got != nil {
		t.Error("a cookie signed by a removed key verified")
	}
	other := newSigner("other", 32, [][]byte{[]byte(key1)})
	if got, _ := other.verify(nil, v); got != nil {
		t.Error("a cookie verified under another cookie name")
	}
}

// FuzzVerify checks that verify never panics and accepts exactly the
// values sign produces.
func FuzzVerify(f *testing.F) {
	s := testSigner(key1, key2)
	valid := s.sign(bytes.Repeat([]byte{7}, 32))
	for _, seed := range []string{
		valid, valid[:len(valid)-1], valid + "A", strings.ToUpper(valid), "", ".", "\x00",
		strings.Repeat("A", 43) + "." + strings.Repeat("A", 43),
		strings.Repeat("_", 43) + "." + strings.Repeat("-", 43),
		strings.Replace(valid, ".", "\n", 1), valid[:43] + "\n" + valid[44:],
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, stale := s.verify(nil, v)
		if id == nil {
			return
		}
		if stale {
			return // signed by the second key: valid only if it re-signs to that key's MAC
		}
		if s.sign(id) != v {
			t.Fatalf("verify accepted %q, which sign does not produce", v)
		}
	})
}

func TestFindCookies(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		want    []string
	}{
		{[]string{"session=a"}, []string{"a"}},
		{[]string{"x=1; session=a; session=b"}, []string{"a", "b"}},
		{[]string{"x=1", "session=\"q\""}, []string{"q"}},
		{[]string{"Session=a; session"}, nil},
		{[]string{"%73ession=a"}, nil},
		{[]string{"  session=a  ;"}, []string{"a"}},
		{[]string{"\tsession=a\t;\t session=b"}, []string{"a", "b"}},
		{[]string{"\u00a0session=a"}, nil},
		{[]string{"\rsession=a; \nsession=b; \vsession=c; \fsession=d"}, nil},
	} {
		var got []string
		findCookies(tc.headers, "session", func(v string) bool {
			got = append(got, v)
			return false
		})
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("findCookies(%q) = %q, want %q", tc.headers, got, tc.want)
		}
	}
}

// unicodeSpaces returns every rune that strings.TrimSpace strips, except
// the SP and HTAB that RFC 6265 allows around a cookie pair, plus invisible
// runes that no trimming function strips but that could hide a name.
func unicodeSpaces() []rune {
	var rs []rune
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r != ' ' && r != '\t' && strings.TrimSpace(string(r)) == "" {
			rs = append(rs, r)
		}
	}
	return append(rs, '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u180e')
}

// A cookie whose name is the session cookie's name next to a Unicode space
// is another cookie to a browser (a sibling site may set it), so it must
// be another cookie here too: it never passes for a __Host- cookie
// (PortSwigger, "Cookie Chaos", 2025). findCookies agrees with net/http's
// own parser on every case.
func TestFindCookiesUnicodeSpaces(t *testing.T) {
	const name = "__Host-session"
	spaces := unicodeSpaces()
	if len(spaces) < 25 {
		t.Fatalf("only %d space runes found: the table is wrong", len(spaces))
	}
	for _, r := range spaces {
		sp := string(r)
		for _, tc := range []struct {
			header string
			want   []string
		}{
			{sp + name + "=planted", nil},
			{name + sp + "=planted", nil},
			{sp + name + sp + "=planted", nil},
			{sp + name + "=planted; " + name + "=real", []string{"real"}},
			{name + sp + "=planted; " + name + "=real", []string{"real"}},
			{name + "=real; " + sp + name + "=planted", []string{"real"}},
			{"x=1;" + sp + name + "=planted", nil},
			{"x=1" + sp + ";" + name + "=real", []string{"real"}},
		} {
			var got []string
			findCookies([]string{tc.header}, name, func(v string) bool {
				got = append(got, v)
				return false
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("U+%04X: findCookies(%q) = %q, want %q", r, tc.header, got, tc.want)
			}
			req := &http.Request{Header: http.Header{"Cookie": {tc.header}}}
			var std []string
			for _, c := range req.CookiesNamed(name) {
				std = append(std, c.Value)
			}
			// net/http also trims CR and LF, which no header value can
			// hold (servers refuse them): there the two may differ.
			if r != '\r' && r != '\n' && !slices.Equal(got, std) {
				t.Errorf("U+%04X: findCookies(%q) = %q, net/http finds %q", r, tc.header, got, std)
			}
		}
	}
}

func TestStorageKeyHidesID(t *testing.T) {
	id := []byte("0123456789abcdef0123456789abcdef")
	k := storageKey("p:", id)
	if !strings.HasPrefix(k, "p:") || strings.Contains(k, b64.EncodeToString(id)) {
		t.Errorf("storage key %q must be the prefix and a hash, never the ID", k)
	}
	if len(logID("p:", k)) != logIDLen {
		t.Errorf("logID = %q", logID("p:", k))
	}
}

// The hand-built Set-Cookie header says what net/http's Cookie.String
// says for the same cookie.
func TestCookieHeaderMatchesNetHTTP(t *testing.T) {
	id := bytes.Repeat([]byte{9}, 32)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, cfg := range []Config{
		{Secrets: [][]byte{[]byte(key1)}},
		{Secrets: [][]byte{[]byte(key1)}, CookieName: "__Host-s", SameSite: http.SameSiteStrictMode},
		{Secrets: [][]byte{[]byte(key1)}, CookieDomain: ".example.com", CookiePath: "/app", InsecureCookie: true, ScriptReadableCookie: true, SameSite: http.SameSiteDefaultMode},
		{Secrets: [][]byte{[]byte(key1)}, SameSite: http.SameSiteNoneMode},
	} {
		m, err := New(nopStore{}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mc := m.c
		c := mc.cfg
		want := func(value string, maxAge int, expires time.Time) string {
			return (&http.Cookie{Name: c.CookieName, Value: value, Path: c.CookiePath, Domain: c.CookieDomain,
				Secure: !c.InsecureCookie, HttpOnly: !c.ScriptReadableCookie, SameSite: c.SameSite,
				MaxAge: maxAge, Expires: expires}).String()
		}
		for _, tc := range []struct {
			id      []byte
			maxAge  int
			expires time.Time
			value   string
		}{{id, 0, time.Time{}, mc.signer.sign(id)}, {id, 3600, exp, mc.signer.sign(id)}, {nil, -1, time.Time{}, ""}} {
			h := http.Header{}
			mc.writeCookie(h, tc.id, tc.expires, tc.maxAge, false)
			if got, w := h.Get("Set-Cookie"), want(tc.value, tc.maxAge, tc.expires); got != w {
				t.Errorf("Set-Cookie\n got %s\nwant %s", got, w)
			}
		}
	}
}

// nopStore is a Store that holds nothing.
type nopStore struct{}

func (nopStore) Get(context.Context, string) (Entry, error)           { return Entry{}, ErrNotFound }
func (nopStore) Set(context.Context, string, []byte, time.Time) error { return nil }
func (nopStore) Delete(context.Context, string) error                 { return nil }
func (nopStore) CompareAndSwap(context.Context, string, []byte, time.Time, uint64) error {
	return ErrNotFound
}
func (nopStore) CompareAndDelete(context.Context, string, uint64) error      { return ErrNotFound }
func (nopStore) Touch(context.Context, string, time.Time) error              { return ErrNotFound }
func (nopStore) AddUserKey(context.Context, string, string, time.Time) error { return nil }
func (nopStore) UserKeys(context.Context, string) ([]string, error)          { return nil, nil }
func (nopStore) RemoveUserKey(context.Context, string, string) error         { return nil }
