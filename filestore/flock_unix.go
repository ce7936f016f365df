//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package filestore

import (
	"context"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// maxBackoff is the longest pause between two attempts to take a lock.
const maxBackoff = 5 * time.Millisecond

// lockFile opens the file at path, creating it, and takes an exclusive
// flock(2) lock on it, polling until the lock is free or ctx is done.
// Closing the returned file releases the lock. A symbolic link at path is
// an error: the store never creates or opens a file through one. flock(2) locks belong to the
// open file, so they exclude other processes and other Stores in this
// process alike.
func lockFile(ctx context.Context, path string) (io.Closer, error) {
	f, err := openNoFollow(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	delay := 50 * time.Microsecond
	for {
		var lockErr error
		err := rc.Control(func(fd uintptr) {
			lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
		})
		if err == nil {
			err = lockErr
		}
		switch err {
		case nil:
			return f, nil
		case syscall.EWOULDBLOCK, syscall.EINTR:
		default:
			f.Close()
			return nil, &fs.PathError{Op: "flock", Path: path, Err: err}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, maxBackoff)
	}
}
