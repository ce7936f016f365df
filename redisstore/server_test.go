package redisstore_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/kvsession/kvsession/storetest"
	"github.com/redis/go-redis/v9"
)

// Tests that start their own redis-server processes: restarts, crashes and
// a Sentinel failover.

// redisServer is a redis-server process that a test starts and stops, on
// a loopback port of its own, with its data in a directory of its own.
type redisServer struct {
	t    *testing.T
	port string
	dir  string
	args []string // more arguments for redis-server
	conf string   // if set, run as a Sentinel with this config file

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

func newRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not in PATH; under CI=true it must be")
		}
		t.Skip("redis-server is not in PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	srv := &redisServer{t: t, port: port, dir: t.TempDir()}
	t.Cleanup(srv.kill)
	return srv
}

func (r *redisServer) addr() string { return "127.0.0.1:" + r.port }

// start starts the server and waits until it answers.
func (r *redisServer) start() {
	r.t.Helper()
	var args []string
	if r.conf != "" {
		args = append(args, r.conf, "--sentinel")
	}
	args = append(args, "--port", r.port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--daemonize", "no", "--logfile", "")
	if r.conf == "" {
		args = append(args, "--save", "", "--appendonly", "no")
	}
	r.cmd = exec.Command("redis-server", append(args, r.args...)...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	r.done = done
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(done)
	}(r.cmd)
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	for range 100 {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("redis-server on %s does not answer", r.addr())
}

// stop shuts the server down, saving its data if save is set.
func (r *redisServer) stop(save bool) {
	r.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	if save {
		c.ShutdownSave(context.Background())
	} else {
		c.ShutdownNoSave(context.Background())
	}
	r.waitExit()
}

// crash kills the server without letting it save.
func (r *redisServer) crash() {
	r.t.Helper()
	r.cmd.Process.Kill()
	r.waitExit()
}

func (r *redisServer) waitExit() {
	r.t.Helper()
	select {
	case <-r.done:
		r.cmd = nil
	case <-time.After(5 * time.Second):
		r.t.Fatalf("redis-server on %s did not exit", r.addr())
	}
}

// kill stops the server if it still runs, at the end of the test.
func (r *redisServer) kill() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		<-r.done
		r.cmd = nil
	}
}

// waitGet calls Get until the server answers, for up to 5 seconds: after
// dials have failed, go-redis stops dialling and probes the server once a
// second until it is back. A record that is not found gives the zero Entry.
func waitGet(t *testing.T, s *redisstore.Store, key string) kvsession.Entry {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e, err := s.Get(t.Context(), key)
		switch {
		case err == nil:
			return e
		case errors.Is(err, kvsession.ErrNotFound):
			return kvsession.Entry{}
		case time.Now().After(deadline):
			t.Fatalf("Get(%q) still fails 5s after the server restarted: %v", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerRestart checks that the store works again after its server
// restarts: records that the server kept work as before (their versions
// included, although the restart emptied the script cache), the outage
// itself gives errors, not "not found", and a crash that lost the data
// makes records read as missing.
func TestServerRestart(t *testing.T) {
	srv := newRedisServer(t)
	srv.start()
	c := redis.NewClient(&redis.Options{
		Addr:                  srv.addr(),
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		DialerRetries:         1, // fail fast while the server is down
	})
	defer c.Close()
	s := newStore(t, c, nil)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.Set(ctx, "k", []byte("before"), exp); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUserKey(ctx, "u", "k", exp); err != nil {
		t.Fatal(err)
	}
	before, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}

	srv.stop(true)
	for _, op := range allOps(s) {
		err := op.run(ctx)
		if err == nil || errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("%s while the server is down = %v, want a failure", op.name, err)
		}
	}

	srv.start() // loads the saved data; the script cache is empty
	got := waitGet(t, s, "k")
	if string(got.Value) != "before" || got.Version != before.Version {
		t.Errorf("after restart Get = %q version %d, want %q version %d", got.Value, got.Version, "before", before.Version)
	}
	if err := s.CompareAndSwap(ctx, "k", []byte("after"), exp, got.Version); err != nil {
		t.Errorf("CompareAndSwap after restart: %v", err)
	}
	if err := s.Touch(ctx, "k", exp.Add(time.Minute)); err != nil {
		t.Errorf("Touch after restart: %v", err)
	}
	if keys, err := s.UserKeys(ctx, "u"); err != nil || !slices.Equal(keys, []string{"k"}) {
		t.Errorf("UserKeys after restart = %q, %v; want [k]", keys, err)
	}

	// Forget the saved data, then crash: the next start begins empty.
	if err := os.Remove(filepath.Join(srv.dir, "dump.rdb")); err != nil {
		t.Fatal(err)
	}
	srv.crash()
	if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get right after a crash = %v, want a failure", err)
	}
	srv.start()
	if got := waitGet(t, s, "k"); got.Value != nil {
		t.Errorf("Get after a crash that lost the data = %q, want ErrNotFound", got.Value)
	}
	if err := s.Set(ctx, "k", []byte("new"), exp); err != nil {
		t.Fatalf("Set after crash: %v", err)
	}
	if got, err := s.Get(ctx, "k"); err != nil || string(got.Value) != "new" {
		t.Errorf("Get after crash and Set = %q, %v", got.Value, err)
	}
	srv.stop(false)
}

// TestSentinel runs the conformance kit through a Sentinel-managed primary
// (redis.NewFailoverClient: the same Store type as for one server), then
// kills the primary and checks that the store follows the failover to the
// promoted replica, where the records it wrote live on with their versions.
func TestSentinel(t *testing.T) {
	primary := newRedisServer(t)
	primary.start()
	replica := newRedisServer(t)
	replica.args = []string{"--replicaof", "127.0.0.1", primary.port}
	replica.start()
	sentinel := newRedisServer(t)
	sentinel.conf = filepath.Join(sentinel.dir, "sentinel.conf")
	conf := "sentinel monitor kvs 127.0.0.1 " + primary.port + " 1\n" +
		"sentinel down-after-milliseconds kvs 1000\n" +
		"sentinel failover-timeout kvs 10000\n"
	if err := os.WriteFile(sentinel.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel.start()

	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "kvs",
		SentinelAddrs:         []string{sentinel.addr()},
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		DialerRetries:         1,
	})
	defer c.Close()
	s := newStore(t, c, &redisstore.Options{Namespace: "sentinel:"})
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, storetest.Harness{
			ServerClock:   true,
			SessionRounds: 5,
			NewStore:      func(*testing.T, *storetest.Clock) kvsession.Store { return s },
		})
	})

	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.Set(ctx, "k", []byte("before failover"), exp); err != nil {
		t.Fatal(err)
	}
	before, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	// Make sure the replica has the record and Sentinel knows the replica
	// before the primary dies.
	if n, err := c.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.addr()})
	defer sc.Close()
	for i := 0; ; i++ {
		replicas, err := sc.Replicas(ctx, "kvs").Result()
		if err == nil && len(replicas) == 1 {
			break
		}
		if i == 100 {
			t.Fatalf("Sentinel does not know the replica: %v, %v", replicas, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	primary.crash()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := s.Get(ctx, "k")
		if err == nil {
			if string(got.Value) != "before failover" || got.Version != before.Version {
				t.Errorf("after failover Get = %q version %d, want %q version %d", got.Value, got.Version, "before failover", before.Version)
			}
			break
		}
		if errors.Is(err, kvsession.ErrNotFound) {
			t.Fatalf("after failover the record is gone")
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the primary died the store still fails: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if addr, err := sc.GetMasterAddrByName(ctx, "kvs").Result(); err != nil || strings.Join(addr, ":") != replica.addr() {
		t.Errorf("Sentinel's primary is %v, %v; want the promoted replica %s", addr, err, replica.addr())
	}
	// The promoted replica is writable and runs the scripts.
	if err := s.CompareAndSwap(ctx, "k", []byte("after failover"), exp, before.Version); err != nil {
		t.Errorf("CompareAndSwap after failover: %v", err)
	}
	if err := s.AddUserKey(ctx, "u", "k", exp); err != nil {
		t.Errorf("AddUserKey after failover: %v", err)
	}
}
