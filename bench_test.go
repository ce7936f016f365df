package kvsession_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

// benchManager returns a handler under a Manager on a memstore and the
// cookie of a session holding a count.
func benchManager(b *testing.B, cfg kvsession.Config, h http.Handler) (http.Handler, string) {
	cfg.Secrets = [][]byte{testKey}
	cfg.Logger = discardLogger
	m, err := kvsession.New(memstore.New(nil), cfg)
	if err != nil {
		b.Fatal(err)
	}
	handler := m.Handler(h)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/count", nil))
	cookie := strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0]
	if cookie == "" {
		b.Fatal("no cookie")
	}
	return handler, cookie
}

func benchRequests(b *testing.B, handler http.Handler, path, cookie string) {
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}

func BenchmarkRequest(b *testing.B) {
	b.Run("Read", func(b *testing.B) {
		h, c := benchManager(b, kvsession.Config{}, app())
		benchRequests(b, h, "/get?key=count", c)
	})
	b.Run("ReadIdle", func(b *testing.B) {
		h, c := benchManager(b, kvsession.Config{IdleTimeout: 30 * 60e9}, app())
		benchRequests(b, h, "/get?key=count", c)
	})
	b.Run("Write", func(b *testing.B) {
		h, c := benchManager(b, kvsession.Config{}, app())
		benchRequests(b, h, "/count", c)
	})
	b.Run("Untouched", func(b *testing.B) {
		h, c := benchManager(b, kvsession.Config{}, app())
		benchRequests(b, h, "/untouched", c)
	})
	b.Run("Bare", func(b *testing.B) {
		benchRequests(b, app(), "/untouched", "")
	})
}
