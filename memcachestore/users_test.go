package memcachestore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memcachestore"
	"github.com/kvsession/kvsession/storetest"
)

// loginServer serves /login?user=U, which puts a value in the visitor's
// (pre-login) session, binds it to U and regenerates its ID, and /whoami,
// which answers "user cart".
func loginServer(t *testing.T, store kvsession.Store, keyPrefix string) (*kvsession.Manager, *httptest.Server) {
	t.Helper()
	m, err := kvsession.New(store, kvsession.Config{
		KeyPrefix:      keyPrefix,
		Secrets:        [][]byte{[]byte("memcachestore-test-key-32-bytes!!")},
		InsecureCookie: true,
		Logger:         slog.New(slog.DiscardHandler),
		OnEvent: func(_ context.Context, e kvsession.Event) {
			if e.Err != nil {
				t.Logf("event %v: %v", e.Kind, e.Err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/cart", func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).Set("cart", "book"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if err := s.SetUser(r.FormValue("user")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := s.Regenerate(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := kvsession.From(r).Destroy(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		user, err := s.User()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cart, _ := kvsession.Get[string](s, "cart")
		fmt.Fprintf(w, "%s %s", user, cart)
	})
	ts := httptest.NewServer(m.Handler(mux))
	t.Cleanup(ts.Close)
	return m, ts
}

// visit requests path with cookies and returns the status, the body and
// the cookies to send next (those of the response replace the old ones).
func visit(t *testing.T, ts *httptest.Server, path string, cookies []*http.Cookie) (int, string, []*http.Cookie) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if set := resp.Cookies(); len(set) > 0 {
		cookies = set
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), cookies
}

// login runs one visitor's login as user and checks that it works and
// keeps the pre-login session's data. It returns the visitor's cookies.
func login(t *testing.T, ts *httptest.Server, user string, i int) []*http.Cookie {
	t.Helper()
	code, body, cookies := visit(t, ts, "/cart", nil)
	if code != http.StatusOK {
		t.Fatalf("login %d: /cart = %d %q", i, code, body)
	}
	if code, body, cookies = visit(t, ts, "/login?user="+user, cookies); code != http.StatusOK {
		t.Fatalf("login %d as %s = %d %q, want 200", i, user, code, body)
	}
	if code, body, _ = visit(t, ts, "/whoami", cookies); code != http.StatusOK || body != user+" book" {
		t.Fatalf("login %d: /whoami = %d %q, want 200 %q", i, code, body, user+" book")
	}
	return cookies
}

// TestLoginPastTheItemSize fills a user's index up to memcached's item
// size (1 MiB by default; here with long store keys, as about 19,400
// sessions of the manager's do), then logs the user in through a Manager:
// every AddUserKey and the login must work, and the login keep the
// pre-login session's data.
func TestLoginPastTheItemSize(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	s := newStore(t, newClient(addr), &memcachestore.Options{Namespace: runPrefix + "full:"})
	ctx := t.Context()
	user := "ada"
	// Entries of 10 KiB, then 1 KiB, 64 and 16 bytes: without a bound, the
	// index ends within 25 bytes of the limit, less than the manager's
	// smallest entry.
	n := 0
	for _, c := range []struct{ size, count int }{{10 << 10, 110}, {1 << 10, 20}, {64, 30}, {16, 10}} {
		for range c.count {
			key := fmt.Sprintf("%0*d", c.size, n)
			n++
			if err := s.AddUserKey(ctx, user, key, time.Now().Add(time.Hour)); err != nil {
				t.Errorf("AddUserKey of entry %d (%d bytes): %v", n, c.size, err)
			}
		}
	}
	m, ts := loginServer(t, s, "")
	for i := range 3 {
		login(t, ts, user, i)
	}
	// The logins expire last: the index kept them.
	infos, err := m.UserSessions(ctx, user)
	if err != nil || len(infos) != 3 {
		t.Errorf("UserSessions = %d sessions, %v; want the 3 logins", len(infos), err)
	}
	if _, err := m.RevokeUser(ctx, user, false); err != nil {
		t.Error(err)
	}
}

// latest returns the keys of entries (key i expiring at exp[i], zero for
// never) that expire last, n of them, sorted.
func latest(exp []time.Time, n int) []string {
	order := make([]int, len(exp))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case exp[a].Equal(exp[b]):
			return 0
		case exp[a].IsZero():
			return -1
		case exp[b].IsZero():
			return 1
		}
		return exp[b].Compare(exp[a])
	})
	var keys []string
	for _, i := range order[:n] {
		keys = append(keys, fmt.Sprint("k", i))
	}
	slices.Sort(keys)
	return keys
}

// TestUserIndexCap adds more keys than Options.MaxUserKeys, in an order
// that is not their expiry order: every AddUserKey succeeds and the index
// keeps exactly the cap, the keys that expire last (no expiry being the
// latest). A key that would expire before all of a full index is not kept.
func TestUserIndexCap(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	const limit, n = 10, 25
	s := newStore(t, newClient(addr), &memcachestore.Options{Namespace: runPrefix + "cap:", MaxUserKeys: limit})
	ctx := t.Context()
	user := "ada"
	base := time.Now().Add(time.Hour)
	exp := make([]time.Time, n)
	for j := range n {
		i := j * 7 % n // 0, 7, 14, 21, 3, ...: a permutation
		if i != 4 {    // k4 has no expiry: the latest of all
			exp[i] = base.Add(time.Duration(i) * time.Minute)
		}
		if err := s.AddUserKey(ctx, user, fmt.Sprint("k", i), exp[i]); err != nil {
			t.Fatalf("AddUserKey %d of %d (cap %d): %v", j+1, n, limit, err)
		}
	}
	userKeys := func() []string {
		t.Helper()
		keys, err := s.UserKeys(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		return keys
	}
	if got, want := userKeys(), latest(exp, limit); !slices.Equal(got, want) {
		t.Errorf("UserKeys = %q, want the %d that expire last %q", got, limit, want)
	}
	// Soonest of all: not kept, and not an error.
	if err := s.AddUserKey(ctx, user, "early", base.Add(-time.Minute)); err != nil {
		t.Errorf("AddUserKey of a key expiring before all others: %v", err)
	}
	if got, want := userKeys(), latest(exp, limit); !slices.Equal(got, want) {
		t.Errorf("after adding the soonest-expiring key UserKeys = %q, want %q", got, want)
	}
	// Latest of all but one: kept, and the soonest one dropped.
	exp = append(exp, base.Add(time.Duration(n)*time.Minute))
	if err := s.AddUserKey(ctx, user, fmt.Sprint("k", n), exp[n]); err != nil {
		t.Errorf("AddUserKey of a key expiring late: %v", err)
	}
	if got, want := userKeys(), latest(exp, limit); !slices.Equal(got, want) {
		t.Errorf("after adding a late key UserKeys = %q, want %q", got, want)
	}
	for _, k := range userKeys() {
		if err := s.RemoveUserKey(ctx, user, k); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUserIndexDefaultCap checks that an index without Options.MaxUserKeys
// is capped at DefaultMaxUserKeys.
func TestUserIndexDefaultCap(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	s := newStore(t, newClient(addr), &memcachestore.Options{Namespace: runPrefix + "defaultcap:"})
	ctx := t.Context()
	base := time.Now().Add(time.Hour)
	const extra = 5
	for i := range memcachestore.DefaultMaxUserKeys + extra {
		if err := s.AddUserKey(ctx, "ada", fmt.Sprint("k", i), base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("AddUserKey %d: %v", i, err)
		}
	}
	keys, err := s.UserKeys(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != memcachestore.DefaultMaxUserKeys || slices.Contains(keys, "k0") || !slices.Contains(keys, fmt.Sprint("k", memcachestore.DefaultMaxUserKeys+extra-1)) {
		t.Errorf("UserKeys = %d keys (k0 in them: %v), want the last %d", len(keys), slices.Contains(keys, "k0"), memcachestore.DefaultMaxUserKeys)
	}
	for _, k := range keys {
		if err := s.RemoveUserKey(ctx, "ada", k); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoginPastTheCap logs one user in more often than Options.MaxUserKeys
// through a Manager: every login works, the sessions past the cap end (a
// session the index dropped could not be revoked), the user's session list
// holds the latest ones, and RevokeUser ends those: none survives.
func TestLoginPastTheCap(t *testing.T) {
	addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
	const limit, n = 3, 6
	s := newStore(t, newClient(addr), &memcachestore.Options{Namespace: runPrefix + "logincap:", MaxUserKeys: limit})
	m, ts := loginServer(t, s, "")
	ctx := t.Context()
	var visitors [][]*http.Cookie
	for i := range n {
		visitors = append(visitors, login(t, ts, "ada", i))
	}
	for i, c := range visitors[:n-limit] {
		if code, body, _ := visit(t, ts, "/whoami", c); code != http.StatusOK || body != "" {
			t.Errorf("login %d, dropped from the full index: /whoami = %d %q, want it ended", i, code, body)
		}
	}
	infos, err := m.UserSessions(ctx, "ada")
	if err != nil || len(infos) != limit {
		t.Fatalf("UserSessions = %d sessions, %v; want %d", len(infos), err, limit)
	}
	if got, err := m.RevokeUser(ctx, "ada", false); err != nil || got != limit {
		t.Errorf("RevokeUser = %d, %v; want %d", got, err, limit)
	}
	for i, c := range visitors {
		if code, body, _ := visit(t, ts, "/whoami", c); code != http.StatusOK || body != "" {
			t.Errorf("login %d after RevokeUser: /whoami = %d %q, want an empty session", i, code, body)
		}
	}
}
