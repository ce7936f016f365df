package storeurl_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/storeurl"
)

// loadWriters is how many requests the load tests keep in flight at once.
const loadWriters = 32

// loadDuration is how long each load test runs: KVSESSION_TEST_LOAD_DURATION
// (a time.ParseDuration string) if set, else 60s under CI=true and 5s
// otherwise.
func loadDuration(t *testing.T) time.Duration {
	t.Helper()
	if v := os.Getenv("KVSESSION_TEST_LOAD_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("KVSESSION_TEST_LOAD_DURATION=%q: want a positive duration such as 10s", v)
		}
		return d
	}
	if isCI() {
		return 60 * time.Second
	}
	return 5 * time.Second
}

// loadResult is what a load run saw.
type loadResult struct {
	requests int64 // answered
	failed   int64 // answered with another status than 200
	first    string
	elapsed  time.Duration
}

// writeLoad runs loadWriters concurrent clients for d through a manager
// with the default Config (StoreTimeout 3s) on store. Each client loops:
// it logs in (a new session bound to a user: a record write, an index
// write and a mark read), changes the session twice (a read and a
// compare-and-swap each), and destroys every fourth one. Every request is
// a write.
func writeLoad(t *testing.T, store kvsession.Store, d time.Duration) loadResult {
	t.Helper()
	var (
		res     loadResult
		errOnce sync.Once
	)
	fail := func(msg string) {
		atomic.AddInt64(&res.failed, 1)
		errOnce.Do(func() { res.first = msg })
	}
	m, err := kvsession.New(store, kvsession.Config{
		Secrets:        [][]byte{[]byte("storeurl load test key, at least 32 bytes long")},
		InsecureCookie: true,
		Logger:         slog.New(slog.DiscardHandler),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			fail(err.Error())
			http.Error(w, "store error", http.StatusServiceUnavailable)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.FromContext(r.Context())
		var err error
		switch r.URL.Path {
		case "/login":
			if err = s.SetUser(r.URL.Query().Get("user")); err == nil {
				err = s.Set("n", 0)
			}
		case "/change":
			n, _ := kvsession.Get[int](s, "n")
			err = s.Set("n", n+1)
		case "/logout":
			err = s.Destroy()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	do := func(path string, cookies []*http.Cookie) []*http.Cookie {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		h.ServeHTTP(rec, req)
		atomic.AddInt64(&res.requests, 1)
		if rec.Code != http.StatusOK {
			fail(fmt.Sprintf("%s: status %d: %s", path, rec.Code, rec.Body.String()))
		}
		return rec.Result().Cookies()
	}

	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for w := range loadWriters {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				cookies := do(fmt.Sprintf("/login?user=u%d", w), nil)
				do("/change", cookies)
				do("/change", cookies)
				if i%4 == 0 {
					do("/logout", cookies)
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	t.Logf("%d writers for %v: %d requests, %.0f requests/s, %d failed",
		loadWriters, res.elapsed.Round(time.Millisecond), res.requests,
		float64(res.requests)/res.elapsed.Seconds(), res.failed)
	return res
}

// TestSQLiteConcurrentWriters checks that 32 concurrent writers on a
// sqlite: store, through a manager with the default StoreTimeout, never
// get a store error: writers wait their turn within the timeout instead
// of timing out on SQLite's write lock, and the WAL stays bounded.
func TestSQLiteConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "load.db")
	s, c, err := storeurl.Open(t.Context(), "sqlite://"+path, storeurl.Options{CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := writeLoad(t, s, loadDuration(t))
	if res.failed > 0 {
		t.Errorf("%d of %d requests failed; the first: %s", res.failed, res.requests, res.first)
	}
	// Checkpoints restart the log (no reader holds it back), so it stays
	// near wal_autocheckpoint's 1000 pages (about 4 MB) however long the
	// run.
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WAL: %d KiB", fi.Size()>>10)
	const limit = 16 << 20
	if fi.Size() > limit {
		t.Errorf("the WAL grew to %d MiB, want at most %d MiB", fi.Size()>>20, limit>>20)
	}
}

// TestBoltConcurrentWriters is TestSQLiteConcurrentWriters on a bolt:
// store, where bbolt serialises the writers itself.
func TestBoltConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "load.db")
	s, c, err := storeurl.Open(t.Context(), "bolt://"+path, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := writeLoad(t, s, loadDuration(t))
	if res.failed > 0 {
		t.Errorf("%d of %d requests failed; the first: %s", res.failed, res.requests, res.first)
	}
}

// TestSQLiteLockWaitWithinStoreTimeout checks that a write on a sqlite:
// store that finds the database locked by another process (here another
// connection, as the kvsession command would hold it) gives up within the
// manager's default StoreTimeout (3s) with SQLite's own error, instead of
// waiting past the request's deadline: SQLite's wait for the lock does not
// honour the context, so busy_timeout must be shorter than the timeout.
func TestSQLiteLockWaitWithinStoreTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	s, c, err := storeurl.Open(t.Context(), "sqlite://"+path, storeurl.Options{CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	const storeTimeout = 3 * time.Second // kvsession.Config's default
	ctx, cancel := context.WithTimeout(t.Context(), storeTimeout)
	defer cancel()
	err = s.Set(ctx, "k", []byte("v"), time.Time{})
	switch {
	case err == nil:
		t.Fatal("Set succeeded while another connection held the write lock")
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		t.Fatalf("Set waited for the lock past the %v store timeout: %v", storeTimeout, err)
	}
	t.Logf("Set on a locked database: %v", err)

	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(t.Context(), "k", []byte("v"), time.Time{}); err != nil {
		t.Fatalf("Set after the lock was released: %v", err)
	}
}
