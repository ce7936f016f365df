package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kvsession/kvsession"
)

// What the commands share: naming sessions, printing them, and reporting
// progress.

// sessionJSON is a session as -json prints it.
type sessionJSON struct {
	ID         string    `json:"id"`  // as list shows it
	Key        string    `json:"key"` // the store key
	User       string    `json:"user"`
	Created    time.Time `json:"created"`
	LastSeen   time.Time `json:"last_seen"`
	ExpiresAt  time.Time `json:"expires_at"`
	Permanent  bool      `json:"permanent"`
	UserAgent  string    `json:"user_agent"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
	Bytes      int       `json:"bytes,omitempty"` // show only
	// Values holds the session's values as stored (JSON); show only.
	Values map[string]json.RawMessage `json:"values,omitempty"`
}

func (c *cli) toJSON(in kvsession.SessionInfo) sessionJSON {
	return sessionJSON{
		ID:         in.LogID,
		Key:        in.Key,
		User:       in.User,
		Created:    c.inZone(in.Created),
		LastSeen:   c.inZone(in.LastSeen),
		ExpiresAt:  c.inZone(in.ExpiresAt),
		Permanent:  in.Permanent,
		UserAgent:  in.UserAgent,
		RemoteAddr: in.RemoteAddr,
	}
}

// inZone returns t in the tool's time zone, to the millisecond (what
// records keep), so that JSON shows its offset.
func (c *cli) inZone(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(c.loc).Truncate(time.Millisecond)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stamp formats an instant for a table.
func (c *cli) stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(c.loc).Format(time.RFC3339)
}

// shorten cuts s to n runes, marking the cut.
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// plural writes a count and a noun.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// orDash shows an empty string as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// hashLen is the length of the hash in a store key: base64url of SHA-256.
const hashLen = 43

// minIDLen is the shortest session ID accepted: shorter ones match too
// many sessions to be meant.
const minIDLen = 6

// errNoSession reports a session that does not exist (or has expired).
var errNoSession = errors.New("no such session")

// checkSessionArg checks that arg can name a session: a full store key, or
// at least minIDLen characters of an ID.
func checkSessionArg(prefix, arg string) error {
	if strings.HasPrefix(arg, prefix) && len(arg) == len(prefix)+hashLen {
		return nil
	}
	if len(arg) < minIDLen || len(arg) > hashLen || strings.Trim(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return usagef("%q is not a session ID (the first %d or more characters that list shows) nor a store key (list -json shows them)", arg, minIDLen)
	}
	return nil
}

// resolve finds the store key of a session named by arg: its full store key,
// or its ID as list shows it, or any start of that ID of at least minIDLen
// characters (found by listing the store).
func (o *opened) resolve(ctx context.Context, prefix, arg string) (string, error) {
	if err := checkSessionArg(prefix, arg); err != nil {
		return "", err
	}
	if strings.HasPrefix(arg, prefix) && len(arg) == len(prefix)+hashLen {
		return arg, nil
	}
	id := arg
	lister, ok := o.store.(kvsession.Lister)
	if !ok {
		return "", fmt.Errorf("this store cannot list its keys, so give the full store key (list -user U -json shows it), not the ID %q: %w", arg, errors.ErrUnsupported)
	}
	var found []string
	errEnough := errors.New("enough")
	err := lister.Keys(ctx, prefix+id, func(key string) error {
		if len(found) == 0 || found[0] != key { // SCAN may repeat a key
			found = append(found, key)
		}
		if len(found) > 1 {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: %s", errNoSession, arg)
	case 1:
		return found[0], nil
	}
	return "", usagef("session ID %q is ambiguous: give more of it", arg)
}

// info reads a session's description, with a clear error if it is gone,
// expired or corrupt.
func (o *opened) info(ctx context.Context, key, arg string) (kvsession.SessionInfo, error) {
	in, err := o.admin.Info(ctx, key)
	return in, sessionErr(err, arg)
}

// errCorruptRecord reports a stored record that does not decode.
var errCorruptRecord = errors.New("corrupt record")

// sessionErr says what an error of the Admin means for the session named
// arg.
func sessionErr(err error, arg string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kvsession.ErrCorrupt):
		return fmt.Errorf("session %s: %w: the stored record does not decode (delete removes it)", arg, errCorruptRecord)
	case errors.Is(err, kvsession.ErrExpired):
		return fmt.Errorf("%w: %s (expired, not yet cleaned up)", errNoSession, arg)
	case errors.Is(err, kvsession.ErrNotFound):
		return fmt.Errorf("%w: %s (deleted or expired)", errNoSession, arg)
	}
	return err
}

// walkCounts counts what a walk of the store met, by kind.
type walkCounts struct {
	read    atomic.Int64 // records read so far
	live    int64
	expired int64 // expired sessions the store still holds
	corrupt int64 // records that do not decode
	marks   int64 // users' revocation marks
	markExp int64 // expired revocation marks
}

// walk walks the sessions under the key prefix with o.admin.Walk, counting
// each kind in n, and calls fn with each live session's info and entry.
func (o *opened) walk(ctx context.Context, n *walkCounts, fn func(kvsession.SessionInfo, kvsession.Entry) error) error {
	if _, ok := o.store.(kvsession.Lister); !ok {
		return fmt.Errorf("this store cannot list its keys: %w", errors.ErrUnsupported)
	}
	return o.admin.Walk(ctx, func(key string, e kvsession.Entry, in kvsession.SessionInfo, err error) error {
		n.read.Add(1)
		mark := !o.admin.IsSessionKey(key)
		switch {
		case errors.Is(err, kvsession.ErrCorrupt):
			n.corrupt++
		case mark && errors.Is(err, kvsession.ErrNotFound):
			n.markExp++
		case mark && err == nil:
			n.marks++
		case errors.Is(err, kvsession.ErrNotFound):
			// Expired by the record's deadlines, or by the store's expiry
			// (the store then reads it as missing, though Keys reports
			// it until a sweep), or deleted during the walk.
			n.expired++
		case err != nil:
			return err
		case fn != nil:
			n.live++
			return fn(in, e)
		default:
			n.live++
		}
		return nil
	})
}

// progress reports on stderr how a long run goes: nothing during the first
// interval, then a line each interval, rewritten in place on a terminal:
// the elapsed time and what status says (records done, and the total when
// known).
type progress struct {
	c      *cli
	label  string
	status func() string // nil: the elapsed time only
	start  time.Time
	stop   chan struct{}
	done   chan struct{}
	tty    bool
	wrote  bool
}

func (c *cli) startProgress(label string, status func() string) *progress {
	p := &progress{c: c, label: label, status: status, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if f, ok := c.stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	go p.loop()
	return p
}

// counted is a progress status: n things done, of total if total is not
// zero.
func counted(n, total *atomic.Int64, noun string) func() string {
	return func() string {
		if total != nil && total.Load() > 0 {
			t := total.Load()
			done := min(n.Load(), t)
			return fmt.Sprintf("%d of %d %s (%d%%)", done, t, noun, done*100/t)
		}
		return fmt.Sprintf("%d %s", n.Load(), noun)
	}
}

func (p *progress) loop() {
	defer close(p.done)
	if p.c.progressEvery <= 0 {
		return
	}
	t := time.NewTicker(p.c.progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.report()
		}
	}
}

// report writes one progress line: over the last one on a terminal.
func (p *progress) report() {
	line := fmt.Sprintf("%s: %s", p.label, time.Since(p.start).Round(time.Second))
	if p.status != nil {
		line += ", " + p.status()
	}
	if p.tty {
		fmt.Fprintf(p.c.stderr, "\r\x1b[K%s", line)
	} else {
		fmt.Fprintln(p.c.stderr, line)
	}
	p.wrote = true
}

// end stops the reports. On a terminal it erases the last line; in a log
// that showed progress, it adds a last line with the final count, so the
// log ends with how far the work went.
func (p *progress) end() {
	close(p.stop)
	<-p.done
	switch {
	case p.wrote && p.tty:
		fmt.Fprint(p.c.stderr, "\r\x1b[K")
	case p.wrote && p.status != nil:
		p.report()
	}
}
