package kvsession

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Manager loads and saves sessions for HTTP handlers. Create one with New,
// wrap handlers with Handler, and reach the session in a handler with
// FromContext. A Manager is safe for concurrent use.
type Manager struct {
	store     Store
	vstore    VersionedStore // nil if the store has no versions
	toucher   Toucher        // nil if the store cannot touch
	users     UserIndex      // nil if the store has no user index
	unbounded bool           // the store is NonBlocking: no deadlines
	cfg       Config
	signer    *signer
	cookieFmt cookieFormat
	logger    *slog.Logger
}

// New returns a Manager that keeps sessions in store. It returns an error
// wrapping ErrInvalidConfig if cfg is invalid.
func New(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, configError("nil store")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		store:     store,
		cfg:       cfg,
		signer:    newSigner(cfg.CookieName, cfg.IDBits/8, cfg.Keys),
		cookieFmt: newCookieFormat(cfg),
		logger:    cfg.Logger,
	}
	m.vstore, _ = store.(VersionedStore)
	m.toucher, _ = store.(Toucher)
	m.users, _ = store.(UserIndex)
	if nb, ok := store.(NonBlocking); ok {
		m.unbounded = nb.NonBlocking()
	}
	return m, nil
}

// maxSaveAttempts bounds the merge-and-retry loop of a save that keeps
// meeting concurrent changes: enough for a burst of a hundred concurrent
// writers to one session.
const maxSaveAttempts = 100

// backoff pauses before the next attempt after a conflict, for a random
// time that grows with the attempt, so that concurrent writers spread out.
func backoff(ctx context.Context, attempt int) {
	d := time.Duration(mathrand.Int64N(int64(min(attempt, 20)) * int64(50*time.Microsecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Handler returns middleware that gives every request below it a session.
// It reads the session cookie, loads the session from the store when a
// handler first uses it, and saves it, once, just before the first byte of
// the response (or when the handler returns), setting or clearing the
// cookie then.
//
// If the store fails to load or save the session, the handler's response
// is replaced by Config.ErrorHandler (503 by default) and the client's
// cookie is left alone: from the failed load on, every Session method
// returns an error wrapping ErrLoad, so the handler never acts on an empty
// session by mistake.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One allocation for the session and the writer that saves it.
		st := &struct {
			s  Session
			rw responseWriter
		}{}
		s := &st.s
		s.m, s.ctx, s.userAgent = m, r.Context(), truncate(r.UserAgent(), maxUserAgent)
		if m.cfg.RecordRemoteAddr {
			s.remote = remoteIP(r.RemoteAddr)
		}
		s.cookies = r.Header["Cookie"]
		if m.cfg.Header != "" {
			if v, ok := r.Header[m.cfg.Header]; ok {
				s.tokenClient = true
				if len(v) > 0 {
					s.token = v[0]
				}
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, s))
		rw := &st.rw
		rw.ResponseWriter, rw.s, rw.r = w, s, r
		next.ServeHTTP(rw, r)
		rw.commit()
	})
}

// maxUserAgent bounds the user agent kept in a session's metadata.
const maxUserAgent = 512

// truncate cuts s to at most n bytes, at a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// remoteIP returns the IP address in a request's RemoteAddr, without port
// or zone, or "" if it holds none. RemoteAddr is "host:port" from net/http,
// but proxy middleware often copies a client-supplied X-Forwarded-For into
// it, of any length: only a parsed address (at most 39 bytes) is kept.
func remoteIP(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().WithZone("").Unmap().String()
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		return a.WithZone("").Unmap().String()
	}
	return ""
}

// identify finds the session ID in the request: in the first session
// cookie that verifies or, with Config.Header, in that header. It runs once,
// when the session is first used, so that a request that never touches
// its session pays for no verification. s.mu is held.
func (s *Session) identify() {
	if s.identified {
		return
	}
	s.identified = true
	m := s.m
	accept := func(v string) bool {
		id, stale := m.signer.verify(s.idBuf[:0], v)
		if id == nil {
			return false
		}
		s.id, s.staleSig = id, stale
		s.key = storageKey(m.cfg.KeyPrefix, id)
		return true
	}
	seen := findCookies(s.cookies, m.cfg.CookieName, accept)
	if s.id == nil && s.tokenClient {
		// No cookie verified and the request used the header: an API
		// client, answered in the header. A request whose cookie verified
		// is a browser's, whatever else it sent: a page script that adds
		// the header to a fetch must not learn the HttpOnly cookie's token.
		s.tokenReply = true
		if s.token != "" {
			seen++
			accept(s.token)
		}
	}
	if seen > 0 && s.id == nil {
		m.emit(s.ctx, Event{Kind: EventInvalidCookie})
	}
}

// errResponseReplaced is returned by writes after the store failed and the
// error response replaced the handler's.
var errResponseReplaced = errors.New("kvsession: response replaced after a session store error")

// responseWriter saves the session before the first byte of the response.
type responseWriter struct {
	http.ResponseWriter
	s         *Session
	r         *http.Request
	committed bool
	failed    bool
}

// commit saves the session once. It reports false if the save failed and
// the error response was written instead.
func (w *responseWriter) commit() bool {
	if w.committed {
		return !w.failed
	}
	w.committed = true
	if err := w.s.save(w.ResponseWriter.Header()); err != nil {
		w.failed = true
		h := w.ResponseWriter.Header()
		for k := range h {
			delete(h, k)
		}
		w.s.m.cfg.ErrorHandler(w.ResponseWriter, w.r, err)
		return false
	}
	return true
}

// WriteHeader saves the session, then writes the header. Informational
// (1xx) headers pass through without a save.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		if !w.committed {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

// Write saves the session, then writes b.
func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.commit() {
		return 0, errResponseReplaced
	}
	return w.ResponseWriter.Write(b)
}

// WriteString saves the session, then writes str without copying it to a
// byte slice when the underlying writer can do so.
func (w *responseWriter) WriteString(str string) (int, error) {
	if !w.commit() {
		return 0, errResponseReplaced
	}
	return io.WriteString(w.ResponseWriter, str)
}

// ReadFrom saves the session, then copies from src, keeping the
// underlying writer's fast path (sendfile).
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.commit() {
		return 0, errResponseReplaced
	}
	return io.Copy(w.ResponseWriter, src)
}

// Flush saves the session, then flushes if the underlying writer can.
func (w *responseWriter) Flush() {
	if w.commit() {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// CookieName returns the name of the session cookie, Config.CookieName or
// its default.
func (m *Manager) CookieName() string { return m.cfg.CookieName }

// Key returns the store key of the session that a cookie value (or header
// token) names, for tools that inspect or revoke a session given its
// cookie. It returns ErrInvalidCookie if the value does not verify. It
// does not check that the session exists.
func (m *Manager) Key(cookieValue string) (string, error) {
	id, _ := m.signer.verify(nil, cookieValue)
	if id == nil {
		return "", ErrInvalidCookie
	}
	return storageKey(m.cfg.KeyPrefix, id), nil
}

// The store calls, each bounded by the store timeout.

// bound returns ctx limited to StoreTimeout, or ctx itself when its
// deadline is already that close (inside a save) or when the store never
// blocks, saving a timer.
func (m *Manager) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.unbounded {
		return ctx, func() {}
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= m.cfg.StoreTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, m.cfg.StoreTimeout)
}

func (m *Manager) get(ctx context.Context, key string) (Entry, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	return m.store.Get(ctx, key)
}

func (m *Manager) set(ctx context.Context, key string, v []byte, exp time.Time) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	return m.store.Set(ctx, key, v, exp)
}

func (m *Manager) del(ctx context.Context, key string) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	return m.store.Delete(ctx, key)
}

func (m *Manager) decode(b []byte) (record, error) {
	if len(b) > m.cfg.MaxRecordBytes {
		return record{}, fmt.Errorf("%w: %d bytes, above MaxRecordBytes", errCorrupt, len(b))
	}
	return decodeRecord(b)
}

// deadline returns the end of a session's absolute lifetime.
func (m *Manager) deadline(r record) time.Time { return r.created.Add(m.cfg.Lifetime) }

// expired reports whether a loaded session is past its lifetime or idle
// deadline, judged by the manager's clock.
func (m *Manager) expired(r record, expiresAt, now time.Time) bool {
	if !now.Before(m.deadline(r)) {
		return true
	}
	return !expiresAt.IsZero() && !now.Before(expiresAt)
}

// expiry returns when a session saved now expires in the store.
func (m *Manager) expiry(r record, now time.Time) time.Time {
	exp := m.deadline(r)
	if m.cfg.IdleTimeout > 0 {
		if idle := now.Add(m.cfg.IdleTimeout); idle.Before(exp) {
			exp = idle
		}
	}
	return exp
}

// newID returns a fresh random session ID and its storage key.
func (m *Manager) newID() ([]byte, string, error) {
	id := make([]byte, m.cfg.IDBits/8)
	if m.cfg.Rand == nil {
		rand.Read(id) // never fails
	} else if _, err := io.ReadFull(m.cfg.Rand, id); err != nil {
		return nil, "", fmt.Errorf("kvsession: new session ID: %w", err)
	}
	return id, storageKey(m.cfg.KeyPrefix, id), nil
}

func (m *Manager) encode(r *record) ([]byte, error) {
	b := r.encode()
	if len(b) > m.cfg.MaxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes, above MaxRecordBytes %d", ErrTooLarge, len(b), m.cfg.MaxRecordBytes)
	}
	return b, nil
}

// setCookie sends the session cookie for the current ID.
func (s *Session) setCookie(h http.Header, now time.Time) {
	m := s.m
	var expires time.Time
	maxAge := 0
	if s.rec.permanent {
		expires = m.deadline(s.rec)
		maxAge = max(1, int(expires.Sub(now)/time.Second))
	}
	m.writeCookie(h, s.id, expires, maxAge, s.tokenReply)
}

// cookieFormat holds the fixed parts of the Set-Cookie header, built once
// at New: the header is then one allocation, with the same attributes
// net/http's Cookie.String would write.
type cookieFormat struct {
	prefix string // name=
	scope  string // ; Path=...; Domain=...
	flags  string // ; HttpOnly; Secure; SameSite=...
}

func newCookieFormat(c Config) cookieFormat {
	f := cookieFormat{prefix: c.CookieName + "=", scope: "; Path=" + c.CookiePath}
	if c.CookieDomain != "" {
		f.scope += "; Domain=" + strings.TrimPrefix(c.CookieDomain, ".")
	}
	if !c.ScriptReadableCookie {
		f.flags += "; HttpOnly"
	}
	if !c.InsecureCookie {
		f.flags += "; Secure"
	}
	switch c.SameSite {
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
func (m *Manager) writeCookie(h http.Header, id []byte, expires time.Time, maxAge int, token bool) {
	f := &m.cookieFmt
	var valBuf [256]byte
	var value []byte
	if id != nil {
		value = m.signer.appendSign(valBuf[:0], id)
	}
	var b strings.Builder
	b.Grow(len(f.prefix) + len(value) + len(f.scope) + len(f.flags) + 64)
	b.WriteString(f.prefix)
	b.Write(value)
	b.WriteString(f.scope)
	switch {
	case id == nil:
		b.WriteString("; Max-Age=0")
	case maxAge > 0:
		b.WriteString("; Expires=")
		b.WriteString(expires.UTC().Format(http.TimeFormat))
		b.WriteString("; Max-Age=")
		b.WriteString(strconv.Itoa(maxAge))
	}
	b.WriteString(f.flags)
	header := b.String()
	h.Add("Set-Cookie", header)
	if token {
		// The token is the cookie's value, empty when the session was destroyed.
		h.Set(m.cfg.Header, header[len(f.prefix):len(f.prefix)+len(value)])
	}
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Cookie")
}

func (s *Session) clearCookie(h http.Header) { s.m.writeCookie(h, nil, time.Time{}, 0, s.tokenReply) }

// save writes the session's changes to the store and sets or clears the
// cookie in h. It runs once per request.
func (s *Session) save(h http.Header) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.committed {
		return nil
	}
	s.committed = true
	if s.loadErr != nil {
		return s.loadErr
	}
	if s.degraded || !s.loaded {
		return nil // untouched (Destroy loads): no store call, no cookie
	}
	if s.destroyKey == "" && !s.modified {
		return s.saveUnchanged(h)
	}
	m := s.m
	now := m.cfg.Now()
	// The save calls the store. One deadline bounds it all, retries and
	// clean-ups included, so a hung store cannot hold the response past
	// StoreTimeout.
	ctx, cancel := m.bound(s.ctx)
	defer cancel()
	requestCtx := s.ctx
	s.ctx = ctx
	defer func() { s.ctx = requestCtx }()
	if s.destroyKey != "" {
		if err := s.destroy(); err != nil {
			return err
		}
		if !s.modified {
			s.clearCookie(h)
			return nil
		}
	}
	switch {
	case !s.exists:
		return s.create(h, now)
	case s.regenerate:
		return s.regen(h, now)
	default:
		return s.update(h, now)
	}
}

// saveUnchanged finishes a request that changed nothing: it extends the
// idle deadline when due, without rewriting the data, and re-signs a cookie
// signed by an older key. s.mu is held.
func (s *Session) saveUnchanged(h http.Header) error {
	m := s.m
	if !s.exists || m.cfg.IdleTimeout <= 0 && !s.staleSig {
		return nil // nothing to do, and no need of the clock
	}
	now := m.cfg.Now()
	if err := s.refresh(now); err != nil {
		return err
	}
	if s.staleSig && s.exists {
		s.setCookie(h, now) // the record is unchanged; the cookie's signature is not
	}
	return nil
}

func (s *Session) destroy() error {
	m := s.m
	if err := m.del(s.ctx, s.destroyKey); err != nil {
		m.emit(s.ctx, Event{Kind: EventStoreError, LogID: logID(m.cfg.KeyPrefix, s.destroyKey), Err: err})
		return fmt.Errorf("kvsession: destroy session: %w", err)
	}
	if err := m.unindex(s.ctx, s.destroyUser, s.destroyKey); err != nil {
		return err
	}
	m.emit(s.ctx, Event{Kind: EventDestroyed, LogID: logID(m.cfg.KeyPrefix, s.destroyKey)})
	return nil
}

// create stores a new session under a new ID.
func (s *Session) create(h http.Header, now time.Time) error {
	m := s.m
	id, key, err := m.newID()
	if err != nil {
		return err
	}
	s.rec.created, s.rec.updated = now, now
	s.rec.userAgent, s.rec.remote = s.userAgent, s.remote
	if !s.hasPermanentOp() {
		s.rec.permanent = m.cfg.Permanent
	}
	b, err := m.encode(&s.rec)
	if err != nil {
		return err
	}
	if err := m.set(s.ctx, key, b, m.expiry(s.rec, now)); err != nil {
		m.emit(s.ctx, Event{Kind: EventStoreError, Err: err})
		return fmt.Errorf("kvsession: create session: %w", err)
	}
	s.id, s.key, s.exists = id, key, true
	if err := m.index(s.ctx, s.rec, key); err != nil {
		return err
	}
	m.emit(s.ctx, Event{Kind: EventCreated, LogID: s.logID()})
	s.setCookie(h, now)
	return nil
}

func (s *Session) hasPermanentOp() bool {
	for _, o := range s.ops {
		if o.kind == opPermanent {
			return true
		}
	}
	return false
}

// reload reads the current record after a conflict, unless the conflict
// error carries it, and replays this request's changes onto it. It returns
// ErrNotFound if the session is gone.
func (s *Session) reload(conflict error) error {
	m := s.m
	var e Entry
	if ce := (*ConflictError)(nil); errors.As(conflict, &ce) {
		e = ce.Current
	} else {
		var err error
		if e, err = m.get(s.ctx, s.key); err != nil {
			return err
		}
	}
	rec, err := m.decode(e.Value)
	if err != nil {
		m.emit(s.ctx, Event{Kind: EventCorruptRecord, LogID: s.logID(), Err: err})
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	s.loadedUser = rec.user
	for _, o := range s.ops {
		o.apply(&rec)
	}
	s.rec = rec
	s.version = e.Version
	return nil
}

// dropped handles a save that found its session destroyed or regenerated
// by a concurrent request: the changes are dropped, and the old ID stays
// dead.
func (s *Session) dropped() error {
	s.m.emit(s.ctx, Event{Kind: EventSaveDropped, LogID: s.logID()})
	s.exists = false
	return nil
}

// update saves changes to an existing session, merging with concurrent
// changes when the store keeps versions.
func (s *Session) update(h http.Header, now time.Time) error {
	m := s.m
	for attempt := 1; ; attempt++ {
		s.rec.updated = now
		b, err := m.encode(&s.rec)
		if err != nil {
			return err
		}
		exp := m.expiry(s.rec, now)
		ctx, cancel := m.bound(s.ctx)
		if m.vstore == nil {
			err = m.store.Set(ctx, s.key, b, exp)
		} else {
			err = m.vstore.CompareAndSwap(ctx, s.key, b, exp, s.version)
		}
		cancel()
		if errors.Is(err, ErrConflict) && attempt < maxSaveAttempts {
			m.emit(s.ctx, Event{Kind: EventConflict, LogID: s.logID()})
			backoff(s.ctx, attempt)
			err = s.reload(err)
			if err == nil {
				continue
			}
		}
		if errors.Is(err, ErrNotFound) {
			return s.dropped()
		}
		if err != nil {
			m.emit(s.ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
			return fmt.Errorf("kvsession: save session: %w", err)
		}
		break
	}
	if err := m.reindex(s.ctx, s.loadedUser, s.rec, s.key, s.key); err != nil {
		return err
	}
	// A browser-session cookie does not change with the data, so it is
	// sent again only when it does: signed by an older key, or turned
	// permanent or back. A permanent one goes with every save, to keep its
	// Max-Age current.
	if s.staleSig || s.rec.permanent || s.hasPermanentOp() {
		s.setCookie(h, now)
	}
	return nil
}

// regen moves the session to a new ID: it stores the data under the new
// key, then deletes the old key only if nobody changed it meanwhile,
// merging if somebody did.
func (s *Session) regen(h http.Header, now time.Time) error {
	m := s.m
	id, key, err := m.newID()
	if err != nil {
		return err
	}
	oldKey, oldLog := s.key, s.logID()
	for attempt := 1; ; attempt++ {
		s.rec.updated = now
		b, err := m.encode(&s.rec)
		if err != nil {
			return err
		}
		if err := m.set(s.ctx, key, b, m.expiry(s.rec, now)); err != nil {
			m.emit(s.ctx, Event{Kind: EventStoreError, LogID: oldLog, Err: err})
			return fmt.Errorf("kvsession: regenerate session: %w", err)
		}
		ctx, cancel := m.bound(s.ctx)
		if m.vstore == nil {
			err = m.store.Delete(ctx, oldKey)
		} else {
			err = m.vstore.CompareAndDelete(ctx, oldKey, s.version)
		}
		cancel()
		if errors.Is(err, ErrConflict) && attempt < maxSaveAttempts {
			m.emit(s.ctx, Event{Kind: EventConflict, LogID: oldLog})
			backoff(s.ctx, attempt)
			err = s.reload(err)
			if err == nil {
				continue
			}
		}
		if errors.Is(err, ErrNotFound) {
			// Destroyed or regenerated concurrently: the new copy must not
			// outlive the old one.
			if err := m.del(s.ctx, key); err != nil {
				m.emit(s.ctx, Event{Kind: EventStoreError, Err: err})
			}
			return s.dropped()
		}
		if err != nil {
			m.emit(s.ctx, Event{Kind: EventStoreError, LogID: oldLog, Err: err})
			if err := m.del(s.ctx, key); err != nil {
				m.emit(s.ctx, Event{Kind: EventStoreError, Err: err})
			}
			return fmt.Errorf("kvsession: regenerate session: %w", err)
		}
		break
	}
	s.id, s.key = id, key
	if err := m.reindex(s.ctx, s.loadedUser, s.rec, oldKey, key); err != nil {
		return err
	}
	m.emit(s.ctx, Event{Kind: EventRegenerated, LogID: s.logID()})
	s.setCookie(h, now)
	return nil
}

// refreshDue reports whether a loaded session's idle deadline is due for
// extension: at most once per IdleRefresh, and never past its lifetime.
func (s *Session) refreshDue(now time.Time) bool {
	m := s.m
	if !s.exists || m.cfg.IdleTimeout <= 0 || s.expiresAt.IsZero() {
		return false
	}
	lastRefresh := s.expiresAt.Add(-m.cfg.IdleTimeout)
	return s.expiresAt.Before(m.deadline(s.rec)) && now.Sub(lastRefresh) >= m.cfg.IdleRefresh
}

// refresh extends the idle deadline of an unchanged session, when due,
// without rewriting its data.
func (s *Session) refresh(now time.Time) error {
	m := s.m
	if !s.refreshDue(now) {
		return nil
	}
	exp := m.expiry(s.rec, now)
	ctx, cancel := m.bound(s.ctx)
	defer cancel()
	var err error
	switch {
	case m.toucher != nil:
		err = m.toucher.Touch(ctx, s.key, exp)
	case m.vstore != nil:
		err = m.vstore.CompareAndSwap(ctx, s.key, s.rec.encode(), exp, s.version)
		if errors.Is(err, ErrConflict) {
			err = nil // a concurrent write refreshed it
		}
	default:
		err = m.store.Set(ctx, s.key, s.rec.encode(), exp)
	}
	if errors.Is(err, ErrNotFound) {
		return s.dropped()
	}
	if err != nil {
		m.emit(s.ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
		return fmt.Errorf("kvsession: refresh session: %w", err)
	}
	return nil
}
