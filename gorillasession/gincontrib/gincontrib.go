// Package gincontrib is the gin-contrib/sessions Store of kvsession: a
// [gorillasession.Store] with gin-contrib's Options method. It is a module
// of its own (gorillasession does not require gin):
//
//	go get github.com/kvsession/kvsession/gorillasession/gincontrib
//
// Switch a gin application in one line:
//
//	store, err := gincontrib.New(redisstore.New(client, nil), gorillasession.Config{Config: kvsession.Config{Secrets: keys}})
//	r.Use(sessions.Sessions("mysession", store))
//
// Handlers keep calling sessions.Default(c).Get, Set, Delete, Clear,
// AddFlash, Flashes, Options and Save. What differs from gin-contrib's
// own stores is what differs from gorilla (see package gorillasession):
// values must round-trip through JSON, and of the Options only MaxAge
// counts; the cookie's Path, Domain, Secure, HttpOnly and SameSite come
// from the kvsession Config.
package gincontrib

import (
	"github.com/gin-contrib/sessions"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/gorillasession"
)

// Store is a gin-contrib/sessions Store backed by kvsession. It is safe
// for concurrent use.
type Store struct {
	*gorillasession.Store
}

var _ sessions.Store = (*Store)(nil)

// New returns a Store that keeps its sessions in kv; see gorillasession.New.
func New(kv kvsession.Store, cfg gorillasession.Config) (*Store, error) {
	s, err := gorillasession.New(kv, cfg)
	if err != nil {
		return nil, err
	}
	return &Store{s}, nil
}

// Options sets the options of new sessions. Only MaxAge counts: zero
// gives browser-session cookies, positive permanent ones lasting
// Config.Lifetime. The cookie attributes come from the kvsession Config.
func (s *Store) Options(o sessions.Options) {
	s.SetMaxAge(o.MaxAge)
}
