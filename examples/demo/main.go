// Command demo serves the kvsession demo application: a login without a
// password, a counter, a scratchpad and the list of the user's active
// sessions, with "log out this one" and "log out all others". It shows why
// sessions belong on the server: the browser holds only a signed ID, a
// logout really ends the session, and the server can list and revoke the
// sessions of users who are away.
//
// Run it with no server to install (sessions persist across restarts in
// ./kvsession-demo-data):
//
//	cd examples/demo && go run .
//
// and open http://127.0.0.1:8080.
//
// The page ends with a panel of the server's metrics (active sessions,
// requests, merged conflicts, revocations, store latency p50 and p99);
// /stats shows it alone, reloading itself, and /metrics serves them, with
// every metric of the otelsession package, in the Prometheus text format.
// Neither asks for a login: counts and latencies, never a session or a
// user, for whoever reaches the address (loopback by default); put them
// behind the application's own access control before exposing the port.
//
// Usage:
//
//	demo [-addr host:port] [-store URL] [-data dir] [-secret secrets] [-tls-cert file -tls-key file]
//
// The flags:
//
//	-addr      address to listen on (default 127.0.0.1:8080)
//	-store     a store URL, such as redis://127.0.0.1:6379/0 (default: the
//	           file store in the -data directory); see the storeurl package
//	-data      directory of the default store and its generated secret
//	           (default ./kvsession-demo-data)
//	-secret    the signing secrets, as KVSESSION_SECRET
//	-tls-cert, -tls-key
//	           serve HTTPS with this certificate and key: cookies are then
//	           Secure, with the __Host- prefix
//
// The signing secrets come from -secret or else the environment variable
// KVSESSION_SECRET: a comma-separated list of secrets of at least 32 bytes
// each; the first signs new cookies and all of them verify, so a new
// secret can be put first while the old one is kept until its cookies
// expire. With the default store and no secret given, one is generated
// once and kept, mode 0600, in the data directory, so that restarts keep
// sessions valid. With another store (mem: apart) a secret must be given,
// since every instance that shares the store must share it; run two instances on one
// Redis with:
//
//	export KVSESSION_SECRET=$(head -c 32 /dev/urandom | base64)
//	go run . -addr 127.0.0.1:8080 -store redis://127.0.0.1:6379/0 &
//	go run . -addr 127.0.0.1:8081 -store redis://127.0.0.1:6379/0 &
//
// Over plain HTTP the session cookie lacks the Secure attribute
// (kvsession.Config.InsecureCookie), so that browsers send it to a loopback
// address; use -tls-cert and -tls-key anywhere else.
//
// Stores that do not expire records by themselves (file, bolt, SQL) are
// cleaned every 10 minutes. The exit status is 2 for bad flags, a bad store
// URL or a missing secret, and 1 when the store cannot be opened or the
// server fails.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/examples/demo/demoapp"
	"github.com/kvsession/kvsession/storeurl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, nil))
}

// Exit statuses.
const (
	exitFail  = 1 // the store or the server failed
	exitUsage = 2 // bad flags, a bad store URL, a missing secret
)

// minSecretLen is the shortest signing secret kvsession accepts.
const minSecretLen = 32

// secretFile is the generated secret's name in the data directory.
const secretFile = "secret"

// run serves the demo until ctx is cancelled and returns the exit status.
// If ready is not nil, it receives the listener's address once the server
// accepts connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) int {
	fset := flag.NewFlagSet("demo", flag.ContinueOnError)
	fset.SetOutput(stderr)
	addr := fset.String("addr", "127.0.0.1:8080", "address to listen on")
	storeURL := fset.String("store", "", "store URL, such as redis://127.0.0.1:6379/0 (default: the file store in the -data directory)")
	dataDir := fset.String("data", "kvsession-demo-data", "directory of the default file store and its generated secret")
	secret := fset.String("secret", "", "comma-separated signing secrets, each at least 32 bytes, the first signing (default $KVSESSION_SECRET, which other local users cannot see in the process list)")
	tlsCert := fset.String("tls-cert", "", "TLS certificate file: serve HTTPS, with Secure cookies")
	tlsKey := fset.String("tls-key", "", "TLS key file, with -tls-cert")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "usage: demo [-addr host:port] [-store URL] [-data dir] [-secret secrets] [-tls-cert file -tls-key file]\n\n")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "demo: "+format+"\n", a...)
		return code
	}
	if fset.NArg() > 0 {
		return fail(exitUsage, "unexpected argument %q (flags only; see -help)", fset.Arg(0))
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return fail(exitUsage, "-tls-cert and -tls-key go together")
	}
	secure := *tlsCert != ""

	secretSource := *secret
	if secretSource == "" {
		secretSource = os.Getenv("KVSESSION_SECRET")
	}
	var secrets [][]byte
	if secretSource != "" {
		var err error
		if secrets, err = parseSecrets(secretSource); err != nil {
			return fail(exitUsage, "%v", err)
		}
	}

	var (
		store  kvsession.Store
		closer io.Closer
		name   string
	)
	if *storeURL == "" {
		dir, err := filepath.Abs(*dataDir)
		if err != nil {
			return fail(exitFail, "%v", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fail(exitFail, "data directory: %v", err)
		}
		if secrets == nil {
			secret, created, err := loadOrCreateSecret(filepath.Join(dir, secretFile))
			if err != nil {
				return fail(exitFail, "%v", err)
			}
			if created {
				logger.Info("generated a signing secret; restarts keep sessions valid while it stays", "file", filepath.Join(dir, secretFile))
			}
			secrets = [][]byte{secret}
		}
		name = (&url.URL{Scheme: "file", Path: filepath.Join(dir, "sessions")}).String()
	} else {
		name = *storeURL
		if secrets == nil {
			if !strings.EqualFold(strings.TrimSuffix(*storeURL, "//"), "mem:") {
				return fail(exitUsage, "-store %s needs a signing secret shared by every instance: set KVSESSION_SECRET (or -secret) to one or more comma-separated secrets of at least %d bytes",
					storeurl.Redact(*storeURL), minSecretLen)
			}
			secret := make([]byte, minSecretLen)
			rand.Read(secret)
			secrets = [][]byte{secret} // mem: lives and dies with this process, and so may its secret
		}
	}
	store, closer, err := storeurl.Open(ctx, name, storeurl.Options{CreateSchema: true})
	if errors.Is(err, storeurl.ErrBadURL) {
		return fail(exitUsage, "%v", err)
	}
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	defer closer.Close()

	tel, err := newTelemetry(store)
	if err != nil {
		return fail(exitFail, "metrics: %v", err)
	}
	app, err := demoapp.New(tel.obs.Store(store), demoapp.Config{
		Secrets:   secrets,
		Secure:    secure,
		StoreName: storeurl.Redact(name),
		Logger:    logger,
		OnEvent:   tel.obs.OnEvent,
		Stats:     tel.stats,
	})
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if _, ok := store.(kvsession.ExpiredDeleter); ok {
		go app.Manager().CleanupEvery(ctx, 10*time.Minute)
	}

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(exitFail, "%v", err)
	}
	srv := &http.Server{
		Handler:           tel.handler(app),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme, cookies := "http", "not Secure: plain HTTP, so Config.InsecureCookie is set; use it on loopback only, or pass -tls-cert and -tls-secret"
	if secure {
		scheme, cookies = "https", "Secure, __Host- prefix"
	}
	logger.Info("kvsession demo listening", "url", scheme+"://"+l.Addr().String(), "store", storeurl.Redact(name), "cookies", cookies)
	if ready != nil {
		ready <- l.Addr().String()
	}

	errc := make(chan error, 1)
	go func() {
		if secure {
			errc <- srv.ServeTLS(l, *tlsCert, *tlsKey)
		} else {
			errc <- srv.Serve(l)
		}
	}()
	select {
	case err := <-errc:
		return fail(exitFail, "%v", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fail(exitFail, "shutdown: %v", err)
	}
	logger.Info("kvsession demo stopped")
	return 0
}

// parseSecrets splits a comma-separated list of signing secrets.
func parseSecrets(s string) ([][]byte, error) {
	var secrets [][]byte
	for i, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if len(k) < minSecretLen {
			return nil, fmt.Errorf("signing secret %d is %d bytes, want at least %d (for example: head -c 32 /dev/urandom | base64)", i+1, len(k), minSecretLen)
		}
		secrets = append(secrets, []byte(k))
	}
	return secrets, nil
}

// loadOrCreateSecret reads the signing secret kept in path, or creates one: 32
// random bytes, base64url-encoded, so that the file's content is also a
// valid KVSESSION_SECRET. The file appears whole or not at all (it is
// written aside, then linked into place), so that instances started
// together agree on one secret. It reports whether it created the file.
func loadOrCreateSecret(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		rand.Read(raw)
		secret := base64.RawURLEncoding.EncodeToString(raw)
		var created bool
		created, err = createWhole(path, secret+"\n")
		if err != nil {
			return nil, false, fmt.Errorf("signing secret: %w", err)
		}
		if created {
			return []byte(secret), true, nil
		}
		b, err = os.ReadFile(path) // another instance was first
	}
	if err != nil {
		return nil, false, fmt.Errorf("signing secret: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < minSecretLen {
		return nil, false, fmt.Errorf("%s holds %d bytes, want a secret of at least %d; delete it to generate a new one", path, len(secret), minSecretLen)
	}
	return []byte(secret), false, nil
}

// createWhole creates the file path, mode 0600, holding content, unless it
// exists. It reports whether it created it.
func createWhole(path, content string) (bool, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.WriteString(content)
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return false, err
	}
	err = os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	return err == nil, err
}
