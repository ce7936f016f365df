package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kvsession/kvsession"
)

var statsCommand = &command{
	name:    "stats",
	args:    "[-prefix P] [-json] -store URL",
	summary: "count the sessions, their bytes, and those about to expire",
	help: `
Stats walks the sessions of the store (those under -prefix) and prints how
many are live, how many bytes their records take, and how many expire
within the hour. Sessions that expired but are still in the store (waiting
for cleanup) are counted apart. Memcached cannot be walked.

A long run reports its progress on standard error every few seconds.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
		return func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return c.stats(ctx, common)
		}
	},
}

// statsJSON is what stats -json prints.
type statsJSON struct {
	Sessions       int64 `json:"sessions"`
	Bytes          int64 `json:"bytes"`
	ExpiringWithin int64 `json:"expiring_within_1h"`
	ExpiredUnswept int64 `json:"expired_unswept"`
}

func (c *cli) stats(ctx context.Context, f *commonFlags) error {
	o, err := c.open(ctx, f, true, 0)
	if err != nil {
		return err
	}
	defer o.Close()
	lister, ok := o.store.(kvsession.Lister)
	if !ok {
		return fmt.Errorf("this store cannot list its keys: %w", errors.ErrUnsupported)
	}
	var s statsJSON
	var listed atomic.Int64
	seen := map[string]bool{} // Redis SCAN may report a key twice
	soon := time.Now().Add(time.Hour)
	p := c.startProgress("stats", &listed, "sessions read")
	err = lister.Keys(ctx, f.prefix, func(key string) error {
		if seen[key] {
			return nil
		}
		seen[key] = true
		if !o.m.IsSessionKey(key) {
			return nil // a revocation mark, not a session
		}
		listed.Add(1)
		e, err := o.store.Get(ctx, key)
		if errors.Is(err, kvsession.ErrNotFound) {
			s.ExpiredUnswept++
			return nil
		}
		if err != nil {
			return err
		}
		s.Sessions++
		s.Bytes += int64(len(e.Value))
		if !e.ExpiresAt.IsZero() && e.ExpiresAt.Before(soon) {
			s.ExpiringWithin++
		}
		return nil
	})
	p.end()
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(c.stdout, s)
	}
	for _, row := range []struct {
		label string
		n     int64
	}{
		{"sessions", s.Sessions},
		{"bytes", s.Bytes},
		{"expiring within 1h", s.ExpiringWithin},
		{"expired, not yet cleaned up", s.ExpiredUnswept},
	} {
		fmt.Fprintf(c.stdout, "%-28s %12d\n", row.label, row.n)
	}
	return nil
}
