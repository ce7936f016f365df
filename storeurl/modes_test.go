package storeurl_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kvsession/kvsession/storeurl"
)

// TestFileModes checks that the files that the sqlite: and bolt: schemes
// create, which hold the session values, are readable by their owner
// only, whatever the umask lets through.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, which lets others read 0644 files
	defer syscall.Umask(old)
	dir := t.TempDir()
	for _, tt := range []struct {
		url   string
		files []string
	}{
		{"sqlite://" + filepath.Join(dir, "s.db"), []string{"s.db", "s.db-wal", "s.db-shm"}},
		{"bolt://" + filepath.Join(dir, "b.db"), []string{"b.db"}},
	} {
		t.Run(tt.url, func(t *testing.T) {
			s, c, err := storeurl.Open(t.Context(), tt.url, storeurl.Options{CreateSchema: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := s.Set(t.Context(), "k", []byte("secret session data"), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			for _, name := range tt.files { // the -wal and -shm files exist while the database is open
				fi, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if perm := fi.Mode().Perm(); perm != 0o600 {
					t.Errorf("%s has mode %04o, want 0600", name, perm)
				}
			}
		})
	}
}
