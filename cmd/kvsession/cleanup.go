package main

import (
	"context"
	"flag"
	"fmt"
	"sync/atomic"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/storeurl"
)

var cleanupCommand = &command{
	name:    "cleanup",
	args:    "[-dry-run] [-prefix P] [-json] -store URL",
	summary: "delete expired sessions from stores that keep them",
	help: `
Cleanup deletes the expired records of stores whose engine does not drop
them by itself (file, bolt, sqlite, postgres, mysql), in batches, and prints
how many it deleted; the sweep covers the whole store, whatever the key
prefix. Applications usually run the same sweep now and then
(kvsession.Admin.CleanupEvery). Redis and memcached expire records by
themselves: there is nothing to do, and cleanup says so.

Before the sweep, cleanup walks the records under -prefix to count the
expired ones (the total its progress reports) and the corrupt ones, which
a sweep may leave: delete removes them.

With -dry-run it deletes nothing and changes nothing: it opens the store
read-only, walks the records under -prefix and counts, exactly, the expired
sessions and revocation marks (what a real run deletes, for an application
alone in its store) and, apart, the corrupt records.

A long run reports its progress on standard error every few seconds.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
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
	Listed          int64 `json:"listed,omitempty"`         // records walked under the prefix
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
	if _, ok := o.store.(kvsession.ExpiredDeleter); !ok {
		if f.json {
			return writeJSON(c.stdout, cleanupJSON{DryRun: dryRun})
		}
		fmt.Fprintf(c.stdout, "nothing to do: %s expires records by itself\n", store)
		return nil
	}
	out := cleanupJSON{DryRun: dryRun, Needed: true}
	var n walkCounts
	var expired atomic.Int64 // for the progress of the sweep
	if _, lists := o.store.(kvsession.Lister); lists || dryRun {
		label := "cleanup: counting"
		if dryRun {
			label = "cleanup -dry-run"
		}
		p := c.startProgress(label, func() string {
			return fmt.Sprintf("%d records read", n.read.Load())
		})
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
		fmt.Fprintf(c.stdout, "dry run: %s (%s, %s) of %d listed under prefix %q in %s; nothing deleted\n",
			plural(int(out.Expired), "expired record"), plural(int(n.expired), "session"), plural(int(n.markExp), "revocation mark"),
			out.Listed, f.prefix, store)
		c.reportCorrupt(n.corrupt, f.prefix)
		return nil
	}

	p := c.startProgress("cleanup: sweeping", func() string {
		if t := expired.Load(); t > 0 {
			return fmt.Sprintf("deleting the %d expired records found (the store reports the count when done)", t)
		}
		return "the store reports the count when done"
	})
	deleted, err := o.admin.Cleanup(ctx)
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
	c.reportCorrupt(n.corrupt, f.prefix)
	return nil
}

// reportCorrupt says how many corrupt records a walk met, if any.
func (c *cli) reportCorrupt(n int64, prefix string) {
	if n > 0 {
		fmt.Fprintf(c.stdout, "%s under prefix %q: they do not decode (list -corrupt names them, delete removes them)\n",
			plural(int(n), "corrupt record"), prefix)
	}
}
