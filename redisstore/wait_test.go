package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/redis/go-redis/v9"
)

// newStore returns New(client, opts), failing the test on an error.
func newStore(t testing.TB, client redis.UniversalClient, opts *redisstore.Options) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNewBadOptions checks that New refuses every bad option with an
// error that names it, and no Store, rather than panic.
func TestNewBadOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	short := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: 500 * time.Millisecond})
	defer short.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   *redisstore.Options
		want   string // in the error
	}{
		{"nil client", nil, nil, "nil client"},
		{"nil *redis.Client", (*redis.Client)(nil), nil, "nil *redis.Client"},
		{"nil *redis.ClusterClient", (*redis.ClusterClient)(nil), nil, "nil *redis.ClusterClient"},
		{"nil *redis.Ring", (*redis.Ring)(nil), nil, "nil *redis.Ring"},
		{"negative WaitReplicas", c, &redisstore.Options{WaitReplicas: -1}, "WaitReplicas -1 is negative"},
		{"negative WaitTimeout", c, &redisstore.Options{WaitReplicas: 1, WaitTimeout: -time.Second}, "WaitTimeout -1s is negative"},
		{"WaitTimeout alone", c, &redisstore.Options{WaitTimeout: time.Second}, "WaitReplicas is 0"},
		{"WaitTimeout past ReadTimeout", short, &redisstore.Options{WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond}, "ReadTimeout 500ms"},
		{"default WaitTimeout past ReadTimeout", short, &redisstore.Options{WaitReplicas: 1}, "WaitTimeout 1s is not shorter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisstore.New(tt.client, tt.opts)
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want no store and an error", s, err)
			}
			if !strings.HasPrefix(err.Error(), "redisstore: new: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error %q, want one starting with %q and holding %q", err, "redisstore: new: ", tt.want)
			}
		})
	}
	for _, opts := range []*redisstore.Options{
		nil,
		{},
		{Prefix: "app with spaces\n{tag}:"}, // Redis keys are binary-safe
		{WaitReplicas: 1},
		{WaitReplicas: 2, WaitTimeout: time.Microsecond},
	} {
		if _, err := redisstore.New(c, opts); err != nil {
			t.Errorf("New(%+v) = %v, want no error", opts, err)
		}
	}
}

// waitLinkUp waits until replica reports its link to its primary up.
func waitLinkUp(t *testing.T, replica *redisServer) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: replica.addr()})
	defer rc.Close()
	for range 200 {
		if info, err := rc.Info(t.Context(), "replication").Result(); err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the replica on %s never linked to its primary", replica.addr())
}

// TestWaitReplicas runs a primary and a replica of the test's own. With
// Options.WaitReplicas, a delete has reached the replica when it returns
// nil; with the replica stopped (SIGSTOP) it returns ErrNotReplicated once
// WaitTimeout has passed, where a store without the option reports success
// for a delete that a failover to that replica would undo.
func TestWaitReplicas(t *testing.T) {
	primary := newRedisServer(t)
	primary.start()
	replica := newRedisServer(t)
	replica.args = []string{"--replicaof", "127.0.0.1", primary.port}
	replica.start()
	waitLinkUp(t, replica)

	c := redis.NewClient(&redis.Options{Addr: primary.addr(), ContextTimeoutEnabled: true})
	defer c.Close()
	rc := redis.NewClient(&redis.Options{Addr: replica.addr(), ContextTimeoutEnabled: true})
	defer rc.Close()
	const prefix = "wait:"
	s := newStore(t, c, &redisstore.Options{Namespace: prefix, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
	plain := newStore(t, c, &redisstore.Options{Namespace: prefix})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	onReplica := func(key string) bool {
		t.Helper()
		n, err := rc.Exists(ctx, prefix+"s:"+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	set := func(key string) uint64 {
		t.Helper()
		if err := s.Set(ctx, key, []byte("v"), exp); err != nil {
			t.Fatal(err)
		}
		e, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return e.Version
	}

	// The replica works: deletes return nil, and are on it at once.
	set("a")
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete with a live replica: %v", err)
	}
	if onReplica("a") {
		t.Error("after Delete returned, the replica still holds the record")
	}
	v := set("b")
	if err := s.CompareAndDelete(ctx, "b", v+1); !errors.Is(err, kvsession.ErrConflict) {
		t.Errorf("CompareAndDelete with another version = %v, want ErrConflict", err)
	}
	if err := s.CompareAndDelete(ctx, "b", v); err != nil {
		t.Fatalf("CompareAndDelete with a live replica: %v", err)
	}
	if onReplica("b") {
		t.Error("after CompareAndDelete returned, the replica still holds the record")
	}
	if err := s.CompareAndDelete(ctx, "b", v); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("CompareAndDelete of a deleted record = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "never-written"); err != nil {
		t.Errorf("Delete of an absent record: %v", err)
	}

	// The replica stops acknowledging.
	set("c")
	v = set("d")
	set("e")
	if n, err := c.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}
	if err := replica.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			replica.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second) // far above WaitTimeout: a hang fails here
	defer cancel()
	if err := s.Delete(callCtx, "c"); !errors.Is(err, redisstore.ErrNotReplicated) || !strings.HasPrefix(err.Error(), "redisstore: delete: ") {
		t.Errorf("Delete with a stopped replica = %v, want a redisstore: delete: error wrapping ErrNotReplicated", err)
	}
	if err := s.CompareAndDelete(callCtx, "d", v); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("CompareAndDelete with a stopped replica = %v, want ErrNotReplicated", err)
	}
	// Retrying, even on a new connection (which has written nothing for
	// WAIT to count), finds the record gone on the primary and still
	// cannot confirm the first delete.
	c2 := redis.NewClient(&redis.Options{Addr: primary.addr(), ContextTimeoutEnabled: true})
	defer c2.Close()
	s2 := newStore(t, c2, &redisstore.Options{Namespace: prefix, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
	if err := s2.Delete(callCtx, "c"); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("Delete retried with a stopped replica = %v, want ErrNotReplicated", err)
	}
	c3 := redis.NewClient(&redis.Options{Addr: primary.addr(), ContextTimeoutEnabled: true})
	defer c3.Close()
	s3 := newStore(t, c3, &redisstore.Options{Namespace: prefix, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
	if err := s3.CompareAndDelete(callCtx, "d", v); !errors.Is(err, redisstore.ErrNotReplicated) {
		t.Errorf("CompareAndDelete retried with a stopped replica = %v, want ErrNotReplicated", err)
	}
	if callCtx.Err() != nil {
		t.Fatalf("the deletes ran into the test's deadline: %v", callCtx.Err())
	}
	// The record is gone on the primary all the same.
	if _, err := s.Get(ctx, "c"); !errors.Is(err, kvsession.ErrNotFound) {
		t.Errorf("Get after the unreplicated Delete = %v, want ErrNotFound", err)
	}
	// Without the option the delete reports success.
	if err := plain.Delete(ctx, "e"); err != nil {
		t.Errorf("Delete without WaitReplicas: %v", err)
	}

	// The replica catches up: deletes succeed again.
	resume()
	if err := s.Delete(ctx, "c"); err != nil {
		t.Errorf("Delete after the replica resumed: %v", err)
	}
	for _, k := range []string{"c", "d", "e"} {
		if onReplica(k) {
			t.Errorf("after the replica resumed and a Delete returned, it still holds %q", k)
		}
	}
}

// TestClusterWaitReplicas checks that on a cluster the waiting deletes go
// to the primary that owns each key (else Redis answers MOVED): on the
// test cluster, which has no replicas, each delete is carried out and then
// reports ErrNotReplicated.
func TestClusterWaitReplicas(t *testing.T) {
	c, prefix := newClusterClient(t)
	s := newStore(t, c, &redisstore.Options{Namespace: prefix, WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for i := range 8 { // keys in several slots, on several masters
		k := string(rune('a' + i))
		if err := s.Set(ctx, k, []byte("v"), exp); err != nil {
			t.Fatal(err)
		}
		e, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		del := func() error { return s.Delete(ctx, k) }
		if i%2 == 1 {
			del = func() error { return s.CompareAndDelete(ctx, k, e.Version) }
		}
		if err := del(); !errors.Is(err, redisstore.ErrNotReplicated) {
			t.Errorf("delete %d on a cluster without replicas = %v, want ErrNotReplicated", i, err)
		}
		if _, err := s.Get(ctx, k); !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("Get after delete %d = %v, want ErrNotFound", i, err)
		}
	}
}
