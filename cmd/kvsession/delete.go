package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
)

var deleteCommand = &command{
	name:    "delete",
	args:    "[-key-prefix P] [-json] -store URL SESSION...",
	summary: "delete sessions: their cookies are worthless from then on",
	help: `
Delete deletes each SESSION from the store (and from its user's index), at
once: the next request that presents its cookie, on any instance of the
application, gets a new empty session. SESSION is the ID that list shows,
or enough of its start to be unique, or the full store key.

A SESSION that does not exist is an error (exit status 1), after the others
are deleted. A corrupt record (list -corrupt names them) is deleted like a
session.`,
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
	for _, arg := range args {
		if err := checkSessionArg(f.keyPrefix, arg); err != nil {
			return err
		}
	}
	o, err := c.open(ctx, f, false)
	if err != nil {
		return err
	}
	defer o.Close()
	var done []deleted
	var errs []error
	for _, arg := range args {
		d, err := c.deleteOne(ctx, f, o, arg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, d)
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

// deleteOne deletes the session, or corrupt record, that arg names.
func (c *cli) deleteOne(ctx context.Context, f *commonFlags, o *opened, arg string) (deleted, error) {
	key, err := o.resolve(ctx, f.keyPrefix, arg)
	if err != nil {
		return deleted{}, err
	}
	in, err := o.info(ctx, key, arg)
	corrupt := errors.Is(err, errCorruptRecord)
	if err != nil && !corrupt {
		return deleted{}, err
	}
	if err := o.admin.Revoke(ctx, key); err != nil {
		return deleted{}, err
	}
	d := deleted{ID: in.LogID, Key: key, User: in.User}
	if !f.json {
		if corrupt {
			fmt.Fprintf(c.stdout, "deleted corrupt record %s\n", key)
		} else {
			fmt.Fprintf(c.stdout, "deleted session %s (user %s)\n", in.LogID, orDash(in.User))
		}
	}
	return d, nil
}
