package bench

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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
//	/nosession   never touches the session                       the harness floor

// Session is what the application needs of a library's session.
type Session interface {
	// String returns the string under key, or errNoValue.
	String(key string) (string, error)
	// Int returns the int under key, or errNoValue.
	Int(key string) (int, error)
	// Set stores v under key.
	Set(key string, v any) error
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
		case "/setup", "/setup2k":
			s := from(r)
			vals := smallSession
			if r.URL.Path == "/setup2k" {
				vals = largeSession
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

func init() {
	// scs and gorilla encode values with gob, which must know every
	// concrete type stored behind an interface.
	gob.Register(map[string]string{})
}
