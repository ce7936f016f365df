package chi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

// Manager.Handler is chi middleware as it is; handlers get the session
// with kvsession.From.
func Example() {
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{
		Secrets: [][]byte{[]byte("a 32-byte or longer secret key!!")},
	})
	if err != nil {
		panic(err)
	}
	r := chi.NewRouter()
	r.Use(m.Handler)
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		last, err := kvsession.GetOr(s, "name", "nobody")
		if err == nil {
			err = s.Set("name", chi.URLParam(r, "name"))
		}
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello %s, last time %s", chi.URLParam(r, "name"), last)
	})

	var cookie string
	for _, name := range []string{"ada", "grace"} {
		req := httptest.NewRequest(http.MethodGet, "/hello/"+name, nil)
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
	// hello ada, last time nobody
	// hello grace, last time ada
}
