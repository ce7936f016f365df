// Command websocket shows a kvsession session used after a WebSocket
// upgrade, with github.com/coder/websocket. It listens on loopback:
//
//	go run . -addr 127.0.0.1:8080
//
// then open http://127.0.0.1:8080, log in and send messages: each one is
// counted in the session, beside the visits counted over plain HTTP.
//
// The socket handler sits outside Manager.Handler (the middleware saves
// once per request, and a socket's request lasts as long as the socket).
// It reads the session cookie of the upgrade request and, for each
// message, opens the session with Manager.Open, changes it and commits it.
// Each message therefore has the guarantees of an HTTP request: its
// changes merge with those of concurrent HTTP requests (different keys
// all land), a session destroyed by a logout is never brought back by the
// socket's Commit, and a revoked session (Manager.RevokeUser,
// Admin().Revoke) ends the socket: at the next message, or within
// the recheck interval if the socket is idle, it is closed with status
// 1008 (policy violation) and the reason "session ended".
//
// A socket cannot set cookies: do what changes the session's ID (login,
// Regenerate, logout) over HTTP, as this example does.
//
// github.com/coder/websocket is chosen over github.com/gorilla/websocket,
// the most used, because its calls take a context, as kvsession's do: the
// socket's reads, writes and session loads all end with the request's
// context, and Close may be called from another goroutine (the recheck).
// The session code is the same with gorilla/websocket: read the cookie from
// the upgrade request, then Open and Commit per message.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (loopback: the cookie is not Secure)")
	flag.Parse()
	secret := make([]byte, 32)
	rand.Read(secret) // development only: sessions end when the process does
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{
		Secrets:        [][]byte{secret},
		InsecureCookie: true, // plain HTTP on loopback; remove it behind HTTPS
	})
	if err != nil {
		log.Fatal(err)
	}
	a := &app{m: m, recheck: 10 * time.Second}
	log.Printf("listening on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, a.routes()))
}

// app is the example's server.
type app struct {
	m *kvsession.Manager
	// recheck is how often an idle socket checks that its session still
	// lives, so that a revocation ends it without waiting for a message.
	recheck time.Duration
}

// routes returns the handler: the page and the HTTP calls under the
// middleware, the socket beside it.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /state", a.state)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /visit", a.visit)
	withSession := http.NewCrossOriginProtection().Handler(a.m.Handler(mux))

	root := http.NewServeMux()
	root.HandleFunc("GET /ws", a.socket) // opens its own sessions
	root.Handle("/", withSession)
	return root
}

// state is what the page and the socket show of the session.
type state struct {
	User     string `json:"user"`
	Visits   int    `json:"visits"`   // POST /visit, over HTTP
	Messages int    `json:"messages"` // messages over the socket
	Last     string `json:"last"`     // the last message's text
}

// read returns the session's state.
func read(s *kvsession.Session) (state, error) {
	var st state
	var err error
	if st.User, err = s.User(); err != nil {
		return st, err
	}
	if st.Visits, err = kvsession.GetOr(s, "visits", 0); err != nil {
		return st, err
	}
	if st.Messages, err = kvsession.GetOr(s, "messages", 0); err != nil {
		return st, err
	}
	st.Last, err = kvsession.GetOr(s, "last", "")
	return st, err
}

// fail answers a session error: the middleware answers a load failure
// with 503 itself; anything else is a 500.
func fail(w http.ResponseWriter, err error) {
	if errors.Is(err, kvsession.ErrLoad) {
		return
	}
	http.Error(w, "session error", http.StatusInternalServerError)
}

func (a *app) state(w http.ResponseWriter, r *http.Request) {
	st, err := read(kvsession.From(r))
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// login binds the session to the user named in the form (an example: no
// password) and gives it a new ID.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	user := r.FormValue("user")
	if user == "" {
		http.Error(w, "user required", http.StatusBadRequest)
		return
	}
	s := kvsession.From(r)
	if err := s.SetUser(user); err != nil {
		fail(w, err)
		return
	}
	if err := s.Regenerate(); err != nil {
		fail(w, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := kvsession.From(r).Destroy(); err != nil {
		fail(w, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) visit(w http.ResponseWriter, r *http.Request) {
	s := kvsession.From(r)
	n, err := kvsession.GetOr(s, "visits", 0)
	if err == nil {
		err = s.Set("visits", n+1)
	}
	if err != nil {
		fail(w, err)
		return
	}
	fmt.Fprintln(w, n+1)
}

// errEnded: the socket's session was destroyed, revoked or expired.
var errEnded = errors.New("session ended")

// socket upgrades a request of a logged-in session and handles its
// messages: each text is counted in the session, and the reply is the
// session's state.
func (a *app) socket(w http.ResponseWriter, r *http.Request) {
	var token string
	if c, err := r.Cookie(a.m.CookieName()); err == nil {
		token = c.Value
	}
	// Refuse before upgrading a request whose session is not a logged-in
	// one, as an HTTP handler would.
	switch _, err := a.open(r.Context(), token); {
	case errors.Is(err, errEnded):
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	case err != nil:
		http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
		return
	}
	// Accept checks the Origin header: a page of another site cannot open
	// a socket with the user's cookie.
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered the request
	}
	defer conn.CloseNow()
	ctx := r.Context()
	tok := &tokenBox{v: token}

	// An idle socket checks its session every a.recheck.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(a.recheck)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if _, err := a.open(ctx, tok.get()); errors.Is(err, errEnded) {
				conn.Close(websocket.StatusPolicyViolation, errEnded.Error())
				return
			}
		}
	}()

	for {
		var text string
		if err := wsjson.Read(ctx, conn, &text); err != nil {
			return // the client left, or the socket was closed
		}
		st, next, err := a.message(ctx, tok.get(), text)
		switch {
		case errors.Is(err, errEnded):
			conn.Close(websocket.StatusPolicyViolation, errEnded.Error())
			return
		case err != nil:
			log.Printf("websocket: %v", err)
			conn.Close(websocket.StatusInternalError, "session store unavailable")
			return
		}
		tok.set(next)
		if err := wsjson.Write(ctx, conn, st); err != nil {
			return
		}
	}
}

// open opens the session token names and returns it if it is a stored,
// logged-in session; errEnded if it is not (never was, or was destroyed,
// revoked or expired).
func (a *app) open(ctx context.Context, token string) (*kvsession.Session, error) {
	s := a.m.Open(ctx, token)
	isNew, err := s.IsNew()
	if err != nil {
		return nil, err
	}
	if isNew {
		return nil, errEnded
	}
	user, err := s.User()
	if err != nil {
		return nil, err
	}
	if user == "" {
		return nil, errEnded
	}
	return s, nil
}

// message handles one message in a session of its own: load, change,
// commit. It returns the session's state and its token, or errEnded if
// the session ended before the message or while it was handled (its
// change is then dropped: the session is not brought back).
func (a *app) message(ctx context.Context, token, text string) (state, string, error) {
	s, err := a.open(ctx, token)
	if err != nil {
		return state{}, "", err
	}
	st, err := read(s)
	if err != nil {
		return state{}, "", err
	}
	st.Messages++
	st.Last = text
	if err := s.Set("messages", st.Messages); err != nil {
		return state{}, "", err
	}
	if err := s.Set("last", text); err != nil {
		return state{}, "", err
	}
	next, err := s.Commit()
	if err != nil {
		return state{}, "", err
	}
	if next == "" {
		return state{}, "", errEnded // destroyed or revoked meanwhile
	}
	return st, next, nil
}

// tokenBox holds the socket's current token, shared with the recheck.
type tokenBox struct {
	mu sync.Mutex
	v  string
}

func (b *tokenBox) get() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.v
}

func (b *tokenBox) set(v string) {
	b.mu.Lock()
	b.v = v
	b.mu.Unlock()
}

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	st, err := read(kvsession.From(r))
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, st)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<meta charset="utf-8"><title>kvsession over a WebSocket</title>
{{if .User}}
<p>Logged in as {{.User}}. Visits over HTTP: <span id="visits">{{.Visits}}</span>,
messages over the socket: <span id="messages">{{.Messages}}</span>.</p>
<form id="send"><input id="text" value="hello"> <button>send over the socket</button></form>
<form method="post" action="/visit" target="_blank"><button>visit over HTTP</button></form>
<form method="post" action="/logout"><button>log out (the socket ends)</button></form>
<pre id="log"></pre>
<script>
const log = t => document.getElementById("log").textContent += t + "\n";
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
ws.onmessage = e => { const st = JSON.parse(e.data);
  document.getElementById("messages").textContent = st.messages;
  document.getElementById("visits").textContent = st.visits; log("saved: " + st.last); };
ws.onclose = e => log("socket closed: " + e.code + " " + e.reason);
document.getElementById("send").onsubmit = e => { e.preventDefault();
  ws.send(JSON.stringify(document.getElementById("text").value)); };
</script>
{{else}}
<form method="post" action="/login"><input name="user" placeholder="user"> <button>log in</button></form>
{{end}}
`))
