package fibersession_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/fibersession"
	"github.com/kvsession/kvsession/memstore"
)

func ExampleMiddleware() {
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{
		Secrets: [][]byte{[]byte("a 32-byte or longer secret key!!")},
	})
	if err != nil {
		panic(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(fibersession.Middleware(m))
	app.Get("/", func(c *fiber.Ctx) error {
		s := fibersession.Get(c)
		n, err := kvsession.GetOr(s, "visits", 0)
		if err == nil {
			err = s.Set("visits", n+1)
		}
		if err != nil {
			return err
		}
		return c.SendString(fmt.Sprintf("visit %d", n+1))
	})

	var cookie string
	for range 2 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := app.Test(req, -1)
		if err != nil {
			panic(err)
		}
		if c := res.Header.Get("Set-Cookie"); c != "" {
			cookie, _, _ = strings.Cut(c, ";")
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(string(body))
	}
	// Output:
	// visit 1
	// visit 2
}
