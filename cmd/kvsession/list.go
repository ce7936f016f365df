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
	"time"

	"github.com/kvsession/kvsession"
)

var listCommand = &command{
	name:    "list",
	args:    "[-user U] [-prefix P] [-idle-timeout D] [-json] -store URL",
	summary: "list the sessions in a store, or those of one user",
	help: `
List prints the live sessions of the store: their ID, user, creation, last
activity, expiry and user agent, oldest first. With -user it lists only
that user's sessions, through the store's user index (every store has one);
otherwise it walks the whole store, which memcached cannot do.

"Last seen" is the last change to the session, or its last idle refresh if
-idle-timeout gives the application's kvsession.Config.IdleTimeout.

With -json it prints a JSON array, in no particular order without -user,
streaming as it walks the store.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
		user := fs.String("user", "", "list only the sessions of this `user`")
		idle := fs.Duration("idle-timeout", 0, "the application's idle timeout, for \"last seen\" (kvsession.Config.IdleTimeout)")
		return func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return c.list(ctx, common, *user, *idle)
		}
	},
}

func (c *cli) list(ctx context.Context, f *commonFlags, user string, idle time.Duration) error {
	o, err := c.open(ctx, f, true, idle)
	if err != nil {
		return err
	}
	defer o.Close()

	var infos []kvsession.SessionInfo
	if user != "" {
		infos, err = o.m.UserSessions(ctx, user)
		if err != nil {
			return err
		}
	} else {
		lister, ok := o.store.(kvsession.Lister)
		if !ok {
			return fmt.Errorf("this store cannot list its keys; list the sessions of one user with -user: %w", errors.ErrUnsupported)
		}
		var out *jsonArray
		if f.json {
			out = &jsonArray{w: c.stdout}
		}
		seen := map[string]bool{} // Redis SCAN may report a key twice
		err = lister.Keys(ctx, f.prefix, func(key string) error {
			if seen[key] {
				return nil
			}
			seen[key] = true
			in, err := o.m.Info(ctx, key)
			if errors.Is(err, kvsession.ErrNotFound) {
				return nil // expired, or deleted meanwhile
			}
			if err != nil {
				return err
			}
			if out != nil {
				return out.add(toJSON(in))
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
	}

	if f.json {
		list := make([]sessionJSON, 0, len(infos))
		for _, in := range infos {
			list = append(list, toJSON(in))
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
