package kvsession

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The cookie value is base64url(id) "." base64url(HMAC-SHA256(key, name 0x00 id)):
// the MAC binds the cookie name, so a value moved to another cookie name
// (another application, or a forged __Host- name) fails verification.

// b64 encodes IDs and MACs. Strict decoding rejects non-canonical
// encodings, so each ID has exactly one cookie value.
var b64 = base64.RawURLEncoding.Strict()

const macSize = sha256.Size

// signer signs and verifies session IDs. It is safe for concurrent use.
type signer struct {
	name    string
	macIn   []byte // what the MAC covers before the ID: name 0x00
	idBytes int
	idLen   int // length of the encoded ID
	valLen  int // length of the whole cookie value
	pools   []*sync.Pool
}

func newSigner(name string, idBytes int, keys [][]byte) *signer {
	s := &signer{
		name:    name,
		macIn:   append([]byte(name), 0),
		idBytes: idBytes,
		idLen:   b64.EncodedLen(idBytes),
	}
	s.valLen = s.idLen + 1 + b64.EncodedLen(macSize)
	for _, k := range keys {
		k := append([]byte(nil), k...)
		s.pools = append(s.pools, &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, k)} }})
	}
	return s
}

// macState is a pooled HMAC and the space for its sum: a sum written into
// the caller's stack would escape through the hash.Hash interface.
type macState struct {
	h   hash.Hash
	sum [macSize]byte
}

// withMAC computes the MAC of id under key i and passes it to use, which
// must not keep it.
func (s *signer) withMAC(i int, id []byte, use func(mac []byte)) {
	st := s.pools[i].Get().(*macState)
	st.h.Reset()
	st.h.Write(s.macIn) // a []byte: io.WriteString would copy the name to the heap
	st.h.Write(id)
	use(st.h.Sum(st.sum[:0]))
	s.pools[i].Put(st)
}

// sign returns the cookie value for id, signed with the first key.
func (s *signer) sign(id []byte) string {
	return string(s.appendSign(make([]byte, 0, s.valLen), id))
}

// appendSign appends the cookie value for id to dst.
func (s *signer) appendSign(dst, id []byte) []byte {
	dst = b64.AppendEncode(dst, id)
	dst = append(dst, '.')
	s.withMAC(0, id, func(mac []byte) { dst = b64.AppendEncode(dst, mac) })
	return dst
}

// maxIDBytes is the longest ID Config.IDBits allows: 1024 bits;
// defaultIDBytes the default, 256 bits.
const (
	maxIDBytes     = 128
	defaultIDBytes = 32
)

// verify returns the ID carried by a cookie value, appended to dst, and
// whether a key other than the first signed it (the cookie should be
// re-signed). It returns a nil ID for any value it did not issue. The work
// done depends only on the value's length, never on how much of the MAC
// matches. With room in dst for the ID it allocates nothing.
func (s *signer) verify(dst []byte, value string) (id []byte, stale bool) {
	if len(value) != s.valLen || value[s.idLen] != '.' || s.idBytes > maxIDBytes {
		return nil, false
	}
	if cap(dst) < s.idBytes {
		dst = make([]byte, s.idBytes)
	}
	id = dst[:s.idBytes]
	// Decoding from stack copies: converting the strings would allocate.
	var enc [172]byte // b64.EncodedLen(maxIDBytes) rounded up
	var given [macSize]byte
	n, err := b64.Decode(id, enc[:copy(enc[:], value[:s.idLen])])
	if err != nil || n != s.idBytes {
		return nil, false
	}
	m, err := b64.Decode(given[:], enc[:copy(enc[:], value[s.idLen+1:])])
	if err != nil || m != macSize {
		return nil, false
	}
	for i := range s.pools {
		ok := false
		s.withMAC(i, id, func(mac []byte) { ok = hmac.Equal(mac, given[:]) })
		if ok {
			return id, i > 0
		}
	}
	return nil, false
}

// identify finds the session ID in the request: in the first session
// cookie that verifies or, with Config.Header, in that header. It runs once,
// when the session is first used, so that a request that never touches
// its session pays for no verification. s.mu is held.
func (s *Session) identify() {
	in, id := &s.in, &s.ident
	if id.checked {
		return
	}
	id.checked = true
	c := s.c
	accept := func(v string) bool {
		got, stale := c.signer.verify(id.buf[:0], v)
		if got == nil {
			return false
		}
		id.id, id.staleSig = got, stale
		id.key = storageKey(c.cfg.KeyPrefix, got)
		return true
	}
	seen := findCookies(in.cookies, c.cfg.CookieName, accept)
	if id.id == nil && id.tokenClient {
		// No cookie verified and the request used the header: an API
		// client, answered in the header. A request whose cookie verified
		// is a browser's, whatever else it sent: a page script that adds
		// the header to a fetch must not learn the HttpOnly cookie's token.
		id.tokenReply = true
		if in.token != "" {
			seen++
			accept(in.token)
		}
	}
	id.presented = seen > 0
	if seen > 0 && id.id == nil {
		c.emit(s.ctx, Event{Kind: EventInvalidCookie})
	}
}

// forget drops the presented ID: it is never adopted for a new session.
func (s *Session) forget() {
	s.ident.id, s.ident.key, s.ident.staleSig = nil, "", false
}

// setCookie sends the session cookie for the current ID.
func (s *Session) setCookie(h http.Header, now time.Time) {
	c := s.c
	var expires time.Time
	maxAge := 0
	if s.rec.permanent {
		expires = c.deadline(&s.rec)
		// To the nearest second: the deadline is kept in whole
		// milliseconds, a little before now plus the lifetime.
		maxAge = max(1, int((expires.Sub(now)+time.Second/2)/time.Second))
	}
	c.writeCookie(h, s.ident.id, expires, maxAge, s.ident.tokenReply)
}

// clearCookie clears the session cookie.
func (s *Session) clearCookie(h http.Header) {
	s.c.writeCookie(h, nil, time.Time{}, 0, s.ident.tokenReply)
}

// storageKey returns the key under which the session with this ID is
// stored: a SHA-256 of the ID, so a leaked store holds no usable ID.
func storageKey(prefix string, id []byte) string {
	sum := sha256.Sum256(id)
	var arr [160]byte // KeyPrefix is at most 100 bytes, the hash 43
	buf := append(arr[:0], prefix...)
	buf = b64.AppendEncode(buf, sum[:])
	return string(buf)
}

// logIDLen is how many characters of the storage key's hash make a log ID:
// 72 bits, plenty to tell sessions apart in logs, useless to an attacker.
const logIDLen = 12

// logID returns the safe-to-log identifier of a storage key.
func logID(prefix, key string) string {
	if len(key) < len(prefix)+logIDLen {
		return ""
	}
	return key[len(prefix) : len(prefix)+logIDLen]
}

// findCookies calls fn with the value of each cookie named name in the
// request's Cookie headers, in order, until fn returns true. It scans the
// raw headers without building every cookie, so the work is linear in the
// header size and allocates nothing.
//
// Names are compared byte for byte after trimming only SP and HTAB, the
// whitespace RFC 6265 allows around a cookie pair, as net/http does: never
// percent-decoded ("%5F_Host-x" is not "__Host-x", CVE-2020-8184) and never
// stripped of Unicode spaces ("\u2000__Host-x" is not "__Host-x"). To a
// browser both are ordinary cookies that a sibling site may set, so
// matching them would let it plant a cookie that passes for a __Host- one.
// Values in double quotes are unquoted, as net/http does. It returns how
// many cookies it offered.
func findCookies(headers []string, name string, fn func(value string) bool) (seen int) {
	for _, h := range headers {
		for len(h) > 0 {
			var part string
			part, h, _ = strings.Cut(h, ";")
			part = trimOWS(part)
			n, v, ok := strings.Cut(part, "=")
			if !ok || n != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			seen++
			if fn(v) {
				return seen
			}
		}
	}
	return seen
}

// trimOWS removes the optional whitespace of RFC 6265 (SP and HTAB, and
// nothing else) from both ends of s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// cookieFormat holds the fixed parts of the Set-Cookie header, built once
// at New: the header is then one allocation, with the same attributes
// net/http's Cookie.String would write.
type cookieFormat struct {
	prefix string // name=
	scope  string // ; Path=...; Domain=...
	flags  string // ; HttpOnly; Secure; SameSite=...
}

func newCookieFormat(cfg Config) cookieFormat {
	f := cookieFormat{prefix: cfg.CookieName + "=", scope: "; Path=" + cfg.CookiePath}
	if cfg.CookieDomain != "" {
		f.scope += "; Domain=" + strings.TrimPrefix(cfg.CookieDomain, ".")
	}
	if !cfg.ScriptReadableCookie {
		f.flags += "; HttpOnly"
	}
	if !cfg.InsecureCookie {
		f.flags += "; Secure"
	}
	switch cfg.SameSite {
	case http.SameSiteLaxMode:
		f.flags += "; SameSite=Lax"
	case http.SameSiteStrictMode:
		f.flags += "; SameSite=Strict"
	case http.SameSiteNoneMode:
		f.flags += "; SameSite=None"
	}
	return f
}

// writeCookie sets the session cookie for id, or clears it if id is nil.
// A positive maxAge makes it persistent until expires. With token, the
// response also carries the cookie's value in Config.Header, for an API
// client that presented its token there.
//
// It costs two allocations: the Set-Cookie value, and one array for the
// values of Set-Cookie, Cache-Control and Vary. Each header gets its own
// slice of that array with no spare capacity, so a handler that adds to
// one of them afterwards copies it, and nothing is shared between
// responses.
func (c *core) writeCookie(h http.Header, id []byte, expires time.Time, maxAge int, token bool) {
	f := &c.cookieFmt
	var arr [384]byte // the whole header with default settings; append grows it if needed
	b := append(arr[:0], f.prefix...)
	if id != nil {
		b = c.signer.appendSign(b, id)
	}
	valueEnd := len(b)
	b = append(b, f.scope...)
	switch {
	case id == nil:
		b = append(b, "; Max-Age=0"...)
	case maxAge > 0:
		b = append(b, "; Expires="...)
		b = expires.UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "; Max-Age="...)
		b = strconv.AppendInt(b, int64(maxAge), 10)
	}
	b = append(b, f.flags...)
	header := string(b)
	vals := make([]string, 3)
	vals[0], vals[1], vals[2] = header, "no-store", "Cookie"
	addHeader(h, "Set-Cookie", vals[0:1:1])
	if token && c.cfg.Header != "" {
		// The token is the cookie's value, empty when the session was destroyed.
		h.Set(c.cfg.Header, header[len(f.prefix):valueEnd])
	}
	h["Cache-Control"] = vals[1:2:2] // as h.Set
	addHeader(h, "Vary", vals[2:3:3])
}

// addHeader adds the one value in v to h under key, a canonical header
// name, as h.Add would, using v itself as the header's values when h has
// none yet.
func addHeader(h http.Header, key string, v []string) {
	if old := h[key]; len(old) > 0 {
		h[key] = append(old, v[0])
		return
	}
	h[key] = v
}
