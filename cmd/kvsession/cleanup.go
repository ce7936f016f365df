package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/storeurl"
)

var cleanupCommand = &command{
	name:    "cleanup",
	args:    "[-dry-run] [-key-prefix P] [-no-store-ttl] [-json] -store URL",
	summary: "delete expired sessions from stores that keep them",
	help: `
Cleanup deletes the expired records of stores whose engine does not drop
them by itself (file, bolt, sqlite, postgres, mysql), in batches, and prints
how many it deleted; the sweep covers the whole store, whatever the key
prefix. Applications usually run the same sweep now and then
(kvsession.Admin.CleanupEvery). Redis and memcached expire records by
themselves: there is nothing to do, and cleanup says so.

With -no-store-ttl, for an application that sets kvsession.Config.NoStoreTTL
(its records carry no store TTL), cleanup instead walks the records under
-key-prefix and deletes each one that its own deadlines say has expired,
on every store that can list its keys, Redis included (memcached cannot
be walked: it evicts what it must).

Before deleting, cleanup walks the records under -key-prefix to count the
expired ones (the total its progress reports) and the corrupt ones, which
a sweep may leave: delete removes them.

With -dry-run it deletes nothing and changes nothing: it opens the store
read-only, walks the records under -key-prefix and counts, exactly, the
expired sessions and revocation marks (what a real run deletes, for an
application alone in its store) and, apart, the corrupt records.

A long run reports its progress on standard error every few seconds: the
records read while counting, then the records deleted so far, of the
expired ones found. A store's own sweep (without -no-store-ttl) reports
its count only when done.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
		noStoreTTLFlag(fs, common, "walk the records and delete the expired ones, on every store that can list them")
		dryRun := fs.Bool("dry-run", false, "count the expired records without deleting them")
		return func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return c.cleanup(ctx, common, *dryRun)
		}
	},
}

// cleanupJSON is what cleanup -json prints.
type cleanupJSON struct {
	DryRun          bool  `json:"dry_run"`
	Needed          bool  `json:"needed"`                   // false: the store expires records by itself
	Deleted         int   `json:"deleted"`                  // not in a dry run
	Listed          int64 `json:"listed,omitempty"`         // records walked under the key prefix
	Expired         int64 `json:"expired"`                  // expired sessions and marks found by the walk
	ExpiredSessions int64 `json:"expired_sessions"`         // of which sessions
	ExpiredMarks    int64 `json:"expired_revocation_marks"` // of which revocation marks
	Corrupt         int64 `json:"corrupt"`                  // records that do not decode
}

// countingStore counts the records that CompareAndDelete removes: the
// deletes of the Admin's walking cleanup, for its progress. It lists (the
// walk needs it) and hides the store's own sweep, which the walk replaces.
type countingStore struct {
	kvsession.Store
	kvsession.Lister
	deleted atomic.Int64
}

func (s *countingStore) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	err := s.Store.CompareAndDelete(ctx, key, old)
	if err == nil {
		s.deleted.Add(1)
	}
	return err
}

func (c *cli) cleanup(ctx context.Context, f *commonFlags, dryRun bool) error {
	o, err := c.open(ctx, f, dryRun)
	if err != nil {
		return err
	}
	defer o.Close()
	store := storeurl.Redact(f.store)
	_, sweeps := o.store.(kvsession.ExpiredDeleter)
	lister, lists := o.store.(kvsession.Lister)
	walks := lists && (f.noStoreTTL || !sweeps) // the Admin walks and deletes, one record at a time
	if !sweeps && !f.noStoreTTL {
		if f.json {
			return writeJSON(c.stdout, cleanupJSON{DryRun: dryRun})
		}
		fmt.Fprintf(c.stdout, "nothing to do: %s expires records by itself\n", store)
		return nil
	}
	if f.noStoreTTL && !lists {
		return fmt.Errorf("this store cannot list its keys, so expired records without a store TTL stay until it evicts them: %w", errors.ErrUnsupported)
	}
	out := cleanupJSON{DryRun: dryRun, Needed: true}
	var n walkCounts
	var expired atomic.Int64 // the total of the deletes' progress
	if lists || dryRun {
		label := "cleanup: counting"
		if dryRun {
			label = "cleanup -dry-run"
		}
		p := c.startProgress(label, counted(&n.read, nil, "records read"))
		err := o.walk(ctx, &n, nil)
		p.end()
		if err != nil {
			return err
		}
		out.Listed = n.read.Load()
		out.ExpiredSessions, out.ExpiredMarks, out.Corrupt = n.expired, n.markExp, n.corrupt
		out.Expired = n.expired + n.markExp
		expired.Store(out.Expired)
	}
	if dryRun {
		if f.json {
			return writeJSON(c.stdout, out)
		}
		fmt.Fprintf(c.stdout, "dry run: %s (%s, %s) of %d listed under key prefix %q in %s; nothing deleted\n",
			plural(int(out.Expired), "expired record"), plural(int(n.expired), "session"), plural(int(n.markExp), "revocation mark"),
			out.Listed, f.keyPrefix, store)
		c.reportCorrupt(n.corrupt, f.keyPrefix)
		return nil
	}

	admin := o.admin
	var status func() string
	if walks {
		counting := &countingStore{Store: o.store, Lister: lister}
		if admin, err = c.newAdmin(counting, f, false); err != nil {
			return err
		}
		status = counted(&counting.deleted, &expired, "expired records deleted")
	} else {
		status = func() string {
			return fmt.Sprintf("the store deletes the %d expired records found in batches and reports the count when done", expired.Load())
		}
	}
	p := c.startProgress("cleanup: deleting", status)
	deleted, err := admin.Cleanup(ctx)
	p.end()
	if err != nil {
		if deleted > 0 {
			fmt.Fprintf(c.stdout, "deleted %s before the error\n", plural(deleted, "expired record"))
		}
		return err
	}
	out.Deleted = deleted
	if f.json {
		return writeJSON(c.stdout, out)
	}
	fmt.Fprintf(c.stdout, "deleted %s from %s\n", plural(deleted, "expired record"), store)
	c.reportCorrupt(n.corrupt, f.keyPrefix)
	return nil
}

// reportCorrupt says how many corrupt records a walk met, if any.
func (c *cli) reportCorrupt(n int64, keyPrefix string) {
	if n > 0 {
		fmt.Fprintf(c.stdout, "%s under key prefix %q: they do not decode (list -corrupt names them, delete removes them)\n",
			plural(int(n), "corrupt record"), keyPrefix)
	}
}
