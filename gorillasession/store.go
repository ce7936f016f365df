package gorillasession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"weak"

	"github.com/gorilla/sessions"
	"github.com/kvsession/kvsession"
)

// FlashKey is the key under which gorilla's Session.AddFlash and
// Session.Flashes keep flash messages by default. Its messages are
// kvsession's flash messages.
const FlashKey = "_flash"

// Config configures a [Store]: the kvsession Config of its managers, and
// what the adapter adds.
type Config struct {
	kvsession.Config

	// UserKey, if set, names the value that identifies the session's user
	// (a string or an int): when a Save finds it changed, the session is
	// bound to the new user (kvsession's Session.SetUser: the per-user
	// index, Manager.UserSessions, RevokeUser) and its ID regenerated,
	// the session-fixation defence of a login. Deleting the value unbinds
	// the user, with a new ID too. Default: none; sessions are not bound.
	UserKey string
}

// Store is a gorilla/sessions Store backed by kvsession. It is safe for
// concurrent use.
//
// Each session name passed to Get is a cookie name, as in gorilla: the
// Store keeps one kvsession Manager per name, all with the same Config
// (keys, lifetime, cookie attributes, key prefix), so that they share one
// namespace in the store and one per-user index.
type Store struct {
	kv  kvsession.Store
	cfg Config

	mu       sync.Mutex
	managers map[string]*kvsession.Manager
	maxAge   int // the MaxAge of new sessions: 0 or lifetime seconds

	track tracker
}

var _ sessions.Store = (*Store)(nil)

// New returns a Store that keeps its sessions in kv. cfg.CookieName must
// be empty: the session name passed to Get is the cookie name. cfg is
// validated here, with the probe name "session".
func New(kv kvsession.Store, cfg Config) (*Store, error) {
	if kv == nil {
		return nil, errors.New("gorillasession: nil store")
	}
	if cfg.CookieName != "" {
		return nil, errors.New("gorillasession: Config.CookieName must be empty: the session name passed to Get is the cookie name")
	}
	if cfg.ErrorHandler != nil {
		return nil, errors.New("gorillasession: Config.ErrorHandler must be nil: Get and Save return the errors")
	}
	s := &Store{kv: kv, cfg: cfg, managers: map[string]*kvsession.Manager{}}
	s.track.m = map[weak.Pointer[sessions.Session]]*state{}
	if _, err := s.Manager("session"); err != nil {
		return nil, err
	}
	if cfg.Permanent {
		s.maxAge = s.lifetime()
	}
	return s, nil
}

// lifetime returns the configured lifetime in seconds.
func (s *Store) lifetime() int {
	if s.cfg.Lifetime == 0 {
		return 24 * 60 * 60 // kvsession's default
	}
	return max(1, int(s.cfg.Lifetime.Seconds()))
}

// errSlot carries the error a manager reports to its ErrorHandler back to
// the caller of the nested middleware.
type errSlot struct{}

func errorHandler(_ http.ResponseWriter, r *http.Request, err error) {
	if p, ok := r.Context().Value(errSlot{}).(*error); ok && *p == nil {
		*p = err
	}
}

// Manager returns the kvsession Manager of the sessions named name, for
// what gorilla has no call for: Manager.UserSessions, RevokeUser, Admin.
func (s *Store) Manager(name string) (*kvsession.Manager, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.managers[name]; ok {
		return m, nil
	}
	cfg := s.cfg.Config
	cfg.CookieName = name
	cfg.ErrorHandler = errorHandler
	m, err := kvsession.New(s.kv, cfg)
	if err != nil {
		return nil, fmt.Errorf("gorillasession: session %q: %w", name, err)
	}
	s.managers[name] = m
	return m, nil
}

// SetMaxAge sets the MaxAge of new sessions, as gin-contrib's
// Store.Options does: 0 for browser-session cookies, positive for permanent
// ones (lasting Config.Lifetime: the number itself is not used).
func (s *Store) SetMaxAge(maxAge int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case maxAge > 0:
		s.maxAge = s.lifetime()
	default:
		s.maxAge = 0
	}
}

// options returns the Options a session starts with: the cookie
// attributes of the Config, for information, and the MaxAge of new
// sessions.
func (s *Store) options(permanent bool) *sessions.Options {
	o := &sessions.Options{
		Path:     s.cfg.CookiePath,
		Domain:   s.cfg.CookieDomain,
		Secure:   !s.cfg.InsecureCookie,
		HttpOnly: !s.cfg.ScriptReadableCookie,
		SameSite: s.cfg.SameSite,
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if o.SameSite == 0 {
		o.SameSite = http.SameSiteLaxMode
	}
	if permanent {
		o.MaxAge = s.lifetime()
	}
	return o
}

// state is what a session was loaded with, to compute its change set.
type state struct {
	loadErr error             // the load failed: Save refuses
	stored  bool              // loaded from the store (not new)
	raws    map[string][]byte // the values as loaded, kvsession.FlashesName excluded
	flashes []flash           // kvsession's flash messages as loaded
	perm    bool
	user    any // the UserKey value as loaded, decoded
	// token is the cookie value a Save of this request set: a later Save
	// in the same request presents it, since the request's own cookie no
	// longer names the session.
	token string
}

// flash is a kvsession flash message as PeekFlashes returns it.
type flash = kvsession.Flash[json.RawMessage]

// tracker maps each session handed out to its state, without keeping the
// session alive: an entry goes when its session is collected.
type tracker struct {
	mu sync.Mutex
	m  map[weak.Pointer[sessions.Session]]*state
}

func (t *tracker) put(s *sessions.Session, st *state) {
	wp := weak.Make(s)
	t.mu.Lock()
	t.m[wp] = st
	t.mu.Unlock()
	runtime.AddCleanup(s, func(wp weak.Pointer[sessions.Session]) {
		t.mu.Lock()
		delete(t.m, wp)
		t.mu.Unlock()
	}, wp)
}

func (t *tracker) get(s *sessions.Session) *state {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[weak.Make(s)]
}

// Get returns the session named name for the request, loading it on the
// first call and returning the same *sessions.Session on later calls in
// the same request (gorilla's registry).
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// headerWriter is the ResponseWriter of the nested middleware: it keeps
// the headers the manager sets, for Save to copy to the real response.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(int)             {}

// run runs fn on the request's kvsession session, through the manager's
// middleware so that cookies are read and written by its rules, and
// returns the headers it set and the first error of fn or of the save.
func run(m *kvsession.Manager, r *http.Request, token string, fn func(ks *kvsession.Session) error) (http.Header, error) {
	var slot error
	rr := r.WithContext(context.WithValue(r.Context(), errSlot{}, &slot))
	if token != "" {
		// The manager uses the first cookie that verifies: this one.
		rr.Header = r.Header.Clone()
		rr.Header["Cookie"] = append([]string{m.CookieName() + "=" + token}, rr.Header["Cookie"]...)
	}
	w := &headerWriter{h: http.Header{}}
	var fnErr error
	m.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		fnErr = fn(kvsession.From(r))
	})).ServeHTTP(w, rr)
	if fnErr != nil {
		return nil, fnErr
	}
	return w.h, slot
}

// New loads the session named name from the request's cookie, or returns
// a new one. It always returns a session; if the store fails, the session
// is empty, the error wraps kvsession.ErrLoad, and Save of that session
// returns an error and changes nothing (the user's cookie and session are
// left alone).
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.IsNew = true
	st := &state{raws: map[string][]byte{}}
	s.track.put(sess, st)
	m, err := s.Manager(name)
	if err != nil {
		st.loadErr = err
		return sess, err
	}
	_, err = run(m, r, "", func(ks *kvsession.Session) error {
		isNew, err := ks.IsNew()
		if err != nil {
			return err
		}
		st.stored = !isNew
		if st.perm, err = ks.Permanent(); err != nil {
			return err
		}
		keys, err := ks.Names()
		if err != nil {
			return err
		}
		if st.flashes, err = kvsession.PeekFlashes[json.RawMessage](ks); err != nil {
			return err
		}
		for _, k := range keys {
			if k == kvsession.FlashesName {
				continue
			}
			raw, err := kvsession.Get[json.RawMessage](ks, k)
			if err != nil {
				return err
			}
			v, err := decode(raw)
			if err != nil {
				return fmt.Errorf("gorillasession: value under %q: %w", k, err)
			}
			st.raws[k] = raw
			sess.Values[k] = v
		}
		return nil
	})
	if err != nil {
		st.loadErr = err
		clear(sess.Values)
		st.raws, st.flashes = map[string][]byte{}, nil
		return sess, fmt.Errorf("gorillasession: load %q: %w", name, err)
	}
	setFlashes(sess, st.flashes)
	if s.cfg.UserKey != "" {
		st.user = sess.Values[s.cfg.UserKey]
	}
	s.mu.Lock()
	sess.Options = s.options(st.perm || !st.stored && s.maxAge > 0)
	s.mu.Unlock()
	if st.stored {
		sess.IsNew = false
		sess.ID = storeKey(m, r)
	}
	return sess, nil
}

// storeKey returns the store key of the first cookie of the request that
// verifies (the one the manager uses), for Session.ID: not a credential,
// it names the session to the Admin API and the command-line tool.
func storeKey(m *kvsession.Manager, r *http.Request) string {
	for _, c := range r.CookiesNamed(m.CookieName()) {
		if k, err := m.StoreKey(c.Value); err == nil {
			return k
		}
	}
	return ""
}

// plan is the change set of a Save.
type plan struct {
	destroy bool
	sets    map[string][]byte
	deletes []string
	// takeFlashes: the flashes loaded were read (gorilla's Flashes), so
	// they are removed; addFlashes are the new ones.
	takeFlashes bool
	addFlashes  [][]byte
	perm        *bool
	user        *string
}

func (p *plan) empty() bool {
	return !p.destroy && len(p.sets) == 0 && len(p.deletes) == 0 && !p.takeFlashes &&
		len(p.addFlashes) == 0 && p.perm == nil && p.user == nil
}

// userString returns the user ID a UserKey value names.
func userString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	}
	return "", fmt.Errorf("gorillasession: value under UserKey: type %T, want a string or an int", v)
}

// diff computes the change set of sess against what it was loaded with.
// It fails, changing nothing, on a key or value that cannot be stored.
func (s *Store) diff(sess *sessions.Session, st *state) (*plan, error) {
	p := &plan{sets: map[string][]byte{}}
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		p.destroy = true
		return p, nil
	}
	cur := map[string]bool{}
	for k, v := range sess.Values {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("gorillasession: key %v of type %T: only string keys are stored", k, k)
		}
		switch key {
		case kvsession.FlashesName:
			return nil, fmt.Errorf("gorillasession: key %q is reserved for kvsession's flash messages", key)
		case FlashKey:
			continue
		}
		cur[key] = true
		if raw, ok := st.raws[key]; ok {
			if old, err := decode(raw); err == nil && reflect.DeepEqual(old, v) {
				continue
			}
		}
		raw, err := encode(key, v)
		if err != nil {
			return nil, err
		}
		p.sets[key] = raw
	}
	for k := range st.raws {
		if !cur[k] {
			p.deletes = append(p.deletes, k)
		}
	}
	slices.Sort(p.deletes)

	// Flashes: gorilla's list is the loaded messages, in order, unless
	// Flashes took them, then the added ones.
	var list []interface{}
	if v, ok := sess.Values[FlashKey]; ok {
		if list, ok = v.([]interface{}); !ok {
			return nil, fmt.Errorf("gorillasession: value under %q: type %T, want []interface{} (gorilla's AddFlash)", FlashKey, v)
		}
	}
	kept := len(st.flashes) <= len(list)
	for i := 0; kept && i < len(st.flashes); i++ {
		old, err := decode(st.flashes[i].Value)
		kept = err == nil && reflect.DeepEqual(old, list[i])
	}
	added := list
	if kept {
		added = list[len(st.flashes):]
	} else {
		p.takeFlashes = len(st.flashes) > 0
	}
	for _, v := range added {
		raw, err := encode(FlashKey, v)
		if err != nil {
			return nil, err
		}
		p.addFlashes = append(p.addFlashes, raw)
	}

	if sess.Options != nil {
		perm := sess.Options.MaxAge > 0
		if perm != st.perm || !st.stored {
			p.perm = &perm
		}
	}
	if uk := s.cfg.UserKey; uk != "" && !reflect.DeepEqual(sess.Values[uk], st.user) {
		u, err := userString(sess.Values[uk])
		if err != nil {
			return nil, err
		}
		p.user = &u
	}
	if !st.stored && p.perm != nil && len(p.sets) == 0 && len(p.addFlashes) == 0 && p.user == nil {
		p.perm = nil // a new session with nothing in it is not stored
	}
	return p, nil
}

// Save saves the changes made to sess since it was loaded, and sets or
// clears its cookie in w. Only the change set is written (values set,
// changed or deleted, flashes added or read), merged by kvsession with
// what concurrent requests saved meanwhile, so that requests that change
// different keys all land. A value that cannot be stored (a non-string
// key, a type that does not round-trip through JSON) gives an error and
// nothing is saved.
//
// Of sess.Options only MaxAge counts: below zero the session is destroyed
// (deleted from the store when Save returns, cookie cleared), zero makes
// it a browser-session cookie, above zero a permanent one lasting
// Config.Lifetime. Path, Domain, Secure, HttpOnly, SameSite and
// Partitioned come from the kvsession Config, whatever sess.Options says.
//
// A save that meets a concurrent Destroy, Regenerate or RevokeUser of the
// same session is dropped, as kvsession drops it: the session does not
// come back.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	st := s.track.get(sess)
	if st == nil {
		return errors.New("gorillasession: save: the session was not made by this Store's Get or New")
	}
	if st.loadErr != nil {
		return fmt.Errorf("gorillasession: save: the session failed to load: %w", st.loadErr)
	}
	p, err := s.diff(sess, st)
	if err != nil {
		return err
	}
	m, err := s.Manager(sess.Name())
	if err != nil {
		return err
	}
	if p.empty() {
		// Nothing changed: still refresh the idle deadline and re-sign an
		// old cookie, as the middleware does for a request that only reads.
		if !st.stored {
			return nil
		}
		p = &plan{}
	}
	var dropped bool
	var newFlashes []flash
	h, err := run(m, r, st.token, func(ks *kvsession.Session) error {
		if p.destroy {
			return ks.Destroy()
		}
		isNew, err := ks.IsNew()
		if err != nil {
			return err
		}
		if st.stored && isNew {
			dropped = true // ended meanwhile: never brought back
			return nil
		}
		for _, k := range p.deletes {
			if err := ks.Delete(k); err != nil {
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(p.sets)) {
			if err := ks.Set(k, json.RawMessage(p.sets[k])); err != nil {
				return err
			}
		}
		if p.takeFlashes {
			ids := make([]string, len(st.flashes))
			for i, f := range st.flashes {
				ids[i] = f.ID
			}
			if err := ks.TakeFlashes(ids...); err != nil {
				return err
			}
		}
		for _, raw := range p.addFlashes {
			if err := ks.AddFlash(json.RawMessage(raw)); err != nil {
				return err
			}
		}
		if p.perm != nil {
			if err := ks.SetPermanent(*p.perm); err != nil {
				return err
			}
		}
		if p.user != nil {
			if err := ks.SetUser(*p.user); err != nil {
				return err
			}
			if err := ks.Regenerate(); err != nil {
				return err
			}
		}
		newFlashes, err = kvsession.PeekFlashes[json.RawMessage](ks)
		return err
	})
	if err != nil {
		return fmt.Errorf("gorillasession: save %q: %w", sess.Name(), err)
	}
	for _, k := range []string{"Set-Cookie", "Vary"} {
		for _, v := range h[k] {
			w.Header().Add(k, v)
		}
	}
	if v := h.Get("Cache-Control"); v != "" {
		w.Header().Set("Cache-Control", v)
	}
	if dropped {
		return nil
	}
	s.saved(sess, st, p, m, h, newFlashes)
	return nil
}

// saved makes what sess was saved with its new baseline, so that a second
// Save in the same request writes only what changed after the first.
func (s *Store) saved(sess *sessions.Session, st *state, p *plan, m *kvsession.Manager, h http.Header, flashes []flash) {
	if p.destroy {
		st.stored, st.perm, st.user = false, false, nil
		st.raws, st.flashes, st.token = map[string][]byte{}, nil, ""
		sess.IsNew, sess.ID = true, ""
		return
	}
	for _, k := range p.deletes {
		delete(st.raws, k)
	}
	maps.Copy(st.raws, p.sets)
	if p.perm != nil {
		st.perm = *p.perm
	}
	if s.cfg.UserKey != "" {
		st.user = sess.Values[s.cfg.UserKey]
	}
	st.flashes = flashes
	setFlashes(sess, flashes)
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == m.CookieName() && c.Value != "" {
			if k, err := m.StoreKey(c.Value); err == nil {
				sess.ID, st.token = k, c.Value
				st.stored, sess.IsNew = true, false
			}
		}
	}
}

// setFlashes puts kvsession's pending flash messages in sess.Values, where
// gorilla's Flashes reads them, or removes the list if there are none.
func setFlashes(sess *sessions.Session, flashes []flash) {
	if len(flashes) == 0 {
		delete(sess.Values, FlashKey)
		return
	}
	list := make([]interface{}, 0, len(flashes))
	for _, f := range flashes {
		if v, err := decode(f.Value); err == nil { // kvsession wrote JSON: cannot fail
			list = append(list, v)
		}
	}
	sess.Values[FlashKey] = list
}
