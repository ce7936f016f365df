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

func toJSON(in kvsession.SessionInfo) sessionJSON {
	return sessionJSON{
		ID:         in.LogID,
		Key:        in.Key,
		User:       in.User,
		Created:    in.Created.UTC().Truncate(time.Millisecond),
		LastSeen:   in.LastSeen.UTC().Truncate(time.Millisecond),
		ExpiresAt:  in.ExpiresAt.UTC().Truncate(time.Millisecond),
		Permanent:  in.Permanent,
		UserAgent:  in.UserAgent,
		RemoteAddr: in.RemoteAddr,
	}
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
	return t.In(c.loc).Format(time.DateTime)
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

// resolve finds the store key of a session named by arg: its full store key,
// or its ID as list shows it, or any start of that ID of at least minIDLen
// characters (found by listing the store).
func (o *opened) resolve(ctx context.Context, prefix, arg string) (string, error) {
	if strings.HasPrefix(arg, prefix) && len(arg) == len(prefix)+hashLen {
		return arg, nil
	}
	id := arg
	if len(id) < minIDLen || len(id) > hashLen || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return "", usagef("%q is not a session ID (the first %d or more characters that list shows) nor a store key (list -json shows them)", arg, minIDLen)
	}
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

// info reads a session's description, with a clear error if it is gone.
func (o *opened) info(ctx context.Context, key, arg string) (kvsession.SessionInfo, error) {
	in, err := o.m.Info(ctx, key)
	if errors.Is(err, kvsession.ErrNotFound) {
		return in, fmt.Errorf("%w: %s (deleted or expired)", errNoSession, arg)
	}
	return in, err
}

// progress reports on stderr how a long run goes: nothing during the first
// interval, then a line each interval, rewritten in place on a terminal.
type progress struct {
	c     *cli
	label string
	count *atomic.Int64 // what has been done so far; nil if unknown
	noun  string
	start time.Time
	stop  chan struct{}
	done  chan struct{}
	tty   bool
	wrote bool
}

func (c *cli) startProgress(label string, count *atomic.Int64, noun string) *progress {
	p := &progress{c: c, label: label, count: count, noun: noun, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if f, ok := c.stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	go p.loop()
	return p
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
			line := fmt.Sprintf("%s: %s", p.label, time.Since(p.start).Round(time.Second))
			if p.count != nil {
				line += fmt.Sprintf(", %d %s", p.count.Load(), p.noun)
			}
			if p.tty {
				fmt.Fprintf(p.c.stderr, "\r\x1b[K%s", line)
			} else {
				fmt.Fprintln(p.c.stderr, line)
			}
			p.wrote = true
		}
	}
}

// end stops the reports.
func (p *progress) end() {
	close(p.stop)
	<-p.done
	if p.wrote && p.tty {
		fmt.Fprint(p.c.stderr, "\r\x1b[K")
	}
}
