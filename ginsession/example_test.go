package ginsession_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/ginsession"
	"github.com/kvsession/kvsession/memstore"
)

func ExampleMiddleware() {
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{
		Secrets: [][]byte{[]byte("a 32-byte or longer secret key!!")},
	})
	if err != nil {
		panic(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(ginsession.Middleware(m))
	r.GET("/", func(c *gin.Context) {
		s := ginsession.Get(c)
		n, err := kvsession.GetOr(s, "visits", 0)
		if err == nil {
			err = s.Set("visits", n+1)
		}
		if err != nil {
			c.AbortWithError(http.StatusInternalServerError, err)
			return
		}
		c.String(http.StatusOK, "visit %d", n+1)
	})

	var cookie string
	for range 2 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if c := w.Result().Header.Get("Set-Cookie"); c != "" {
			cookie, _, _ = strings.Cut(c, ";")
		}
		fmt.Println(w.Body)
	}
	// Output:
	// visit 1
	// visit 2
}
