package storeurl_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/storeurl"
)

func isCI() bool { return os.Getenv("CI") == "true" }

// requireBinary returns the path of the first of names found in PATH or
// as given (an absolute path). It skips the test if none is, unless
// CI=true, where it fails: CI installs the server (apt package aptPkg).
func requireBinary(t *testing.T, aptPkg string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if !isCI() {
		t.Skipf("none of %v is installed (apt package %s)", names, aptPkg)
	}
	t.Fatalf("none of %v is installed; under CI=true it must be (apt package %s)", names, aptPkg)
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// privateMariaDB starts a MariaDB server of the test's own, with a data
// directory and socket in a temporary directory, on a free loopback port,
// allowing maxConns client connections and checking no passwords, and
// stops it when the test ends. It returns the server's address, where the
// database test exists.
func privateMariaDB(t *testing.T, maxConns int) string {
	t.Helper()
	bin := requireBinary(t, "mariadb-server", "mariadbd", "/usr/sbin/mariadbd")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	args := []string{
		"--no-defaults",
		"--datadir=" + data,
		"--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--bind-address=127.0.0.1",
		"--port=" + port,
		"--skip-grant-tables",
		"--skip-name-resolve",
		"--skip-log-bin",
		fmt.Sprintf("--max-connections=%d", maxConns),
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=4M",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // mariadbd refuses to run as root otherwise
	}
	logPath := filepath.Join(dir, "mysqld.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("mariadbd (pid %d) did not exit 10s after SIGKILL", cmd.Process.Pid)
		}
	})
	showLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	addr := net.JoinHostPort("127.0.0.1", port)
	db := monitor(t, addr, "")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("mariadbd exited at start:\n%s", showLog())
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		_, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS test")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd does not answer 20s after its start: %v\n%s", err, showLog())
		}
	}
	db.Close()
	return addr
}

// monitor opens a one-connection handle on the server at addr, closed
// when the test ends.
func monitor(t *testing.T, addr, dbName string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "tcp", addr, dbName
	cfg.Timeout = time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// burst runs n concurrent requests through a manager on store, each of
// which creates a session, then loads and saves it again, and returns the
// errors the manager reported.
func burst(t *testing.T, store kvsession.Store, n int) []error {
	var (
		mu   sync.Mutex
		errs []error
	)
	m, err := kvsession.New(store, kvsession.Config{
		Secrets:        [][]byte{[]byte("storeurl pool test key, at least 32 bytes long")},
		InsecureCookie: true,
		Logger:         slog.New(slog.DiscardHandler),
		StoreTimeout:   30 * time.Second, // a wait for a pooled connection is no failure
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			http.Error(w, "store error", http.StatusServiceUnavailable)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.FromContext(r.Context())
		n, _ := kvsession.Get[int](s, "n")
		if err := s.Set("n", n+1); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != http.StatusOK {
				fail(fmt.Errorf("new session: status %d", rec.Code))
				return
			}
			rec2 := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			for _, c := range rec.Result().Cookies() {
				req.AddCookie(c)
			}
			h.ServeHTTP(rec2, req)
			if rec2.Code != http.StatusOK {
				fail(fmt.Errorf("load and save: status %d", rec2.Code))
			}
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// maxUsedConnections reads the server's high-water mark of connections.
func maxUsedConnections(t *testing.T, db *sql.DB) int {
	t.Helper()
	var name string
	var n int
	if err := db.QueryRowContext(t.Context(), "SHOW GLOBAL STATUS LIKE 'Max_used_connections'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMySQLPoolBounded checks that a burst of concurrent requests on a
// mysql: store opened with the default bound never exhausts the server's
// connections: with it, no request fails and the server never sees more
// than the bound; with a bound above the server's max_connections, the
// same burst fails with Error 1040.
func TestMySQLPoolBounded(t *testing.T) {
	const serverMax, requests = 20, 150
	addr := privateMariaDB(t, serverMax)
	mon := monitor(t, addr, "test")
	if _, err := mon.ExecContext(t.Context(), "SELECT 1"); err != nil { // the monitor's connection counts
		t.Fatal(err)
	}

	t.Run("DefaultBound", func(t *testing.T) {
		s, c, err := storeurl.Open(t.Context(), "mysql://root@"+addr+"/test?table=bounded", storeurl.Options{CreateSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		errs := burst(t, s, requests)
		if len(errs) > 0 {
			t.Errorf("%d of %d requests failed; the first: %v", len(errs), 2*requests, errs[0])
		}
		if got, limit := maxUsedConnections(t, mon), storeurl.DefaultMaxConns+1; got > limit {
			t.Errorf("the server saw %d connections at once, want at most %d (the default bound and the monitor's)", got, limit)
		}
	})

	t.Run("BoundAboveServer", func(t *testing.T) {
		s, c, err := storeurl.Open(t.Context(), fmt.Sprintf("mysql://root@%s/test?table=unbounded&max_conns=%d", addr, requests), storeurl.Options{CreateSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		errs := burst(t, s, requests)
		too := 0
		for _, err := range errs {
			if strings.Contains(err.Error(), "1040") {
				too++
			}
		}
		if too == 0 {
			t.Errorf("%d concurrent requests on a pool of %d against max_connections=%d: %d errors, none is Error 1040 (too many connections); the burst does not test the bound", requests, requests, serverMax, len(errs))
		}
	})
}
