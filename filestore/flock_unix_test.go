//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// holdAllLocks takes every lock file of the store in dir, as another
// process would, and returns a function that releases them.
func holdAllLocks(t *testing.T, dir string) (release func()) {
	t.Helper()
	var files []*os.File
	for i := range 256 {
		f, err := os.OpenFile(filepath.Join(dir, "locks", fmt.Sprintf("%02x", i)), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			for _, f := range files {
				f.Close()
			}
		})
	}
	t.Cleanup(release)
	return release
}

// TestLockHonoursContext checks that a write waiting for a lock that
// another process holds gives up when its context ends, and goes through
// once the lock is free.
func TestLockHonoursContext(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, nil)
	release := holdAllLocks(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := s.Set(ctx, "k", []byte("v"), time.Time{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Set while another process holds the lock = %v, want context.DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Set(t.Context(), "k", []byte("v"), time.Time{}) }()
	select {
	case err := <-done:
		t.Fatalf("Set went through while another process held the lock: %v", err)
	default:
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("Set once the lock is free: %v", err)
	}
}
