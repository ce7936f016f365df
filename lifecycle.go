package kvsession

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"time"
)

// A session's life, in one place. Its state is one value:
//
//	unread ──load──▶ fresh      no stored session: the first change creates one at commit
//	              ├─▶ stored     a live stored session
//	              ├─▶ degraded   the load failed, Config.DegradeOnLoadError: empty, changes refused
//	              └─▶ failed     the load failed: every method returns the error
//
//	fresh  ──commit with changes──▶ stored   (create)
//	stored ──Regenerate──▶ stored            (new ID, now)       or fresh (ended meanwhile: ErrEnded)
//	stored ──Destroy──▶ fresh                (deleted, now)
//	stored ──commit──▶ stored                (update, refresh)   or fresh (ended meanwhile: dropped)
//
// Apart from the state, a session knows whether it has been committed
// (done: the response started, changes are refused), which cookie the
// response must carry (cookie), and the changes not yet saved (ops).
// Every assignment to s.state is in this file.
type state uint8

const (
	unread state = iota
	fresh
	stored
	degraded
	failed
)

// cookieAction is what the response does with the session cookie, beyond
// the rules of commit.
type cookieAction uint8

const (
	cookieAsNeeded cookieAction = iota // commit decides
	cookieSend                         // the ID changed: send it
	cookieClear                        // the session ended: clear it
)

// maxSaveAttempts bounds the merge-and-retry loop of a save that keeps
// meeting concurrent changes: enough for a burst of a hundred concurrent
// writers to one session.
const maxSaveAttempts = 100

// maxBindAttempts bounds the retries of a login that keeps meeting
// revocations of its user.
const maxBindAttempts = 3

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

// load reads the session from the store once. s.mu is held.
func (s *Session) load() error {
	if s.state != unread {
		if s.state == failed {
			return s.loadErr
		}
		return nil
	}
	s.identify()
	if s.ident.id == nil {
		s.state, s.cause = fresh, CauseNoCookie
		if s.ident.presented {
			s.cause = CauseInvalidCookie
		}
		return nil
	}
	c := s.c
	e, err := c.load(s.ctx, s.ident.key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			if errors.Is(err, ErrCorrupt) { // a record the store cannot parse
				c.emit(s.ctx, Event{Kind: EventCorruptRecord, LogID: s.logID(), Err: err})
			} else {
				c.emit(s.ctx, Event{Kind: EventUnknownID, LogID: s.logID()})
			}
			s.forget()
			s.state, s.cause = fresh, CauseEnded
			return nil
		}
		c.emit(s.ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
		s.loadErr = fmt.Errorf("%w: %w", ErrLoad, err)
		if c.cfg.DegradeOnLoadError {
			c.emit(s.ctx, Event{Kind: EventDegraded, LogID: s.logID(), Err: err})
			s.state = degraded
			return nil
		}
		s.state = failed
		return s.loadErr
	}
	rec, err := c.decode(e.Value)
	if err != nil {
		c.emit(s.ctx, Event{Kind: EventCorruptRecord, LogID: s.logID(), Err: err})
		s.forget()
		s.state, s.cause = fresh, CauseEnded
		return nil
	}
	if c.expired(&rec, e, c.cfg.Now()) {
		c.emit(s.ctx, Event{Kind: EventExpired, LogID: s.logID()})
		s.forget()
		s.state, s.cause = fresh, CauseExpired
		return nil
	}
	s.state = stored
	s.version = e.Version
	s.expiresAt = unixMilli(c.idleDeadline(&rec, e))
	s.rec = rec
	s.loadedUser = rec.user
	return nil
}

func (s *Session) logID() string { return s.c.logID(s.ident.key) }

// changeAllowed reports why a loaded session cannot change, if it cannot.
// s.mu is held.
func (s *Session) changeAllowed() error {
	switch {
	case s.done:
		s.c.emit(s.ctx, Event{Kind: EventLateChange, LogID: s.logID()})
		return ErrResponseStarted
	case s.state == degraded:
		return fmt.Errorf("kvsession: degraded session: %w", s.loadErr)
	}
	return nil
}

// ended turns a session that a concurrent request or a revocation ended
// into a fresh one, dropping its unsaved changes. s.mu is held.
func (s *Session) ended(ctx context.Context) {
	s.c.emit(ctx, Event{Kind: EventSaveDropped, LogID: s.logID()})
	s.forget()
	s.state, s.cause = fresh, CauseEnded
	s.rec, s.ops, s.loadedUser = record{}, nil, ""
	s.cookie = cookieClear
}

// commit saves the session's changes and sets or clears the cookie in h.
// The middleware calls it once, before the response's first byte.
func (s *Session) commit(h http.Header) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	switch s.state {
	case unread:
		return nil // untouched: no store call, no cookie
	case failed:
		return s.loadErr
	case degraded:
		if s.cookie == cookieClear {
			s.clearCookie(h)
		}
		return nil // never saved: the real session works again once the store is back
	}
	if len(s.ops) == 0 {
		switch {
		case s.state == fresh:
			if s.cookie == cookieClear {
				s.clearCookie(h)
			}
			return nil
		case s.cookie == cookieSend: // regenerated, nothing changed since
			s.setCookie(h, s.c.cfg.Now())
			return nil
		}
		return s.saveUnchanged(h)
	}
	c := s.c
	now := c.cfg.Now()
	// One deadline bounds the whole save, retries and clean-ups included,
	// so a hung store cannot hold the response past StoreTimeout.
	ctx, cancel := c.bound(s.ctx)
	defer cancel()
	if s.state == fresh {
		return s.create(ctx, h, now)
	}
	return s.update(ctx, h, now)
}

// saveUnchanged finishes a request that changed nothing: it extends the
// idle deadline when due, without rewriting the data, and re-signs a cookie
// signed by an older key. s.mu is held.
func (s *Session) saveUnchanged(h http.Header) error {
	c := s.c
	if c.cfg.IdleTimeout <= 0 && !s.ident.staleSig {
		return nil // nothing to do, and no need of the clock
	}
	now := c.cfg.Now()
	if s.refreshDue(now) {
		ctx, cancel := c.bound(s.ctx)
		defer cancel()
		err := s.extend(ctx, now)
		if errors.Is(err, ErrNotFound) {
			c.emit(ctx, Event{Kind: EventSaveDropped, LogID: s.logID()})
			return nil // ended meanwhile: nothing to refresh, no cookie
		}
		if err != nil {
			c.emit(ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
			return fmt.Errorf("kvsession: refresh session: %w", err)
		}
	}
	if s.ident.staleSig {
		s.setCookie(h, now) // the record is unchanged; the cookie's signature is not
	}
	return nil
}

// extend moves the idle deadline of an unchanged session: a Touch, which
// keeps the data, or, when the store keeps no expiry (Config.NoStoreTTL),
// a rewrite of the record with its new idle deadline. A conflict means a
// concurrent write, which extended it too. s.mu is held.
func (s *Session) extend(ctx context.Context, now time.Time) error {
	c := s.c
	if !c.cfg.NoStoreTTL {
		return c.touch(ctx, s.ident.key, c.expiry(&s.rec, now))
	}
	rec := s.rec
	exp := c.stamp(&rec, now) // updated: the session was last seen now
	b, err := c.encode(&rec)
	if err != nil {
		return err
	}
	err = c.cas(ctx, s.ident.key, b, exp, s.version)
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

// refreshDue reports whether a loaded session's idle deadline is due for
// extension: at most once per IdleRefresh, and never past its lifetime.
func (s *Session) refreshDue(now time.Time) bool {
	c := s.c
	if c.cfg.IdleTimeout <= 0 || s.expiresAt == 0 {
		return false
	}
	expiresAt := time.UnixMilli(s.expiresAt)
	lastRefresh := expiresAt.Add(-c.cfg.IdleTimeout)
	return expiresAt.Before(c.deadline(&s.rec)) && now.Sub(lastRefresh) >= c.cfg.IdleRefresh
}

// create stores a new session under a new ID. s.mu is held.
func (s *Session) create(ctx context.Context, h http.Header, now time.Time) error {
	c := s.c
	id, key, err := c.newID(s.ident.spareIDBuf())
	if err != nil {
		return err
	}
	rec := &s.rec
	rec.created, rec.deadline = now.UnixMilli(), now.Add(c.cfg.Lifetime).UnixMilli()
	rec.userAgent, rec.remote = s.in.userAgent(), c.remote(&s.in)
	if !s.hasPermanentOp() {
		rec.permanent = c.cfg.Permanent
	}
	for attempt := 1; ; attempt++ {
		held, err := s.storeCopy(ctx, key, now, rec.user != "", "create")
		if err == nil && !held && attempt < maxBindAttempts {
			continue // the user was revoked meanwhile: bind under the new mark
		}
		if err == nil && !held {
			err = fmt.Errorf("kvsession: create session: %w: the user keeps being revoked", ErrEnded)
		}
		if err != nil {
			s.discard(ctx, key)
			return err
		}
		break
	}
	s.ident.id, s.ident.key, s.ident.staleSig = id, key, false
	s.state = stored // created: still new to the handler (cause kept)
	s.ops, s.loadedUser, s.versionStale = nil, rec.user, true
	c.emit(ctx, Event{Kind: EventCreated, LogID: s.logID()})
	c.capUser(ctx, rec.user, key)
	s.setCookie(h, now)
	return nil
}

// storeCopy writes the session's record under key, a key nobody knows yet
// (a create, or the new key of a Regenerate), indexes it under the
// session's user and reports whether the user's revocation mark held
// (indexAndCheck). With freshBind the record first takes the user's
// current mark: a new binding, not the continuation of an old one. A copy
// whose indexing fails is discarded. s.mu is held.
func (s *Session) storeCopy(ctx context.Context, key string, now time.Time, freshBind bool, op string) (held bool, err error) {
	c, rec := s.c, &s.rec
	if freshBind {
		if rec.mark, err = c.mark(ctx, rec.user); err != nil {
			return false, err
		}
	}
	exp := c.stamp(rec, now)
	b, err := c.encode(rec)
	if err != nil {
		return false, err
	}
	if err := c.set(ctx, key, b, exp); err != nil {
		c.emit(ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
		return false, fmt.Errorf("kvsession: %s session: %w", op, err)
	}
	held, err = s.indexAndCheck(ctx, key)
	if err != nil {
		s.discard(ctx, key)
	}
	return held, err
}

// indexAndCheck records key under the session's user, if it has one, and
// then reports whether the user's revocation mark is still the one the
// session was bound under. Together with RevokeUser, which writes a new mark
// before it reads the index, this makes revocation airtight: a key indexed
// before the new mark was written is found and deleted by RevokeUser; one
// indexed after sees the new mark here and is given up. s.mu is held.
func (s *Session) indexAndCheck(ctx context.Context, key string) (held bool, err error) {
	c, rec := s.c, &s.rec
	if rec.user == "" {
		return true, nil
	}
	if err := c.index(ctx, rec, key); err != nil {
		return false, err
	}
	cur, err := c.mark(ctx, rec.user)
	if err != nil {
		return false, err
	}
	return cur == rec.mark, nil
}

// discard removes a record whose ID was never sent, and its index entry,
// after a failed create or regenerate. The ID is known to nobody, so a
// failure here leaves an orphan that expires on its own; it is reported.
func (s *Session) discard(ctx context.Context, key string) {
	c := s.c
	if err := c.del(ctx, key); err != nil {
		c.emit(ctx, Event{Kind: EventStoreError, LogID: c.logID(key), Err: err})
	}
	c.tidy(ctx, s.rec.user, key)
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
// an error wrapping ErrNotFound if the session is gone. s.mu is held.
func (s *Session) reload(ctx context.Context, conflict error) error {
	c := s.c
	var e Entry
	if ce := (*ConflictError)(nil); errors.As(conflict, &ce) {
		e = ce.Current
	} else {
		var err error
		if e, err = c.get(ctx, s.ident.key); err != nil {
			return err
		}
	}
	rec, err := c.decode(e.Value)
	if err != nil {
		c.emit(ctx, Event{Kind: EventCorruptRecord, LogID: s.logID(), Err: err})
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

// update saves changes to a stored session with a compare-and-swap,
// merging with concurrent changes. s.mu is held.
func (s *Session) update(ctx context.Context, h http.Header, now time.Time) error {
	c := s.c
	key := s.ident.key
	if s.versionStale { // written by Regenerate in this request
		e, err := c.get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			s.dropped(ctx)
			return nil
		}
		if err != nil {
			c.emit(ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
			return fmt.Errorf("kvsession: save session: %w", err)
		}
		s.version, s.versionStale = e.Version, false
	}
	for attempt := 1; ; attempt++ {
		rec := &s.rec
		if rec.user != "" && rec.user != s.loadedUser {
			// A new binding: index and check the mark before the record
			// says so, so that a concurrent RevokeUser either finds this
			// key or is seen here.
			if err := s.bind(ctx, key); err != nil {
				return err
			}
		}
		exp := c.stamp(rec, now)
		b, err := c.encode(rec)
		if err != nil {
			return err
		}
		err = c.cas(ctx, key, b, exp, s.version)
		if errors.Is(err, ErrConflict) && attempt < maxSaveAttempts {
			c.emit(ctx, Event{Kind: EventConflict, LogID: s.logID()})
			backoff(ctx, attempt)
			err = s.reload(ctx, err)
			if err == nil {
				continue
			}
		}
		if errors.Is(err, ErrNotFound) {
			s.dropped(ctx)
			return nil
		}
		if err != nil {
			c.emit(ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
			return fmt.Errorf("kvsession: save session: %w", err)
		}
		break
	}
	if s.loadedUser != s.rec.user {
		c.tidy(ctx, s.loadedUser, key)
	}
	if s.loadedUser != s.rec.user {
		c.capUser(ctx, s.rec.user, key)
	}
	permanenceChanged := s.hasPermanentOp()
	s.ops, s.loadedUser = nil, s.rec.user
	// A browser-session cookie does not change with the data, so it is
	// sent again only when it does: signed by an older key, or turned
	// permanent or back, or regenerated. A permanent one goes with every
	// save, to keep its Max-Age current.
	if s.ident.staleSig || s.rec.permanent || permanenceChanged || s.cookie == cookieSend {
		s.setCookie(h, now)
	}
	return nil
}

// dropped ends a save that found its session destroyed or regenerated by a
// concurrent request (or revoked): the changes are dropped rather than
// bring the old ID back, and the response leaves the cookie alone. s.mu is
// held.
func (s *Session) dropped(ctx context.Context) {
	s.ended(ctx)
	s.cookie = cookieAsNeeded
}

// bind makes the session's user binding known to the index before the
// record is updated: it takes the user's current revocation mark, indexes
// the key and checks the mark held. s.mu is held.
func (s *Session) bind(ctx context.Context, key string) error {
	c, rec := s.c, &s.rec
	for range maxBindAttempts {
		var err error
		if rec.mark, err = c.mark(ctx, rec.user); err != nil {
			return err
		}
		held, err := s.indexAndCheck(ctx, key)
		if err != nil || held {
			return err
		}
	}
	return fmt.Errorf("kvsession: bind session: %w: the user keeps being revoked", ErrEnded)
}

// regenerate moves a stored session to a new ID, now: it stores the record
// (with this request's changes) under the new key and indexes it, then
// deletes the old key only if nobody changed it meanwhile, merging if
// somebody did. Its store calls are detached from the request's
// cancellation and bounded by the store timeout. A failed step leaves the
// old session as it was. s.mu is held.
func (s *Session) regenerate() error {
	if s.state != stored {
		return nil // nothing stored: the first save takes a new ID anyway
	}
	c := s.c
	ctx, cancel := c.detached(s.ctx)
	defer cancel()
	id, key, err := c.newID(nil) // the old ID is in use until the new one replaces it
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	oldKey, oldUser := s.ident.key, s.loadedUser
	rec := &s.rec
	for attempt := 1; ; attempt++ {
		freshBind := rec.user != "" && rec.user != s.loadedUser
		held, err := s.storeCopy(ctx, key, now, freshBind, "regenerate")
		if err != nil {
			return err
		}
		if !held {
			if freshBind && attempt < maxBindAttempts {
				continue // a new login that met a revocation: bind under the new mark
			}
			// The session was bound to its user before a RevokeUser that
			// ran meanwhile: it is revoked, and so is this copy.
			s.discard(ctx, key)
			if err := c.del(ctx, oldKey); err != nil {
				c.emit(ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
			}
			s.ended(ctx)
			return fmt.Errorf("kvsession: regenerate session: %w: its user was revoked", ErrEnded)
		}
		err = c.cad(ctx, oldKey, s.version)
		if errors.Is(err, ErrConflict) && attempt < maxSaveAttempts {
			c.emit(ctx, Event{Kind: EventConflict, LogID: s.logID()})
			backoff(ctx, attempt)
			err = s.reload(ctx, err)
			if err == nil {
				continue
			}
		}
		if errors.Is(err, ErrNotFound) {
			// Destroyed or regenerated concurrently: the new copy must not
			// outlive the old one.
			s.discard(ctx, key)
			s.ended(ctx)
			return fmt.Errorf("kvsession: regenerate session: %w", ErrEnded)
		}
		if err != nil {
			c.emit(ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
			s.discard(ctx, key)
			return fmt.Errorf("kvsession: regenerate session: %w", err)
		}
		break
	}
	if oldUser != "" {
		c.tidy(ctx, oldUser, oldKey)
	}
	s.ident.id, s.ident.key, s.ident.staleSig = id, key, false
	s.ops, s.loadedUser, s.versionStale = nil, rec.user, true
	s.cookie = cookieSend
	c.emit(ctx, Event{Kind: EventRegenerated, LogID: s.logID()})
	if rec.user != oldUser {
		c.capUser(ctx, rec.user, key)
	}
	return nil
}

// destroy deletes a stored session, now, with a context detached from the
// request's cancellation and bounded by the store timeout. On a store
// error the session is unchanged. s.mu is held and the session loaded.
func (s *Session) destroy() error {
	c := s.c
	switch s.state {
	case degraded:
		s.cookie = cookieClear
		return fmt.Errorf("kvsession: destroy session: %w", s.loadErr)
	case fresh:
		s.rec, s.ops = record{}, nil
		if s.ident.presented {
			s.cookie = cookieClear
		}
		return nil
	}
	if s.done {
		// The cookie can no longer be cleared, but the session can still
		// end: a logout must never fail open.
		c.emit(s.ctx, Event{Kind: EventLateChange, LogID: s.logID()})
	}
	ctx, cancel := c.detached(s.ctx)
	defer cancel()
	key := s.ident.key
	if err := c.del(ctx, key); err != nil {
		c.emit(ctx, Event{Kind: EventStoreError, LogID: s.logID(), Err: err})
		return fmt.Errorf("kvsession: destroy session: %w", err)
	}
	c.tidy(ctx, s.loadedUser, key)
	c.emit(ctx, Event{Kind: EventDestroyed, LogID: c.logID(key)})
	s.forget()
	s.state, s.cause = fresh, CauseDestroyed
	s.rec, s.ops, s.loadedUser = record{}, nil, ""
	s.cookie = cookieClear
	if s.done {
		return fmt.Errorf("kvsession: destroy session: %w: deleted on the server, but the cookie could not be cleared", ErrResponseStarted)
	}
	return nil
}

// adoptMark records that the session, bound to user, survives a
// revocation that wrote mark (RevokeUser keeping the current session), so
// that its next Regenerate is not taken for a revoked one.
func (s *Session) adoptMark(user, mark string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.load() == nil && s.state == stored && s.rec.user == user && !s.done {
		s.record(op{kind: opMark, key: user, raw: []byte(mark)})
	}
}
