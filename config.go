package kvsession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Config configures a [Manager]. The zero value of each field means the
// documented default; only Secrets is required. [New] validates the whole
// Config and keeps its own copy: changing a Config after New has no effect.
type Config struct {
	// Secrets sign session IDs, each at least 32 random bytes; New
	// refuses a secret with fewer than 8 distinct byte values (one repeated
	// byte, say) as obviously not random. The first secret signs; every
	// secret verifies. To rotate, put the new secret first and keep the old
	// one until the cookies it signed have expired: cookies signed by an
	// older secret are accepted and re-signed with the first. Required.
	//
	// In this package "secret" always names a signing secret, "key" a
	// store key (the name of a record in the Store: a hash of the ID after
	// KeyPrefix) and "name" the name of a value in a session.
	Secrets [][]byte

	// Keys is the former name of Secrets, still accepted when Secrets is
	// empty; setting both is an error.
	//
	// Deprecated: use Secrets.
	Keys [][]byte

	// CookieName is the name of the session cookie. Default:
	// "__Host-session" when the cookie is Secure with Path "/" and no
	// Domain (the defaults), "__Secure-session" when it is Secure with
	// another Path or a Domain, and "session" with InsecureCookie.
	//
	// A name starting with "__Host-" requires Secure, Path "/" and no
	// Domain; one starting with "__Secure-" requires Secure. New returns an
	// error if the other settings break those rules. Browsers enforce the
	// same rules when they store a cookie, which is why the default is a
	// __Host- name: only this origin, over HTTPS, can set such a cookie, so
	// a sibling subdomain or a network attacker on plain HTTP cannot plant
	// one ("cookie tossing"). With any other name they can: a planted
	// cookie cannot forge an ID (the value is signed), but it can carry a
	// valid session the attacker made for themselves, and one with a
	// longer Path is sent first, so the victim may browse in the
	// attacker's session (session donation) or, with a value that does not
	// verify, lose nothing but see the planted cookie ignored. Keep the
	// default name unless a Domain or Path requires otherwise.
	CookieName string

	// CookiePath is the cookie's Path attribute. Default: "/".
	CookiePath string

	// CookieDomain is the cookie's Domain attribute. Default: none, so the
	// cookie is sent only to the host that set it.
	CookieDomain string

	// InsecureCookie leaves out the Secure attribute, so browsers send the
	// cookie over plain HTTP. Default: false (Secure). Use it only for
	// development on http://localhost.
	InsecureCookie bool

	// ScriptReadableCookie leaves out the HttpOnly attribute, so page
	// scripts can read the cookie. Default: false (HttpOnly). There is
	// rarely a reason to set it.
	ScriptReadableCookie bool

	// SameSite is the cookie's SameSite attribute. Default:
	// http.SameSiteLaxMode. SameSiteNoneMode requires Secure.
	SameSite http.SameSite

	// Header, if set, is a request header that may carry the signed
	// session token instead of the cookie, for API clients that do not
	// keep cookies ("X-Session-Token", say). The token is the cookie's
	// value. Default: none; only the cookie carries the ID, and query
	// strings and forms never do.
	//
	// The token goes back in this header only to an API client: a request
	// that carried the header (empty, to start a session) and no session
	// cookie that verified. Its responses that set the cookie carry the
	// token in the header too (empty when the session is destroyed). A
	// request whose cookie verified never gets the token in a header, so
	// a page script cannot read the HttpOnly cookie's value by adding the
	// header to a fetch and reading the response's headers.
	Header string

	// Permanent makes new sessions permanent: their cookie carries an
	// expiry (the session's lifetime) and survives browser restarts.
	// Default: false, a browser-session cookie. Session.SetPermanent
	// changes it per session. This is Flask's session.permanent.
	Permanent bool

	// Lifetime is the absolute lifetime of a session, counted from its
	// creation and enforced on the server whatever the cookie says.
	// Default: 24 hours. This is Flask's PERMANENT_SESSION_LIFETIME.
	Lifetime time.Duration

	// NoStoreTTL keeps the session's expiry out of the store: records are
	// written without an engine TTL (Redis keys without expiry, memcached
	// items without one, SQL rows and files without an expiry of their
	// own), the manager alone enforces Lifetime and IdleTimeout from the
	// deadlines each record carries, and Manager.Cleanup removes expired
	// records on every store that can list its keys (Redis included, with
	// SCAN). An idle refresh then rewrites the record instead of touching
	// it. Default: false, the store's TTL is set, as Flask-KVSession's
	// SESSION_SET_TTL (default True) does.
	NoStoreTTL bool

	// MaxUserSessions, if positive, keeps at most this many sessions bound
	// to one user: when a login (or any binding) makes more, the least
	// recently seen of the others end, as by Manager.Revoke. The cap is
	// kept at each binding; a store error while ending older sessions is
	// reported (EventStoreError) and the login goes on. Default: 0, no cap.
	MaxUserSessions int

	// IdleTimeout ends a session that has not been used for this long,
	// enforced on the server. Default: 0, no idle timeout.
	IdleTimeout time.Duration

	// IdleRefresh is how long after the last refresh a request extends
	// the idle deadline. Requests in between cost no store write, so a
	// session may end up to IdleRefresh earlier than IdleTimeout after its
	// last request. Default: IdleTimeout/10, at least one second. Must be
	// less than IdleTimeout.
	IdleRefresh time.Duration

	// IDBits is the number of random bits in a session ID, a multiple of 8
	// from 128 to 1024. Default: 256. This is Flask-KVSession's
	// SESSION_KEY_BITS.
	IDBits int

	// Rand is the source of session IDs. Default: crypto/rand. Replace it
	// only in tests. This is Flask-KVSession's SESSION_RANDOM_SOURCE.
	Rand io.Reader

	// KeyPrefix is put before every store key, so that several
	// applications can share one store: give each of them a prefix of its
	// own ("shop:", "admin:"). Default: none, so a record's key is the
	// hash of its ID alone (a Redis store then holds "kvsession:s:<hash>").
	// At most 100 bytes. Until December 2026 the default was "s:"; an
	// application upgrading from then sets KeyPrefix "s:" to keep its
	// sessions.
	KeyPrefix string

	// StoreTimeout bounds every store call: a hung store fails the request
	// after this long instead of hanging it. Default: 3 seconds. The
	// request's context applies as it stands when a call begins: a call on
	// a done context fails with its error, and a deadline sooner than
	// StoreTimeout bounds the call instead. A call once begun is not cut
	// short when the client goes away: it completes or times out, so a
	// save is never left half done. A Manager on a *memstore.Store
	// itself puts no deadline on its calls, which never block; NoStoreTimeout
	// does the same for any store, by explicit choice (a store that wraps a
	// memstore to count its calls, say). Never use it with a store that can
	// block: a hung store would then hang every request.
	StoreTimeout time.Duration

	// MaxRecordBytes is the largest encoded session the manager stores or
	// loads. A save above it fails with ErrTooLarge; a stored record above
	// it reads as corrupt. Default: 1 MiB.
	MaxRecordBytes int

	// RecordRemoteAddr keeps the client's remote address in the session's
	// metadata, shown by Manager.UserSessions. Default: false.
	RecordRemoteAddr bool

	// DegradeOnLoadError lets requests go on with an empty, unsaved
	// session when the store fails to load one, instead of answering with
	// an error. Such a session is never saved and never changes the
	// client's cookie, so the user's real session works again once the
	// store is back. Default: false (fail closed).
	DegradeOnLoadError bool

	// ErrorHandler writes the response when the store fails and the
	// request cannot go on. It must not set cookies. Default: a plain
	// "503 Service Unavailable".
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// OnEvent, if set, is called for every lifecycle event, in the
	// goroutine of the request. It must be safe for concurrent use.
	OnEvent func(ctx context.Context, e Event)

	// Logger receives lifecycle events: store errors at Error, corrupt
	// records and dropped saves at Warn, regenerations, destructions and
	// revocations at Info, the rest at Debug. Default: slog.Default().
	Logger *slog.Logger

	// Now is the clock that decides lifetimes and idle timeouts. Default:
	// time.Now. Replace it in tests.
	Now func() time.Time
}

// NoStoreTimeout, as Config.StoreTimeout, puts no deadline on store calls.
const NoStoreTimeout time.Duration = -1

// ErrInvalidConfig is wrapped by every error New returns for a bad Config.
var ErrInvalidConfig = errors.New("kvsession: invalid config")

const (
	minSecretBytes = 32
	maxCookieSize  = 4096

	// minDistinctSecretBytes rejects obviously weak secrets ("kkkk...", all
	// zero, "abab..."): 32 random bytes hold about 30 distinct values, 32
	// random hex digits about 14, and fewer than 8 is as likely as
	// guessing the key (under 1e-7 for hex, far less for raw bytes).
	minDistinctSecretBytes = 8
)

// distinctBytes returns how many different byte values k holds.
func distinctBytes(k []byte) int {
	var seen [256]bool
	n := 0
	for _, b := range k {
		if !seen[b] {
			seen[b] = true
			n++
		}
	}
	return n
}

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// withDefaults validates c and returns it with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	field := "Secrets"
	switch {
	case len(c.Secrets) > 0 && len(c.Keys) > 0:
		return c, configError("both Secrets and Keys (its deprecated name) are set: set Secrets only")
	case len(c.Keys) > 0:
		field, c.Secrets, c.Keys = "Keys", c.Keys, nil
	case len(c.Secrets) == 0:
		return c, configError("no Secrets: at least one signing secret is required")
	}
	secrets := make([][]byte, len(c.Secrets))
	for i, k := range c.Secrets {
		if len(k) < minSecretBytes {
			return c, configError("%s[%d] is %d bytes, want at least %d", field, i, len(k), minSecretBytes)
		}
		if n := distinctBytes(k); n < minDistinctSecretBytes {
			return c, configError("%s[%d] uses only %d distinct byte values, want at least %d: not a random secret (take %d bytes from crypto/rand)", field, i, n, minDistinctSecretBytes, minSecretBytes)
		}
		secrets[i] = append([]byte(nil), k...)
	}
	c.Secrets = secrets

	if c.CookiePath == "" {
		c.CookiePath = "/"
	}
	if c.CookieName == "" {
		c.CookieName = defaultCookieName(c)
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	probe := http.Cookie{Name: c.CookieName, Value: "v", Path: c.CookiePath, Domain: c.CookieDomain}
	if err := probe.Valid(); err != nil {
		return c, configError("cookie: %v", err)
	}
	if c.Header != "" && (http.CanonicalHeaderKey(c.Header) == "Cookie" || !validHeaderName(c.Header)) {
		return c, configError("Header %q is not a usable header name", c.Header)
	}
	c.Header = http.CanonicalHeaderKey(c.Header)
	secure := !c.InsecureCookie
	switch {
	case strings.HasPrefix(c.CookieName, "__Host-"):
		if !secure || c.CookiePath != "/" || c.CookieDomain != "" {
			return c, configError("cookie name %q needs Secure, CookiePath \"/\" and no CookieDomain", c.CookieName)
		}
	case strings.HasPrefix(c.CookieName, "__Secure-"):
		if !secure {
			return c, configError("cookie name %q needs Secure", c.CookieName)
		}
	}
	if c.SameSite == http.SameSiteNoneMode && !secure {
		return c, configError("SameSite=None needs Secure (InsecureCookie is set)")
	}

	switch {
	case c.Lifetime == 0:
		c.Lifetime = 24 * time.Hour
	case c.Lifetime < time.Second:
		return c, configError("Lifetime %v is below one second", c.Lifetime)
	}
	if c.IdleTimeout < 0 {
		return c, configError("IdleTimeout %v is negative", c.IdleTimeout)
	}
	if c.IdleTimeout > 0 {
		if c.IdleTimeout < time.Second {
			return c, configError("IdleTimeout %v is below one second", c.IdleTimeout)
		}
		if c.IdleRefresh == 0 {
			c.IdleRefresh = max(c.IdleTimeout/10, time.Second)
		}
		if c.IdleRefresh < 0 || c.IdleRefresh >= c.IdleTimeout {
			return c, configError("IdleRefresh %v must be positive and below IdleTimeout %v", c.IdleRefresh, c.IdleTimeout)
		}
	} else if c.IdleRefresh != 0 {
		return c, configError("IdleRefresh is set without IdleTimeout")
	}

	if c.MaxUserSessions < 0 {
		return c, configError("MaxUserSessions %d is negative", c.MaxUserSessions)
	}
	switch {
	case c.IDBits == 0:
		c.IDBits = 256
	case c.IDBits < 128:
		return c, configError("IDBits %d is below 128", c.IDBits)
	case c.IDBits > 1024 || c.IDBits%8 != 0:
		return c, configError("IDBits %d is not a multiple of 8 up to 1024", c.IDBits)
	}
	if len(c.KeyPrefix) > 100 {
		return c, configError("KeyPrefix is %d bytes, want at most 100", len(c.KeyPrefix))
	}
	switch {
	case c.StoreTimeout == 0:
		c.StoreTimeout = 3 * time.Second
	case c.StoreTimeout < 0 && c.StoreTimeout != NoStoreTimeout:
		return c, configError("StoreTimeout %v is negative (NoStoreTimeout turns the bound off)", c.StoreTimeout)
	}
	switch {
	case c.MaxRecordBytes == 0:
		c.MaxRecordBytes = 1 << 20
	case c.MaxRecordBytes < 1024:
		return c, configError("MaxRecordBytes %d is below 1024", c.MaxRecordBytes)
	}
	if c.ErrorHandler == nil {
		c.ErrorHandler = defaultErrorHandler
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if n := len(c.CookieName) + 1 + b64.EncodedLen(c.IDBits/8) + 1 + b64.EncodedLen(macSize); n > maxCookieSize {
		return c, configError("cookie name and value take %d bytes, over the %d that browsers keep", n, maxCookieSize)
	}
	return c, nil
}

// defaultCookieName returns the most tightly scoped cookie name the other
// cookie settings allow: the __Host- prefix needs Secure, Path "/" and no
// Domain; __Secure- needs Secure.
func defaultCookieName(c Config) string {
	switch {
	case c.InsecureCookie:
		return "session"
	case c.CookiePath == "/" && c.CookieDomain == "":
		return "__Host-session"
	default:
		return "__Secure-session"
	}
}

func validHeaderName(name string) bool {
	for _, c := range []byte(name) {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return name != ""
}

func defaultErrorHandler(w http.ResponseWriter, _ *http.Request, _ error) {
	http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
}
