package kvsession

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"unicode/utf8"
)

// Handler returns middleware that gives every request below it a session.
// It reads the session cookie, loads the session from the store when a
// handler first uses it, and saves it, once, just before the first byte of
// the response (or when the handler returns), setting or clearing the
// cookie then.
//
// If the store fails to load or save the session, the handler's response
// is replaced by Config.ErrorHandler (503 by default) and the client's
// cookie is left alone: from the failed load on, every Session method
// returns an error wrapping ErrLoad, so the handler never acts on an empty
// session by mistake.
func (m *Manager) Handler(next http.Handler) http.Handler {
	c := m.c
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One allocation for the session, the context that carries it and
		// the writer that saves it: 472 bytes, in the 480-byte size class.
		// A field added to Session moves it to the next (512).
		st := &struct {
			s   Session
			ctx sessionContext
			rw  responseWriter
		}{}
		s := &st.s
		s.c, s.ctx = c, r.Context()
		c.readRequest(s, r.Header, r.RemoteAddr)
		st.ctx = sessionContext{r.Context(), s}
		r = r.WithContext(&st.ctx)
		rw := &st.rw
		rw.ResponseWriter, rw.s, rw.r = w, s, r
		next.ServeHTTP(rw, r)
		rw.commit()
	})
}

// sessionContext is the request's context with the session in it, as
// context.WithValue(parent, ctxKey{}, s) would make it, but allocated with
// the session. Cancellation and deadlines are the parent's own: context's
// children of it find the parent's cancelCtx through Value, as for a
// valueCtx.
type sessionContext struct {
	context.Context
	s *Session
}

// Value returns the session for ctxKey{}, and asks the parent otherwise.
func (c *sessionContext) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return c.s
	}
	return c.Context.Value(key)
}

// String names the context as context's own types do, for debugging.
func (c *sessionContext) String() string { return "kvsession.sessionContext" }

// readRequest gives s what it needs of its request's headers and client
// address: the cookies and the Config.Header token now, the rest (see
// request) when a session is created.
func (c *core) readRequest(s *Session, h http.Header, remoteAddr string) {
	s.in = request{cookies: h["Cookie"], header: h, remoteAddr: remoteAddr}
	if c.cfg.Header != "" {
		if v, ok := h[c.cfg.Header]; ok {
			s.ident.tokenClient = true
			if len(v) > 0 {
				s.in.token = v[0]
			}
		}
	}
}

// remote returns the client's IP address for a session's metadata, or ""
// unless Config.RecordRemoteAddr asks for it.
func (c *core) remote(in *request) string {
	if !c.cfg.RecordRemoteAddr {
		return ""
	}
	return remoteIP(in.remoteAddr)
}

// maxUserAgent bounds the user agent kept in a session's metadata.
const maxUserAgent = 512

// truncate cuts s to at most n bytes, at a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// remoteIP returns the IP address in a request's RemoteAddr, without port
// or zone, or "" if it holds none. RemoteAddr is "host:port" from net/http,
// but proxy middleware often copies a client-supplied X-Forwarded-For into
// it, of any length: only a parsed address (at most 39 bytes) is kept.
func remoteIP(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().WithZone("").Unmap().String()
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		return a.WithZone("").Unmap().String()
	}
	return ""
}

// errResponseReplaced is returned by writes after the store failed and the
// error response replaced the handler's.
var errResponseReplaced = errors.New("kvsession: response replaced after a session store error")

// responseWriter saves the session before the first byte of the response.
type responseWriter struct {
	http.ResponseWriter
	s         *Session
	r         *http.Request
	committed bool
	failed    bool
}

// commit saves the session once. It reports false if the save failed and
// the error response was written instead.
func (w *responseWriter) commit() bool {
	if w.committed {
		return !w.failed
	}
	w.committed = true
	if err := w.s.commit(w.ResponseWriter.Header()); err != nil {
		w.failed = true
		h := w.ResponseWriter.Header()
		for k := range h {
			delete(h, k)
		}
		w.s.c.cfg.ErrorHandler(w.ResponseWriter, w.r, err)
		return false
	}
	return true
}

// WriteHeader saves the session, then writes the header. Informational
// (1xx) headers pass through without a save.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		if !w.committed {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

// Write saves the session, then writes b.
func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.commit() {
		return 0, errResponseReplaced
	}
	return w.ResponseWriter.Write(b)
}

// WriteString saves the session, then writes str without copying it to a
// byte slice when the underlying writer can do so.
func (w *responseWriter) WriteString(str string) (int, error) {
	if !w.commit() {
		return 0, errResponseReplaced
	}
	return io.WriteString(w.ResponseWriter, str)
}

// ReadFrom saves the session, then copies from src, keeping the
// underlying writer's fast path (sendfile).
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.commit() {
		return 0, errResponseReplaced
	}
	return io.Copy(w.ResponseWriter, src)
}

// Flush saves the session, then flushes if the underlying writer can.
func (w *responseWriter) Flush() {
	if w.commit() {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
