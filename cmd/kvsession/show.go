package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/kvsession/kvsession"
)

var showCommand = &command{
	name:    "show",
	args:    "[-key-prefix P] [-json] -store URL SESSION",
	summary: "show one session's metadata and values",
	help: `
Show prints what the store holds about one session: its user, creation,
last activity, expiry (the sooner of its absolute and idle deadlines, from
the record itself), whether its cookie is permanent, its user agent and
remote address (if the application records it), the size of its record,
and its values, each as the JSON it is stored as. SESSION is the ID that
list shows, or enough of its start to be unique, or the session's full
store key; IDs may start with "-", so put such a one after "--". A session
that has expired, or whose record is corrupt, is an error that says so.
Show changes nothing.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
		fs.Duration("idle-timeout", 0, "deprecated and ignored: records carry their idle deadline")
		return func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usagef("want one SESSION, got %d arguments", len(args))
			}
			return c.show(ctx, common, args[0])
		}
	},
}

func (c *cli) show(ctx context.Context, f *commonFlags, arg string) error {
	if err := checkSessionArg(f.keyPrefix, arg); err != nil {
		return err
	}
	o, err := c.open(ctx, f, true)
	if err != nil {
		return err
	}
	defer o.Close()
	key, err := o.resolve(ctx, f.keyPrefix, arg)
	if err != nil {
		return err
	}
	in, err := o.info(ctx, key, arg)
	if err != nil {
		return err
	}
	size := 0
	if e, err := o.store.Get(ctx, key); err == nil {
		size = len(e.Value)
	} else if !errors.Is(err, kvsession.ErrNotFound) {
		return err
	}
	values, err := o.admin.Values(ctx, key)
	if err != nil {
		return sessionErr(err, arg) // gone or expired since Info
	}

	if f.json {
		j := c.toJSON(in)
		j.Bytes = size
		j.Values = values
		return writeJSON(c.stdout, j)
	}
	permanent := "no (a browser-session cookie)"
	if in.Permanent {
		permanent = "yes"
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	for _, row := range [][2]string{
		{"session", in.LogID},
		{"store key", in.Key},
		{"user", orDash(in.User)},
		{"created", c.stamp(in.Created)},
		{"last seen", c.stamp(in.LastSeen)},
		{"expires", c.stamp(in.ExpiresAt)},
		{"permanent", permanent},
		{"user agent", orDash(in.UserAgent)},
		{"remote addr", orDash(in.RemoteAddr)},
		{"size", fmt.Sprintf("%d bytes", size)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	names := slices.Sorted(maps.Keys(values))
	if len(names) == 0 {
		fmt.Fprintf(tw, "values\t-\n")
	}
	for i, name := range names {
		label := ""
		if i == 0 {
			label = "values"
		}
		fmt.Fprintf(tw, "%s\t%s = %s\n", label, name, shorten(string(values[name]), 200))
	}
	return tw.Flush()
}
