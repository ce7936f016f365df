package filestore_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/filestore"
	"github.com/kvsession/kvsession/storetest"
)

func newStore(t testing.TB, dir string, now func() time.Time) *filestore.Store {
	t.Helper()
	s, err := filestore.New(dir, &filestore.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sessionRounds keeps the kit's rounds of 50 writers on one session
// affordable: each write syncs a file and a directory, and writers of one
// key take turns.
const sessionRounds = 20

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
			return newStore(t, t.TempDir(), c.Now)
		},
		SessionRounds: sessionRounds,
		SweepProgress: true,
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) kvsession.Store { return newStore(b, b.TempDir(), nil) })
}

// requireFlock skips tests that share a directory between Stores on
// platforms without flock(2), where the package does not support it.
func requireFlock(t *testing.T) {
	switch runtime.GOOS {
	case "darwin", "dragonfly", "freebsd", "illumos", "linux", "netbsd", "openbsd":
	default:
		t.Skipf("no flock(2) on %s: a directory cannot be shared", runtime.GOOS)
	}
}

// recordFile returns the path of the record file of key in dir, as the
// package documentation lays it out.
func recordFile(dir, key string) string {
	return filepath.Join(dir, "k-"+hex.EncodeToString([]byte(key)))
}

func TestNewCreatesPrivateDirectory(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no Unix permission bits")
	}
	dir := filepath.Join(t.TempDir(), "a", "store")
	s := newStore(t, dir, nil)
	ctx := t.Context()
	later := time.Now().Add(time.Hour)
	for _, k := range []string{"short", strings.Repeat("long", 60)} {
		if err := s.Set(ctx, k, []byte("v"), later); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUserKey(ctx, "user", k, later); err != nil {
			t.Fatal(err)
		}
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = fs.ModeDir | 0o700
		} else {
			files++
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 { // two records, two index entries, lock files
		t.Errorf("found %d files, want at least 5", files)
	}
}

func TestNewNotADirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := filestore.New(path, nil); err == nil {
		t.Errorf("New on a regular file = %v, nil; want an error", s)
	}
}

// TestWeirdKeysStayInside writes every weird key as a record and as a user
// index entry, and checks that every file is inside the store's directory,
// with a name of lower-case letters, digits, '.' and '-' only, and that
// Keys reports each key, long ones included.
func TestWeirdKeysStayInside(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "store")
	now := time.Now()
	s := newStore(t, dir, func() time.Time { return now })
	ctx := t.Context()
	keys := append(slices.Clone(storetest.WeirdKeys), strings.Repeat("/..", 83), strings.Repeat("\x00", 250))
	for _, k := range keys {
		if err := s.Set(ctx, k, []byte(k), now.Add(time.Hour)); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
		if err := s.Touch(ctx, k, now.Add(2*time.Hour)); err != nil {
			t.Fatalf("Touch(%q): %v", k, err)
		}
		if err := s.AddUserKey(ctx, k, k, now.Add(time.Hour)); err != nil {
			t.Fatalf("AddUserKey(%q): %v", k, err)
		}
		if got, err := s.UserKeys(ctx, k); err != nil || !slices.Equal(got, []string{k}) {
			t.Errorf("UserKeys(%q) = %q, %v; want the key", k, got, err)
		}
	}
	var listed []string
	if err := s.Keys(ctx, "", func(k string) error {
		listed = append(listed, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(listed, want) {
		t.Errorf("Keys = %q, want %q", listed, want)
	}

	safe := regexp.MustCompile(`^[a-z0-9.-]+$`)
	err := filepath.WalkDir(parent, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == parent {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Errorf("%s is outside the store's directory %s", path, dir)
		} else if rel != "." && !safe.MatchString(d.Name()) {
			t.Errorf("file name %q has characters outside [a-z0-9.-]", d.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, k := range keys {
		e, err := s.Get(ctx, k)
		if err != nil || string(e.Value) != k {
			t.Errorf("Get(%q) = %q, %v; want the key as value", k, e.Value, err)
			continue
		}
		if err := s.CompareAndDelete(ctx, k, e.Version); err != nil {
			t.Errorf("CompareAndDelete(%q): %v", k, err)
		}
		if err := s.RemoveUserKey(ctx, k, k); err != nil {
			t.Errorf("RemoveUserKey(%q): %v", k, err)
		}
	}
}

// corruptions damage a valid record file in ways a crash, a disk or a
// person could.
var corruptions = []struct {
	name string
	fn   func([]byte) []byte
}{
	{"empty", func([]byte) []byte { return nil }},
	{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
	{"header only", func(b []byte) []byte { return b[:20] }},
	{"extended", func(b []byte) []byte { return append(b, 0) }},
	{"flipped value bit", func(b []byte) []byte { b[len(b)-6] ^= 1; return b }},
	{"flipped checksum bit", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
	{"wrong magic", func(b []byte) []byte { b[0] = 'X'; return b }},
	{"future format", func(b []byte) []byte { b[4] = 99; return b }},
	{"huge value length", func(b []byte) []byte { copy(b[28:36], "\xff\xff\xff\xff\xff\xff\xff\xf0"); return b }},
	{"garbage", func(b []byte) []byte { return bytes.Repeat([]byte{0xa5}, len(b)) }},
}

func TestCorruptRecordReadsAsMissing(t *testing.T) {
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newStore(t, dir, nil)
			ctx := t.Context()
			const key = "session"
			if err := s.Set(ctx, key, []byte("some value"), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			path := recordFile(dir, key)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, c.fn(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if e, err := s.Get(ctx, key); !errors.Is(err, kvsession.ErrNotFound) || !errors.Is(err, kvsession.ErrCorrupt) {
				t.Errorf("Get = %q, %v; want an error wrapping ErrNotFound and ErrCorrupt", e.Value, err)
			}
			var keys []string
			if err := s.Keys(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil || !slices.Equal(keys, []string{key}) {
				t.Errorf("Keys = %q, %v; want the corrupt record's key, so that tools report it", keys, err)
			}
			if err := s.CompareAndSwap(ctx, key, []byte("x"), time.Time{}, 0); !errors.Is(err, kvsession.ErrNotFound) {
				t.Errorf("CompareAndSwap = %v, want ErrNotFound", err)
			}
			if err := s.Touch(ctx, key, time.Time{}); !errors.Is(err, kvsession.ErrNotFound) {
				t.Errorf("Touch = %v, want ErrNotFound", err)
			}
			if err := s.Keys(ctx, "", func(string) error { return nil }); err != nil {
				t.Errorf("Keys: %v", err)
			}
			if _, err := s.DeleteExpired(ctx); err != nil {
				t.Errorf("DeleteExpired: %v", err)
			}
			if err := s.Set(ctx, key, []byte("new"), time.Time{}); err != nil {
				t.Fatal(err)
			}
			if e, err := s.Get(ctx, key); err != nil || string(e.Value) != "new" {
				t.Errorf("Get after Set over a corrupt file = %q, %v; want %q", e.Value, err, "new")
			}
		})
	}
}

// TestDeleteExpiredRemovesCorruptHeaders checks that a sweep removes a file
// whose header does not parse, and counts it.
func TestDeleteExpiredRemovesCorruptHeaders(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, nil)
	if err := s.Set(t.Context(), "k", []byte("value"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(recordFile(dir, "k"), 10); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpired(t.Context())
	if err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(recordFile(dir, "k")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("corrupt file still there after DeleteExpired: %v", err)
	}
}

func FuzzCorruptRecord(f *testing.F) {
	dir := f.TempDir()
	s := newStore(f, dir, nil)
	if err := s.Set(f.Context(), "k", []byte("value"), time.Now().Add(time.Hour)); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(recordFile(dir, "k"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, c := range corruptions {
		f.Add(c.fn(slices.Clone(valid)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(recordFile(dir, "k"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(t.Context(), "k"); err != nil && !errors.Is(err, kvsession.ErrNotFound) {
			t.Errorf("Get = %v, want nil or ErrNotFound", err)
		}
		if err := s.Keys(t.Context(), "", func(string) error { return nil }); err != nil {
			t.Errorf("Keys: %v", err)
		}
		if _, err := s.DeleteExpired(t.Context()); err != nil {
			t.Errorf("DeleteExpired: %v", err)
		}
	})
}

func TestDeleteExpiredRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, nil)
	ctx := t.Context()
	if err := s.AddUserKey(ctx, "ada", "k", time.Time{}); err != nil {
		t.Fatal(err)
	}
	userDir := filepath.Join(dir, "users", "k-616461")
	old := time.Now().Add(-2 * time.Minute)
	stale := []string{filepath.Join(dir, ".tmp-123"), filepath.Join(userDir, ".tmp-456")}
	fresh := []string{filepath.Join(dir, ".tmp-789"), filepath.Join(userDir, ".tmp-012")}
	for _, p := range append(slices.Clone(stale), fresh...) {
		if err := os.WriteFile(p, []byte("half a record"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range stale {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteExpired(ctx)
	if err != nil || n != 0 {
		t.Errorf("DeleteExpired = %d, %v; want 0 records removed", n, err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temp file %s not removed: %v", p, err)
		}
	}
	for _, p := range fresh {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("fresh temp file %s, which a writer may still be writing, was removed: %v", p, err)
		}
	}
}

func TestUserIndexCleanup(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newStore(t, dir, clock)
	ctx := t.Context()
	for _, u := range []string{"ada", "bob"} {
		if err := s.AddUserKey(ctx, u, "k1", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if keys, err := s.UserKeys(ctx, "ada"); err != nil || len(keys) != 0 {
		t.Errorf("UserKeys after expiry = %q, %v; want none", keys, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "users", "k-616461", "k-6b31")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("UserKeys left the expired entry in place: %v", err)
	}
	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	users, err := os.ReadDir(filepath.Join(dir, "users"))
	if err != nil || len(users) != 0 {
		t.Errorf("users/ after DeleteExpired holds %v, %v; want it empty", users, err)
	}
	// The user directory comes back when needed.
	if err := s.AddUserKey(ctx, "ada", "k2", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.UserKeys(ctx, "ada"); err != nil || !slices.Equal(keys, []string{"k2"}) {
		t.Errorf("UserKeys = %q, %v; want [k2]", keys, err)
	}
}

func TestVersionsNeverRepeat(t *testing.T) {
	dir := t.TempDir()
	stores := []*filestore.Store{newStore(t, dir, nil), newStore(t, dir, nil)}
	ctx := t.Context()
	seen := map[uint64]bool{}
	for i := range 100 {
		s := stores[i%2]
		if err := s.Set(ctx, "k", []byte("same"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		e, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if e.Version == 0 || seen[e.Version] {
			t.Fatalf("write %d got version %d, zero or seen before", i, e.Version)
		}
		seen[e.Version] = true
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
}

// increment adds one to the counter under key with read, compare-and-swap,
// retry.
func increment(s *filestore.Store, t testing.TB, key string) error {
	for range 10000 {
		e, err := s.Get(t.Context(), key)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(e.Value))
		if err != nil {
			return err
		}
		err = s.CompareAndSwap(t.Context(), key, strconv.AppendInt(nil, int64(n+1), 10), e.ExpiresAt, e.Version)
		if !errors.Is(err, kvsession.ErrConflict) {
			return err
		}
	}
	return errors.New("no progress after 10000 conflicts")
}

// incrementAll runs workers goroutines that each increment the counter n
// times, alternating between stores.
func incrementAll(t testing.TB, stores []*filestore.Store, key string, workers, n int) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range n {
				if err := increment(stores[(w+i)%len(stores)], t, key); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func wantCounter(t *testing.T, s *filestore.Store, key string, want int) {
	t.Helper()
	e, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) != strconv.Itoa(want) {
		t.Errorf("counter = %s after %d increments: updates were lost", e.Value, want)
	}
}

// TestTwoStoresNoLostUpdates shares one directory between two Stores, as
// two processes would, and increments a counter from both while a third
// goroutine keeps touching it: no increment may be lost, not even to a
// Touch that writes back the value it read.
func TestTwoStoresNoLostUpdates(t *testing.T) {
	requireFlock(t)
	dir := t.TempDir()
	a, b := newStore(t, dir, nil), newStore(t, dir, nil)
	const key, workers, n = "counter", 8, 15
	if err := a.Set(t.Context(), key, []byte("0"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := b.Touch(t.Context(), key, time.Now().Add(time.Hour)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	incrementAll(t, []*filestore.Store{a, b}, key, workers, n)
	close(done)
	wg.Wait()
	wantCounter(t, a, key, workers*n)
}

const childDirEnv = "FILESTORE_TEST_CHILD_DIR"

// TestTwoProcessesNoLostUpdates runs this test binary a second time as a
// child process, and both processes increment one counter in one
// directory.
func TestTwoProcessesNoLostUpdates(t *testing.T) {
	const key, workers, n = "counter", 4, 25
	if dir := os.Getenv(childDirEnv); dir != "" {
		// The child: say it is ready, wait for the go, increment.
		s := newStore(t, dir, nil)
		ready := filepath.Join(filepath.Dir(dir), "child-ready")
		if err := os.WriteFile(ready, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for s.Touch(t.Context(), key, time.Time{}) != nil {
			time.Sleep(time.Millisecond)
		}
		incrementAll(t, []*filestore.Store{s}, key, workers, n)
		return
	}
	requireFlock(t)
	if testing.Short() {
		t.Skip("starts a second process")
	}
	dir := filepath.Join(t.TempDir(), "store")
	s := newStore(t, dir, nil)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestTwoProcessesNoLostUpdates$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "child-ready")); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// The child starts when the counter exists.
	if err := s.Set(t.Context(), key, []byte("0"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	incrementAll(t, []*filestore.Store{s}, key, workers, n)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out.Bytes())
	}
	wantCounter(t, s, key, 2*workers*n)
}

// listTree returns every path under dir, for checking that nothing changed.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		paths = append(paths, path+" "+info.ModTime().String()+" "+strconv.FormatInt(info.Size(), 10))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// TestReadOnlyRefusesNonStores checks that a read-only Store refuses a
// directory that is not a store, with a clear error, and creates nothing.
func TestReadOnlyRefusesNonStores(t *testing.T) {
	parent := t.TempDir()
	plain := filepath.Join(parent, "plain")
	if err := os.Mkdir(plain, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, parent)
	for _, dir := range []string{plain, filepath.Join(parent, "missing")} {
		s, err := filestore.New(dir, &filestore.Options{ReadOnly: true})
		if !errors.Is(err, filestore.ErrNotStore) || s != nil {
			t.Errorf("New(%s, ReadOnly) = %v, %v; want an error wrapping ErrNotStore", dir, s, err)
		}
	}
	if after := listTree(t, parent); !slices.Equal(before, after) {
		t.Errorf("a read-only open changed the file system:\nbefore %q\nafter  %q", before, after)
	}
}

// TestReadOnly checks that a read-only Store reads a store's records and
// index, refuses every write, and changes no file, not even to drop
// expired index entries.
func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	w := newStore(t, dir, clock)
	ctx := t.Context()
	if err := w.Set(ctx, "live", []byte("v"), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := w.Set(ctx, "old", []byte("v"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddUserKey(ctx, "u", "live", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddUserKey(ctx, "u", "old", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, dir)
	later := func() time.Time { return now.Add(2 * time.Minute) }
	r, err := filestore.New(dir, &filestore.Options{ReadOnly: true, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := r.Get(ctx, "live"); err != nil || string(e.Value) != "v" {
		t.Errorf("Get = %q, %v", e.Value, err)
	}
	if keys, err := r.UserKeys(ctx, "u"); err != nil || !slices.Equal(keys, []string{"live"}) {
		t.Errorf("UserKeys = %q, %v; want [live]", keys, err)
	}
	var keys []string
	if err := r.Keys(ctx, "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"live", "old"}) {
		t.Errorf("Keys = %q, want the expired record too", keys)
	}
	for name, err := range map[string]error{
		"Set":              r.Set(ctx, "k", []byte("v"), time.Time{}),
		"Delete":           r.Delete(ctx, "live"),
		"CompareAndSwap":   r.CompareAndSwap(ctx, "live", []byte("x"), time.Time{}, 1),
		"CompareAndDelete": r.CompareAndDelete(ctx, "live", 1),
		"Touch":            r.Touch(ctx, "live", time.Time{}),
		"AddUserKey":       r.AddUserKey(ctx, "u", "k", time.Time{}),
		"RemoveUserKey":    r.RemoveUserKey(ctx, "u", "live"),
	} {
		if !errors.Is(err, filestore.ErrReadOnly) {
			t.Errorf("%s on a read-only store = %v, want an error wrapping ErrReadOnly", name, err)
		}
	}
	if n, err := r.DeleteExpired(ctx); !errors.Is(err, filestore.ErrReadOnly) || n != 0 {
		t.Errorf("DeleteExpired on a read-only store = %d, %v; want an error wrapping ErrReadOnly", n, err)
	}
	if after := listTree(t, dir); !slices.Equal(before, after) {
		t.Errorf("a read-only store changed files:\nbefore %q\nafter  %q", before, after)
	}
}
