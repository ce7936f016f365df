package bench

import (
	"encoding/base32"
	"errors"
	"net/http"
	"sync"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// gorilla/sessions has no server-side memory store of its own: its
// CookieStore keeps the data in the cookie, and its FilesystemStore in
// files. gorillaMemStore is FilesystemStore with the file replaced by a map
// entry: the same cookie (the ID, encoded with securecookie), the same
// stored form (the values encoded with securecookie: gob, HMAC, base64) and
// the same code path line for line (FilesystemStore.New, Save, load, save),
// minus the file system calls, which would otherwise dominate and say
// nothing about the library. One RWMutex guards the map, as FilesystemStore's
// package-level fileMutex guards its files.
type gorillaMemStore struct {
	Codecs  []securecookie.Codec
	Options *sessions.Options

	mu   sync.RWMutex
	data map[string]string // session ID -> encoded values

	c *counts
}

var _ sessions.Store = (*gorillaMemStore)(nil)

func newGorillaMemStore(c *counts, keyPairs ...[]byte) *gorillaMemStore {
	s := &gorillaMemStore{
		Codecs:  securecookie.CodecsFromPairs(keyPairs...),
		Options: &sessions.Options{Path: "/", MaxAge: 86400 * 30},
		data:    make(map[string]string),
		c:       c,
	}
	s.MaxAge(s.Options.MaxAge)
	// FilesystemStore limits encoded sessions to 4096 bytes by default; the
	// 2 KB session encodes to more (gob, then base64), so lift the limit,
	// as its documentation tells users to (MaxLength).
	for _, codec := range s.Codecs {
		if sc, ok := codec.(*securecookie.SecureCookie); ok {
			sc.MaxLength(16 << 10)
		}
	}
	return s
}

// MaxAge is FilesystemStore.MaxAge.
func (s *gorillaMemStore) MaxAge(age int) {
	s.Options.MaxAge = age
	for _, codec := range s.Codecs {
		if sc, ok := codec.(*securecookie.SecureCookie); ok {
			sc.MaxAge(age)
		}
	}
}

// Get is FilesystemStore.Get.
func (s *gorillaMemStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New is FilesystemStore.New.
func (s *gorillaMemStore) New(r *http.Request, name string) (*sessions.Session, error) {
	session := sessions.NewSession(s, name)
	opts := *s.Options
	session.Options = &opts
	session.IsNew = true
	var err error
	if c, errCookie := r.Cookie(name); errCookie == nil {
		err = securecookie.DecodeMulti(name, c.Value, &session.ID, s.Codecs...)
		if err == nil {
			err = s.load(session)
			if err == nil {
				session.IsNew = false
			}
		}
	}
	return session, err
}

var base32RawStdEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Save is FilesystemStore.Save.
func (s *gorillaMemStore) Save(r *http.Request, w http.ResponseWriter, session *sessions.Session) error {
	if session.Options.MaxAge <= 0 {
		s.erase(session)
		http.SetCookie(w, sessions.NewCookie(session.Name(), "", session.Options))
		return nil
	}
	if session.ID == "" {
		session.ID = base32RawStdEncoding.EncodeToString(securecookie.GenerateRandomKey(32))
	}
	if err := s.save(session); err != nil {
		return err
	}
	encoded, err := securecookie.EncodeMulti(session.Name(), session.ID, s.Codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(session.Name(), encoded, session.Options))
	return nil
}

var errGorillaNotFound = errors.New("gorillamem: no such session")

func (s *gorillaMemStore) save(session *sessions.Session) error {
	encoded, err := securecookie.EncodeMulti(session.Name(), session.Values, s.Codecs...)
	if err != nil {
		return err
	}
	s.c.countWrite()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[session.ID] = encoded
	return nil
}

func (s *gorillaMemStore) load(session *sessions.Session) error {
	s.mu.RLock()
	data, ok := s.data[session.ID]
	s.mu.RUnlock()
	s.c.countRead(len(data))
	if !ok {
		return errGorillaNotFound
	}
	return securecookie.DecodeMulti(session.Name(), data, &session.Values, s.Codecs...)
}

func (s *gorillaMemStore) erase(session *sessions.Session) {
	s.c.countWrite()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, session.ID)
}
