package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/kvsession/kvsession"
)

var statsCommand = &command{
	name:    "stats",
	args:    "[-key-prefix P] [-json] -store URL",
	summary: "count the sessions, their bytes, and the expired and corrupt records",
	help: `
Stats walks the records of the store under -key-prefix and prints how many
sessions are live, how many bytes their records take, how many expire
within the hour, and, counted apart, the sessions that have expired but
are still in the store (waiting for cleanup), the records that are corrupt
(they do not decode: the application treats them as missing and reports
them), and the users' revocation marks. Each record's own deadlines decide
what has expired, so the counts are exact. Redis drops expired records by
itself (unless the application sets Config.NoStoreTTL): there, 0 expired
is exact. Memcached cannot be walked.

Stats changes nothing. A long run reports its progress on standard error
every few seconds.`,
	setup: func(c *cli, fs *flag.FlagSet) func(context.Context, []string) error {
		common := c.commonFlags(fs)
		return func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return c.stats(ctx, common)
		}
	},
}

// statsJSON is what stats -json prints.
type statsJSON struct {
	Sessions       int64 `json:"sessions"`
	Bytes          int64 `json:"bytes"`
	ExpiringWithin int64 `json:"expiring_within_1h"`
	ExpiredUnswept int64 `json:"expired_unswept"`
	Corrupt        int64 `json:"corrupt"`
	Marks          int64 `json:"revocation_marks"`
	ExpiredMarks   int64 `json:"expired_revocation_marks"`
}

func (c *cli) stats(ctx context.Context, f *commonFlags) error {
	o, err := c.open(ctx, f, true)
	if err != nil {
		return err
	}
	defer o.Close()
	var s statsJSON
	var n walkCounts
	soon := time.Now().Add(time.Hour)
	p := c.startProgress("stats", counted(&n.read, nil, "records read"))
	err = o.walk(ctx, &n, func(in kvsession.SessionInfo, e kvsession.Entry) error {
		s.Bytes += int64(len(e.Value))
		if !in.ExpiresAt.IsZero() && in.ExpiresAt.Before(soon) {
			s.ExpiringWithin++
		}
		return nil
	})
	p.end()
	if err != nil {
		return err
	}
	s.Sessions, s.ExpiredUnswept, s.Corrupt, s.Marks, s.ExpiredMarks = n.live, n.expired, n.corrupt, n.marks, n.markExp
	if f.json {
		return writeJSON(c.stdout, s)
	}
	for _, row := range []struct {
		label string
		n     int64
	}{
		{"sessions", s.Sessions},
		{"bytes", s.Bytes},
		{"expiring within 1h", s.ExpiringWithin},
		{"expired, not yet cleaned up", s.ExpiredUnswept},
		{"corrupt records", s.Corrupt},
		{"revocation marks", s.Marks},
		{"expired revocation marks", s.ExpiredMarks},
	} {
		fmt.Fprintf(c.stdout, "%-28s %12d\n", row.label, row.n)
	}
	return nil
}
