package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/storeurl"
)

// openStore opens the store at u read-write, for a test to change behind
// the tool's back.
func openStore(t *testing.T, u string) kvsession.Store {
	t.Helper()
	s, c, err := storeurl.Open(t.Context(), u, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s
}

// userSession returns the store key of a session of user, as list shows it.
func userSession(t *testing.T, u, user string) string {
	t.Helper()
	list := decodeSessions(t, mustRun(t, "list", "-store", u, "-user", user, "-json"))
	if len(list) == 0 {
		t.Fatalf("no session of %s", user)
	}
	return list[0].Key
}

// TestCorruptRecords checks that every tool reports a record that does not
// decode as corrupt, apart from live and expired sessions, on every store
// that can list, and that delete removes it.
func TestCorruptRecords(t *testing.T) {
	for _, b := range backends {
		if !b.canList {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			seed(t, u).stop()
			bob := userSession(t, u, "bob")
			func() { // a bolt file is locked while open
				s, c, err := storeurl.Open(t.Context(), u, storeurl.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := s.Set(t.Context(), bob, []byte("not a record"), time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}()

			var st statsJSON
			json.Unmarshal([]byte(mustRun(t, "stats", "-json", "-store", u)), &st)
			if st.Sessions != 3 || st.Corrupt != 1 || st.ExpiredUnswept != 0 {
				t.Errorf("stats = %+v, want 3 sessions and 1 corrupt record apart", st)
			}
			if out := mustRun(t, "stats", "-store", u); !strings.Contains(out, "corrupt records") {
				t.Errorf("stats (table) shows no corrupt records:\n%s", out)
			}
			mustFail(t, exitFail, "corrupt record", "show", "-store", u, bob)
			var listed []corruptJSON
			json.Unmarshal([]byte(mustRun(t, "list", "-corrupt", "-json", "-store", u)), &listed)
			if len(listed) != 1 || listed[0].Key != bob {
				t.Errorf("list -corrupt = %+v, want %s", listed, bob)
			}
			if _, errOut, _ := run(t, "list", "-store", u); !strings.Contains(errOut, "1 corrupt record not shown") {
				t.Errorf("list does not say it left out a corrupt record: %q", errOut)
			}
			if b.sweeps {
				if out := mustRun(t, "cleanup", "-dry-run", "-store", u); !strings.Contains(out, "dry run: 0 expired records") || !strings.Contains(out, "1 corrupt record under key prefix") {
					t.Errorf("cleanup -dry-run:\n%s", out)
				}
			}
			if out := mustRun(t, "delete", "-store", u, bob); !strings.Contains(out, "deleted corrupt record "+bob) {
				t.Errorf("delete of a corrupt record:\n%s", out)
			}
			json.Unmarshal([]byte(mustRun(t, "stats", "-json", "-store", u)), &st)
			if st.Sessions != 3 || st.Corrupt != 0 {
				t.Errorf("after delete, stats = %+v, want 3 sessions and no corrupt record", st)
			}
		})
	}
}

// TestCorruptFile checks that a file the file store cannot parse (the
// demo's default store) is counted as corrupt, not as expired or missing.
func TestCorruptFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	u := "file://" + dir
	seed(t, u).stop()
	bob := userSession(t, u, "bob")
	if err := os.WriteFile(filepath.Join(dir, "k-"+hex.EncodeToString([]byte(bob))), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st statsJSON
	json.Unmarshal([]byte(mustRun(t, "stats", "-json", "-store", u)), &st)
	if st.Sessions != 3 || st.Corrupt != 1 || st.ExpiredUnswept != 0 {
		t.Errorf("stats = %+v, want 3 sessions and 1 corrupt record", st)
	}
	mustFail(t, exitFail, "corrupt record", "show", "-store", u, bob)
}

// tree lists every file under dir with its size and time, to compare.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %s", path, info.Size(), info.ModTime()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadOnlyCommandsChangeNothing checks that list, show, stats and
// cleanup -dry-run change no file of a file store, that list -user leaves
// a stale index entry in place, and that list -user -prune removes it.
func TestReadOnlyCommandsChangeNothing(t *testing.T) {
	for _, b := range backends {
		if b.name != "file" && b.name != "sqlite" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			seed(t, u).stop()
			alice := userSession(t, u, "alice")
			// The record goes, its index entry stays: a stale entry.
			func() {
				s, c, err := storeurl.Open(t.Context(), u, storeurl.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := s.Delete(t.Context(), alice); err != nil {
					t.Fatal(err)
				}
			}()
			indexed := func() int {
				s, c, err := storeurl.Open(t.Context(), u, storeurl.Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				keys, err := s.UserKeys(t.Context(), "alice")
				if err != nil {
					t.Fatal(err)
				}
				return len(keys)
			}
			dir := strings.TrimPrefix(u, "file://")
			if b.name == "sqlite" {
				dir = filepath.Dir(strings.TrimPrefix(u, "sqlite://"))
			}
			before := tree(t, dir)
			bob := userSession(t, u, "bob")
			for _, args := range [][]string{{"list"}, {"list", "-json"}, {"list", "-user", "alice"}, {"list", "-corrupt"}, {"show", bob}, {"stats"}, {"cleanup", "-dry-run"}} {
				mustRun(t, append(args, "-store", u)...)
			}
			if b.name == "file" {
				if after := tree(t, dir); !slices.Equal(before, after) {
					t.Errorf("read-only commands changed the store:\nbefore %q\nafter  %q", before, after)
				}
			}
			if n := indexed(); n != 2 {
				t.Errorf("after list -user, the index holds %d entries of alice, want the 2 (one stale) it had", n)
			}
			if list := decodeSessions(t, mustRun(t, "list", "-user", "alice", "-prune", "-json", "-store", u)); len(list) != 1 {
				t.Errorf("list -user alice -prune = %+v, want 1 session", list)
			}
			if n := indexed(); n != 1 {
				t.Errorf("after list -user -prune, the index holds %d entries of alice, want 1", n)
			}
			mustFail(t, exitUsage, "-prune needs -user", "list", "-prune", "-store", u)
		})
	}
}

// TestExactTimes checks that LAST SEEN and EXPIRES come from the record
// alone (no -idle-timeout), after an idle refresh, and that times carry
// their zone in tables and in JSON.
func TestExactTimes(t *testing.T) {
	u := "file://" + filepath.Join(t.TempDir(), "sessions")
	store := openStore(t, u)
	var mu sync.Mutex
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m, err := kvsession.New(store, kvsession.Config{
		Secrets: [][]byte{testKey}, Now: clock, Logger: discard, InsecureCookie: true,
		Lifetime: 24 * time.Hour, IdleTimeout: 30 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		if r.URL.Path == "/set" {
			s.Set("x", 1)
		} else {
			kvsession.Get[int](s, "x")
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/set", nil))
	cookie := rec.Result().Cookies()[0]
	created := now
	mu.Lock()
	now = now.Add(20 * time.Minute)
	mu.Unlock()
	req := httptest.NewRequest("GET", "/read", nil)
	req.AddCookie(cookie)
	h.ServeHTTP(httptest.NewRecorder(), req) // an idle refresh, no write of the data

	c, out, _ := newCLI()
	c.loc = time.FixedZone("", 2*3600)
	if code := c.main(context.Background(), []string{"list", "-json", "-store", u}); code != exitOK {
		t.Fatalf("list: exit %d", code)
	}
	list := decodeSessions(t, out.String())
	if len(list) != 1 {
		t.Fatalf("list = %+v", list)
	}
	s := list[0]
	if !s.Created.Equal(created) || !s.LastSeen.Equal(now) || !s.ExpiresAt.Equal(now.Add(30*time.Minute)) {
		t.Errorf("created %v, last seen %v, expires %v; want %v, %v (the idle refresh), %v",
			s.Created, s.LastSeen, s.ExpiresAt, created, now, now.Add(30*time.Minute))
	}
	if !strings.Contains(out.String(), "+02:00\"") {
		t.Errorf("list -json shows no zone offset:\n%s", out)
	}
	out.Reset()
	c.main(context.Background(), []string{"list", "-store", u})
	if want := now.In(c.loc).Format(time.RFC3339); !strings.Contains(out.String(), want) {
		t.Errorf("list table: no %s (RFC 3339 with its offset) in\n%s", want, out)
	}
}
