package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunFlagErrors(t *testing.T) {
	t.Setenv("KVSESSION_SECRET", "")
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := free.Addr().String()
	free.Close()
	const key = "0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"extra"}, exitUsage, "unexpected argument"},
		{[]string{"-tls-cert", "c.pem"}, exitUsage, "go together"},
		{[]string{"-store", "redis://" + down + "/0"}, exitUsage, "KVSESSION_SECRET"},
		{[]string{"-store", "postgres://u:hunter2@" + down + "/db"}, exitUsage, "KVSESSION_SECRET"},
		{[]string{"-store", "file:sessions", "-secret", key}, exitUsage, "relative path"},
		{[]string{"-store", "redis://" + down + "/0", "-secret", "short"}, exitUsage, "at least 32"},
		{[]string{"-store", "redis://" + down + "/0", "-secret", key}, exitFail, "cannot connect"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr syncBuffer
			code := run(t.Context(), tt.args, &stderr, nil)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr.String(), tt.code, tt.want)
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Errorf("stderr shows a password:\n%s", stderr.String())
			}
		})
	}
}

// start runs the demo with args until the test ends, and returns its
// address.
func start(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), &stderr, ready) }()
	select {
	case addr = <-ready:
	case code := <-done:
		cancel()
		t.Fatalf("the demo exited with status %d:\n%s", code, stderr.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("the demo did not start:\n%s", stderr.String())
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("the demo exited with status %d:\n%s", code, stderr.String())
		}
	}
	t.Cleanup(stop)
	return addr, stop
}

// TestRunDefaultStore serves the demo on its default store twice, as two
// runs of "go run .": the generated key and the sessions survive the
// restart.
func TestRunDefaultStore(t *testing.T) {
	t.Setenv("KVSESSION_SECRET", "")
	data := filepath.Join(t.TempDir(), "kvsession-demo-data")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	call := func(method, addr, path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
		return v
	}

	addr, stop := start(t, "-data", data)
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	form := url.Values{"user": {"alice"}}
	req, _ := http.NewRequest("POST", "http://"+addr+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /login: %v %v", resp, err)
	}
	call("POST", addr, "/count")
	stop()

	fi, err := os.Stat(filepath.Join(data, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the secret's mode is %v, want 0600", fi.Mode().Perm())
	}

	addr, _ = start(t, "-data", data)
	if me := call("GET", addr, "/api/me"); me["user"] != "alice" || me["count"] != 1.0 {
		t.Errorf("after the restart, /api/me = %v, want alice and 1", me)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	k1, created, err := loadOrCreateSecret(path)
	if err != nil || !created || len(k1) < minSecretLen {
		t.Fatalf("first call: %q, %v, %v", k1, created, err)
	}
	k2, created, err := loadOrCreateSecret(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Errorf("second call: %q, %v, %v; want the first key, not created", k2, created, err)
	}
	if keys, err := parseSecrets(string(k1)); err != nil || len(keys) != 1 {
		t.Errorf("the generated key is not a valid KVSESSION_SECRET: %v", err)
	}
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, _, err := loadOrCreateSecret(path); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("short key file: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	a, b := strings.Repeat("a", 32), strings.Repeat("b", 40)
	keys, err := parseSecrets(a + ", " + b)
	if err != nil || len(keys) != 2 || string(keys[0]) != a || string(keys[1]) != b {
		t.Errorf("parseSecrets = %q, %v", keys, err)
	}
	for _, bad := range []string{"short", a + ",", a + ",short"} {
		if _, err := parseSecrets(bad); err == nil {
			t.Errorf("parseSecrets(%q) succeeded", bad)
		}
	}
}

// TestLoadOrCreateKeyConcurrent starts instances together on a fresh data
// directory: they must all end up with the one key that was written.
func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], _, errs[i] = loadOrCreateSecret(path) })
	}
	wg.Wait()
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil || string(keys[i]) != strings.TrimSpace(string(onDisk)) {
			t.Errorf("instance %d: key %q, %v; want the file's %q", i, keys[i], errs[i], onDisk)
		}
	}
	if created, err := createWhole(path, "other\n"); created || err != nil {
		t.Errorf("createWhole on an existing file = %v, %v; want false, nil", created, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, onDisk) {
		t.Error("createWhole replaced an existing file")
	}
}
