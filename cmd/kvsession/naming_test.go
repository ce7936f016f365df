package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/storeurl"
)

// TestRenamedNames checks that the old names of the key prefix flag and of
// the store's namespace parameter are errors that name the new ones.
func TestRenamedNames(t *testing.T) {
	dir := "file://" + t.TempDir()
	mustRun(t, "revoke", "-user", "nobody", "-store", dir) // a write: makes dir a store
	for _, form := range []string{"-prefix", "--prefix", "-prefix=s:"} {
		args := []string{"list", "-store", dir, form}
		if form == "-prefix" || form == "--prefix" {
			args = append(args, "s:")
		}
		mustFail(t, exitUsage, "-prefix is now -key-prefix", args...)
	}
	mustFail(t, exitUsage, "use namespace=", "stats", "-store", "redis://127.0.0.1:1/0?prefix=app:")
	mustFail(t, exitUsage, "use namespace=", "stats", "-store", "memcache://127.0.0.1:1?prefix=app:")
	// After "--", -prefix is an argument (a session ID), not a flag.
	mustFail(t, exitFail, "no such session: -prefix", "show", "-store", dir, "--", "-prefix")
}

// TestHelpWords checks that the help speaks of store keys, the key prefix,
// the store's namespace and signing secrets, and never of -prefix.
func TestHelpWords(t *testing.T) {
	out := mustRun(t, "help")
	for _, want := range []string{"-key-prefix", "namespace", "store key", "signing secret", storeurl.Schemes()[4].Form} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, cmd := range commands {
		h := mustRun(t, "help", cmd.name)
		if regexp.MustCompile(`(^|[^-a-z])-prefix\b|\?prefix=|signing key`).MatchString(out + h) {
			t.Errorf("help %s speaks of -prefix, ?prefix= or a signing key:\n%s", cmd.name, h)
		}
	}
}

// writeSessions writes n sessions through a Manager with cfg (at the time
// now) and returns their store keys.
func writeSessions(t *testing.T, store kvsession.Store, cfg kvsession.Config, now time.Time, n int) []string {
	t.Helper()
	cfg.Secrets = [][]byte{testKey}
	cfg.Now = func() time.Time { return now }
	cfg.Logger = discard
	m, err := kvsession.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range n {
		s := m.Open(t.Context(), "")
		if err := s.SetUser(fmt.Sprintf("user%d", i%3)); err != nil {
			t.Fatal(err)
		}
		token, err := s.Commit()
		if err != nil {
			t.Fatal(err)
		}
		key, err := m.StoreKey(token)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

// TestNoStoreTTL checks cleanup for an application with Config.NoStoreTTL,
// on every store that can list its keys: without -no-store-ttl the store's
// own sweep, which goes by the store's expiry, finds nothing to delete (or
// Redis has nothing to do); with it, cleanup deletes exactly the expired
// sessions, by their own deadlines, Redis included. It also checks that
// the default key prefix of the tool (none) is the application's default.
func TestNoStoreTTL(t *testing.T) {
	for _, b := range backends {
		if !b.canList {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			store, closer, err := storeurl.Open(t.Context(), u, storeurl.Options{CreateSchema: true})
			if err != nil {
				t.Fatal(err)
			}
			cfg := kvsession.Config{NoStoreTTL: true, Lifetime: time.Hour}
			writeSessions(t, store, cfg, time.Now().Add(-2*time.Hour), 3) // expired an hour ago
			live := writeSessions(t, store, cfg, time.Now(), 2)
			closer.Close()

			if out := mustRun(t, "cleanup", "-dry-run", "-no-store-ttl", "-store", u); !strings.Contains(out, "dry run: 3 expired records (3 sessions, 0 revocation marks) of 5 listed") {
				t.Errorf("cleanup -dry-run:\n%s", out)
			}
			out := mustRun(t, "cleanup", "-store", u)
			if b.sweeps && !strings.Contains(out, "deleted 0 expired records") || !b.sweeps && !strings.Contains(out, "nothing to do") {
				t.Errorf("cleanup without -no-store-ttl:\n%s", out)
			}
			var res cleanupJSON
			if err := json.Unmarshal([]byte(mustRun(t, "cleanup", "-no-store-ttl", "-json", "-store", u)), &res); err != nil {
				t.Fatal(err)
			}
			if !res.Needed || res.Deleted != 3 || res.Expired != 3 {
				t.Errorf("cleanup -no-store-ttl = %+v, want 3 expired, 3 deleted", res)
			}
			list := decodeSessions(t, mustRun(t, "list", "-json", "-store", u))
			if len(list) != 2 || (list[0].Key != live[0] && list[0].Key != live[1]) {
				t.Errorf("after cleanup -no-store-ttl, list = %+v, want the 2 live sessions %v", list, live)
			}
		})
	}
	t.Run("memcache", func(t *testing.T) {
		for _, b := range backends {
			if b.name == "memcache" {
				mustFail(t, exitFail, "cannot list its keys", "cleanup", "-no-store-ttl", "-store", b.url(t))
			}
		}
	})
}

// TestCleanupProgress checks that a long walking cleanup reports the
// records deleted so far, of the expired ones found.
func TestCleanupProgress(t *testing.T) {
	u := "file://" + filepath.Join(t.TempDir(), "sessions")
	store, closer, err := storeurl.Open(t.Context(), u, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	writeSessions(t, store, kvsession.Config{NoStoreTTL: true, Lifetime: time.Hour}, time.Now().Add(-2*time.Hour), n)
	closer.Close()

	c, stdout, stderr := newCLI()
	c.progressEvery = 200 * time.Microsecond // many lines during the deletes of n records
	if code := c.main(t.Context(), []string{"cleanup", "-no-store-ttl", "-store", u}); code != exitOK {
		t.Fatalf("cleanup: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf("deleted %d expired records", n)) {
		t.Errorf("cleanup:\n%s", stdout)
	}
	re := regexp.MustCompile(`cleanup: deleting: \S+, (\d+) of ` + fmt.Sprint(n) + ` expired records deleted \(\d+%\)\n`)
	lines := re.FindAllStringSubmatch(stderr.String(), -1)
	if len(lines) == 0 {
		t.Fatalf("no progress line of the deletes in:\n%s", stderr)
	}
	last := -1
	for _, l := range lines {
		var done int
		fmt.Sscan(l[1], &done)
		if done < last || done > n {
			t.Errorf("progress went from %d to %d of %d", last, done, n)
		}
		last = done
	}
	if last == 0 {
		t.Errorf("%d progress lines of the deletes, all at 0: the walk reported none", len(lines))
	}
}

// TestCleanupSweepProgress checks that a store's own sweep reports the
// records deleted so far, after each batch, with the expired ones the walk
// found, on every store that sweeps: records for more than one batch
// (1000 rows, 256 directory entries).
func TestCleanupSweepProgress(t *testing.T) {
	const n = 1500
	for _, b := range backends {
		if !b.sweeps {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			store, closer, err := storeurl.Open(t.Context(), u, storeurl.Options{CreateSchema: true})
			if err != nil {
				t.Fatal(err)
			}
			writeSessions(t, store, kvsession.Config{Lifetime: time.Hour}, time.Now().Add(-2*time.Hour), n) // store TTL an hour ago
			closer.Close()

			c, stdout, stderr := newCLI()
			c.progressEvery = 50 * time.Microsecond // many lines during each batch
			if code := c.main(t.Context(), []string{"cleanup", "-store", u}); code != exitOK {
				t.Fatalf("cleanup: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout.String(), fmt.Sprintf("deleted %d expired records", n)) {
				t.Errorf("cleanup:\n%s", stdout)
			}
			re := regexp.MustCompile(`cleanup: deleting: \S+, (\d+) expired records? deleted so far \(` + fmt.Sprint(n) + ` found under key prefix ""\)\n`)
			lines := re.FindAllStringSubmatch(stderr.String(), -1)
			if len(lines) == 0 {
				t.Fatalf("no progress line of the sweep in:\n%s", stderr)
			}
			last, moving := 0, 0
			for _, l := range lines {
				var done int
				fmt.Sscan(l[1], &done)
				if done < last || done > n {
					t.Errorf("progress went from %d to %d of %d", last, done, n)
				}
				if done > 0 {
					moving++
				}
				last = done
			}
			t.Logf("%d progress lines, %d after the first batch", len(lines), moving)
			if last == 0 {
				t.Errorf("%d progress lines of the sweep, all at 0: no batch reported", len(lines))
			}
		})
	}
}

// TestRevokeNoStoreTTL checks that revoke -no-store-ttl writes the user's
// revocation mark without a store expiry, as an application with
// Config.NoStoreTTL does, and that revoke without it gives the mark one.
func TestRevokeNoStoreTTL(t *testing.T) {
	for _, tt := range []struct {
		flags []string
		ttl   bool
	}{
		{nil, true},
		{[]string{"-no-store-ttl"}, false},
	} {
		u := "file://" + filepath.Join(t.TempDir(), "sessions")
		mustRun(t, append([]string{"revoke", "-user", "alice", "-store", u}, tt.flags...)...)
		store, closer, err := storeurl.Open(t.Context(), u, storeurl.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		var marks []kvsession.Entry
		err = store.(kvsession.Lister).Keys(t.Context(), "!r:", func(key string) error {
			e, err := store.Get(t.Context(), key)
			marks = append(marks, e)
			return err
		})
		closer.Close()
		if err != nil || len(marks) != 1 {
			t.Fatalf("revoke %v: marks %+v, %v; want one", tt.flags, marks, err)
		}
		if got := !marks[0].ExpiresAt.IsZero(); got != tt.ttl {
			t.Errorf("revoke %v: mark expiry %v, want a store expiry: %v", tt.flags, marks[0].ExpiresAt, tt.ttl)
		}
	}
}
