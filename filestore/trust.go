package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// ErrUnsafeDir is wrapped by the error of [New], and of the user index
// methods, for a directory that another local user could have written: one
// that is a symbolic link, is not owned by the process's effective user, or
// is writable by its group or by others. Such a user could rewrite records
// (turning their session into someone else's) or plant symbolic links that
// make the store create files where they choose. The error names the
// directory, its owner and its mode: give it to the right user
// (chown) and make it private (chmod 0700), or choose another directory.
var ErrUnsafeDir = errors.New("unsafe directory")

// errSymlink reports a symbolic link where the store expects one of its
// own files.
var errSymlink = errors.New("is a symbolic link, not a file of the store")

// errNotRegular reports a record path that holds something other than a
// regular file (a symbolic link, a directory): it reads as a corrupt
// record, so a read sees it as missing and a sweep removes it.
var errNotRegular = fmt.Errorf("%w: not a regular file", errCorrupt)

// openNoFollow opens path with flag, never following a symbolic link at
// path itself. A symbolic link gives an error wrapping errSymlink, whatever
// the platform's errno for it (ELOOP, EMLINK or EFTYPE).
func openNoFollow(path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|oNoFollow, perm)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, &fs.PathError{Op: "open", Path: path, Err: errSymlink}
		}
	}
	return f, err
}

// createTemp creates a new temp file in dir with mode 0600, trying the
// names that name returns. It never opens an existing file, nor follows a
// symbolic link planted at the name.
func createTemp(dir string, name func() string) (*os.File, error) {
	var err error
	for range 100 {
		var f *os.File
		f, err = openNoFollow(dir+string(os.PathSeparator)+name(), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, err
}

// tempName returns a fresh temp file name: the prefix and random digits.
func tempName() string {
	return tempPrefix + strconv.FormatUint(newVersion(), 10)
}

// checkDir returns an error wrapping ErrUnsafeDir if the directory at path,
// whose Lstat is fi, is not a directory (a symbolic link included) that
// only this process's user can write. what names it in the error.
func checkDir(what, path string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%s %s is not a directory but %s (%v, %s); the store follows no link: replace it with a directory of mode 0700: %w",
			what, path, kind(fi), fi.Mode(), owner(fi), ErrUnsafeDir)
	}
	return checkOwner(what, path, fi)
}

// checkOwner returns an error wrapping ErrUnsafeDir if the file whose
// Lstat or Stat is fi is not owned by the process's effective user, or is
// writable by its group or others.
func checkOwner(what, path string, fi fs.FileInfo) error {
	uid, ok := ownerOf(fi)
	if !ok || uid == os.Geteuid() && fi.Mode().Perm()&0o022 == 0 {
		return nil
	}
	return fmt.Errorf("%s %s is %s with mode %v; it must be owned by uid %d (this process's effective user) and not writable by group or others: chown it and chmod it 0700, or use another directory: %w",
		what, path, owner(fi), fi.Mode(), os.Geteuid(), ErrUnsafeDir)
}

// checkLink returns an error wrapping ErrUnsafeDir if the symbolic link
// whose Lstat is fi is owned by neither this process's user nor root:
// another user could have pointed it anywhere.
func checkLink(path string, fi fs.FileInfo) error {
	uid, ok := ownerOf(fi)
	if !ok || uid == os.Geteuid() || uid == 0 {
		return nil
	}
	return fmt.Errorf("directory %s is a symbolic link %s; it must be owned by uid %d (this process's effective user) or root: remove it, or give the directory it points to: %w",
		path, owner(fi), os.Geteuid(), ErrUnsafeDir)
}

// owner describes the owner of the file whose Lstat is fi.
func owner(fi fs.FileInfo) string {
	if uid, ok := ownerOf(fi); ok {
		return "owned by uid " + strconv.Itoa(uid)
	}
	return "of unknown owner"
}

// kind names the type of the file whose Lstat is fi.
func kind(fi fs.FileInfo) string {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return "a symbolic link"
	}
	return "a file"
}
