package gorillasession_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/gorillasession"
	"github.com/kvsession/kvsession/memstore"
)

// A gorilla/sessions handler, unchanged, on kvsession.
func Example() {
	store, err := gorillasession.New(memstore.New(nil), gorillasession.Config{
		Config: kvsession.Config{Secrets: [][]byte{[]byte("use 32 random bytes from crypto/rand!")}},
	})
	if err != nil {
		panic(err)
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		sess, err := store.Get(r, "session")
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		n, _ := sess.Values["visits"].(int)
		sess.Values["visits"] = n + 1
		if err := sess.Save(r, w); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Println("visits:", n+1)
	}

	w := httptest.NewRecorder()
	handler(w, httptest.NewRequest("GET", "/", nil))
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	handler(httptest.NewRecorder(), r)

	// Output:
	// visits: 1
	// visits: 2
}
