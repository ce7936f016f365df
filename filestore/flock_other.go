//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package filestore

import (
	"context"
	"io"
)

// lockFile does nothing on this platform, which lacks flock(2): only the
// in-process lock of one Store guards a key, so a directory must not be
// shared by several Stores or processes.
func lockFile(context.Context, string) (io.Closer, error) {
	return nopCloser{}, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
