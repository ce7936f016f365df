package memstore_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kvsession/kvsession/memstore"
)

// benchLive is the number of records a populated benchmark store holds.
const benchLive = 100_000

// populated returns a store holding benchLive records of 200 bytes, with
// expiries spread over the hour after the next one, and their keys.
func populated(b *testing.B, opts *memstore.Options) (*memstore.Store, []string, time.Time) {
	now := time.Now()
	s := memstore.New(opts)
	keys := make([]string, benchLive)
	value := bytes.Repeat([]byte("v"), 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%08d-padded-to-the-length-of-a-session-key", i)
		if err := s.Set(b.Context(), keys[i], value, now.Add(time.Hour+time.Duration(i)*time.Millisecond*36)); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys, now
}

// BenchmarkPopulated measures the hot paths of a store that holds 100,000
// records: a read, a conditional write that pushes the expiry later (a
// modifying request), an idle refresh, and the insertion of a new record
// (a new session), which is where a bound evicts.
func BenchmarkPopulated(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 200)
	b.Run("Get", func(b *testing.B) {
		s, keys, _ := populated(b, nil)
		i := 0
		for b.Loop() {
			if _, err := s.Get(b.Context(), keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i += 7919
		}
	})
	b.Run("GetCompareAndSwap", func(b *testing.B) {
		s, keys, now := populated(b, nil)
		i := 0
		for b.Loop() {
			k := keys[i%len(keys)]
			e, err := s.Get(b.Context(), k)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.CompareAndSwap(b.Context(), k, value, now.Add(2*time.Hour+time.Duration(i)), e.Version); err != nil {
				b.Fatal(err)
			}
			i += 7919
		}
	})
	b.Run("Touch", func(b *testing.B) {
		s, keys, now := populated(b, nil)
		i := 0
		for b.Loop() {
			if err := s.Touch(b.Context(), keys[i%len(keys)], now.Add(2*time.Hour+time.Duration(i))); err != nil {
				b.Fatal(err)
			}
			i += 7919
		}
	})
	b.Run("SetNew", func(b *testing.B) {
		s, _, now := populated(b, nil)
		i := 0
		for b.Loop() {
			if err := s.Set(b.Context(), fmt.Sprintf("new-%010d", i), value, now.Add(2*time.Hour+time.Duration(i))); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
