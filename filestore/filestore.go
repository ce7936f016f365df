package filestore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kvsession/kvsession"
)

var (
	_ kvsession.Store          = (*Store)(nil)
	_ kvsession.Lister         = (*Store)(nil)
	_ kvsession.ExpiredDeleter = (*Store)(nil)
)

const (
	shortPrefix = "k-"    // file name of a key of at most maxHexKey bytes: hex of the key
	hashPrefix  = "h-"    // file name of a longer key: hex of its SHA-256
	tempPrefix  = ".tmp-" // file being written
	maxHexKey   = 100     // keeps every file name under 255 bytes with room to spare

	usersDir = "users"
	locksDir = "locks"

	numStripes = 256         // lock files, and in-process locks, per store
	batchSize  = 256         // directory entries read at a time
	staleTemp  = time.Minute // age after which a temp file is a writer's leftover
)

// Options configure a Store. A nil *Options means the zero value, which is
// ready to use.
type Options struct {
	// Now is the clock that decides expiry. Default: time.Now.
	Now func() time.Time

	// ReadOnly opens an existing store for reading only, for tools that
	// inspect sessions: New creates nothing and fails, with an error
	// wrapping ErrNotStore, on a directory that does not have the store's
	// layout (its users and locks subdirectories); every write fails with
	// an error wrapping ErrReadOnly; and UserKeys leaves expired entries
	// in place.
	ReadOnly bool
}

// ErrNotStore is wrapped by the error of [New] with Options.ReadOnly for a
// directory that is missing or is not a store's: one without the users
// and locks subdirectories that New creates.
var ErrNotStore = errors.New("not a session store directory")

// ErrReadOnly is wrapped by the error of every write of a Store opened with
// Options.ReadOnly.
var ErrReadOnly = errors.New("store opened read-only")

// Store keeps records in files under one directory. It is safe for
// concurrent use, and several Stores, in one process or in several, may
// share a directory (see the package documentation for the platforms
// where that holds). Create one with [New].
type Store struct {
	dir      string
	now      func() time.Time
	readOnly bool
	// stripes are in-process locks, one per lock file: a goroutine holds
	// stripes[i] while it holds lock file i.
	stripes [numStripes]chan struct{}
}

// New returns a Store that keeps its records under dir, creating dir with
// mode 0700 (and any missing parent) if it does not exist. It fails if dir
// exists and is not a directory, and, with an error wrapping
// [ErrUnsafeDir], if dir or its subdirectories are not safe from other
// local users (see the package documentation). A nil opts means the zero
// Options.
func New(dir string, opts *Options) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: new: %w", err)
	}
	readOnly := opts != nil && opts.ReadOnly
	if err := prepare(abs, !readOnly); err != nil {
		return nil, fmt.Errorf("filestore: new: %w", err)
	}
	s := &Store{dir: abs, now: time.Now, readOnly: readOnly}
	if opts != nil && opts.Now != nil {
		s.now = opts.Now
	}
	for i := range s.stripes {
		s.stripes[i] = make(chan struct{}, 1)
	}
	return s, nil
}

// prepare creates the store's directory dir and its subdirectories where
// they are missing, and checks that no other local user can write them.
// Without create it creates nothing, and returns an error wrapping
// ErrNotStore if dir or a subdirectory is missing.
func prepare(dir string, create bool) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return fmt.Errorf("%s does not exist: %w", dir, ErrNotStore)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// The administrator's link to the real directory: trusted if
		// its owner is, and the directory it points to is checked.
		if err := checkLink(dir, fi); err != nil {
			return err
		}
		if fi, err = os.Stat(dir); err != nil {
			return err
		}
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := checkOwner("directory", dir, fi); err != nil {
		return err
	}
	for _, sub := range []string{usersDir, locksDir} {
		path := filepath.Join(dir, sub)
		if create {
			if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		fi, err := os.Lstat(path)
		if !create && errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s has no %s subdirectory, which every store has: %w", dir, sub, ErrNotStore)
		}
		if err != nil {
			return err
		}
		if err := checkDir("directory", path, fi); err != nil {
			return err
		}
	}
	return nil
}

// writable returns an error for the write op of a read-only Store.
func (s *Store) writable(op string) error {
	if s.readOnly {
		return fmt.Errorf("filestore: %s: %w", op, ErrReadOnly)
	}
	return nil
}

// fileName returns the name of the file that holds name's record (name is a
// key or a user). It uses lower-case letters, digits and '-' only, so no
// name is special to any file system and none differ only in case.
func fileName(name string) string {
	if len(name) <= maxHexKey {
		return shortPrefix + hex.EncodeToString([]byte(name))
	}
	sum := sha256.Sum256([]byte(name))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// isRecordFile reports whether a directory entry name is a record file
// name, or an index entry name in a user directory.
func isRecordFile(name string) bool {
	return strings.HasPrefix(name, shortPrefix) || strings.HasPrefix(name, hashPrefix)
}

func expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !now.Before(expiresAt)
}

// newVersion returns a random version: versions then never repeat for a
// key, across deletes and across processes, without any shared counter.
func newVersion() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:]) // never fails
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

func notFound(op string) error {
	return fmt.Errorf("filestore: %s: %w", op, kvsession.ErrNotFound)
}

// fail wraps err for op. File names encode keys, and keys may be session
// IDs, which must never reach an error message: a path in err is replaced
// by the store's directory.
func (s *Store) fail(op string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = &fs.PathError{Op: pe.Op, Path: s.dir, Err: pe.Err}
	case errors.As(err, &le):
		err = &fs.PathError{Op: le.Op, Path: s.dir, Err: le.Err}
	}
	return fmt.Errorf("filestore: %s: %w", op, err)
}

// lock takes the lock that guards the file at rel, a slash-separated path
// relative to the store's directory, across goroutines and processes. It
// waits until the lock is free or ctx is done.
func (s *Store) lock(ctx context.Context, rel string) (unlock func(), err error) {
	h := fnv.New32a()
	io.WriteString(h, rel)
	i := h.Sum32() % numStripes
	// The in-process lock comes first: flock(2) locks belong to an open
	// file, and this keeps goroutines waiting here rather than in a
	// system call.
	select {
	case s.stripes[i] <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f, err := lockFile(ctx, filepath.Join(s.dir, locksDir, fmt.Sprintf("%02x", i)))
	if err != nil {
		<-s.stripes[i]
		return nil, err
	}
	return func() {
		f.Close() // releases the file lock
		<-s.stripes[i]
	}, nil
}

// writeAtomic replaces dir/name with data: it writes a temp file in dir,
// syncs it, renames it over dir/name and syncs dir. A reader sees the old
// content or the new, never a mix, and a crash leaves at worst a stray temp
// file.
func writeAtomic(dir, name string, data []byte) error {
	f, err := createTemp(dir, tempName)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return syncDir(dir)
}

// syncDir makes the renames and removals in dir durable. Windows cannot
// sync a directory, and needs not.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeFile removes dir/name and syncs dir. It reports whether the file
// existed.
func removeFile(dir, name string) (bool, error) {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, syncDir(dir)
}

// walkDir calls fn with the entries of dir, batchSize at a time, checking
// ctx before each batch.
func walkDir(ctx context.Context, dir string, fn func([]fs.DirEntry) error) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := f.ReadDir(batchSize)
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// load reads the live record under key, which the caller has locked for
// writing unless op is "get". A missing, corrupt or expired record gives an
// error wrapping ErrNotFound.
func (s *Store) load(op, key string) (record, error) {
	r, err := readRecord(filepath.Join(s.dir, fileName(key)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return record{}, notFound(op)
	case errors.Is(err, errCorrupt):
		return record{}, fmt.Errorf("filestore: %s: %w: %w", op, err, kvsession.ErrNotFound)
	case err != nil:
		return record{}, s.fail(op, err)
	case r.key != key: // a file copied or moved under another name
		return record{}, fmt.Errorf("filestore: %s: %w: the file holds another key: %w", op, errCorrupt, kvsession.ErrNotFound)
	case expired(r.expiresAt, s.now()):
		return record{}, notFound(op)
	}
	return r, nil
}

// put writes r under its key, which the caller has locked.
func (s *Store) put(r *record) error {
	data, err := r.encode()
	if err != nil {
		return err
	}
	return writeAtomic(s.dir, fileName(r.key), data)
}

// Get implements [kvsession.Store]. A file that does not parse reads as
// missing, with an error that says it is corrupt.
func (s *Store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := ctx.Err(); err != nil {
		return kvsession.Entry{}, fmt.Errorf("filestore: get: %w", err)
	}
	r, err := s.load("get", key)
	if err != nil {
		return kvsession.Entry{}, err
	}
	return kvsession.Entry{Value: r.value, ExpiresAt: r.expiresAt, Version: r.version}, nil
}

// Set implements [kvsession.Store].
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: set: %w", err)
	}
	if err := s.writable("set"); err != nil {
		return err
	}
	unlock, err := s.lock(ctx, fileName(key))
	if err != nil {
		return s.fail("set", err)
	}
	defer unlock()
	if err := s.put(&record{key: key, expiresAt: expiresAt, version: newVersion(), value: value}); err != nil {
		return s.fail("set", err)
	}
	return nil
}

// Delete implements [kvsession.Store]. The removal is durable when Delete
// returns: a crash cannot bring the record back.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: delete: %w", err)
	}
	if err := s.writable("delete"); err != nil {
		return err
	}
	name := fileName(key)
	unlock, err := s.lock(ctx, name)
	if err != nil {
		return s.fail("delete", err)
	}
	defer unlock()
	if _, err := removeFile(s.dir, name); err != nil {
		return s.fail("delete", err)
	}
	return nil
}

// CompareAndSwap implements [kvsession.Store]. It is atomic across
// processes on platforms with flock(2). On a version conflict it returns the
// record it read in a *kvsession.ConflictError.
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: compare and swap: %w", err)
	}
	if err := s.writable("compare and swap"); err != nil {
		return err
	}
	unlock, err := s.lock(ctx, fileName(key))
	if err != nil {
		return s.fail("compare and swap", err)
	}
	defer unlock()
	r, err := s.load("compare and swap", key)
	if err != nil {
		return err
	}
	if r.version != old {
		current := kvsession.Entry{Value: r.value, ExpiresAt: r.expiresAt, Version: r.version}
		return fmt.Errorf("filestore: compare and swap: %w", &kvsession.ConflictError{Current: current})
	}
	if err := s.put(&record{key: key, expiresAt: expiresAt, version: newVersion(), value: value}); err != nil {
		return s.fail("compare and swap", err)
	}
	return nil
}

// CompareAndDelete implements [kvsession.Store]. It is atomic
// across processes on platforms with flock(2).
func (s *Store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: compare and delete: %w", err)
	}
	if err := s.writable("compare and delete"); err != nil {
		return err
	}
	name := fileName(key)
	unlock, err := s.lock(ctx, name)
	if err != nil {
		return s.fail("compare and delete", err)
	}
	defer unlock()
	r, err := s.load("compare and delete", key)
	if err != nil {
		return err
	}
	if r.version != old {
		return fmt.Errorf("filestore: compare and delete: %w", kvsession.ErrConflict)
	}
	if _, err := removeFile(s.dir, name); err != nil {
		return s.fail("compare and delete", err)
	}
	return nil
}

// Touch implements [kvsession.Store]. It keeps the record's version, and
// rewrites its file (atomically, like every write). It is atomic across
// processes on platforms with flock(2).
func (s *Store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: touch: %w", err)
	}
	if err := s.writable("touch"); err != nil {
		return err
	}
	unlock, err := s.lock(ctx, fileName(key))
	if err != nil {
		return s.fail("touch", err)
	}
	defer unlock()
	r, err := s.load("touch", key)
	if err != nil {
		return err
	}
	r.expiresAt = expiresAt
	if err := s.put(&r); err != nil {
		return s.fail("touch", err)
	}
	return nil
}

// Keys implements [kvsession.Lister]. It reads the directory a batch at a
// time and holds no lock while it calls fn, so fn may call the store. It
// reports the key of every record file, expired or not, until
// [Store.DeleteExpired] removes it; a key longer than 100 bytes costs a read
// of its file's header.
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: keys: %w", err)
	}
	var fnErr error
	err := walkDir(ctx, s.dir, func(batch []fs.DirEntry) error {
		for _, e := range batch {
			key, ok, err := s.keyOf(e.Name())
			if err != nil {
				return err
			}
			if !ok || !strings.HasPrefix(key, prefix) {
				continue
			}
			if fnErr = fn(key); fnErr != nil {
				return fnErr
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return s.fail("keys", err)
	}
	return nil
}

// keyOf returns the key whose record is in the top-level file name, and
// false if name is not a readable record file.
func (s *Store) keyOf(name string) (string, bool, error) {
	var key string
	switch {
	case strings.HasPrefix(name, shortPrefix):
		b, err := hex.DecodeString(name[len(shortPrefix):])
		if err != nil {
			return "", false, nil
		}
		key = string(b)
	case strings.HasPrefix(name, hashPrefix):
		r, err := readHeader(filepath.Join(s.dir, name))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errCorrupt) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		key = r.key
	default:
		return "", false, nil
	}
	return key, fileName(key) == name, nil
}

// DeleteExpired implements [kvsession.ExpiredDeleter]. It reads the
// directory a batch at a time and takes each record's lock only to remove
// it, so writers are never held up for long. It removes the files that are
// expired or corrupt (counted in its result), temp files that writers left
// more than a minute ago by the real clock (not counted), and expired
// entries and empty directories of the user index (not counted). After
// each batch of 256 directory entries that removed records it reports the
// count so far to ctx's progress function ([kvsession.WithSweepProgress]).
// If ctx is done during the sweep, it returns how many records it removed
// so far.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("filestore: delete expired: %w", err)
	}
	if err := s.writable("delete expired"); err != nil {
		return 0, err
	}
	now := s.now()
	n, err := s.sweep(ctx, s.dir, "", now, readHeader, true)
	if err == nil {
		err = s.sweepUsers(ctx, now)
	}
	if err != nil {
		return n, s.fail("delete expired", err)
	}
	return n, nil
}

// sweepUsers sweeps every user directory and removes the empty ones.
func (s *Store) sweepUsers(ctx context.Context, now time.Time) error {
	users := filepath.Join(s.dir, usersDir)
	return walkDir(ctx, users, func(batch []fs.DirEntry) error {
		for _, e := range batch {
			if !e.IsDir() || !isRecordFile(e.Name()) {
				continue // a symbolic link is not a directory entry of type dir
			}
			if err := s.checkUserDir(filepath.Join(users, e.Name())); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return err
			}
			rel := usersDir + "/" + e.Name() + "/"
			if _, err := s.sweep(ctx, filepath.Join(users, e.Name()), rel, now, readRecord, false); err != nil {
				return err
			}
			// Fails, as it should, if the directory is not empty. A
			// concurrent AddUserKey recreates it if need be.
			os.Remove(filepath.Join(users, e.Name()))
		}
		return nil
	})
}

// sweep removes the dead record files and stale temp files in dir, whose
// path relative to the store's directory is rel (empty or ending in '/'),
// and returns how many record files it removed. It reads each file with
// read and syncs dir once per batch; with report, it then reports the count
// so far to ctx's progress function ([kvsession.WithSweepProgress]) if the
// batch removed records.
func (s *Store) sweep(ctx context.Context, dir, rel string, now time.Time, read func(string) (record, error), report bool) (int, error) {
	n := 0
	err := walkDir(ctx, dir, func(batch []fs.DirEntry) error {
		removed, before := false, n
		for _, e := range batch {
			name := e.Name()
			switch {
			case strings.HasPrefix(name, tempPrefix):
				if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
					if os.Remove(filepath.Join(dir, name)) == nil {
						removed = true
					}
				}
			case isRecordFile(name):
				dead, err := isDead(filepath.Join(dir, name), name, now, read)
				if err != nil {
					return err
				}
				if !dead {
					continue
				}
				ok, err := s.removeDead(ctx, dir, name, rel+name, now, read)
				if err != nil {
					return err
				}
				if ok {
					n++
					removed = true
				}
			}
		}
		if !removed {
			return nil
		}
		if err := syncDir(dir); err != nil {
			return err
		}
		if report && n > before {
			kvsession.ReportSweepProgress(ctx, n)
		}
		return nil
	})
	return n, err
}

// isDead reports whether the file at path, named name, holds a record that
// is expired or corrupt. A missing file is not dead: it is gone.
func isDead(path, name string, now time.Time, read func(string) (record, error)) (bool, error) {
	r, err := read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case errors.Is(err, errCorrupt):
		return true, nil
	case err != nil:
		return false, err
	}
	return fileName(r.key) != name || expired(r.expiresAt, now), nil
}

// removeDead removes dir/name if, under the lock for rel, it is still dead,
// and reports whether it did. The caller syncs dir.
func (s *Store) removeDead(ctx context.Context, dir, name, rel string, now time.Time, read func(string) (record, error)) (bool, error) {
	unlock, err := s.lock(ctx, rel)
	if err != nil {
		return false, err
	}
	defer unlock()
	path := filepath.Join(dir, name)
	dead, err := isDead(path, name, now, read)
	if err != nil || !dead {
		return false, err
	}
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// userDir returns the directory of user's index entries, relative to the
// store's directory and with a trailing '/', and as a file path.
func (s *Store) userDir(user string) (rel, dir string) {
	name := fileName(user)
	return usersDir + "/" + name + "/", filepath.Join(s.dir, usersDir, name)
}

// checkUserDir returns an error if the user index directory dir is not a
// directory (a symbolic link included) of this process's user, private to
// it: one wrapping fs.ErrNotExist if it is missing, and one wrapping
// ErrUnsafeDir if another user could have planted it.
func (s *Store) checkUserDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	return checkDir("a user index directory in", filepath.Join(s.dir, usersDir), fi)
}

// AddUserKey implements [kvsession.UserIndex].
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: add user key: %w", err)
	}
	if err := s.writable("add user key"); err != nil {
		return err
	}
	rel, dir := s.userDir(user)
	name := fileName(key)
	unlock, err := s.lock(ctx, rel+name)
	if err != nil {
		return s.fail("add user key", err)
	}
	defer unlock()
	if err := s.checkUserDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.fail("add user key", err)
	}
	old, err := readRecord(filepath.Join(dir, name))
	if err == nil && old.key == key && (old.expiresAt.IsZero() || (!expiresAt.IsZero() && old.expiresAt.After(expiresAt))) {
		return nil // keep the later expiry
	}
	data, err := (&record{key: key, expiresAt: expiresAt}).encode()
	if err != nil {
		return s.fail("add user key", err)
	}
	// DeleteExpired removes empty user directories; if it does so between
	// MkdirAll and the write, try again.
	for range 3 {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			if err = s.checkUserDir(dir); err == nil {
				err = writeAtomic(dir, name, data)
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return s.fail("add user key", err)
	}
	return nil
}

// UserKeys implements [kvsession.UserIndex]. It removes the expired entries
// it finds.
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("filestore: user keys: %w", err)
	}
	rel, dir := s.userDir(user)
	now := s.now()
	var keys []string
	removed := false
	err := s.checkUserDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no entries yet
	}
	if err != nil {
		return nil, s.fail("user keys", err)
	}
	err = walkDir(ctx, dir, func(batch []fs.DirEntry) error {
		for _, e := range batch {
			name := e.Name()
			if !isRecordFile(name) {
				continue
			}
			r, err := readRecord(filepath.Join(dir, name))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue
			case err == nil && fileName(r.key) == name && !expired(r.expiresAt, now):
				keys = append(keys, r.key)
				continue
			case err != nil && !errors.Is(err, errCorrupt):
				return err
			case s.readOnly:
				continue // leave the dead entry for a writer to remove
			}
			ok, err := s.removeDead(ctx, dir, name, rel+name, now, readRecord)
			if err != nil {
				return err
			}
			removed = removed || ok
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no entries yet
	}
	if err == nil && removed {
		err = syncDir(dir)
	}
	if err != nil {
		return nil, s.fail("user keys", err)
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex].
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: remove user key: %w", err)
	}
	if err := s.writable("remove user key"); err != nil {
		return err
	}
	rel, dir := s.userDir(user)
	name := fileName(key)
	unlock, err := s.lock(ctx, rel+name)
	if err != nil {
		return s.fail("remove user key", err)
	}
	defer unlock()
	err = s.checkUserDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		_, err = removeFile(dir, name)
	}
	if err != nil {
		return s.fail("remove user key", err)
	}
	return nil
}
