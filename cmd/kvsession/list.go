package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/kvsession/kvsession"
)

var listCommand = &command{
	name:    "list",
	args:    "[-user U [-prune]] [-corrupt] [-key-prefix P] [-json] -store URL",
	summary: "list the sessions in a store, or those of one user",
	help: `
List prints the live sessions of the store: their ID, user, creation, last
activity, expiry and user agent, oldest first. With -user it lists only
that user's sessions, through the store's user index (every store has one);
otherwise it walks the whole store, which memcached cannot do.

"Last seen" is the last change to the session or its last idle refresh,
and "expires" the sooner of its absolute and idle deadlines: both come from
the record itself.

List changes nothing: with -user it leaves the index entries of sessions
that have ended in place, unless -prune asks it to remove them.

With -corrupt it lists instead the records under the key prefix that do not
decode (the application treats them as missing), by ID and store key, for
delete.

With -json it prints a JSON array, in no particular order without -user,
streaming as it walks the store.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
		user := fs.String("user", "", "list only the sessions of this `user`")
		prune := fs.Bool("prune", false, "with -user, remove the index entries of sessions that have ended (a write)")
		corrupt := fs.Bool("corrupt", false, "list the corrupt records instead of the sessions")
		fs.Duration("idle-timeout", 0, "deprecated and ignored: records carry their idle deadline")
		return func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if *prune && *user == "" {
				return usagef("-prune needs -user")
			}
			if *corrupt && *user != "" {
				return usagef("-corrupt walks the whole store: it does not go with -user")
			}
			return c.list(ctx, common, *user, *prune, *corrupt)
		}
	},
}

// corruptJSON is a corrupt record as list -corrupt -json prints it.
type corruptJSON struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

func (c *cli) list(ctx context.Context, f *commonFlags, user string, prune, corrupt bool) error {
	o, err := c.open(ctx, f, !prune)
	if err != nil {
		return err
	}
	defer o.Close()
	if corrupt {
		return c.listCorrupt(ctx, f, o)
	}

	var infos []kvsession.SessionInfo
	if user != "" {
		infos, err = o.admin.UserSessions(ctx, user)
		if err != nil {
			return err
		}
	} else {
		if _, ok := o.store.(kvsession.Lister); !ok {
			return fmt.Errorf("this store cannot list its keys; list the sessions of one user with -user: %w", errors.ErrUnsupported)
		}
		var out *jsonArray
		if f.json {
			out = &jsonArray{w: c.stdout}
		}
		var n walkCounts
		err = o.walk(ctx, &n, func(in kvsession.SessionInfo, _ kvsession.Entry) error {
			if out != nil {
				return out.add(c.toJSON(in))
			}
			infos = append(infos, in)
			return nil
		})
		if out != nil {
			return errors.Join(err, out.close())
		}
		if err != nil {
			return err
		}
		slices.SortFunc(infos, func(a, b kvsession.SessionInfo) int { return a.Created.Compare(b.Created) })
		defer func() {
			if n.corrupt > 0 {
				fmt.Fprintf(c.stderr, "kvsession list: %s not shown (list -corrupt names them)\n", plural(int(n.corrupt), "corrupt record"))
			}
		}()
	}

	if f.json {
		list := make([]sessionJSON, 0, len(infos))
		for _, in := range infos {
			list = append(list, c.toJSON(in))
		}
		return writeJSON(c.stdout, list)
	}
	if len(infos) == 0 {
		if user != "" {
			fmt.Fprintf(c.stdout, "no sessions of user %q\n", user)
		} else {
			fmt.Fprintln(c.stdout, "no sessions")
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tUSER\tCREATED\tLAST SEEN\tEXPIRES\tUSER AGENT")
	for _, in := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.LogID, orDash(shorten(in.User, 24)),
			c.stamp(in.Created), c.stamp(in.LastSeen), c.stamp(in.ExpiresAt), orDash(shorten(in.UserAgent, 48)))
	}
	return tw.Flush()
}

// listCorrupt prints the records under the key prefix that do not decode.
func (c *cli) listCorrupt(ctx context.Context, f *commonFlags, o *opened) error {
	if _, ok := o.store.(kvsession.Lister); !ok {
		return fmt.Errorf("this store cannot list its keys: %w", errors.ErrUnsupported)
	}
	var found []corruptJSON
	err := o.admin.Walk(ctx, func(key string, _ kvsession.Entry, in kvsession.SessionInfo, err error) error {
		switch {
		case errors.Is(err, kvsession.ErrCorrupt):
			found = append(found, corruptJSON{ID: in.LogID, Key: key})
		case err != nil && !errors.Is(err, kvsession.ErrNotFound):
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if f.json {
		if found == nil {
			found = []corruptJSON{}
		}
		return writeJSON(c.stdout, found)
	}
	if len(found) == 0 {
		fmt.Fprintln(c.stdout, "no corrupt records")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tSTORE KEY")
	for _, r := range found {
		fmt.Fprintf(tw, "%s\t%s\n", orDash(r.ID), r.Key)
	}
	return tw.Flush()
}

// jsonArray writes a JSON array one element at a time.
type jsonArray struct {
	w io.Writer
	n int
}

func (a *jsonArray) add(v any) error {
	sep := ",\n"
	if a.n == 0 {
		sep = "[\n"
	}
	a.n++
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.w, "%s  %s", sep, b)
	return err
}

func (a *jsonArray) close() error {
	end := "\n]\n"
	if a.n == 0 {
		end = "[]\n"
	}
	_, err := fmt.Fprint(a.w, end)
	return err
}
