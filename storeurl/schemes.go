package storeurl

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kvsession/kvsession"
)

// Scheme describes one URL scheme that [Open] accepts, for programs that
// document their store flag (the kvsession command prints [Synopsis]).
type Scheme struct {
	Name        string   // "redis", lower case
	Aliases     []string // other names for it: "postgresql" for "postgres"
	Form        string   // the URL's shape: "redis://[user:pass@]host[:6379][/db]"
	Example     string   // a URL that parses: "redis://127.0.0.1:6379/0"
	Store       string   // what it opens: "redisstore, one server"
	DefaultPort string   // the port of a host given without one; "" if the scheme names no host
	Params      []string // the parameters it takes, sorted; see [Param]
	// DriverParams is set if the parameters not in Params go to the
	// driver, which rejects the ones it does not know; otherwise they are
	// an error.
	DriverParams bool
}

// Param describes one parameter of store URLs.
type Param struct {
	Name string // "namespace"
	Doc  string // what it sets
}

// syntax is how a scheme's URL is laid out.
type syntax int

const (
	syntaxNone syntax = iota // mem: nothing after the colon
	syntaxPath               // file:///abs/path
	syntaxNet                // scheme://[user[:pass]@]host[:port][,host...][/path]
)

// scheme is one entry of the table: everything this package knows about
// a URL scheme.
type scheme struct {
	Scheme
	syntax syntax
	// maxConns is the default pool bound; 0 if the store has no pool
	// (and the URL no max_conns parameter).
	maxConns int
	// params are the scheme's parameters, max_conns aside: each one's
	// set stores a value in the target.
	params []param
	// hostParam names a parameter that may stand in for the host
	// ("postgres:///db?host=/run/postgresql").
	hostParam string
	// check finishes a syntaxNet target, after the common parts and the
	// parameters: path, user, driver configuration. It returns a reason
	// if the URL is bad.
	check func(t *target, u *netURL) string
	// open opens the store; tctx is bounded by Options.Timeout. It
	// returns, with an error, what failed (failReach, ...).
	open func(ctx, tctx context.Context, t *target, opts Options) (kvsession.Store, io.Closer, string, error)
}

// param is one parameter of a scheme.
type param struct {
	name string
	set  func(t *target, v string)
}

// paramDocs are the parameters' descriptions, in the order of [Synopsis].
var paramDocs = []Param{
	{paramNamespace, "the store's own namespace, put before every key it writes (redisstore, memcachestore Options.Namespace; default kvsession:)"},
	{"table", "the session table (Options.Table)"},
	{"bucket", "the top-level bucket (boltstore Options.Bucket)"},
	{paramMaxConns, fmt.Sprintf("the most connections the store's pool opens at once, 1 to %d (default %d; %d for sqlite)", MaxMaxConns, DefaultMaxConns, DefaultSQLiteMaxConns)},
}

// The parameters that several schemes share.
const (
	paramNamespace = "namespace"
	// paramMaxConns is the parameter that bounds a store's connection
	// pool, with the same name and meaning in every scheme that has a pool.
	paramMaxConns = "max_conns"
)

var (
	namespaceParam = param{paramNamespace, func(t *target, v string) { t.namespace = v }}
	tableParam     = param{"table", func(t *target, v string) { t.table = v }}
	bucketParam    = param{"bucket", func(t *target, v string) { t.bucket = v }}
)

// renamedParams are parameters that a later name replaced: the URL gets
// an error naming the new one.
var renamedParams = map[string]string{
	"prefix": "parameter prefix is now namespace (the store's own namespace; the application's Config.KeyPrefix is not part of the URL): use namespace=",
}

// schemes is the table of URL schemes, in the order of the documentation.
var schemes = []*scheme{
	{
		Scheme: Scheme{Name: "mem", Form: "mem:", Example: "mem:", Store: "memstore, in this process only"},
		syntax: syntaxNone,
		open:   openMem,
	},
	{
		Scheme: Scheme{Name: "file", Form: "file:///abs/dir", Example: "file:///var/lib/app/sessions", Store: "filestore, a directory of files"},
		syntax: syntaxPath,
		open:   openFile,
	},
	{
		Scheme: Scheme{Name: "bolt", Form: "bolt:///abs/file.db[?bucket=kvsession]", Example: "bolt:///var/lib/app/sessions.db", Store: "boltstore, a bbolt file"},
		syntax: syntaxPath,
		params: []param{bucketParam},
		open:   openBolt,
	},
	{
		Scheme:   Scheme{Name: "sqlite", Form: "sqlite:///abs/file.db[?table=kvsession_sessions]", Example: "sqlite:///var/lib/app/sessions.db", Store: "sqlitestore (modernc.org/sqlite)"},
		syntax:   syntaxPath,
		maxConns: DefaultSQLiteMaxConns,
		params:   []param{tableParam},
		open:     openSQLite,
	},
	{
		Scheme:   Scheme{Name: "redis", Form: "redis://[user:pass@]host[:6379][/db]", Example: "redis://127.0.0.1:6379/0", Store: "redisstore, one server", DefaultPort: "6379"},
		syntax:   syntaxNet,
		maxConns: DefaultMaxConns,
		params:   []param{namespaceParam},
		check:    checkRedis,
		open:     openRedis,
	},
	{
		Scheme:   Scheme{Name: "rediss", Form: "rediss://[user:pass@]host[:6379][/db]", Example: "rediss://redis.example.com:6380/0", Store: "the same over TLS", DefaultPort: "6379"},
		syntax:   syntaxNet,
		maxConns: DefaultMaxConns,
		params:   []param{namespaceParam},
		check:    checkRedis,
		open:     openRedis,
	},
	{
		Scheme:   Scheme{Name: "redis+cluster", Form: "redis+cluster://[user:pass@]host:port,host:port", Example: "redis+cluster://10.0.0.1:7001,10.0.0.2:7001", Store: "redisstore on a Redis Cluster", DefaultPort: "6379"},
		syntax:   syntaxNet,
		maxConns: DefaultMaxConns,
		params:   []param{namespaceParam},
		check:    checkRedisCluster,
		open:     openRedisCluster,
	},
	{
		Scheme:   Scheme{Name: "redis+sentinel", Form: "redis+sentinel://[user:pass@]host:port,host:port/master[/db]", Example: "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster", Store: "redisstore on the primary that Sentinel names", DefaultPort: "26379"},
		syntax:   syntaxNet,
		maxConns: DefaultMaxConns,
		params:   []param{namespaceParam},
		check:    checkRedisSentinel,
		open:     openRedisSentinel,
	},
	{
		Scheme:   Scheme{Name: "memcache", Form: "memcache://host[:11211][,host:port...]", Example: "memcache://127.0.0.1:11211", Store: "memcachestore", DefaultPort: "11211"},
		syntax:   syntaxNet,
		maxConns: DefaultMaxConns,
		params:   []param{namespaceParam},
		check:    checkMemcache,
		open:     openMemcache,
	},
	{
		Scheme:    Scheme{Name: "postgres", Aliases: []string{"postgresql"}, Form: "postgres://user[:pass]@host[:5432]/db[?sslmode=disable]", Example: "postgres://app@127.0.0.1:5432/app?sslmode=disable", Store: "pgstore (pgx); postgresql:// too", DefaultPort: "5432", DriverParams: true},
		syntax:    syntaxNet,
		maxConns:  DefaultMaxConns,
		params:    []param{tableParam},
		hostParam: "host",
		check:     checkPostgres,
		open:      openPostgres,
	},
	{
		Scheme:   Scheme{Name: "mysql", Form: "mysql://user[:pass]@host[:3306]/db", Example: "mysql://app:secret@127.0.0.1:3306/app", Store: "mysqlstore (go-sql-driver/mysql)", DefaultPort: "3306", DriverParams: true},
		syntax:   syntaxNet,
		maxConns: DefaultMaxConns,
		params:   []param{tableParam},
		check:    checkMySQL,
		open:     openMySQL,
	},
}

func init() {
	for _, s := range schemes {
		for _, p := range s.params {
			s.Params = append(s.Params, p.name)
		}
		if s.maxConns > 0 {
			s.Params = append(s.Params, paramMaxConns)
		}
		slices.Sort(s.Params)
	}
}

// lookupScheme returns the table entry of name (lower case), or nil.
func lookupScheme(name string) *scheme {
	for _, s := range schemes {
		if s.Name == name || slices.Contains(s.Aliases, name) {
			return s
		}
	}
	return nil
}

// example returns the example URL of the scheme name.
func example(name string) string { return lookupScheme(name).Example }

// schemeNames lists the schemes in error messages.
func schemeNames() string {
	names := make([]string, len(schemes))
	for i, s := range schemes {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// Schemes returns the URL schemes that [Open] accepts, in the order of the
// package documentation.
func Schemes() []Scheme {
	out := make([]Scheme, len(schemes))
	for i, s := range schemes {
		out[i] = s.Scheme
		out[i].Aliases = slices.Clone(s.Aliases)
		out[i].Params = slices.Clone(s.Params)
	}
	return out
}

// Params returns the parameters that store URLs take, each taken by the
// schemes whose [Scheme.Params] name it.
func Params() []Param { return slices.Clone(paramDocs) }

// Synopsis returns a plain-text summary of the store URLs, one scheme a
// line, then the parameters and the schemes that take them, for a
// program's usage text. The package documentation shows the same text.
func Synopsis() string {
	var b strings.Builder
	const formWidth = 47
	for _, s := range schemes {
		if len(s.Form) < formWidth {
			b.WriteString(s.Form + strings.Repeat(" ", formWidth-len(s.Form)) + s.Store + "\n")
			continue
		}
		b.WriteString(s.Form + "\n")
		b.WriteString(wrap(s.Store, strings.Repeat(" ", formWidth), 79))
	}
	b.WriteString("\nParameters (a scheme refuses any it does not take):\n\n")
	for _, p := range paramDocs {
		var takers []string
		for _, s := range schemes {
			if slices.Contains(s.Params, p.Name) {
				takers = append(takers, s.Name)
			}
		}
		b.WriteString(wrap(p.Name+" ("+strings.Join(takers, ", ")+"): "+p.Doc, "    ", 79)[4:])
	}
	var passing []string
	for _, s := range schemes {
		if s.DriverParams {
			passing = append(passing, s.Name)
		}
	}
	b.WriteString("\n" + strings.Join(passing, " and ") + " pass any other parameter to their driver.\n")
	return b.String()
}

// wrap breaks text into lines of at most width bytes, each starting with
// indent.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, w := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	b.WriteString(line + "\n")
	return b.String()
}
