//go:build unix

package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestTempFileIsNotFollowed plants symbolic links at the name of a temp
// file, one dangling (the store would create its target) and one at an
// existing file (it would overwrite it): createTemp opens neither.
func TestTempFileIsNotFollowed(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	existing := filepath.Join(outside, "existing")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{filepath.Join(outside, "created"), existing} {
		name := tempPrefix + "1"
		link := filepath.Join(dir, name)
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		f, err := createTemp(dir, func() string { return name })
		if err == nil {
			f.Close()
			t.Errorf("createTemp over a symlink to %s = nil error, want one", target)
		}
		if _, err := os.Lstat(filepath.Join(outside, "created")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("createTemp created the target of a planted symlink: %v", err)
		}
		if b, err := os.ReadFile(existing); err != nil || string(b) != "keep me" {
			t.Errorf("the target of a planted symlink holds %q, %v; want it unchanged", b, err)
		}
	}
	// The next fresh name works.
	names := []string{tempPrefix + "1", tempPrefix + "2"}
	f, err := createTemp(dir, func() string { n := names[0]; names = names[1:]; return n })
	if err != nil {
		t.Fatalf("createTemp with a free name: %v", err)
	}
	defer f.Close()
	if got := filepath.Base(f.Name()); got != tempPrefix+"2" {
		t.Errorf("createTemp made %s, want %s2", got, tempPrefix)
	}
}
