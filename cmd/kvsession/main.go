package main

//go:generate go test -run TestDocGo -update-doc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/storeurl"
)

func main() {
	// go-redis logs each failed dial; the commands report errors themselves.
	redis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, loc: time.Local, progressEvery: 2 * time.Second}
	os.Exit(c.main(ctx, os.Args[1:]))
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the store failed, no such session, ...
	exitUsage = 2 // bad flags or arguments, a bad store URL
)

// cli holds what the commands write to and read from, so that tests can
// replace it.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	loc            *time.Location // for times in tables
	progressEvery  time.Duration  // how often long runs report progress
}

// command is one subcommand. setup defines its flags on fs and returns the
// function that runs it once the flags are parsed.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string // one line, for the command list
	help    string // the paragraphs of "kvsession help <name>"
	setup   func(c *cli, fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

// commands in the order of the help.
var commands = []*command{listCommand, showCommand, deleteCommand, cleanupCommand, statsCommand, revokeCommand}

func lookup(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

const overviewHead = `kvsession inspects and manages the sessions of applications that use
github.com/kvsession/kvsession, in any of its stores, while their users are
away: list them, show one, delete one, revoke all of a user's sessions,
clean up expired ones, count them.

Usage:

	kvsession <command> [flags] [arguments]

Every command takes the store as a URL in -store, or in the environment
variable KVSESSION_STORE:

`

const overviewTail = `
Paths are absolute; mem: is useless here (its sessions live in one
process). The namespace, table and bucket parameters are the store's:
give the options the application gives its store, if it changed them.
-key-prefix is the application's:
its kvsession.Config.KeyPrefix (none by default), which starts the store
key of each of its sessions, so that applications sharing a store keep
apart. With the defaults on both sides, the tool reads the application's
sessions.

Sessions are named by the ID that list shows (the start of the hash of the
session ID that the store keeps: it cannot be turned into a cookie), or by
their full store key (list -json shows it). One that starts with "-" may be
given as it is; a start of fewer than 12 characters of one goes after --.

The tool needs no signing secret and no setting of the application but its
key prefix (and, for cleanup and revoke, -no-store-ttl if the application
sets Config.NoStoreTTL): each record carries its own deadlines (absolute
and idle), so what it shows and counts is exact.

Read-only commands (list, show, stats, cleanup -dry-run) change nothing:
they open file stores, bolt and SQLite files read-only, and a directory
that is not a file store is an error. A bolt file is locked while the
application has it open: stop the application, or the command waits
-timeout and fails.

Times are RFC 3339, with the offset of the local time zone (set TZ=UTC
for UTC), in tables and in JSON.

Every command prints a table by default, and JSON with -json. Errors go to
standard error; the exit status is 1 when a command fails and 2 for bad
flags, arguments or store URLs.

The commands:
`

// usage writes the overview and the list of commands.
func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, overviewHead)
	for line := range strings.SplitSeq(strings.TrimSuffix(storeurl.Synopsis(), "\n"), "\n") {
		if line != "" {
			line = "\t" + line
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprint(w, overviewTail)
	fmt.Fprintln(w)
	width := 0
	for _, cmd := range commands {
		width = max(width, len(cmd.name))
	}
	for _, cmd := range commands {
		fmt.Fprintf(w, "\t%-*s  %s\n", width, cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nRun \"kvsession help <command>\" for a command's flags.\n")
}

// commandHelp writes the help of one command, with its flags.
func (c *cli) commandHelp(w io.Writer, cmd *command) {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cmd.setup(c, fs)
	fmt.Fprintf(w, "usage: kvsession %s %s\n\n%s\n\nFlags:\n", cmd.name, cmd.args, strings.TrimSpace(cmd.help))
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// main runs the command line args and returns the exit status.
func (c *cli) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) == 0 {
			c.usage(c.stdout)
			return exitOK
		}
		cmd := lookup(args[0])
		if cmd == nil {
			fmt.Fprintf(c.stderr, "kvsession: unknown command %q; run \"kvsession help\"\n", args[0])
			return exitUsage
		}
		c.commandHelp(c.stdout, cmd)
		return exitOK
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(c.stderr, "kvsession: unknown command %q; run \"kvsession help\"\n", name)
		return exitUsage
	}
	if msg := renamedFlag(args); msg != "" {
		fmt.Fprintf(c.stderr, "kvsession %s: %s\n", cmd.name, msg)
		return exitUsage
	}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {} // -h prints the whole help below; errors a short usage
	run := cmd.setup(c, fs)
	positional, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.commandHelp(c.stdout, cmd)
		return exitOK
	}
	if err != nil { // the flag package has said why
		fmt.Fprintf(c.stderr, "usage: kvsession %s %s\nRun \"kvsession help %s\" for details.\n", cmd.name, cmd.args, cmd.name)
		return exitUsage
	}
	if err := run(ctx, positional); err != nil {
		fmt.Fprintf(c.stderr, "kvsession %s: %s\n", cmd.name, err)
		if errors.Is(err, errUsage) || errors.Is(err, storeurl.ErrBadURL) {
			return exitUsage
		}
		return exitFail
	}
	return exitOK
}

// renamedFlags are flags that a later name replaced, with what to say.
var renamedFlags = map[string]string{
	"prefix": "-prefix is now -key-prefix (the application's kvsession.Config.KeyPrefix); the store's own namespace is the store URL's namespace= parameter",
}

// renamedFlag returns the message for the first renamed flag in args
// (before any "--"), or "".
func renamedFlag(args []string) string {
	for _, arg := range args {
		if arg == "--" {
			return ""
		}
		if !strings.HasPrefix(arg, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
		if msg, ok := renamedFlags[name]; ok {
			return msg
		}
	}
	return ""
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments ("show KEY -store URL"), and returns the
// positional ones. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		j := sessionArgAt(fs, args)
		p, err := parseFlags(fs, args[:j])
		if err != nil {
			return nil, err
		}
		positional = append(positional, p...)
		if j == len(args) {
			return positional, nil
		}
		positional = append(positional, args[j])
		args = args[j+1:]
	}
}

// parseFlags parses args, flags and positional arguments in any order.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// sessionArgAt returns the index of the first argument before any "--"
// that names a session although it starts with "-" (isSessionArg) and is
// not the value of the flag before it, or len(args) if there is none.
func sessionArgAt(fs *flag.FlagSet, args []string) int {
	for i, arg := range args {
		if arg == "--" {
			break
		}
		if isSessionArg(fs, arg) && (i == 0 || !takesValue(fs, args[i-1])) {
			return i
		}
	}
	return len(args)
}

// takesValue reports whether arg is a flag of fs whose value is the next
// argument: not a boolean flag, and no "=value" of its own.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name, hasValue := strings.CutPrefix(arg, "-")
	name = strings.TrimPrefix(name, "-")
	if !hasValue || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// isSessionArg reports whether arg, which starts with one "-", names a
// session rather than a flag: it names no flag of fs and has the form of
// a session's ID as list shows it or its store key (12 to hashLen
// base64url characters). A session's hash starts with "-" one time in 64;
// a shorter start of one, or one that starts with "--", goes after a "--"
// argument, like any argument that looks like a flag.
func isSessionArg(fs *flag.FlagSet, arg string) bool {
	const listedIDLen = 12 // as list shows it: kvsession's log ID
	if len(arg) < listedIDLen || len(arg) > hashLen || arg[0] != '-' || arg[1] == '-' {
		return false
	}
	name, _, _ := strings.Cut(arg[1:], "=")
	return fs.Lookup(name) == nil && checkSessionArg("", arg) == nil
}

// errUsage is wrapped by errors in the command line: exit status 2.
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return errUsage }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// commonFlags are the flags of every command.
type commonFlags struct {
	store      string
	keyPrefix  string
	noStoreTTL bool // set by the commands that take -no-store-ttl
	json       bool
	timeout    time.Duration
}

func (c *cli) commonFlags(fs *flag.FlagSet) *commonFlags {
	f := &commonFlags{}
	fs.StringVar(&f.store, "store", c.getenv("KVSESSION_STORE"), "store `URL` (default $KVSESSION_STORE)")
	fs.StringVar(&f.keyPrefix, "key-prefix", "", "the application's kvsession.Config.KeyPrefix, which starts its store keys (default none)")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of a table")
	fs.DurationVar(&f.timeout, "timeout", storeurl.DefaultTimeout, "how long to wait for the store's server, or for a locked bolt file")
	return f
}

// noStoreTTLFlag defines -no-store-ttl, for the commands whose results
// depend on it.
func noStoreTTLFlag(fs *flag.FlagSet, f *commonFlags, why string) {
	fs.BoolVar(&f.noStoreTTL, "no-store-ttl", false, "the application sets kvsession.Config.NoStoreTTL: "+why)
}

// opened is a store opened by a command, with the Admin that reads and
// changes its sessions by store key.
type opened struct {
	store  kvsession.Store
	admin  *kvsession.Admin
	closer io.Closer
}

// Close releases the store.
func (o *opened) Close() error { return o.closer.Close() }

// open opens the store of the flags. A read-only open changes nothing:
// file, bolt and sqlite stores are opened read-only, and the Admin is
// read-only (it leaves stale user index entries in place).
func (c *cli) open(ctx context.Context, f *commonFlags, readOnly bool) (*opened, error) {
	if f.store == "" {
		return nil, usagef("missing -store URL (or set KVSESSION_STORE); run \"kvsession help\" for the URLs")
	}
	store, closer, err := storeurl.Open(ctx, f.store, storeurl.Options{ReadOnly: readOnly, Timeout: f.timeout})
	if err != nil {
		return nil, err
	}
	admin, err := c.newAdmin(store, f, readOnly)
	if err != nil {
		closer.Close()
		return nil, err
	}
	return &opened{store: store, admin: admin, closer: closer}, nil
}

// newAdmin returns the Admin of the flags' application on store.
func (c *cli) newAdmin(store kvsession.Store, f *commonFlags, readOnly bool) (*kvsession.Admin, error) {
	// No signing secret, no guess of the application's lifetime: every
	// record carries its own deadlines.
	admin, err := kvsession.NewAdmin(store, kvsession.AdminConfig{
		KeyPrefix:    f.keyPrefix,
		NoStoreTTL:   f.noStoreTTL,
		ReadOnly:     readOnly,
		StoreTimeout: max(f.timeout, time.Second),
		Logger:       slog.New(slog.DiscardHandler),
	})
	if errors.Is(err, kvsession.ErrInvalidConfig) {
		return nil, &usageError{err.Error()}
	}
	return admin, err
}

// noArgs checks that a command got no positional arguments.
func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}
