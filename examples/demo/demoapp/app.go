// Package demoapp is the web application of the kvsession demo: a login
// without a password, a counter, a scratchpad of key/values and a list of
// the user's active sessions with "log out this one" and "log out all
// others". The command in the parent directory serves it; the kvsession
// command's tests use it to write real sessions.
//
// # Endpoints
//
//	GET  /                 the page (HTML, no JavaScript)
//	GET  /api/me           {"user": "<name or empty>", "count": <int>}, and once
//	                       "cause" and "notice" (see [Me])
//	POST /login            form user: SetUser, then Regenerate
//	POST /count            count + 1
//	GET  /api/kv           the scratchpad, a JSON object
//	POST /api/kv           form key, value: sets one (an empty value deletes it)
//	POST /logout           Destroy
//	GET  /api/sessions     the user's sessions: created, last seen, user agent, current
//	POST /logout-others    RevokeUser, keeping this session
//	POST /revoke           form id: ends one of the user's other sessions
//	GET  /healthz          200 if the store answers, 503 if not
//	GET  /stats            the metrics panel alone, reloading every 5 seconds
//	                       (with Config.Stats; the page shows it too)
//
// POST endpoints answer a browser with a redirect (303 See Other) to the
// page, at the card of the form (/#counter, /#sessions), and a client that
// sends "Accept: application/json" with the JSON of /api/me. Cross-origin
// POSTs from browsers are refused by [http.CrossOriginProtection]; clients
// that send neither Sec-Fetch-Site nor Origin (scripts, curl) pass.
//
// A visitor whose session is new is told why, once, when it is news to
// them: on the page and in the "cause" and "notice" of /api/me, after a
// logout from another device, an expiry or a cookie that did not verify
// ([kvsession.Session.NewCause]). When the session store is down, every
// endpoint answers 503 with Retry-After: a page saying that the session is
// safe, or JSON for a client that asks for it.
package demoapp

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kvsession/kvsession"
)

//go:embed templates static
var files embed.FS

// Limits on what a visitor can put in a session.
const (
	maxUserLen  = 64    // characters in a user name
	maxKeyLen   = 64    // characters in a scratchpad key
	maxValueLen = 1000  // bytes in a scratchpad value
	maxEntries  = 50    // scratchpad entries per session
	kvPrefix    = "kv." // session keys of scratchpad entries
)

// Config configures an [App]. Only Secrets is required.
type Config struct {
	// Secrets sign session IDs: the first signs, all verify. Each is at least
	// 32 bytes. Instances that share a store must share the keys.
	Secrets [][]byte

	// Secure means the application is served over HTTPS: cookies get the
	// Secure attribute and the "__Host-" prefix. Without it the cookie
	// lacks Secure (Config.InsecureCookie), so that browsers send it over
	// plain HTTP on loopback.
	Secure bool

	// StoreName describes the store in the page footer, such as a store
	// URL without its password.
	StoreName string

	// Instance names this process in the page footer, so that several
	// instances behind one address can be told apart. Default:
	// hostname:pid.
	Instance string

	// Logger receives the session lifecycle events and request errors.
	// Default: slog.Default().
	Logger *slog.Logger

	// Now is the clock. Default: time.Now.
	Now func() time.Time

	// OnEvent, if set, receives the session lifecycle events
	// (kvsession.Config.OnEvent), such as an OpenTelemetry observer's.
	OnEvent func(ctx context.Context, e kvsession.Event)

	// Stats, if set, feeds the page's metrics panel and GET /stats, the
	// panel alone reloading every few seconds. Without it there is no
	// panel.
	Stats func(ctx context.Context) (Stats, error)
}

// App is the demo application, an http.Handler. It is safe for concurrent
// use.
type App struct {
	m         *kvsession.Manager
	store     kvsession.Store
	cfg       Config
	page      *template.Template
	outage    *template.Template
	statsTmpl *template.Template
	handler   http.Handler
}

// New returns the application, keeping sessions in store.
func New(store kvsession.Store, cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		cfg.Instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	name := "kvsession-demo"
	if cfg.Secure {
		name = "__Host-kvsession-demo"
	}
	a := &App{store: store, cfg: cfg}
	m, err := kvsession.New(store, kvsession.Config{
		Secrets:          cfg.Secrets,
		CookieName:       name,
		InsecureCookie:   !cfg.Secure,
		Permanent:        true, // the cookie survives browser restarts
		Lifetime:         7 * 24 * time.Hour,
		IdleTimeout:      24 * time.Hour,
		IdleRefresh:      time.Minute, // keeps "last seen" within a minute
		RecordRemoteAddr: true,
		Logger:           cfg.Logger,
		OnEvent:          cfg.OnEvent,
		Now:              cfg.Now,
		ErrorHandler:     a.storeDown,
	})
	if err != nil {
		return nil, err
	}
	a.m = m
	a.page, err = template.New("index.html").Funcs(template.FuncMap{
		"ago":     func(t time.Time) string { return ago(cfg.Now(), t) },
		"in":      func(t time.Time) string { return in(cfg.Now(), t) },
		"stamp":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"device":  device,
		"host":    host,
		"latency": latency,
	}).ParseFS(files, "templates/index.html", "templates/stats.html")
	if err != nil {
		return nil, err
	}
	a.statsTmpl, err = template.New("statspage.html").Funcs(template.FuncMap{"latency": latency}).
		ParseFS(files, "templates/statspage.html", "templates/stats.html")
	if err != nil {
		return nil, err
	}
	a.outage, err = template.ParseFS(files, "templates/outage.html")
	if err != nil {
		return nil, err
	}

	static, _ := fs.Sub(files, "static")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /api/me", a.me)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /count", a.count)
	mux.HandleFunc("GET /api/kv", a.kvGet)
	mux.HandleFunc("POST /api/kv", a.kvSet)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /api/sessions", a.sessions)
	mux.HandleFunc("POST /logout-others", a.logoutOthers)
	mux.HandleFunc("POST /revoke", a.revoke)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /stats", a.statsPage)

	// The cross-origin check runs first, so that a refused request costs
	// no store call.
	a.handler = headers(http.NewCrossOriginProtection().Handler(m.Handler(mux)))
	return a, nil
}

// Manager returns the application's session manager.
func (a *App) Manager() *kvsession.Manager { return a.m }

// ServeHTTP serves the application.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// headers sets the security headers of every response. The page has no
// scripts at all.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// retryAfter is how long, in seconds, a client should wait before it
// tries again when the session store is down.
const retryAfter = 5

// storeDown answers a request that the session store failed
// (kvsession.Config.ErrorHandler): 503 with Retry-After, a page for a
// browser and JSON for a client that asks for it. The middleware has
// dropped the response's headers and leaves the cookie alone, so the
// session is safe: the user's real session works again once the store
// is back. The manager's Logger has already reported the error.
func (a *App) storeDown(w http.ResponseWriter, r *http.Request, _ error) {
	h := w.Header()
	securityHeaders(h)
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", strconv.Itoa(retryAfter))
	if wantsJSON(r) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error":       fmt.Sprintf("the session store is unavailable; your session is safe: try again in %d seconds", retryAfter),
			"retry_after": retryAfter,
		})
		return
	}
	// A GET is tried again as it was; a form goes back to the page.
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	again := "/"
	if read {
		again = r.URL.RequestURI()
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	if err := a.outage.Execute(w, map[string]any{"Again": again, "Seconds": retryAfter, "Posted": !read}); err != nil {
		a.cfg.Logger.ErrorContext(r.Context(), "demo: render outage page", "err", err)
	}
}

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// ok reports whether err is nil. Otherwise it answers the request: a store
// failure is left to the session middleware, which replaces the response
// with a 503; anything else is a 500.
func (a *App) ok(w http.ResponseWriter, r *http.Request, err error) bool {
	if err == nil {
		return true
	}
	if errors.Is(err, kvsession.ErrLoad) {
		return false // the middleware answers 503 and leaves the cookie alone
	}
	a.cfg.Logger.ErrorContext(r.Context(), "demo: request failed", "path", r.URL.Path, "err", err, "session", kvsession.From(r).LogID())
	http.Error(w, "internal error", http.StatusInternalServerError)
	return false
}

// badRequest answers a request whose form is invalid.
func badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
		return
	}
	http.Error(w, msg, http.StatusBadRequest)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// done ends a POST: for a browser, a redirect to the page, at the card
// (an element ID) the user acted on; for a script, the JSON of /api/me.
//
// A form posted from a page left open after the session died starts a new
// session: the redirect loses the reason, so it goes to the page as a
// flash in that new session. A POST that saves nothing keeps the dead
// cookie, and the page tells why itself.
func (a *App) done(w http.ResponseWriter, r *http.Request, card string) {
	if wantsJSON(r) {
		a.me(w, r)
		return
	}
	s := kvsession.From(r)
	user, err := s.User()
	if !a.ok(w, r, err) {
		return
	}
	n, err := causeNotice(s, user)
	if !a.ok(w, r, err) {
		return
	}
	if n.code != "" && s.IsModified() && !a.ok(w, r, s.AddFlash(n.code)) {
		return
	}
	http.Redirect(w, r, "/#"+card, http.StatusSeeOther)
}

// A notice tells a visitor why their session is new.
type notice struct{ code, text string }

// notices are the reasons worth telling, by cause. A first visit
// (CauseNoCookie) is no news, and after a logout (CauseDestroyed) the user
// knows. A store that drops expired records by itself (Redis, memcached)
// reports an expiry as CauseEnded.
var notices = map[kvsession.NewCause]notice{
	kvsession.CauseEnded:         {"ended", "You were logged out from another device: your session ended on the server."},
	kvsession.CauseExpired:       {"expired", "Your session expired: it went unused for longer than the idle timeout, or outlived its lifetime. Log in again to go on."},
	kvsession.CauseInvalidCookie: {"invalid_cookie", "Your session cookie did not verify (the server's signing keys may have changed), so you have a new session."},
}

// causeNotice returns the notice for a session that the request found
// dead, or none. The cause of a session created or regenerated by this
// request is still the one from before, so a session that has a user,
// logged in by this very request, gets none: the user just logged in.
func causeNotice(s *kvsession.Session, user string) (notice, error) {
	cause, err := s.NewCause()
	if err != nil || user != "" {
		return notice{}, err
	}
	return notices[cause], nil
}

// Me is the JSON of /api/me.
type Me struct {
	User  string `json:"user"`
	Count int    `json:"count"`

	// Cause and Notice say, once, why the visitor's session is new when
	// that is news to them: Cause is "ended" (logged out from another
	// device, revoked), "expired" or "invalid_cookie"; Notice says it in
	// words. Both are empty otherwise, a first visit included.
	Cause  string `json:"cause,omitempty"`
	Notice string `json:"notice,omitempty"`
}

// readMe reads what /api/me and the page show. It tells, once, why the
// session is new: a dead session's cookie is cleared once told (Destroy on
// a new session is no store call), and a flash left by done is taken.
func (a *App) readMe(s *kvsession.Session) (Me, error) {
	user, err := s.User()
	if err != nil {
		return Me{}, err
	}
	count, err := kvsession.Get[int](s, "count")
	if err != nil && !errors.Is(err, kvsession.ErrNoValue) {
		return Me{}, err
	}
	n, err := causeNotice(s, user)
	if err != nil {
		return Me{}, err
	}
	if n.code != "" && !s.IsModified() {
		if err := s.Destroy(); err != nil {
			return Me{}, err
		}
	}
	flashes, err := kvsession.Flashes[string](s)
	if err != nil {
		return Me{}, err
	}
	for _, code := range flashes {
		for _, f := range notices {
			if n.code == "" && f.code == code {
				n = f // a flash of an unknown code (an older version's) is dropped
			}
		}
	}
	return Me{User: user, Count: count, Cause: n.code, Notice: n.text}, nil
}

func (a *App) me(w http.ResponseWriter, r *http.Request) {
	me, err := a.readMe(kvsession.From(r))
	if !a.ok(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, me)
}

// validName checks a user name or scratchpad key.
func validName(s string, max int) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	user := strings.TrimSpace(r.PostFormValue("user"))
	if !validName(user, maxUserLen) {
		badRequest(w, r, fmt.Sprintf("a user name is 1 to %d printable characters", maxUserLen))
		return
	}
	s := kvsession.From(r)
	// A new ID on every change of privilege: a session ID planted before
	// the login (session fixation) is worthless after it.
	if !a.ok(w, r, s.SetUser(user)) || !a.ok(w, r, s.Regenerate()) {
		return
	}
	a.done(w, r, "who")
}

func (a *App) count(w http.ResponseWriter, r *http.Request) {
	s := kvsession.From(r)
	n, err := kvsession.Get[int](s, "count")
	if err != nil && !errors.Is(err, kvsession.ErrNoValue) {
		a.ok(w, r, err)
		return
	}
	if !a.ok(w, r, s.Set("count", n+1)) {
		return
	}
	a.done(w, r, "counter")
}

// scratchpad returns the session's scratchpad entries.
func scratchpad(s *kvsession.Session) (map[string]string, error) {
	keys, err := s.Names()
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	for _, k := range keys {
		if name, ok := strings.CutPrefix(k, kvPrefix); ok {
			v, err := kvsession.Get[string](s, k)
			if err != nil {
				return nil, err
			}
			kv[name] = v
		}
	}
	return kv, nil
}

func (a *App) kvGet(w http.ResponseWriter, r *http.Request) {
	kv, err := scratchpad(kvsession.From(r))
	if !a.ok(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, kv)
}

// kvSet sets one scratchpad entry. Each entry is a session value of its
// own, so that two tabs setting different keys at once both land.
func (a *App) kvSet(w http.ResponseWriter, r *http.Request) {
	key, value := strings.TrimSpace(r.PostFormValue("key")), r.PostFormValue("value")
	if !validName(key, maxKeyLen) {
		badRequest(w, r, fmt.Sprintf("a key is 1 to %d printable characters", maxKeyLen))
		return
	}
	if len(value) > maxValueLen || !utf8.ValidString(value) {
		badRequest(w, r, fmt.Sprintf("a value is at most %d bytes of UTF-8", maxValueLen))
		return
	}
	s := kvsession.From(r)
	if value == "" {
		if !a.ok(w, r, s.Delete(kvPrefix+key)) {
			return
		}
		a.done(w, r, "scratchpad")
		return
	}
	kv, err := scratchpad(s)
	if !a.ok(w, r, err) {
		return
	}
	if _, exists := kv[key]; !exists && len(kv) >= maxEntries {
		badRequest(w, r, fmt.Sprintf("the scratchpad holds at most %d entries", maxEntries))
		return
	}
	if !a.ok(w, r, s.Set(kvPrefix+key, value)) {
		return
	}
	a.done(w, r, "scratchpad")
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if !a.ok(w, r, kvsession.From(r).Destroy()) {
		return
	}
	a.done(w, r, "who")
}

// SessionJSON is one entry of /api/sessions.
type SessionJSON struct {
	ID         string    `json:"id"` // a hash of the stored key: useless as a cookie
	Created    time.Time `json:"created"`
	LastSeen   time.Time `json:"last_seen"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
	Current    bool      `json:"current"`
}

// userSessions lists the sessions of the request's user, none if
// anonymous.
func (a *App) userSessions(r *http.Request) (string, []kvsession.SessionInfo, error) {
	user, err := kvsession.From(r).User()
	if err != nil || user == "" {
		return "", nil, err
	}
	infos, err := a.m.UserSessions(r.Context(), user)
	return user, infos, err
}

func (a *App) sessions(w http.ResponseWriter, r *http.Request) {
	_, infos, err := a.userSessions(r)
	if !a.ok(w, r, err) {
		return
	}
	list := make([]SessionJSON, 0, len(infos))
	for _, in := range infos {
		list = append(list, SessionJSON{
			ID:         in.LogID,
			Created:    in.Created.UTC().Truncate(time.Millisecond),
			LastSeen:   in.LastSeen.UTC().Truncate(time.Millisecond),
			ExpiresAt:  in.ExpiresAt.UTC().Truncate(time.Millisecond),
			UserAgent:  in.UserAgent,
			RemoteAddr: in.RemoteAddr,
			Current:    in.Current,
		})
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *App) logoutOthers(w http.ResponseWriter, r *http.Request) {
	user, err := kvsession.From(r).User()
	if !a.ok(w, r, err) {
		return
	}
	if user != "" {
		n, err := a.m.RevokeUser(r.Context(), user, true)
		if !a.ok(w, r, err) {
			return
		}
		a.cfg.Logger.InfoContext(r.Context(), "demo: logged out other sessions", "sessions", n, "session", kvsession.From(r).LogID())
	}
	a.done(w, r, "sessions")
}

// revoke ends one of the user's other sessions, named by its ID as
// /api/sessions shows it. Only the user's own sessions can be named.
func (a *App) revoke(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("id")
	_, infos, err := a.userSessions(r)
	if !a.ok(w, r, err) {
		return
	}
	i := slices.IndexFunc(infos, func(in kvsession.SessionInfo) bool { return in.LogID == id && !in.Current })
	if i < 0 {
		badRequest(w, r, "no such session among your other sessions")
		return
	}
	if !a.ok(w, r, a.m.Revoke(r.Context(), infos[i].Key)) {
		return
	}
	a.done(w, r, "sessions")
}

// healthz answers 200 if the store answers: a read of a key that is never
// written must come back as not found.
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	_, err := a.store.Get(ctx, "healthz:probe")
	if err != nil && !errors.Is(err, kvsession.ErrNotFound) {
		a.cfg.Logger.WarnContext(r.Context(), "demo: health check failed", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// pageData is what the page template shows.
type pageData struct {
	Me
	HasSession bool // the request came with a live session
	KV         []kvEntry
	Sessions   []kvsession.SessionInfo
	Store      string
	Instance   string
	Secure     bool
	Stats      *statsData // the metrics panel, if there is one
}

type kvEntry struct{ Key, Value string }

func (a *App) index(w http.ResponseWriter, r *http.Request) {
	s := kvsession.From(r)
	me, err := a.readMe(s)
	if !a.ok(w, r, err) {
		return
	}
	isNew, err := s.IsNew()
	if !a.ok(w, r, err) {
		return
	}
	kv, err := scratchpad(s)
	if !a.ok(w, r, err) {
		return
	}
	_, infos, err := a.userSessions(r)
	if errors.Is(err, errors.ErrUnsupported) {
		err = nil // a store without a user index: no session list
	}
	if !a.ok(w, r, err) {
		return
	}
	d := pageData{
		Me:         me,
		HasSession: !isNew,
		Sessions:   infos,
		Store:      a.cfg.StoreName,
		Instance:   a.cfg.Instance,
		Secure:     a.cfg.Secure,
	}
	if st, ok := a.stats(r); ok {
		d.Stats = &st
	}
	for k, v := range kv {
		d.KV = append(d.KV, kvEntry{k, v})
	}
	slices.SortFunc(d.KV, func(x, y kvEntry) int { return strings.Compare(x.Key, y.Key) })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := a.page.Execute(w, d); err != nil {
		a.cfg.Logger.ErrorContext(r.Context(), "demo: render page", "err", err)
	}
}
