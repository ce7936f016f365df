package boltstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/kvsession/kvsession"
)

// TestWriteWaitHonoursContext checks that every write that waits for
// bbolt's write lock, held here by another writer of the same database
// (the application's own data in another bucket, say), returns with its
// context's error when the context ends, without waiting for the lock, and
// writes nothing once the lock is free.
func TestWriteWaitHonoursContext(t *testing.T) {
	writes := []struct {
		name string
		call func(ctx context.Context, s kvsession.Store, version uint64) error
	}{
		{"Set", func(ctx context.Context, s kvsession.Store, version uint64) error {
			return s.Set(ctx, "new", []byte("v"), time.Time{})
		}},
		{"Delete", func(ctx context.Context, s kvsession.Store, version uint64) error { return s.Delete(ctx, "k") }},
		{"CompareAndSwap", func(ctx context.Context, s kvsession.Store, version uint64) error {
			return s.CompareAndSwap(ctx, "k", []byte("changed"), time.Time{}, version)
		}},
		{"CompareAndDelete", func(ctx context.Context, s kvsession.Store, version uint64) error {
			return s.CompareAndDelete(ctx, "k", version)
		}},
		{"Touch", func(ctx context.Context, s kvsession.Store, version uint64) error {
			return s.Touch(ctx, "k", time.Now().Add(time.Hour))
		}},
		{"AddUserKey", func(ctx context.Context, s kvsession.Store, version uint64) error {
			return s.AddUserKey(ctx, "u", "new", time.Time{})
		}},
		{"RemoveUserKey", func(ctx context.Context, s kvsession.Store, version uint64) error {
			return s.RemoveUserKey(ctx, "u", "k")
		}},
		{"DeleteExpired", func(ctx context.Context, s kvsession.Store, version uint64) error {
			_, err := s.(kvsession.ExpiredDeleter).DeleteExpired(ctx)
			return err
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			db := tempDB(t)
			s := newStore(t, db, nil)
			ctx := t.Context()
			if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddUserKey(ctx, "u", "k", time.Time{}); err != nil {
				t.Fatal(err)
			}
			before, err := s.Get(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}

			held, release, holderDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				holderDone <- db.Update(func(*bbolt.Tx) error {
					close(held)
					<-release
					return nil
				})
			}()
			<-held

			wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			result := make(chan error, 1)
			go func() { result <- w.call(wctx, s, before.Version) }()
			select {
			case err = <-result:
				close(release)
			case <-time.After(10 * time.Second): // a guard, so that a write that ignores its context fails the test instead of hanging it
				close(release)
				t.Fatalf("%s still waits for the write lock 10s after its context ended; it returned %v once the lock was free", w.name, <-result)
			}
			if err := <-holderDone; err != nil {
				t.Fatal(err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s on a locked database: %v, want context.DeadlineExceeded", w.name, err)
			}

			// Once the lock is free, nothing of the abandoned write lands.
			after, err := s.Get(ctx, "k")
			if err != nil {
				t.Fatalf("after an abandoned %s: Get: %v", w.name, err)
			}
			if string(after.Value) != "v" || after.Version != before.Version || !after.ExpiresAt.Equal(before.ExpiresAt) {
				t.Errorf("after an abandoned %s: the record changed: %+v, was %+v", w.name, after, before)
			}
			if _, err := s.Get(ctx, "new"); !errors.Is(err, kvsession.ErrNotFound) {
				t.Errorf("after an abandoned %s: Get(new) = %v, want ErrNotFound", w.name, err)
			}
			keys, err := s.UserKeys(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0] != "k" {
				t.Errorf("after an abandoned %s: UserKeys = %q, want [k]", w.name, keys)
			}
		})
	}
}
