package main

import (
	"context"
	"flag"
	"fmt"
)

var revokeCommand = &command{
	name:    "revoke",
	args:    "-user U [-key-prefix P] [-no-store-ttl] [-json] -store URL",
	summary: "delete every session of a user: log them out everywhere",
	help: `
Revoke deletes every session of user U, found through the store's user
index: the user is logged out of every device at once, on every instance
of the application.

It also writes the user's revocation mark, which ends any session of the
user written meanwhile; the mark expires with the sessions it concerns.
With -no-store-ttl (the application sets kvsession.Config.NoStoreTTL) the
mark, like the sessions, carries its deadline only in its value, for
cleanup to remove.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
		noStoreTTLFlag(fs, common, "write the revocation mark without a store TTL")
		user := fs.String("user", "", "the `user` whose sessions to delete (required)")
		return func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if *user == "" {
				return usagef("missing -user")
			}
			return c.revoke(ctx, common, *user)
		}
	},
}

func (c *cli) revoke(ctx context.Context, f *commonFlags, user string) error {
	o, err := c.open(ctx, f, false)
	if err != nil {
		return err
	}
	defer o.Close()
	n, err := o.admin.RevokeUser(ctx, user, false)
	if f.json && err == nil {
		return writeJSON(c.stdout, map[string]any{"user": user, "revoked": n})
	}
	if n > 0 || err == nil {
		fmt.Fprintf(c.stdout, "revoked %s of user %q\n", plural(n, "session"), user)
	}
	return err
}
