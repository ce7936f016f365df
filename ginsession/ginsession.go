// Package ginsession is kvsession's middleware for gin: every handler below
// it has a server-side session, with the rules of kvsession.Manager.Handler.
//
//	r := gin.New()
//	r.Use(ginsession.Middleware(m))
//	r.GET("/", func(c *gin.Context) {
//		s := ginsession.Get(c)
//		n, err := kvsession.GetOr(s, "visits", 0)
//		if err == nil {
//			err = s.Set("visits", n+1)
//		}
//		if err != nil {
//			c.AbortWithError(http.StatusInternalServerError, err)
//			return
//		}
//		c.String(http.StatusOK, "visit %d", n+1)
//	})
//
// The session is loaded from the store when a handler first uses it and
// saved once, just before the first byte of the response (gin's WriteHeader,
// Write or WriteHeaderNow) or when the handler chain returns, setting or
// clearing the cookie then with the Config's attributes, Cache-Control:
// no-store and Vary: Cookie. A request that never touches its session costs
// no store call and gets no cookie. If the store fails, the response is
// replaced by Config.ErrorHandler (503 by default) and the client's cookie
// is left alone; writes after that return an error.
//
// The session is in the request's context as well, so kvsession.From
// (c.Request) finds it in code that holds only the *http.Request.
package ginsession

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/kvsession/kvsession"
)

// Middleware returns gin middleware that gives every handler after it a
// session managed by m. Handlers get it with Get.
func Middleware(m *kvsession.Manager) gin.HandlerFunc {
	return func(c *gin.Context) {
		gw := c.Writer
		m.Handler(chain{c, gw}).ServeHTTP(gw, c.Request)
		c.Writer = gw
	}
}

// chain runs the rest of gin's handler chain under Manager.Handler.
type chain struct {
	c  *gin.Context
	gw gin.ResponseWriter
}

func (ch chain) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ch.c.Request = r
	ch.c.Writer = &writer{ResponseWriter: ch.gw, save: w}
	ch.c.Next()
}

// Get returns the session of the request c serves, or nil outside
// Middleware. The methods of a nil *kvsession.Session return
// kvsession.ErrNoSession.
func Get(c *gin.Context) *kvsession.Session {
	return kvsession.From(c.Request)
}

// writer is gin's ResponseWriter with every write sent through save,
// kvsession's writer, which saves the session before the first byte. What
// gin keeps (status, size, hijacking) stays with gin's own writer.
type writer struct {
	gin.ResponseWriter                     // gin's writer, under save
	save               http.ResponseWriter // kvsession's writer
}

// WriteHeader saves the session, then records the status as gin does.
func (w *writer) WriteHeader(code int) { w.save.WriteHeader(code) }

// WriteHeaderNow saves the session, then writes the header.
func (w *writer) WriteHeaderNow() {
	w.save.WriteHeader(w.ResponseWriter.Status())
	w.ResponseWriter.WriteHeaderNow()
}

// Write saves the session, then writes b.
func (w *writer) Write(b []byte) (int, error) { return w.save.Write(b) }

// WriteString saves the session, then writes s.
func (w *writer) WriteString(s string) (int, error) {
	return w.save.(interface {
		WriteString(string) (int, error)
	}).WriteString(s)
}

// Flush saves the session, then flushes.
func (w *writer) Flush() { w.save.(http.Flusher).Flush() }

// Unwrap returns kvsession's writer, for http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.save }
