package memstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
			return memstore.New(&memstore.Options{Now: c.Now})
		},
		SweepProgress: true,
	})
}

// TestConformanceColliding runs the conformance kit on a Store whose keys
// share four hashes: lookups, deletes, expiry and eviction must find each
// record in its chain.
func TestConformanceColliding(t *testing.T) {
	storetest.Run(t, storetest.Harness{NewStore: func(t *testing.T, c *storetest.Clock) kvsession.Store {
		return memstore.NewColliding(&memstore.Options{Now: c.Now})
	}})
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(*testing.B) kvsession.Store { return memstore.New(nil) })
}

// TestExpiredMemoryIsReclaimed checks that expired records do not pile up
// when nobody calls DeleteExpired: writes sweep them.
func TestExpiredMemoryIsReclaimed(t *testing.T) {
	now := time.Now()
	s := memstore.New(&memstore.Options{Now: func() time.Time { return now }})
	for round := range 20 {
		for i := range 1000 {
			key := fmt.Sprintf("r%d-%d", round, i)
			if err := s.Set(t.Context(), key, []byte("v"), now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(2 * time.Minute) // every record written so far expires
	}
	if n := s.Len(); n > 3000 {
		t.Errorf("after 20000 writes of records that all expired, %d are still held; want at most 3000", n)
	}
}
