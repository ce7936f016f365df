// Package gorillasession is a gorilla/sessions Store backed by kvsession,
// so that a gorilla/sessions, gin-contrib/sessions or echo-contrib/session
// application switches to kvsession in one line and keeps its handler
// code:
//
//	store, err := gorillasession.New(redisstore.New(client, nil), gorillasession.Config{
//		Config:  kvsession.Config{Secrets: [][]byte{secret}},
//		UserKey: "user_id", // optional: the per-user index and RevokeUser
//	})
//
//	sess, err := store.Get(r, "session")
//	sess.Values["user_id"] = 7
//	err = sess.Save(r, w)
//
// The application gains what kvsession gives: signed random IDs with only
// their hash at rest, the server-side lifetime and idle timeout, any
// kvsession backend, merging of concurrent changes (a Save writes only
// what the request changed, merged with what concurrent requests saved),
// no resurrection after a logout, the per-user index, revocation and the
// command-line tool (Session.ID is the store key the tool names).
//
// # What differs from gorilla/sessions
//
//   - Values are stored as JSON, so that kvsession's handlers and tools
//     read them, and only types that come back as the same Go type are
//     accepted: string keys; nil, bool, string, int, float64, and
//     []interface{} and map[string]interface{} of those. Save returns an
//     error, and saves nothing, for a non-string key or any other type
//     (structs and pointers registered with gob, int64, []string,
//     time.Time, []byte): store a struct as a map, a time as a string.
//     Integers above the int range come back as float64.
//   - Of the Options only MaxAge counts: below zero Save destroys the
//     session (deleted when Save returns, cookie cleared), zero makes a
//     browser-session cookie, positive a permanent one lasting
//     Config.Lifetime (the number itself is not used). Path, Domain,
//     Secure, HttpOnly, SameSite and Partitioned come from the kvsession
//     Config for every session, whatever Options says.
//   - The session name is the cookie name. Config.CookieName must be
//     empty; the kvsession defaults hold otherwise (Secure, HttpOnly,
//     SameSite=Lax, Path=/). Cookies of the previous store do not verify:
//     the switch starts everyone with a new session.
//   - Flash messages under gorilla's default key (FlashKey, "_flash") are
//     kvsession's flash messages: a request that reads them removes only
//     those it read, and two tabs that add some keep both. Flashes under
//     another key are a plain value.
//   - A session that failed to load (store down) comes with an error
//     wrapping kvsession.ErrLoad, and its Save returns an error and
//     changes nothing: the user's cookie and stored session are left alone.
//   - An empty new session is not stored and gets no cookie.
//   - With Config.UserKey, a change of that value binds the session to the
//     user and regenerates its ID (the login's fixation defence).
//     [Store.Manager] gives the kvsession Manager for UserSessions,
//     RevokeUser and Admin.
//
// # gin-contrib/sessions
//
// gin-contrib's Store (this Store plus its Options method) is in a module
// of its own, so that gorilla and echo-contrib applications never download
// gin:
//
//	go get github.com/kvsession/kvsession/gorillasession/gincontrib
//
//	import "github.com/kvsession/kvsession/gorillasession/gincontrib"
//
//	store, err := gincontrib.New(kvStore, gorillasession.Config{...})
//	r.Use(sessions.Sessions("mysession", store))
//
// Get caches the session per request in gorilla's registry, as gorilla's
// stores do. Each Get costs one store read; a Save with changes costs one
// more read and the write.
package gorillasession
