package bench

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The application every library serves. It is one generic handler, so the
// libraries differ only in how a handler reaches its session (an adapter of
// a few lines each, in libs_test.go), never in what the handler does.
//
//	/read        reads the string "user" and writes it          READ, READ2K, IDLE
//	/inc         reads the int "count", stores count+1, writes it WRITE
//	/new         stores "user" in a session that has no cookie   NEW
//	/setup       stores the small session: user and count
//	/setup2k     stores the 2 KB session: user, count, strings and a map
//	/map         reads the 20-entry map "prefs", checks it, writes one entry   READ2K-map
//	/struct      reads the Profile "profile", checks it, writes its email      READ2K-struct
//	/slice       reads the 20 strings "recent", checks them, writes the last   READ2K-slice
//	/setup2kv    stores the structured 2 KB session: user, count, a map, a struct, a slice
//	/nosession   never touches the session                       the harness floor

// Session is what the application needs of a library's session.
type Session interface {
	// String returns the string under key, or errNoValue.
	String(key string) (string, error)
	// Int returns the int under key, or errNoValue.
	Int(key string) (int, error)
	// Set stores v under key.
	Set(key string, v any) error
	// Map, Profile and Strings return the structured value under key, or
	// errNoValue.
	Map(key string) (map[string]string, error)
	Profile(key string) (Profile, error)
	Strings(key string) ([]string, error)
}

var errNoValue = errors.New("bench: no value")

// app returns the application handler. from gives the request's session;
// save, when not nil, saves a changed session before the body is written
// (gorilla/sessions needs the explicit call; kvsession and scs save in their
// middleware).
func app[S Session](from func(*http.Request) S, save func(http.ResponseWriter, *http.Request, S) error) http.Handler {
	fail := func(w http.ResponseWriter, err error) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	commit := func(w http.ResponseWriter, r *http.Request, s S) bool {
		if save == nil {
			return true
		}
		if err := save(w, r, s); err != nil {
			fail(w, err)
			return false
		}
		return true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/read":
			v, err := from(r).String("user")
			if err != nil {
				fail(w, err)
				return
			}
			io.WriteString(w, v)
		case "/inc":
			s := from(r)
			n, err := s.Int("count")
			if err != nil && !errors.Is(err, errNoValue) {
				fail(w, err)
				return
			}
			if err := s.Set("count", n+1); err != nil {
				fail(w, err)
				return
			}
			if commit(w, r, s) {
				w.Write(strconv.AppendInt(make([]byte, 0, 20), int64(n+1), 10))
			}
		case "/new":
			s := from(r)
			if err := s.Set("user", user); err != nil {
				fail(w, err)
				return
			}
			if commit(w, r, s) {
				w.Write(okBody)
			}
		case "/map":
			m, err := from(r).Map("prefs")
			if err == nil && !maps.Equal(m, structPrefs) {
				err = errors.New("bench: the map read differs from the map stored")
			}
			if err != nil {
				fail(w, err)
				return
			}
			io.WriteString(w, m["theme"])
		case "/struct":
			p, err := from(r).Profile("profile")
			if err == nil && !p.equal(structProfile) {
				err = errors.New("bench: the struct read differs from the struct stored")
			}
			if err != nil {
				fail(w, err)
				return
			}
			io.WriteString(w, p.Email)
		case "/slice":
			l, err := from(r).Strings("recent")
			if err == nil && !slices.Equal(l, structRecent) {
				err = errors.New("bench: the slice read differs from the slice stored")
			}
			if err != nil {
				fail(w, err)
				return
			}
			io.WriteString(w, l[len(l)-1])
		case "/setup", "/setup2k", "/setup2kv":
			s := from(r)
			vals := smallSession
			switch r.URL.Path {
			case "/setup2k":
				vals = largeSession
			case "/setup2kv":
				vals = structuredSession
			}
			for _, kv := range vals {
				if err := s.Set(kv.key, kv.value); err != nil {
					fail(w, err)
					return
				}
			}
			if commit(w, r, s) {
				w.Write(okBody)
			}
		case "/nosession":
			w.Write(okBody)
		default:
			http.NotFound(w, r)
		}
	})
}

var okBody = []byte("ok")

const user = "alice@example.com"

type keyValue struct {
	key   string
	value any
}

// smallSession is a typical logged-in session: who, and a counter.
var smallSession = []keyValue{{"user", user}, {"count", 1}}

// largeSession holds about 2 KB: the small session plus a CSRF token, a
// flash message, twelve 100-byte strings and a map of twelve preferences.
var largeSession = func() []keyValue {
	kv := append([]keyValue(nil), smallSession...)
	kv = append(kv,
		keyValue{"csrf", "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8"},
		keyValue{"flash", "Your changes were saved. They will show on every device within a minute."},
	)
	for i := range 12 {
		kv = append(kv, keyValue{fmt.Sprintf("note%02d", i), strings.Repeat(string(rune('a'+i)), 100)})
	}
	prefs := make(map[string]string)
	for _, k := range []string{"theme", "lang", "tz", "currency", "units", "density", "editor", "font", "start", "digest", "beta", "region"} {
		prefs[k] = k + "-" + strings.Repeat("v", 24)
	}
	return append(kv, keyValue{"prefs", prefs})
}()

// Profile is the struct of READ2K-struct: ten flat fields of the kinds a
// session's user record has (strings, integers, booleans, a time), with
// the json tags an application would give them.
type Profile struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Locale    string    `json:"locale"`
	Plan      string    `json:"plan,omitempty"`
	Logins    int       `json:"logins"`
	Admin     bool      `json:"admin"`
	Verified  bool      `json:"verified"`
	LastLogin time.Time `json:"last_login"`
}

func (p Profile) equal(q Profile) bool {
	lp, lq := p.LastLogin, q.LastLogin
	p.LastLogin, q.LastLogin = time.Time{}, time.Time{}
	return p == q && lp.Equal(lq)
}

// The structured values of READ2K-map, READ2K-struct and READ2K-slice.
var (
	structPrefs = func() map[string]string {
		m := make(map[string]string)
		for _, k := range []string{"theme", "lang", "tz", "currency", "units", "density", "editor", "font", "start", "digest",
			"beta", "region", "sidebar", "sort", "pagesize", "notify", "email", "sound", "keymap", "dateformat"} {
			m[k] = k + "-" + strings.Repeat("v", 16)
		}
		return m
	}()
	structProfile = Profile{
		ID: 1234567, Name: "Alice Example", Email: user, Role: "editor", Locale: "en-GB", Plan: "team",
		Logins: 42, Admin: false, Verified: true, LastLogin: time.Date(2026, 11, 30, 9, 41, 7, 123000000, time.UTC),
	}
	structRecent = func() []string {
		l := make([]string, 20)
		for i := range l {
			l[i] = fmt.Sprintf("/projects/%02d/board", i)
		}
		return l
	}()
)

// structuredSession holds about 2 KB: the small session plus a CSRF token,
// a flash message, six 100-byte strings, the 20-entry map of preferences,
// the Profile and the 20 most recent paths.
var structuredSession = func() []keyValue {
	kv := append([]keyValue(nil), largeSession[:4]...)
	for i := range 6 {
		kv = append(kv, keyValue{fmt.Sprintf("note%02d", i), strings.Repeat(string(rune('a'+i)), 100)})
	}
	return append(kv, keyValue{"prefs", structPrefs}, keyValue{"profile", structProfile}, keyValue{"recent", structRecent})
}()

func init() {
	// scs and gorilla encode values with gob, which must know every
	// concrete type stored behind an interface.
	gob.Register(map[string]string{})
	gob.Register(Profile{})
	gob.Register([]string{})
}
