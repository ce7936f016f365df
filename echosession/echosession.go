// Package echosession is kvsession's middleware for echo (v4): every handler
// below it has a server-side session, with the rules of
// kvsession.Manager.Handler.
//
//	e := echo.New()
//	e.Use(echosession.Middleware(m))
//	e.GET("/", func(c echo.Context) error {
//		s := echosession.Get(c)
//		n, err := kvsession.GetOr(s, "visits", 0)
//		if err == nil {
//			err = s.Set("visits", n+1)
//		}
//		if err != nil {
//			return err
//		}
//		return c.String(http.StatusOK, fmt.Sprintf("visit %d", n+1))
//	})
//
// The session is loaded from the store when a handler first uses it and
// saved once, just before the first byte of the response or when the
// handler returns (before echo's HTTPErrorHandler writes an error it
// returned), setting or clearing the cookie then with the Config's
// attributes, Cache-Control: no-store and Vary: Cookie. A request that
// never touches its session costs no store call and gets no cookie. If the
// store fails, the response is replaced by Config.ErrorHandler (503 by
// default), echo's Response records that status, and the client's cookie is
// left alone; writes after that return an error.
//
// The session is in the request's context as well, so kvsession.From
// (c.Request()) finds it in code that holds only the *http.Request.
package echosession

import (
	"net/http"

	"github.com/kvsession/kvsession"
	"github.com/labstack/echo/v4"
)

// Middleware returns echo middleware that gives every handler after it a
// session managed by m. Handlers get it with Get.
func Middleware(m *kvsession.Manager) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			res := c.Response()
			orig := res.Writer
			var err error
			m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.SetRequest(r)
				res.Writer = w
				err = next(c)
			})).ServeHTTP(&tracker{ResponseWriter: orig, res: res}, c.Request())
			res.Writer = orig
			return err
		}
	}
}

// Get returns the session of the request c serves, or nil outside
// Middleware. The methods of a nil *kvsession.Session return
// kvsession.ErrNoSession.
func Get(c echo.Context) *kvsession.Session {
	return kvsession.From(c.Request())
}

// tracker sits under kvsession's writer and keeps echo's Response true to
// what was sent: when the store fails, Config.ErrorHandler writes its
// response through here, and echo (its logger, its HTTPErrorHandler) must
// see that status and that the response is committed.
type tracker struct {
	http.ResponseWriter
	res *echo.Response
}

func (t *tracker) WriteHeader(code int) {
	t.res.Status, t.res.Committed = code, true
	t.ResponseWriter.WriteHeader(code)
}

func (t *tracker) Write(b []byte) (int, error) {
	if !t.res.Committed {
		t.res.Status, t.res.Committed = http.StatusOK, true
	}
	return t.ResponseWriter.Write(b)
}

// Unwrap returns the server's writer, for http.ResponseController (Flush,
// Hijack).
func (t *tracker) Unwrap() http.ResponseWriter { return t.ResponseWriter }
