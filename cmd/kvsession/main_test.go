package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/kvsession/kvsession/examples/demo/demoapp"
	"github.com/kvsession/kvsession/storetest"
	"github.com/kvsession/kvsession/storeurl"
)

func newCLI() (*cli, *bytes.Buffer, *lockedBuffer) {
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	return &cli{
		stdout: &stdout,
		stderr: stderr,
		getenv: func(string) string { return "" },
		loc:    time.UTC,
	}, &stdout, stderr
}

// run runs the command line and returns its outputs and exit status.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	c, out, errOut := newCLI()
	code = c.main(t.Context(), args)
	return out.String(), errOut.String(), code
}

// mustRun runs the command line and fails unless it succeeds.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, args...)
	if code != exitOK {
		t.Fatalf("kvsession %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// mustFail runs the command line and checks its exit status and message.
func mustFail(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	out, errOut, got := run(t, args...)
	if got != code || !strings.Contains(errOut, want) {
		t.Errorf("kvsession %s: exit %d, stderr %q (stdout %q); want exit %d and %q", strings.Join(args, " "), got, errOut, out, code, want)
	}
	if got != exitOK && strings.Count(strings.TrimSpace(errOut), "\n") > 0 && !strings.Contains(errOut, "usage:") {
		t.Errorf("kvsession %s: error on several lines:\n%s", strings.Join(args, " "), errOut)
	}
}

// lockedBuffer is a bytes.Buffer safe for a progress goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var discard = slog.New(slog.DiscardHandler)

var testKey = []byte("kvsession-cli-test-key-012345678")

// demo is the demo application on a store, with its browsers.
type demo struct {
	t       *testing.T
	srv     *httptest.Server
	closer  io.Closer
	clients map[string]*http.Client // by user agent
}

// startDemo serves the demo application on the store at storeURL. now, if
// not nil, is its clock.
func startDemo(t *testing.T, storeURL string, now func() time.Time) *demo {
	t.Helper()
	store, closer, err := storeurl.Open(t.Context(), storeURL, storeurl.Options{CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	app, err := demoapp.New(store, demoapp.Config{Secrets: [][]byte{testKey}, Now: now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	d := &demo{t: t, srv: httptest.NewServer(app), closer: closer, clients: map[string]*http.Client{}}
	t.Cleanup(d.stop)
	return d
}

// stop stops the application and closes its store, as when it is down for
// maintenance (a bolt file is then free).
func (d *demo) stop() {
	if d.srv != nil {
		d.srv.Close()
		d.closer.Close()
		d.srv = nil
	}
}

// post sends a form as the browser named ua (each has its own cookies) and
// returns /api/me's answer.
func (d *demo) post(ua, path string, form url.Values) demoapp.Me {
	d.t.Helper()
	hc := d.clients[ua]
	if hc == nil {
		jar, _ := cookiejar.New(nil)
		hc = &http.Client{Jar: jar}
		d.clients[ua] = hc
	}
	method := "POST"
	if form == nil {
		method = "GET"
	}
	req, _ := http.NewRequest(method, d.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", ua)
	resp, err := hc.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var me demoapp.Me
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("%s %s: %d, %v", method, path, resp.StatusCode, err)
	}
	return me
}

// seed writes sessions through the demo's handler: alice on two devices,
// bob on one, and an anonymous visitor with a count.
func seed(t *testing.T, storeURL string) *demo {
	d := startDemo(t, storeURL, nil)
	d.post("alice-laptop", "/login", url.Values{"user": {"alice"}})
	d.post("alice-laptop", "/count", url.Values{})
	d.post("alice-phone", "/login", url.Values{"user": {"alice"}})
	d.post("bob-desktop", "/login", url.Values{"user": {"bob"}})
	d.post("bob-desktop", "/count", url.Values{})
	d.post("anonymous", "/count", url.Values{})
	return d
}

// backend is a store URL to test the commands on.
type backend struct {
	name    string
	url     func(t *testing.T) string // skips if the server is not there
	canList bool
	sweeps  bool // needs cleanup (an ExpiredDeleter)
}

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s%x", prefix, b)
}

var backends = []backend{
	{"file", func(t *testing.T) string { return "file://" + filepath.Join(t.TempDir(), "sessions") }, true, true},
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "s.db") }, true, true},
	{"bolt", func(t *testing.T) string { return "bolt://" + filepath.Join(t.TempDir(), "s.db") }, true, true},
	{"redis", func(t *testing.T) string {
		addr := storetest.ServerEnv(t, "KVSESSION_TEST_REDIS_ADDR")
		prefix := unique("kvsession-cli-test-") + ":"
		t.Cleanup(func() {
			client := redis.NewClient(&redis.Options{Addr: addr})
			defer client.Close()
			ctx := context.Background()
			iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
			for iter.Next(ctx) {
				client.Del(ctx, iter.Val())
			}
		})
		return "redis://" + addr + "/0?namespace=" + url.QueryEscape(prefix)
	}, true, false},
	{"memcache", func(t *testing.T) string {
		addr := storetest.ServerEnv(t, "KVSESSION_TEST_MEMCACHE_ADDR")
		return "memcache://" + addr + "?namespace=" + unique("kvsession-cli-test-") + ":"
	}, false, false},
	{"postgres", func(t *testing.T) string {
		dsn := storetest.ServerEnv(t, "KVSESSION_TEST_POSTGRES_DSN")
		table := unique("kvsession_cli_test_")
		t.Cleanup(func() {
			pool, err := pgxpool.New(context.Background(), dsn)
			if err != nil {
				t.Error(err)
				return
			}
			defer pool.Close()
			pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+table+`", "`+table+`_users"`)
		})
		u, _ := url.Parse(dsn)
		q := u.Query()
		q.Set("table", table)
		u.RawQuery = q.Encode()
		return u.String()
	}, true, true},
	{"mysql", func(t *testing.T) string {
		dsn := storetest.ServerEnv(t, "KVSESSION_TEST_MYSQL_DSN")
		table := unique("kvsession_cli_test_")
		t.Cleanup(func() {
			db, err := sql.Open("mysql", dsn)
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			db.Exec("DROP TABLE IF EXISTS `" + table + "`, `" + table + "_users`")
		})
		c, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u := url.URL{Scheme: "mysql", User: url.User(c.User), Host: c.Addr, Path: "/" + c.DBName, RawQuery: "table=" + table}
		if c.Passwd != "" {
			u.User = url.UserPassword(c.User, c.Passwd)
		}
		return u.String()
	}, true, true},
}

func decodeSessions(t *testing.T, out string) []sessionJSON {
	t.Helper()
	var list []sessionJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	return list
}

// TestCommands runs every command on sessions that the demo application
// wrote, in every store at hand.
func TestCommands(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			d := seed(t, u)
			d.stop() // the tool works while the application is away

			// list -user, in every store.
			alice := decodeSessions(t, mustRun(t, "list", "-store", u, "-user", "alice", "-json"))
			if len(alice) != 2 {
				t.Fatalf("list -user alice: %d sessions, want 2: %+v", len(alice), alice)
			}
			agents := alice[0].UserAgent + " " + alice[1].UserAgent
			if !strings.Contains(agents, "alice-laptop") || !strings.Contains(agents, "alice-phone") || alice[0].User != "alice" {
				t.Errorf("list -user alice = %+v", alice)
			}
			if out := mustRun(t, "list", "-store", u, "-user", "alice"); !strings.Contains(out, "alice-laptop") || !strings.Contains(out, "SESSION") {
				t.Errorf("list -user alice (table):\n%s", out)
			}
			if out := mustRun(t, "list", "-store", u, "-user", "carol"); !strings.Contains(out, `no sessions of user "carol"`) {
				t.Errorf("list -user carol:\n%s", out)
			}

			var bob sessionJSON
			if b.canList {
				all := decodeSessions(t, mustRun(t, "list", "-store", u, "-json"))
				if len(all) != 4 {
					t.Fatalf("list: %d sessions, want 4: %+v", len(all), all)
				}
				for _, s := range all {
					if s.User == "bob" {
						bob = s
					}
				}
				out := mustRun(t, "list", "-store", u)
				if strings.Count(out, "\n") != 5 || !strings.Contains(out, "bob-desktop") || !strings.Contains(out, "anonymous") {
					t.Errorf("list (table): want a header and 4 rows:\n%s", out)
				}

				var st statsJSON
				json.Unmarshal([]byte(mustRun(t, "stats", "-store", u, "-json")), &st)
				if st.Sessions != 4 || st.Bytes <= 0 || st.ExpiringWithin != 0 {
					t.Errorf("stats = %+v, want 4 sessions, some bytes, none expiring within 1h", st)
				}
				if out := mustRun(t, "stats", "-store", u); !strings.Contains(out, "sessions") || !strings.Contains(out, "4") {
					t.Errorf("stats (table):\n%s", out)
				}

				// show, by a short ID, after the other flags.
				out = mustRun(t, "show", "-store", u, "--", bob.ID[:8]) // an ID may start with "-"
				for _, want := range []string{"bob", "bob-desktop", bob.Key, "permanent    yes"} {
					if !strings.Contains(out, want) {
						t.Errorf("show %s: no %q in\n%s", bob.ID[:8], want, out)
					}
				}
			} else {
				mustFail(t, exitFail, "cannot list", "list", "-store", u)
				mustFail(t, exitFail, "cannot list", "stats", "-store", u)
				bob = decodeSessions(t, mustRun(t, "list", "-store", u, "-user", "bob", "-json"))[0]
				mustFail(t, exitFail, "give the full store key", "show", "-store", u, "--", bob.ID)
			}
			var shown sessionJSON
			json.Unmarshal([]byte(mustRun(t, "show", "-store", u, "-json", bob.Key)), &shown)
			if shown.User != "bob" || shown.Bytes <= 0 || shown.Key != bob.Key || string(shown.Values["count"]) != "1" {
				t.Errorf("show -json %s = %+v", bob.Key, shown)
			}

			// delete, then show and delete again.
			if out := mustRun(t, "delete", "-store", u, bob.Key); !strings.Contains(out, "deleted session "+bob.ID) {
				t.Errorf("delete:\n%s", out)
			}
			mustFail(t, exitFail, "no such session", "show", "-store", u, bob.Key)
			mustFail(t, exitFail, "no such session", "delete", "-store", u, bob.Key)
			if b.canList {
				mustFail(t, exitFail, "no such session", "show", "-store", u, "--", bob.ID)
			}

			// revoke: alice's two sessions.
			if out := mustRun(t, "revoke", "-store", u, "-user", "alice"); !strings.Contains(out, `revoked 2 sessions of user "alice"`) {
				t.Errorf("revoke:\n%s", out)
			}
			if out := mustRun(t, "revoke", "-store", u, "-user", "alice", "-json"); !strings.Contains(out, `"revoked": 0`) {
				t.Errorf("revoke again:\n%s", out)
			}
			if list := decodeSessions(t, mustRun(t, "list", "-store", u, "-user", "alice", "-json")); len(list) != 0 {
				t.Errorf("after revoke, list -user alice = %+v", list)
			}

			// cleanup
			out := mustRun(t, "cleanup", "-store", u)
			if b.sweeps && !strings.Contains(out, "deleted 0 expired records") || !b.sweeps && !strings.Contains(out, "nothing to do") {
				t.Errorf("cleanup:\n%s", out)
			}
			if b.sweeps && b.canList {
				if out := mustRun(t, "cleanup", "-dry-run", "-store", u); !strings.Contains(out, "dry run: 0 expired records (0 sessions, 0 revocation marks) of ") {
					t.Errorf("cleanup -dry-run:\n%s", out)
				}
			}

			// The application is back: the revoked and deleted sessions
			// are gone for their browsers; the anonymous one is intact.
			d2 := startDemo(t, u, nil)
			d2.clients = d.clients
			for _, ua := range []string{"alice-laptop", "alice-phone", "bob-desktop"} {
				if me := d2.post(ua, "/api/me", nil); me.User != "" || me.Count != 0 {
					t.Errorf("%s after the tool ended its session: %+v", ua, me)
				}
			}
			if me := d2.post("anonymous", "/api/me", nil); me.Count != 1 {
				t.Errorf("the anonymous session after the tool ran: %+v, want its count of 1", me)
			}
		})
	}
}

// TestCleanupExpired checks that stats and cleanup -dry-run count expired
// sessions exactly, and as many as cleanup then deletes, on every store
// that sweeps (on SQLite and bbolt they once said 0, as their Keys hid
// expired records).
func TestCleanupExpired(t *testing.T) {
	for _, b := range backends {
		if !b.sweeps || !b.canList {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			old := func() time.Time { return time.Now().Add(-8 * 24 * time.Hour) } // past the demo's 7-day lifetime
			d := startDemo(t, u, old)
			d.post("a", "/count", url.Values{})
			d.post("b", "/count", url.Values{})
			d.stop()
			seed(t, u).stop()

			if out := mustRun(t, "cleanup", "-dry-run", "-store", u); !strings.Contains(out, "dry run: 2 expired records (2 sessions, 0 revocation marks) of 6 listed") {
				t.Errorf("cleanup -dry-run:\n%s", out)
			}
			var st statsJSON
			json.Unmarshal([]byte(mustRun(t, "stats", "-json", "-store", u)), &st)
			if st.Sessions != 4 || st.ExpiredUnswept != 2 || st.Corrupt != 0 {
				t.Errorf("stats = %+v, want 4 live, 2 expired, 0 corrupt", st)
			}
			if out := mustRun(t, "cleanup", "-store", u); !strings.Contains(out, "deleted 2 expired records") {
				t.Errorf("cleanup:\n%s", out)
			}
			if out := mustRun(t, "cleanup", "-store", u, "-json"); !strings.Contains(out, `"deleted": 0`) || !strings.Contains(out, `"expired": 0`) {
				t.Errorf("cleanup again:\n%s", out)
			}
		})
	}
}

// TestBoltLocked checks that the tool says so when the application holds
// the bolt file.
func TestBoltLocked(t *testing.T) {
	u := "bolt://" + filepath.Join(t.TempDir(), "s.db")
	seed(t, u) // still running
	mustFail(t, exitFail, "locked by another process", "list", "-store", u, "-timeout", "200ms")
}

func TestUsageErrors(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := free.Addr().String()
	free.Close()
	dir := "file://" + t.TempDir()
	mustRun(t, "revoke", "-user", "nobody", "-store", dir) // a write: makes dir a store
	plain := t.TempDir()

	if _, errOut, code := run(t); code != exitUsage || !strings.Contains(errOut, "The commands:") {
		t.Errorf("no arguments: exit %d, stderr:\n%s", code, errOut)
	}
	mustFail(t, exitUsage, `unknown command "lst"`, "lst")
	mustFail(t, exitUsage, `unknown command "nope"`, "help", "nope")
	mustFail(t, exitUsage, "flag provided but not defined: -bogus", "list", "-bogus")
	mustFail(t, exitUsage, "missing -store", "list")
	mustFail(t, exitUsage, `bad store URL "file:sessions": relative path`, "list", "-store", "file:sessions")
	mustFail(t, exitUsage, `unknown scheme "ftp"`, "stats", "-store", "ftp://x")
	mustFail(t, exitUsage, "want one SESSION", "show", "-store", dir)
	mustFail(t, exitUsage, "want at least one SESSION", "delete", "-store", dir)
	mustFail(t, exitUsage, "is not a session ID", "show", "-store", dir, "abc")
	mustFail(t, exitUsage, "is not a session ID", "delete", "-store", dir, "s:not/a/key")
	mustFail(t, exitUsage, "missing -user", "revoke", "-store", dir)
	mustFail(t, exitUsage, `unexpected argument "x"`, "list", "-store", dir, "x")
	mustFail(t, exitUsage, "KeyPrefix", "list", "-store", dir, "-key-prefix", strings.Repeat("p", 101))
	mustFail(t, exitFail, "cannot connect", "list", "-store", "redis://"+down+"/0")
	mustFail(t, exitFail, "cannot connect", "revoke", "-user", "x", "-store", "postgres://u:hunter2@"+down+"/db")
	mustFail(t, exitFail, "no such directory", "list", "-store", dir+"/missing")
	// A directory that is not a store is an error, and stays as it was.
	for _, cmd := range [][]string{{"stats"}, {"list"}, {"list", "-user", "u"}, {"cleanup", "-dry-run"}, {"show", "abcdefgh"}} {
		mustFail(t, exitFail, "not a session store", append(cmd, "-store", "file://"+plain)...)
	}
	if entries, _ := os.ReadDir(plain); len(entries) != 0 {
		t.Errorf("read-only commands created %v in a directory that is not a store", entries)
	}
	mustFail(t, exitFail, "no such session: abcdefgh", "show", "-store", dir, "abcdefgh")
	if _, errOut, _ := run(t, "list", "-store", "postgres://u:hunter2@"+down+"/db"); strings.Contains(errOut, "hunter2") {
		t.Errorf("an error shows the password: %s", errOut)
	}

	// The store can come from the environment.
	c, out, _ := newCLI()
	c.getenv = func(name string) string {
		if name == "KVSESSION_STORE" {
			return dir
		}
		return ""
	}
	if code := c.main(t.Context(), []string{"list"}); code != exitOK || !strings.Contains(out.String(), "no sessions") {
		t.Errorf("list with KVSESSION_STORE: exit %d, %q", code, out)
	}
}

func TestHelp(t *testing.T) {
	out := mustRun(t, "help")
	for _, cmd := range commands {
		if !strings.Contains(out, "\t"+cmd.name+" ") {
			t.Errorf("help does not list %s", cmd.name)
		}
		h := mustRun(t, "help", cmd.name)
		if !strings.Contains(h, "usage: kvsession "+cmd.name) || !strings.Contains(h, "-store URL") {
			t.Errorf("help %s:\n%s", cmd.name, h)
		}
		if h2, errOut, code := run(t, cmd.name, "-h"); h2 != h || errOut != "" || code != exitOK {
			t.Errorf("%s -h: exit %d, stderr %q; stdout differs from help %s: %v", cmd.name, code, errOut, cmd.name, h2 != h)
		}
	}
}

// A mistyped flag is still a flag error, not a session named "-jsn".
func TestParseInterspersedBadFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("json", false, "")
	for _, arg := range []string{"-jsn", "-store=x", "--no-such-flag", "--D_Vu41zKj5e"} {
		if got, err := parseInterspersed(fs, []string{arg}); err == nil {
			t.Errorf("parseInterspersed(%q) = %q, nil; want a flag error", arg, got)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tt := range []struct {
		args, positional []string
		json             bool
	}{
		{[]string{"a", "-json", "b"}, []string{"a", "b"}, true},
		{[]string{"-json", "a"}, []string{"a"}, true},
		{[]string{"a", "--", "-json"}, []string{"a", "-json"}, false},
		// A session's hash may start with "-" (one in 64): it is no flag.
		{[]string{"-D_Vu41zKj5eVwSyma_agroO3_XkTxg1v23FcrIGR8Y", "-json"}, []string{"-D_Vu41zKj5eVwSyma_agroO3_XkTxg1v23FcrIGR8Y"}, true},
		{[]string{"-json", "a", "-D_Vu41zKj5e"}, []string{"a", "-D_Vu41zKj5e"}, true},
		{[]string{"-json", "--", "--D_Vu41zKj5e"}, []string{"--D_Vu41zKj5e"}, true},
		{[]string{"-json", "a", "-D_Vu41zKj5e", "b", "-C_Vu41zKj5e"}, []string{"a", "-D_Vu41zKj5e", "b", "-C_Vu41zKj5e"}, true},
		{[]string{"-store", "-D_Vu41zKj5e", "x"}, []string{"x"}, false}, // a flag's value stays its value
		{[]string{"--json", "-json=false"}, nil, false},
		{nil, nil, false},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		fs.String("store", "", "")
		got, err := parseInterspersed(fs, tt.args)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.positional) || *j != tt.json {
			t.Errorf("parseInterspersed(%q) = %q, json %v, %v; want %q, json %v", tt.args, got, *j, err, tt.positional, tt.json)
		}
	}
}

func TestProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _, stderr := newCLI()
		c.progressEvery = 5 * time.Millisecond
		var n atomic.Int64
		n.Store(42)
		var total atomic.Int64
		total.Store(84)
		p := c.startProgress("stats", counted(&n, &total, "sessions read"))
		time.Sleep(12 * time.Millisecond) // two ticks of the bubble's fake clock
		n.Store(84)
		p.end()
		// Two ticks, then the last count when it ends.
		if got := stderr.String(); strings.Count(got, "42 of 84 sessions read (50%)\n") != 2 ||
			!strings.HasSuffix(got, "84 of 84 sessions read (100%)\n") || !strings.Contains(got, "stats: ") {
			t.Errorf("progress after two ticks and the end wrote %q, want two lines at 50%% and a last at 100%%", got)
		}
	})
	c, _, stderr := newCLI() // progressEvery 0: silent
	c.startProgress("x", nil).end()
	if stderr.String() != "" {
		t.Errorf("silent progress wrote %q", stderr.String())
	}
}

var updateDoc = flag.Bool("update-doc", false, "rewrite doc.go from the help text")

// TestDocGo checks that doc.go holds the help text; go generate rewrites it.
func TestDocGo(t *testing.T) {
	c, _, _ := newCLI()
	want := docGo(c)
	if *updateDoc {
		if err := os.WriteFile("doc.go", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Error("doc.go is not the help text: run go generate")
	}
}

// docGo returns the content of doc.go: the package documentation, made
// of the help of the command and of each subcommand.
func docGo(c *cli) string {
	var text strings.Builder
	c.usage(&text)
	for _, cmd := range commands {
		var h strings.Builder
		c.commandHelp(&h, cmd)
		usage, rest, _ := strings.Cut(h.String(), "\n\n")
		body, flags, _ := strings.Cut(rest, "\nFlags:\n")
		fmt.Fprintf(&text, "\n# kvsession %s\n\n\t%s\n\n%s\n\nFlags:\n\n", cmd.name, strings.TrimPrefix(usage, "usage: "), strings.TrimSpace(body))
		for _, line := range strings.Split(strings.TrimRight(flags, "\n"), "\n") {
			fmt.Fprintf(&text, "\t%s\n", strings.TrimPrefix(line, "  "))
		}
	}
	var b strings.Builder
	b.WriteString("// Code generated by \"go test -run TestDocGo -update-doc\"; DO NOT EDIT.\n\n")
	for i, line := range strings.Split(strings.TrimRight(text.String(), "\n"), "\n") {
		if i == 0 {
			line = "Command " + line
		}
		switch {
		case line == "":
			b.WriteString("//\n")
		case strings.HasPrefix(line, "\t"):
			b.WriteString("//" + line + "\n")
		default:
			b.WriteString("// " + line + "\n")
		}
	}
	b.WriteString("package main\n")
	return b.String()
}
