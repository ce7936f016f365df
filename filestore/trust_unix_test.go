//go:build unix

package filestore_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/filestore"
)

// requireRoot skips a test that needs root (to give a file to another
// user), unless under CI, where it fails: CI must run it.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, to chown a directory to nobody")
	}
	t.Skip("not root: cannot chown a directory to nobody")
}

// nobody returns the uid and gid of the user nobody.
func nobody(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("look up nobody: %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return uid, gid
}

// privateDir returns the path of a directory for a store, created by New
// (so with mode 0700 whatever the umask), and the store.
func privateDir(t *testing.T) (string, *filestore.Store) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	return dir, newStore(t, dir, nil)
}

// wantUnsafe checks that New refuses dir with an error that wraps
// ErrUnsafeDir and names the directory, its owner and its mode.
func wantUnsafe(t *testing.T, dir, bad string) (msg string) {
	t.Helper()
	_, err := filestore.New(dir, nil)
	if err == nil {
		t.Fatalf("New on a store whose %s is unsafe succeeded; want an error", bad)
	}
	if !errors.Is(err, filestore.ErrUnsafeDir) {
		t.Errorf("New: %v; want an error wrapping ErrUnsafeDir", err)
	}
	msg = err.Error()
	if !strings.Contains(msg, bad) || !strings.Contains(msg, "uid") {
		t.Errorf("New: %q; want the path %s and its owner named", msg, bad)
	}
	return msg
}

func TestNewRefusesDirectoryOfAnotherUser(t *testing.T) {
	requireRoot(t)
	uid, gid := nobody(t)
	for _, sub := range []string{"", "users", "locks"} {
		t.Run("store/"+sub, func(t *testing.T) {
			dir, _ := privateDir(t)
			bad := filepath.Join(dir, sub)
			if err := os.Chown(bad, uid, gid); err != nil {
				t.Fatal(err)
			}
			if msg := wantUnsafe(t, dir, bad); !strings.Contains(msg, "uid "+strconv.Itoa(uid)) {
				t.Errorf("New: %q; want the owner's uid %d", msg, uid)
			}
		})
	}
	t.Run("symlink owned by nobody", func(t *testing.T) {
		target, _ := privateDir(t)
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(link, uid, gid); err != nil {
			t.Fatal(err)
		}
		wantUnsafe(t, link, link)
	})
}

func TestNewRefusesWritableDirectory(t *testing.T) {
	for _, sub := range []string{"", "users", "locks"} {
		for _, mode := range []fs.FileMode{0o777, 0o770, 0o702, 0o1777} {
			t.Run(fmt.Sprintf("%s/%o", sub, mode), func(t *testing.T) {
				dir, _ := privateDir(t)
				bad := filepath.Join(dir, sub)
				if err := os.Chmod(bad, mode); err != nil {
					t.Fatal(err)
				}
				wantUnsafe(t, dir, bad)
			})
		}
	}
	t.Run("fresh 0777", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "store")
		if err := os.Mkdir(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil { // whatever the umask
			t.Fatal(err)
		}
		wantUnsafe(t, dir, dir)
		if _, err := os.Stat(filepath.Join(dir, "locks")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("New created locks/ in a directory it refused: %v", err)
		}
	})
}

func TestNewRefusesSymlinkedSubdirectory(t *testing.T) {
	for _, sub := range []string{"users", "locks"} {
		t.Run(sub, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			outside := filepath.Join(t.TempDir(), "outside")
			for _, d := range []string{dir, outside} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(outside, filepath.Join(dir, sub)); err != nil {
				t.Fatal(err)
			}
			wantUnsafe(t, dir, filepath.Join(dir, sub))
			wantEmpty(t, outside)
		})
	}
}

// TestNewAcceptsItsOwnDirectories checks the legitimate cases: a directory
// an earlier run created, one the user created with mode 0755, and a
// symbolic link the user made to a private directory.
func TestNewAcceptsItsOwnDirectories(t *testing.T) {
	dir, s := privateDir(t)
	if err := s.Set(t.Context(), "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	again := newStore(t, dir, nil)
	if e, err := again.Get(t.Context(), "k"); err != nil || string(e.Value) != "v" {
		t.Errorf("Get on a reopened store = %q, %v; want \"v\"", e.Value, err)
	}
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	newStore(t, open, nil)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	viaLink := newStore(t, link, nil)
	if e, err := viaLink.Get(t.Context(), "k"); err != nil || string(e.Value) != "v" {
		t.Errorf("Get through a symlinked store directory = %q, %v; want \"v\"", e.Value, err)
	}
}

// wantEmpty checks that nothing was created in dir.
func wantEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("the store created %s outside its directory", filepath.Join(dir, e.Name()))
	}
}

// wantUnchanged checks that the file at path still holds want.
func wantUnchanged(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the store wrote through a symlink: %s holds %q, want %q", path, got, want)
	}
}

// forged returns the file content of a valid record of key with value,
// written by a store in a directory of its own: what a local attacker
// would plant.
func forged(t *testing.T, key, value string) (path string, content []byte, version uint64) {
	t.Helper()
	dir, s := privateDir(t)
	if err := s.Set(t.Context(), key, []byte(value), time.Time{}); err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	path = recordFile(dir, key)
	content, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, content, e.Version
}

// TestSymlinkedRecordIsNotFollowed plants a symlink at a record's path,
// pointing at a forged record: the store must neither take it for the
// record (that would hand the attacker's session to the victim) nor write
// through it.
func TestSymlinkedRecordIsNotFollowed(t *testing.T) {
	ctx := t.Context()
	later := time.Now().Add(time.Hour)
	ops := []struct {
		name string
		op   func(t *testing.T, s *filestore.Store, version uint64) error
	}{
		{"Get", func(t *testing.T, s *filestore.Store, _ uint64) error {
			e, err := s.Get(ctx, "k")
			if err == nil {
				t.Errorf("Get read %q through the symlink", e.Value)
			} else if !errors.Is(err, kvsession.ErrNotFound) {
				t.Errorf("Get: %v; want an error wrapping ErrNotFound", err)
			}
			return err
		}},
		{"CompareAndSwap", func(_ *testing.T, s *filestore.Store, v uint64) error {
			return s.CompareAndSwap(ctx, "k", []byte("x"), later, v)
		}},
		{"CompareAndDelete", func(_ *testing.T, s *filestore.Store, v uint64) error { return s.CompareAndDelete(ctx, "k", v) }},
		{"Touch", func(_ *testing.T, s *filestore.Store, _ uint64) error { return s.Touch(ctx, "k", later) }},
	}
	plant := func(t *testing.T) (s *filestore.Store, target string, content []byte, version uint64) {
		dir, s := privateDir(t)
		target, content, version = forged(t, "k", "forged")
		if err := os.Symlink(target, recordFile(dir, "k")); err != nil {
			t.Fatal(err)
		}
		return s, target, content, version
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			s, target, content, version := plant(t)
			if err := tc.op(t, s, version); err == nil {
				t.Errorf("%s on a symlinked record = nil, want an error", tc.name)
			}
			wantUnchanged(t, target, content)
		})
	}
	t.Run("Set", func(t *testing.T) {
		// Set replaces the link itself (a rename never follows one).
		s, target, content, _ := plant(t)
		if err := s.Set(ctx, "k", []byte("mine"), later); err != nil {
			t.Fatal(err)
		}
		wantUnchanged(t, target, content)
		if e, err := s.Get(ctx, "k"); err != nil || string(e.Value) != "mine" {
			t.Errorf("Get after Set = %q, %v; want \"mine\"", e.Value, err)
		}
	})
	t.Run("DeleteExpired", func(t *testing.T) {
		s, target, content, _ := plant(t)
		if n, err := s.DeleteExpired(ctx); err != nil || n != 1 {
			t.Errorf("DeleteExpired = %d, %v; want the link removed as a corrupt record", n, err)
		}
		wantUnchanged(t, target, content)
	})
}

// TestSymlinkedLockIsNotFollowed plants symlinks at every lock file path,
// some dangling (the store would create their targets) and some at an
// existing file.
func TestSymlinkedLockIsNotFollowed(t *testing.T) {
	ctx := t.Context()
	dir, s := privateDir(t)
	outside := t.TempDir()
	existing := filepath.Join(outside, "existing")
	content := []byte("keep me")
	if err := os.WriteFile(existing, content, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 256 {
		target := filepath.Join(outside, fmt.Sprintf("created-%02x", i))
		if i%2 == 1 {
			target = existing
		}
		if err := os.Symlink(target, filepath.Join(dir, "locks", fmt.Sprintf("%02x", i))); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(time.Hour)
	for _, key := range []string{"a", "b", "c", "d"} {
		if err := s.Set(ctx, key, []byte("v"), later); err == nil {
			t.Errorf("Set(%q) with a symlinked lock file = nil, want an error", key)
		}
		if err := s.AddUserKey(ctx, "ada", key, later); err == nil {
			t.Errorf("AddUserKey(%q) with a symlinked lock file = nil, want an error", key)
		}
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		for _, e := range entries {
			if e.Name() != "existing" {
				t.Errorf("the store created %s through a symlinked lock file", e.Name())
			}
		}
	}
	wantUnchanged(t, existing, content)

	// Once the links are gone, the store works again.
	for i := range 256 {
		if err := os.Remove(filepath.Join(dir, "locks", fmt.Sprintf("%02x", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "a", []byte("v"), later); err != nil {
		t.Errorf("Set after the links are removed: %v", err)
	}
	if e, err := s.Get(ctx, "a"); err != nil || string(e.Value) != "v" {
		t.Errorf("Get = %q, %v; want \"v\"", e.Value, err)
	}
}

// userPath returns the path of user's index directory in dir.
func userPath(dir, user string) string {
	return filepath.Join(dir, "users", "k-"+hex.EncodeToString([]byte(user)))
}

// TestSymlinkedUserDirectoryIsNotFollowed plants a user's index directory
// as a symlink to a directory elsewhere, holding a forged entry.
func TestSymlinkedUserDirectoryIsNotFollowed(t *testing.T) {
	ctx := t.Context()
	later := time.Now().Add(time.Hour)
	dir, s := privateDir(t)
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	// A forged entry, as another store would write it, and an expired
	// one that a sweep through the link would delete.
	src, other := privateDir(t)
	if err := other.AddUserKey(ctx, "ada", "forged", later); err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(userPath(src, "ada"), "k-"+hex.EncodeToString([]byte("forged")))
	content, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(outside, filepath.Base(entry))
	if err := os.WriteFile(planted, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, userPath(dir, "ada")); err != nil {
		t.Fatal(err)
	}

	if err := s.AddUserKey(ctx, "ada", "mine", later); err == nil {
		t.Error("AddUserKey into a symlinked user directory = nil, want an error")
	}
	if keys, err := s.UserKeys(ctx, "ada"); err == nil {
		t.Errorf("UserKeys of a symlinked user directory = %q, nil; want an error", keys)
	}
	if err := s.RemoveUserKey(ctx, "ada", "forged"); err == nil {
		t.Error("RemoveUserKey in a symlinked user directory = nil, want an error")
	}
	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Errorf("DeleteExpired: %v", err) // it skips what is not a directory
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(planted) {
		t.Errorf("the directory behind the link holds %v, want only the planted entry", entries)
	}
	wantUnchanged(t, planted, content)

	// Other users are unaffected.
	if err := s.AddUserKey(ctx, "bob", "k", later); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.UserKeys(ctx, "bob"); err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Errorf("UserKeys(bob) = %q, %v; want [k]", keys, err)
	}
}

// TestSymlinkedUserEntryIsNotFollowed plants one index entry as a symlink
// to a forged entry: UserKeys must not report the forged key.
func TestSymlinkedUserEntryIsNotFollowed(t *testing.T) {
	ctx := t.Context()
	later := time.Now().Add(time.Hour)
	dir, s := privateDir(t)
	if err := s.AddUserKey(ctx, "ada", "real", later); err != nil {
		t.Fatal(err)
	}
	src, other := privateDir(t)
	if err := other.AddUserKey(ctx, "ada", "forged", later); err != nil {
		t.Fatal(err)
	}
	name := "k-" + hex.EncodeToString([]byte("forged"))
	target := filepath.Join(userPath(src, "ada"), name)
	content, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(userPath(dir, "ada"), name)); err != nil {
		t.Fatal(err)
	}
	keys, err := s.UserKeys(ctx, "ada")
	if err != nil || len(keys) != 1 || keys[0] != "real" {
		t.Errorf("UserKeys = %q, %v; want only [real]", keys, err)
	}
	if err := s.AddUserKey(ctx, "ada", "forged", later); err != nil {
		t.Errorf("AddUserKey over a symlinked entry: %v", err)
	}
	wantUnchanged(t, target, content)
}
