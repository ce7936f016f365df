package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/kvsession/kvsession"
)

var deleteCommand = &command{
	name:    "delete",
	args:    "[-prefix P] [-json] -store URL SESSION...",
	summary: "delete sessions: their cookies are worthless from then on",
	help: `
Delete deletes each SESSION from the store (and from its user's index), at
once: the next request that presents its cookie, on any instance of the
application, gets a new empty session. SESSION is the ID that list shows,
or enough of its start to be unique, or the full store key.

A SESSION that does not exist is an error (exit status 1), after the others
are deleted.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
		return func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return usagef("want at least one SESSION")
			}
			return c.delete(ctx, common, args)
		}
	},
}

// deleted is one line of delete -json.
type deleted struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	User string `json:"user"`
}

func (c *cli) delete(ctx context.Context, f *commonFlags, args []string) error {
	o, err := c.open(ctx, f, false, 0)
	if err != nil {
		return err
	}
	defer o.Close()
	var done []deleted
	var errs []error
	for _, arg := range args {
		key, err := o.resolve(ctx, f.prefix, arg)
		if err == nil {
			var in kvsession.SessionInfo
			if in, err = o.info(ctx, key, arg); err == nil {
				if err = o.m.Revoke(ctx, key); err == nil {
					done = append(done, deleted{ID: in.LogID, Key: key, User: in.User})
					if !f.json {
						fmt.Fprintf(c.stdout, "deleted session %s (user %s)\n", in.LogID, orDash(in.User))
					}
					continue
				}
			}
		}
		errs = append(errs, err)
	}
	if f.json {
		if done == nil {
			done = []deleted{}
		}
		if err := writeJSON(c.stdout, done); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
