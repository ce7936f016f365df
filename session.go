package kvsession

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
)

// Session is the session of one request. Get it in a handler with
// [FromContext] or [From]; it is valid until the handler returns. Its
// methods are safe for concurrent use by goroutines of that request.
//
// The session is loaded from the store on first use, so a request that
// never touches it costs no store call. Changes to values are saved once,
// just before the response's first byte, by the middleware; Regenerate and
// Destroy do their store work when they are called. lifecycle.go holds
// every change of a session's state.
type Session struct {
	c   *core
	ctx context.Context // the request's: a Session lives as long as its request
	in  request

	mu    sync.Mutex
	state state
	cause NewCause // why the session is new, once loaded
	// done: the session was saved, the response has started; changes are
	// refused from then on.
	done         bool
	cookie       cookieAction
	versionStale bool // Regenerate wrote the record: its version is unknown
	// loadErr is why the load failed (state failed or degraded).
	loadErr error

	ident identity

	version    uint64
	expiresAt  int64 // the idle deadline as loaded, Unix milliseconds; 0 for none
	rec        record
	loadedUser string // the user as stored, for the user index
	ops        []op   // changes not yet saved, replayed after a conflict
}

// request is what the request brought that the session needs. The
// User-Agent and the client's address are read from it only when a
// session is created: a request that reads its session pays for neither.
type request struct {
	cookies    []string    // the request's Cookie headers
	token      string      // the Config.Header token, if any
	header     http.Header // the request's headers, for the User-Agent; nil for none
	remoteAddr string      // the client's address as net/http gives it, "" for none
}

// userAgent returns the request's User-Agent, cut to maxUserAgent bytes.
func (in *request) userAgent() string {
	return truncate(in.header.Get("User-Agent"), maxUserAgent)
}

// identity is the session ID the request presented, found and verified
// on first use (see identify in cookie.go).
type identity struct {
	checked     bool
	presented   bool // the request carried a session cookie or token, valid or not
	tokenClient bool // the request carried Config.Header, even empty
	staleSig    bool // signed by an older key: re-sign
	tokenReply  bool // an API client: answer in Config.Header too
	id          []byte
	buf         [defaultIDBytes]byte // holds a verified ID of the default size
	key         string
}

type ctxKey struct{}

// FromContext returns the session that Manager.Handler put in ctx, or nil.
// The methods of a nil *Session return ErrNoSession.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}

// From returns the session of a request, as FromContext(r.Context()).
func From(r *http.Request) *Session { return FromContext(r.Context()) }

// opKind is a kind of change recorded so that it can be replayed onto a
// newer copy of the session after a concurrent change.
type opKind uint8

const (
	opSet opKind = iota
	opDelete
	opClear
	opPermanent
	opUser
	opMark
	opFlashAdd  // raw: a flash entry
	opFlashTake // raw: the IDs of the flash entries read
)

type op struct {
	kind opKind
	key  string
	raw  []byte
	flag bool
}

func (o op) apply(r *record) {
	switch o.kind {
	case opSet:
		r.set(o.key, o.raw)
	case opDelete:
		r.del(o.key)
	case opClear:
		r.fields, r.packed = nil, nil
	case opPermanent:
		r.permanent = o.flag
	case opUser:
		r.user = o.key
	case opMark: // key: the user; raw: the new revocation mark
		if r.user == o.key {
			r.mark = string(o.raw)
		}
	case opFlashAdd:
		applyFlashAdd(r, o.raw)
	case opFlashTake:
		applyFlashTake(r, o.raw)
	}
}

// lockLoaded locks s and loads it, for a read. On success the caller must
// unlock.
func (s *Session) lockLoaded() error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	if err := s.load(); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

// lockChange locks s and loads it, for a change: it refuses changes to a
// degraded session (ErrLoad) and after the response started
// (ErrResponseStarted). On success the caller must unlock.
func (s *Session) lockChange() error {
	if err := s.lockLoaded(); err != nil {
		return err
	}
	if err := s.changeAllowed(); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

// record applies a change and keeps it for the save. s.mu is held.
func (s *Session) record(o op) {
	o.apply(&s.rec)
	s.ops = append(s.ops, o)
}

// Get returns the value stored under name, decoded into a T. It returns an
// error wrapping ErrNoValue if there is none, and a decoding error if the
// value does not fit a T. Values round-trip through JSON: T may be any type
// encoding/json handles (strings, numbers, booleans, time.Time, structs with
// exported fields, slices, maps). Strings in the result are not copied: they
// share the bytes of the stored record as loaded, so keeping one after the
// request keeps that copy (at most Config.MaxRecordBytes) alive; use
// strings.Clone to keep a small piece of a large session.
func Get[T any](s *Session, name string) (T, error) {
	var v T
	raw, err := s.raw(name)
	if err != nil {
		return v, err
	}
	if decodeScalar(raw, &v) {
		return v, nil
	}
	// A fresh T for encoding/json, which keeps v off the heap above.
	p := new(T)
	if err := decodeJSON(raw, p); err != nil {
		return v, fmt.Errorf("kvsession: get %q: %w", name, err)
	}
	return *p, nil
}

func (s *Session) raw(name string) ([]byte, error) {
	if err := s.lockLoaded(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	raw, ok := s.rec.get(name)
	if !ok {
		return nil, fmt.Errorf("kvsession: get %q: %w", name, ErrNoValue)
	}
	return raw, nil
}

// Set stores v under name, replacing any earlier value. v is encoded at
// once, as JSON: later changes to v do not reach the session, and a value
// that cannot be encoded gives an error here.
func (s *Session) Set(name string, v any) error {
	raw, err := encodeValue(v)
	if err != nil {
		return fmt.Errorf("kvsession: set %q: %w", name, err)
	}
	if err := s.lockChange(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	i := s.rec.index(name)
	if i >= 0 && string(s.rec.fields[i].raw) == string(raw) {
		return nil // unchanged: no write
	}
	if size := s.sizeWith(i, name, raw); size > s.c.cfg.MaxRecordBytes {
		return fmt.Errorf("kvsession: set %q: %w: the session would take %d bytes, above MaxRecordBytes %d",
			name, ErrTooLarge, size, s.c.cfg.MaxRecordBytes)
	}
	s.record(op{kind: opSet, key: name, raw: raw})
	return nil
}

// sizeWith returns the encoded size of the session with raw stored under
// name (field i, or a new field if i < 0). s.mu is held.
func (s *Session) sizeWith(i int, name string, raw []byte) int {
	r := s.rec
	if s.state != stored {
		r.userAgent, r.remote = s.in.userAgent(), s.c.remote(&s.in)
		// Timestamps as long as the save's will be.
		const long = 1 << 40
		r.created, r.updated, r.deadline, r.idle = long, long, long, long
	}
	size := r.encodedSize() + stringLen(len(raw))
	if i >= 0 {
		return size - stringLen(len(r.fields[i].raw))
	}
	return size + stringLen(len(name)) + 1 // +1: the field count may grow a byte
}

// Delete removes the value under name. Deleting a value that is not there
// is not an error and costs no write.
func (s *Session) Delete(name string) error {
	if err := s.lockChange(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.rec.index(name) >= 0 {
		s.record(op{kind: opDelete, key: name})
	}
	return nil
}

// Clear removes every value, keeping the session and its ID.
func (s *Session) Clear() error {
	if err := s.lockChange(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.rec.len() > 0 {
		s.record(op{kind: opClear})
	}
	return nil
}

// Has reports whether the session holds a value under name.
func (s *Session) Has(name string) (bool, error) {
	if err := s.lockLoaded(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	_, ok := s.rec.get(name)
	return ok, nil
}

// Names returns the names of the session's values, sorted.
func (s *Session) Names() ([]string, error) {
	if err := s.lockLoaded(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	s.rec.unpack()
	names := make([]string, len(s.rec.fields))
	for i, f := range s.rec.fields {
		names[i] = f.key
	}
	slices.Sort(names)
	return names, nil
}

// Keys is the former name of [Session.Names].
//
// Deprecated: use Names.
func (s *Session) Keys() ([]string, error) { return s.Names() }

// SetPermanent makes the session permanent (its cookie survives browser
// restarts until the session's lifetime ends) or not (a browser-session
// cookie). The server enforces the lifetime either way.
func (s *Session) SetPermanent(permanent bool) error {
	if err := s.lockChange(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.rec.permanent != permanent || s.state != stored {
		s.record(op{kind: opPermanent, flag: permanent})
	}
	return nil
}

// Permanent reports whether the session is permanent.
func (s *Session) Permanent() (bool, error) {
	if err := s.lockLoaded(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	return s.rec.permanent, nil
}

// SetUser binds the session to a user, so that Manager.UserSessions lists
// it and Manager.RevokeUser ends it. An empty user unbinds it. Call it on
// login, together with Regenerate. A user ID longer than MaxUserBytes gives
// an error wrapping ErrInvalidUser and changes nothing.
func (s *Session) SetUser(user string) error {
	if len(user) > MaxUserBytes {
		return fmt.Errorf("%w: %d bytes, want at most %d", ErrInvalidUser, len(user), MaxUserBytes)
	}
	if err := s.lockChange(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.rec.user != user {
		s.record(op{kind: opUser, key: user})
	}
	return nil
}

// User returns the user the session is bound to, or "".
func (s *Session) User() (string, error) {
	if err := s.lockLoaded(); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	return s.rec.user, nil
}

// IsNew reports whether the session is not stored yet: the request
// carried no valid cookie for a live session, or the session was
// destroyed.
func (s *Session) IsNew() (bool, error) {
	if err := s.lockLoaded(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	return s.state != stored, nil
}

// NewCause says why a request's session is new, so that an application
// can tell its user what happened ("you were logged out from another
// device", "your session expired").
type NewCause uint8

// The causes. Their values are stable.
const (
	// CauseNone: the session is not new; it was loaded from the store.
	CauseNone NewCause = iota
	// CauseNoCookie: the request carried no session cookie (or token).
	CauseNoCookie
	// CauseInvalidCookie: the request's session cookie did not verify:
	// tampered, forged, or signed by a key no longer configured.
	CauseInvalidCookie
	// CauseExpired: the cookie named a session past its lifetime or idle
	// timeout. A store that drops expired records by itself (Redis,
	// memcached) reports such a session as CauseEnded instead.
	CauseExpired
	// CauseEnded: the cookie named a session that no longer exists: ended
	// on the server (destroyed on another device, revoked, regenerated by
	// a concurrent request) or dropped by the store.
	CauseEnded
	// CauseDestroyed: this request destroyed the session.
	CauseDestroyed
)

var causeNames = [...]string{"not new", "no cookie", "invalid cookie", "expired", "ended", "destroyed"}

// String returns the cause's name, such as "expired".
func (c NewCause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "unknown cause"
}

// NewCause reports why the session is new, or CauseNone if it was loaded
// from the store. A session created by this request keeps the cause it
// had before its first save.
func (s *Session) NewCause() (NewCause, error) {
	if err := s.lockLoaded(); err != nil {
		return CauseNone, err
	}
	defer s.mu.Unlock()
	return s.cause, nil
}

// IsModified reports whether the request changed the session's values,
// user or permanence since it was loaded (or last regenerated), so that
// the middleware will save it.
func (s *Session) IsModified() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ops) > 0
}

// Degraded reports whether the store failed to load the session and the
// request goes on with an empty one (Config.DegradeOnLoadError). Every
// change to a degraded session returns an error wrapping ErrLoad.
func (s *Session) Degraded() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.load()
	return s.state == degraded
}

// LogID returns a short hash that identifies the session in logs, or "" if
// it has no ID yet. It is derived from the stored hash of the ID: it
// cannot be turned back into the ID or a cookie.
func (s *Session) LogID() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identify()
	return s.c.logID(s.ident.key)
}

// Regenerate gives the session a new ID, keeping its data and any changes
// made so far, and sends the new cookie with the response. Call it whenever
// the user's privileges change, on login above all, to defeat session
// fixation (see the OWASP Session Management Cheat Sheet).
//
// The store work is done when Regenerate returns, and a client that goes
// away cannot interrupt it: on nil, the new ID is stored and indexed and
// the old one is dead on the server, whatever happens to the rest of the
// request. On an error the old session is still usable, unless the error
// wraps ErrEnded: a concurrent request or Manager.RevokeUser ended the
// session meanwhile, and the request goes on with a new, empty one.
func (s *Session) Regenerate() error {
	if err := s.lockChange(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.regenerate()
}

// Destroy deletes the session from the store and clears the cookie:
// replaying the old cookie gives an empty session. The delete is done when
// Destroy returns nil, and nothing after it (a panic, a client that goes
// away, a failed save) undoes it. After Destroy the session is empty and
// new; values set afterwards go to a new session with a new ID.
//
// On a store error the session is unchanged and still usable. A degraded
// session (Config.DegradeOnLoadError) cannot be deleted while the store is
// down: Destroy clears its cookie and returns an error wrapping ErrLoad.
func (s *Session) Destroy() error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return err
	}
	return s.destroy()
}

// currentKey returns the store key the request's cookie names, if it
// verifies, for marking the current session in a listing.
func (s *Session) currentKey() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identify()
	return s.ident.key
}
