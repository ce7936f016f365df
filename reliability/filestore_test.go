package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/filestore"
)

// The writer process of TestFileStoreKilledWriters is this test binary,
// run again with writerDirEnv naming the store's directory.
const writerDirEnv = "KVSESSION_RELIABILITY_FILESTORE_DIR"

// The records the writers write. Stable records are only ever replaced
// (Set, CompareAndSwap), so once written they must always read as a valid
// value; churn records are also deleted, so they may read as missing.
var (
	stableKeys = []string{"stable-0", "stable-1", "stable-2", "stable-3", "stable-4", "stable-5"}
	churnKeys  = []string{"churn-0", "churn-1"}
)

// makeValue returns a self-checking value for key: the key, a separator,
// n copies of one byte, and a CRC-32 of all that. Large values keep a
// writer inside its write for a while, so that kills land there.
func makeValue(rng *rand.Rand, key string) []byte {
	n := 1 + rng.IntN(256<<10)
	b := make([]byte, 0, len(key)+1+n+4)
	b = append(b, key...)
	b = append(b, '|')
	b = append(b, bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, n)...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// checkValue reports what is wrong with a value read under key, or "".
func checkValue(key string, v []byte) string {
	head := key + "|"
	if len(v) < len(head)+1+4 || string(v[:len(head)]) != head {
		return fmt.Sprintf("%d bytes that do not start with %q", len(v), head)
	}
	body, sum := v[:len(v)-4], v[len(v)-4:]
	if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(sum) {
		return fmt.Sprintf("%d bytes with a wrong checksum", len(v))
	}
	fill := body[len(head):]
	if bytes.Count(fill, fill[:1]) != len(fill) {
		return fmt.Sprintf("%d bytes mixing two values", len(v))
	}
	return ""
}

// runWriter is the writer process: two goroutines replace the records
// with new values, through Set and through Get plus CompareAndSwap, and
// delete the churn records now and then, printing a line per finished
// operation, until killed (or, should the parent be gone, for a minute).
func runWriter(dir string) {
	s, err := filestore.New(dir, nil)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	done := func(op string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, op)
		out.Flush()
	}
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(g)))
			ctx := context.Background()
			for time.Now().Before(deadline) {
				keys := stableKeys
				if rng.IntN(4) == 0 {
					keys = churnKeys
				}
				key := keys[rng.IntN(len(keys))]
				v := makeValue(rng, key)
				switch n := rng.IntN(10); {
				case n < 4:
					if err := s.Set(ctx, key, v, time.Time{}); err != nil {
						done("error set: " + err.Error())
						continue
					}
					done("set")
				case n < 9 || !strings.HasPrefix(key, "churn"):
					e, err := s.Get(ctx, key)
					if errors.Is(err, kvsession.ErrNotFound) {
						continue
					}
					if err != nil {
						done("error get: " + err.Error())
						continue
					}
					err = s.CompareAndSwap(ctx, key, v, time.Time{}, e.Version)
					if err != nil && !errors.Is(err, kvsession.ErrConflict) && !errors.Is(err, kvsession.ErrNotFound) {
						done("error cas: " + err.Error())
						continue
					}
					done("cas")
				default:
					if err := s.Delete(ctx, key); err != nil {
						done("error delete: " + err.Error())
						continue
					}
					done("delete")
				}
			}
		})
	}
	wg.Wait()
}

// TestFileStoreKilledWriters SIGKILLs a writer process at a random point
// of its work, over and over (30 times, or 20 seconds), and after each
// kill reads every record: each is a complete, valid value (or, for the
// records the writer also deletes, missing), never torn, never another
// record's, never "corrupt". A killed writer leaves at worst stray temp
// files; DeleteExpired leaves those alone while they are recent (a writer
// may still be writing them) and removes them once they are older than a
// minute, judged by their modification time, which the test sets back
// rather than waiting.
func TestFileStoreKilledWriters(t *testing.T) {
	if dir := os.Getenv(writerDirEnv); dir != "" {
		runWriter(dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "store")
	s, err := filestore.New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
	for _, k := range append(append([]string(nil), stableKeys...), churnKeys...) {
		if err := s.Set(ctx, k, makeValue(rng, k), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	checkAll := func(when string) {
		t.Helper()
		for _, k := range append(append([]string(nil), stableKeys...), churnKeys...) {
			e, err := s.Get(ctx, k)
			switch {
			case err == nil:
				if what := checkValue(k, e.Value); what != "" {
					t.Errorf("%s: %s reads as %s", when, k, what)
				}
			case errors.Is(err, kvsession.ErrNotFound) && strings.HasPrefix(k, "churn") && !strings.Contains(err.Error(), "corrupt"):
				// deleted by the writer
			default:
				t.Errorf("%s: Get(%s) = %v, want a valid value", when, k, err)
			}
		}
	}
	tempFiles := func() []string {
		names, err := filepath.Glob(filepath.Join(dir, ".tmp-*"))
		if err != nil {
			t.Fatal(err)
		}
		return names
	}

	const maxIterations = 30
	deadline := time.Now().Add(20 * time.Second)
	iterations, ops := 0, 0
	var strays []int
	for iterations < maxIterations && time.Now().Before(deadline) && !t.Failed() {
		iterations++
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileStoreKilledWriters$", "-test.count=1")
		cmd.Env = append(os.Environ(), writerDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Wait for the writer's first finished operation (so a kill lands
		// in its work, not in its start-up, and the locks that the last
		// writer held when it died have been released), then kill it at a
		// random point.
		select {
		case line, ok := <-lines:
			if !ok || strings.HasPrefix(line, "error") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("iteration %d: the writer failed: %q", iterations, line)
			}
			ops++
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("iteration %d: the writer finished no operation in 15s", iterations)
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		cmd.Process.Kill()
		for line := range lines {
			if strings.HasPrefix(line, "error") {
				t.Errorf("iteration %d: the writer: %s", iterations, line)
			}
			ops++
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		checkAll(fmt.Sprintf("after kill %d", iterations))
		strays = append(strays, len(tempFiles()))
	}

	// Stray temp files: kept while recent, removed once a minute old.
	left := tempFiles()
	if _, err := s.DeleteExpired(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(tempFiles()); n != len(left) {
		t.Errorf("DeleteExpired removed %d recent temp files, which a live writer could still be writing", len(left)-n)
	}
	old := time.Now().Add(-2 * time.Minute)
	for _, name := range left {
		if err := os.Chtimes(name, old, old); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := s.DeleteExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tempFiles()); n != 0 {
		t.Errorf("%d stray temp files left after DeleteExpired, all older than a minute", n)
	}
	if removed != 0 {
		t.Errorf("DeleteExpired removed %d records, none of which had expired", removed)
	}
	checkAll("after DeleteExpired")
	if len(left) == 0 {
		t.Logf("no kill left a stray temp file this time, so their removal went unchecked")
	}
	t.Logf("%d writer processes killed after %d finished operations in all; every record read whole after every kill", iterations, ops)
	t.Logf("stray temp files after each kill: %v; %d left at the end, all removed by DeleteExpired once older than a minute", strays, len(left))
}
