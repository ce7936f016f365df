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
expired ones found. A store's own sweep (without -no-store-ttl) counts
after each batch, and covers the whole store: it may delete more than
the walk found under -key-prefix.`,
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

func (c *cli) cleanup(ctx context.Context, f *commonFlags, dryRun bool) error {
	o, err := c.open(ctx, f, dryRun)
	if err != nil {
		return err
	}
	defer o.Close()
	store := storeurl.Redact(f.store)
	_, sweeps := o.store.(kvsession.ExpiredDeleter)
	_, lists := o.store.(kvsession.Lister)
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

	// The Admin's walk reports after each record it deletes, the store's
	// sweep after each batch.
	var sofar atomic.Int64
	status := counted(&sofar, &expired, "expired records deleted")
	if !walks {
		status = sweepStatus(&sofar, &expired, lists, f.keyPrefix)
	}
	p := c.startProgress("cleanup: deleting", status)
	deleted, err := o.admin.Cleanup(kvsession.WithSweepProgress(ctx, func(n int) { sofar.Store(int64(n)) }))
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

// sweepStatus is the progress status of a store's sweep: the records
// deleted so far and, if the walk counted them, the expired ones found
// under the key prefix, which the sweep of the whole store may exceed.
func sweepStatus(deleted, found *atomic.Int64, walked bool, keyPrefix string) func() string {
	return func() string {
		s := plural(int(deleted.Load()), "expired record") + " deleted so far"
		if walked {
			s += fmt.Sprintf(" (%d found under key prefix %q)", found.Load(), keyPrefix)
		}
		return s
	}
}

// reportCorrupt says how many corrupt records a walk met, if any.
func (c *cli) reportCorrupt(n int64, keyPrefix string) {
	if n > 0 {
		fmt.Fprintf(c.stdout, "%s under key prefix %q: they do not decode (list -corrupt names them, delete removes them)\n",
			plural(int(n), "corrupt record"), keyPrefix)
	}
}
