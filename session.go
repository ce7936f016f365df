package kvsession

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Errors returned by Session methods. Test with [errors.Is].
var (
	// ErrNoValue: the session holds no value under the key.
	ErrNoValue = errors.New("kvsession: no value")

	// ErrNoSession: the context holds no session, because the handler is
	// not wrapped by Manager.Handler.
	ErrNoSession = errors.New("kvsession: no session in context (is the handler wrapped by Manager.Handler?)")

	// ErrTooLarge: the session would be larger than Config.MaxRecordBytes,
	// or a value is nested too deeply.
	ErrTooLarge = errors.New("kvsession: session too large")

	// ErrInvalidCookie: a cookie value that this manager did not issue or
	// no longer accepts.
	ErrInvalidCookie = errors.New("kvsession: invalid session cookie")

	// ErrLoad wraps the store's error when a session could not be loaded.
	// The middleware then answers with Config.ErrorHandler.
	ErrLoad = errors.New("kvsession: cannot load session")

	// ErrInvalidUser: a user ID that Session.SetUser does not accept: one
	// longer than MaxUserBytes.
	ErrInvalidUser = errors.New("kvsession: invalid user ID")
)

// MaxUserBytes is the longest user ID that Session.SetUser accepts. Every
// store in this repository accepts every user ID up to this length, whatever
// bytes it holds (stores whose engine limits key length hash long ones), and
// storetest checks it.
const MaxUserBytes = 1024

// opKind is a kind of change recorded so that it can be replayed onto a
// newer copy of the session after a concurrent change.
type opKind uint8

const (
	opSet opKind = iota
	opDelete
	opClear
	opPermanent
	opUser
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
		r.fields = nil
	case opPermanent:
		r.permanent = o.flag
	case opUser:
		r.user = o.key
	}
}

// Session is the session of one request. Get it in a handler with
// [FromContext] or [From]; it is valid until the handler returns. Its
// methods are safe for concurrent use by goroutines of that request.
//
// The session is loaded from the store on first use, so a request that
// never touches it costs no store call. Changes are saved once, just
// before the response's first byte, by the middleware.
type Session struct {
	m         *Manager
	ctx       context.Context // the request's: a Session lives as long as its request
	userAgent string
	remote    string

	cookies []string // the request's Cookie headers
	token   string   // the Config.Header token, if any

	tokenClient bool // the request carried Config.Header, even empty
	tokenReply  bool // no cookie verified and tokenClient: answer in the header too

	mu         sync.Mutex
	identified bool
	id         []byte               // nil until a valid cookie or a save gives one
	idBuf      [defaultIDBytes]byte // holds a verified cookie's ID of the default size
	key        string
	staleSig   bool // the cookie was signed by an older key
	loaded     bool
	loadErr    error
	degraded   bool
	exists     bool // a live record was loaded
	version    uint64
	expiresAt  time.Time
	rec        record
	loadedUser string // the user as loaded, for the user index

	ops         []op
	modified    bool
	regenerate  bool
	destroyKey  string // storage key to delete on save
	destroyUser string // the destroyed session's user, for the user index
	committed   bool
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

// lockLoaded locks s and loads it. On success the caller must unlock.
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

// load reads the session from the store once. s.mu is held.
func (s *Session) load() error {
	if s.loaded {
		return s.loadErr
	}
	s.loaded = true
	s.identify()
	if s.id == nil {
		return nil
	}
	m := s.m
	e, err := m.get(s.ctx, s.key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			m.emit(s.ctx, Event{Kind: EventUnknownID, LogID: s.logID()})
			s.forget()
			return nil
		}
		m.emit(s.ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
		if m.cfg.DegradeOnLoadError {
			m.emit(s.ctx, Event{Kind: EventDegraded, LogID: s.logID(), Err: err})
			s.degraded = true
			return nil
		}
		s.loadErr = fmt.Errorf("%w: %w", ErrLoad, err)
		return s.loadErr
	}
	rec, err := m.decode(e.Value)
	if err != nil {
		m.emit(s.ctx, Event{Kind: EventCorruptRecord, LogID: s.logID(), Err: err})
		s.forget()
		return nil
	}
	if m.expired(rec, e.ExpiresAt, m.cfg.Now()) {
		m.emit(s.ctx, Event{Kind: EventExpired, LogID: s.logID()})
		s.forget()
		return nil
	}
	s.exists = true
	s.version = e.Version
	s.expiresAt = e.ExpiresAt
	s.rec = rec
	s.loadedUser = rec.user
	return nil
}

// forget drops the presented ID: it is never adopted for a new session.
func (s *Session) forget() {
	s.id, s.key, s.staleSig = nil, "", false
}

func (s *Session) logID() string { return logID(s.m.cfg.KeyPrefix, s.key) }

// record applies a change and remembers it for a replay. s.mu is held.
func (s *Session) record(o op) {
	o.apply(&s.rec)
	s.ops = append(s.ops, o)
	s.modified = true
}

// Get returns the value stored under key, decoded into a T. It returns an
// error wrapping ErrNoValue if there is none, and a decoding error if the
// value does not fit a T. Values round-trip through JSON: T may be any type
// encoding/json handles (strings, numbers, booleans, time.Time, structs with
// exported fields, slices, maps).
func Get[T any](s *Session, key string) (T, error) {
	var v T
	raw, err := s.raw(key)
	if err != nil {
		return v, err
	}
	if decodeScalar(raw, &v) {
		return v, nil
	}
	// A fresh T for encoding/json, which keeps v off the heap above.
	p := new(T)
	if err := decodeJSON(raw, p); err != nil {
		return v, fmt.Errorf("kvsession: get %q: %w", key, err)
	}
	return *p, nil
}

func (s *Session) raw(key string) ([]byte, error) {
	if err := s.lockLoaded(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	i := s.rec.index(key)
	if i < 0 {
		return nil, fmt.Errorf("kvsession: get %q: %w", key, ErrNoValue)
	}
	return s.rec.fields[i].raw, nil
}

// Set stores v under key, replacing any earlier value. v is encoded at
// once, as JSON: later changes to v do not reach the session, and a value
// that cannot be encoded gives an error here.
func (s *Session) Set(key string, v any) error {
	raw, err := encodeValue(v)
	if err != nil {
		return fmt.Errorf("kvsession: set %q: %w", key, err)
	}
	if err := s.lockLoaded(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	i := s.rec.index(key)
	if i >= 0 && string(s.rec.fields[i].raw) == string(raw) {
		return nil // unchanged: no write
	}
	if size := s.sizeWith(i, key, raw); size > s.m.cfg.MaxRecordBytes {
		return fmt.Errorf("kvsession: set %q: %w: the session would take %d bytes, above MaxRecordBytes %d",
			key, ErrTooLarge, size, s.m.cfg.MaxRecordBytes)
	}
	s.record(op{kind: opSet, key: key, raw: raw})
	return nil
}

// sizeWith returns the encoded size of the session with raw stored under
// key (field i, or a new field if i < 0). s.mu is held.
func (s *Session) sizeWith(i int, key string, raw []byte) int {
	r := s.rec
	if !s.exists {
		r.userAgent, r.remote = s.userAgent, s.remote
	}
	size := r.encodedSize() + stringLen(len(raw))
	if i >= 0 {
		return size - stringLen(len(r.fields[i].raw))
	}
	return size + stringLen(len(key)) + 1 // +1: the field count may grow a byte
}

// Delete removes the value under key. Deleting a missing key is not an
// error and costs no write.
func (s *Session) Delete(key string) error {
	if err := s.lockLoaded(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.rec.index(key) >= 0 {
		s.record(op{kind: opDelete, key: key})
	}
	return nil
}

// Clear removes every value, keeping the session and its ID.
func (s *Session) Clear() error {
	if err := s.lockLoaded(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if len(s.rec.fields) > 0 {
		s.record(op{kind: opClear})
	}
	return nil
}

// Has reports whether the session holds a value under key.
func (s *Session) Has(key string) (bool, error) {
	if err := s.lockLoaded(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	return s.rec.index(key) >= 0, nil
}

// Keys returns the keys of the session's values, sorted.
func (s *Session) Keys() ([]string, error) {
	if err := s.lockLoaded(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	keys := make([]string, len(s.rec.fields))
	for i, f := range s.rec.fields {
		keys[i] = f.key
	}
	slices.Sort(keys)
	return keys, nil
}

// SetPermanent makes the session permanent (its cookie survives browser
// restarts until the session's lifetime ends) or not (a browser-session
// cookie). The server enforces the lifetime either way.
func (s *Session) SetPermanent(permanent bool) error {
	if err := s.lockLoaded(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.rec.permanent != permanent || !s.exists {
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
	if err := s.lockLoaded(); err != nil {
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

// IsNew reports whether the session was not loaded from the store: the
// request carried no valid cookie for a live session.
func (s *Session) IsNew() (bool, error) {
	if err := s.lockLoaded(); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	return !s.exists, nil
}

// IsModified reports whether the request changed the session, so that it
// will be saved.
func (s *Session) IsModified() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modified || s.destroyKey != ""
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
	return s.logID()
}

// Regenerate gives the session a new ID, keeping its data; the old ID is
// dead on the server when the response is sent. Call it whenever the
// user's privileges change, on login above all, to defeat session fixation
// (see the OWASP Session Management Cheat Sheet).
func (s *Session) Regenerate() error {
	if err := s.lockLoaded(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.regenerate = true
	s.modified = true
	return nil
}

// Destroy deletes the session from the store when the response is sent
// and clears the cookie: replaying the old cookie gives an empty session.
// After Destroy the session is empty and new; values set afterwards go to
// a new session with a new ID.
func (s *Session) Destroy() error {
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return err
	}
	if s.exists {
		s.destroyKey = s.key
		s.destroyUser = s.loadedUser
	}
	s.forget()
	s.exists = false
	s.rec = record{}
	s.ops = nil
	s.modified = false
	s.regenerate = false
	return nil
}
