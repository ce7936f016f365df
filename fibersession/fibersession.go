// Package fibersession is kvsession's middleware for fiber (v2), native on
// fasthttp (no net/http bridge): every handler below it has a server-side
// session, with the rules of kvsession.Manager.Handler.
//
//	app := fiber.New()
//	app.Use(fibersession.Middleware(m))
//	app.Get("/", func(c *fiber.Ctx) error {
//		s := fibersession.Get(c)
//		n, err := kvsession.GetOr(s, "visits", 0)
//		if err == nil {
//			err = s.Set("visits", n+1)
//		}
//		if err != nil {
//			return err
//		}
//		return c.SendString(fmt.Sprintf("visit %d", n+1))
//	})
//
// The session is loaded from the store when a handler first uses it and
// saved once, when the handler chain returns: fiber sends the response only
// then, so that is before its first byte. The cookie is set or cleared then
// with the Config's attributes (the Set-Cookie line kvsession builds, as
// is), Cache-Control: no-store and Vary: Cookie. A request that never
// touches its session costs no store call and gets no cookie. If the store
// fails to load or save the session, the response the handlers built is
// replaced by a 503 "Service Unavailable" and the client's cookie is left
// alone. Config.ErrorHandler, a net/http handler, is not used.
//
// The session is read from the request's Cookie header (and Config.Header,
// for API clients) and stored with its User-Agent and, with
// Config.RecordRemoteAddr, the connection's remote address. Store calls use
// c.UserContext().
package fibersession

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/kvsession/kvsession"
)

// requestHeaders copies the request headers that kvsession reads (the
// cookies, the user agent and the token header, if any) rather than every
// header of every request.
func requestHeaders(c *fiber.Ctx, token string) http.Header {
	h := make(http.Header, 3)
	for _, name := range [...]string{"Cookie", "User-Agent", token} {
		if name == "" {
			continue
		}
		for _, v := range c.Request().Header.PeekAll(name) {
			h[name] = append(h[name], string(v))
		}
	}
	return h
}

// localsKey is the key of the session in fiber's Locals.
type localsKey struct{}

// Middleware returns fiber middleware that gives every handler after it a
// session managed by m. Handlers get it with Get.
func Middleware(m *kvsession.Manager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		req := requestHeaders(c, m.TokenHeader())
		resp := make(http.Header)
		var err error
		serr := m.Serve(c.UserContext(), req, c.Context().RemoteAddr().String(), resp, func(s *kvsession.Session) {
			c.Locals(localsKey{}, s)
			err = c.Next()
		})
		if serr != nil {
			// Fail closed: nothing the handlers set goes out, no cookie
			// for an unsaved session, no change to the client's. kvsession
			// has reported the store error to its logger and hook.
			c.Response().Reset()
			c.Status(fiber.StatusServiceUnavailable)
			return c.SendString("Service Unavailable")
		}
		h := &c.Response().Header
		for k, vs := range resp {
			if k == "Set-Cookie" || k == "Vary" {
				for _, v := range vs {
					h.Add(k, v)
				}
				continue
			}
			h.Set(k, vs[0])
		}
		return err
	}
}

// Get returns the session of the request c serves, or nil outside
// Middleware. The methods of a nil *kvsession.Session return
// kvsession.ErrNoSession.
func Get(c *fiber.Ctx) *kvsession.Session {
	s, _ := c.Locals(localsKey{}).(*kvsession.Session)
	return s
}
