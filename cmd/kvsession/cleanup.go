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
	args:    "[-dry-run] [-json] -store URL",
	summary: "delete expired sessions from stores that keep them",
	help: `
Cleanup deletes the expired records of stores whose engine does not drop
them by itself (file, bolt, sqlite, postgres, mysql), in batches, and prints
how many it deleted; it sweeps the whole store, whatever the key prefix.
Applications usually run the same sweep now and then
(kvsession.Manager.CleanupEvery). Redis and memcached expire records by
themselves: there is nothing to do, and cleanup says so.

With -dry-run it deletes nothing: it opens the store read-only, walks it and
counts the records that have expired but are still there. Most stores leave
expired records out of a walk, so the count can be lower than what a real
run deletes; the file store shows them all.

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

func (c *cli) cleanup(ctx context.Context, f *commonFlags, dryRun bool) error {
	o, err := c.open(ctx, f, dryRun, 0)
	if err != nil {
		return err
	}
	defer o.Close()
	store := storeurl.Redact(f.store)
	if _, ok := o.store.(kvsession.ExpiredDeleter); !ok {
		if f.json {
			return writeJSON(c.stdout, map[string]any{"deleted": 0, "dry_run": dryRun, "needed": false})
		}
		fmt.Fprintf(c.stdout, "nothing to do: %s expires records by itself\n", store)
		return nil
	}
	if !dryRun {
		p := c.startProgress("cleanup", nil, "")
		n, err := o.m.Cleanup(ctx)
		p.end()
		if err != nil {
			if n > 0 {
				fmt.Fprintf(c.stdout, "deleted %s before the error\n", plural(n, "expired record"))
			}
			return err
		}
		if f.json {
			return writeJSON(c.stdout, map[string]any{"deleted": n, "dry_run": false, "needed": true})
		}
		fmt.Fprintf(c.stdout, "deleted %s from %s\n", plural(n, "expired record"), store)
		return nil
	}

	lister, ok := o.store.(kvsession.Lister)
	if !ok {
		return fmt.Errorf("this store cannot list its keys, so a dry run cannot count its expired records: %w", errors.ErrUnsupported)
	}
	var listed, expired atomic.Int64
	p := c.startProgress("cleanup -dry-run", &listed, "records listed")
	err = lister.Keys(ctx, "", func(key string) error {
		listed.Add(1)
		_, err := o.store.Get(ctx, key)
		if errors.Is(err, kvsession.ErrNotFound) {
			expired.Add(1)
			return nil
		}
		return err
	})
	p.end()
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(c.stdout, map[string]any{"expired": expired.Load(), "listed": listed.Load(), "dry_run": true, "needed": true})
	}
	fmt.Fprintf(c.stdout, "dry run: %s of %d listed in %s; nothing deleted\n",
		plural(int(expired.Load()), "expired record"), listed.Load(), store)
	return nil
}
