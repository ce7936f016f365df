package storeurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrBadURL is wrapped by every error that reports a malformed store URL
// or one this package does not support. Test with [errors.Is].
var ErrBadURL = errors.New("storeurl: bad store URL")

// badURLError reports what is wrong with a URL.
type badURLError struct {
	url    string // redacted
	reason string
}

func (e *badURLError) Error() string {
	return fmt.Sprintf("storeurl: bad store URL %q: %s", e.url, e.reason)
}

func (e *badURLError) Unwrap() error { return ErrBadURL }

// schemeList names the schemes in error messages.
const schemeList = "mem, file, bolt, sqlite, redis, rediss, redis+cluster, redis+sentinel, memcache, postgres, mysql"

// examples shows each scheme's form in error messages.
var examples = map[string]string{
	"file":           "file:///var/lib/app/sessions",
	"bolt":           "bolt:///var/lib/app/sessions.db",
	"sqlite":         "sqlite:///var/lib/app/sessions.db",
	"redis":          "redis://127.0.0.1:6379/0",
	"rediss":         "rediss://redis.example.com:6380/0",
	"redis+cluster":  "redis+cluster://10.0.0.1:7001,10.0.0.2:7001",
	"redis+sentinel": "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster",
	"memcache":       "memcache://127.0.0.1:11211",
	"postgres":       "postgres://app@127.0.0.1:5432/app?sslmode=disable",
	"mysql":          "mysql://app:secret@127.0.0.1:3306/app",
}

var defaultPorts = map[string]string{
	"redis":          "6379",
	"rediss":         "6379",
	"redis+cluster":  "6379",
	"redis+sentinel": "26379",
	"memcache":       "11211",
	"postgres":       "5432",
	"mysql":          "3306",
}

// target is a parsed store URL.
type target struct {
	scheme   string   // lower case; "postgresql" is "postgres"
	path     string   // file, bolt, sqlite: clean and absolute
	addrs    []string // network schemes: host:port, default ports filled in
	username string
	password string
	db       int    // redis, rediss, redis+sentinel: database number
	master   string // redis+sentinel: the name the Sentinels know the primary by
	tls      bool   // rediss

	prefix string // redis schemes, memcache: Options.Prefix
	table  string // postgres, mysql, sqlite: Options.Table
	bucket string // bolt: Options.Bucket

	maxConns int // sqlite and the network schemes: the pool's bound, see DefaultMaxConns

	pg    *pgxpool.Config // postgres
	mysql *mysql.Config   // mysql
}

// parse checks a store URL and takes it apart.
func parse(raw string) (*target, error) {
	bad := func(format string, args ...any) error {
		return &badURLError{url: Redact(raw), reason: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(raw) == "" {
		return nil, bad("empty; want a URL such as %s or %s", examples["file"], examples["redis"])
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return nil, bad("contains white space (percent-encode it as %%20)")
	}
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/\\.") {
		return nil, bad("missing scheme; want one of %s, as in %s", schemeList, examples["file"])
	}
	scheme = strings.ToLower(scheme)
	if scheme == "postgresql" {
		scheme = "postgres"
	}
	switch scheme {
	case "mem":
		if rest != "" && rest != "//" {
			return nil, bad("mem: takes nothing after the colon")
		}
		return &target{scheme: scheme}, nil
	case "file", "bolt", "sqlite":
		t, reason := parsePath(scheme, raw)
		if reason != "" {
			return nil, bad("%s", reason)
		}
		return t, nil
	case "redis", "rediss", "redis+cluster", "redis+sentinel", "memcache", "postgres", "mysql":
		t, reason := parseNet(scheme, rest)
		if reason != "" {
			return nil, bad("%s", reason)
		}
		return t, nil
	}
	return nil, bad("unknown scheme %q; want one of %s", scheme, schemeList)
}

// parsePath parses the URL of a store kept in a local file or directory.
// It returns a reason if the URL is bad.
func parsePath(scheme, raw string) (*target, string) {
	ex := examples[scheme]
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Sprintf("%v; want %s", errors.Unwrap(err), ex)
	}
	if u.Opaque != "" {
		p, _ := url.PathUnescape(u.Opaque)
		return nil, fmt.Sprintf("relative path %q; want an absolute path, as in %s", p, ex)
	}
	if u.User != nil {
		return nil, fmt.Sprintf("a %s: URL takes no user name; want %s", scheme, ex)
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Sprintf("host %q in a %s: URL (a relative path?); want three slashes and an absolute path, as in %s", u.Host, scheme, ex)
	}
	if u.Fragment != "" {
		return nil, fmt.Sprintf("unexpected fragment #%s", u.Fragment)
	}
	if u.Path == "" || u.Path == "/" {
		return nil, fmt.Sprintf("missing path; want %s", ex)
	}
	if !filepath.IsAbs(u.Path) {
		return nil, fmt.Sprintf("relative path %q; want an absolute path, as in %s", u.Path, ex)
	}
	t := &target{scheme: scheme, path: filepath.Clean(u.Path)}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Sprintf("query: %v", err)
	}
	allowed := map[string]*string{}
	var maxConns string
	switch scheme {
	case "bolt":
		allowed["bucket"] = &t.bucket
	case "sqlite":
		allowed["table"] = &t.table
		allowed[paramMaxConns] = &maxConns
	}
	if reason := takeParams(scheme, q, allowed, false); reason != "" {
		return nil, reason
	}
	if scheme == "sqlite" {
		var reason string
		if t.maxConns, reason = parseMaxConns(maxConns); reason != "" {
			return nil, reason
		}
		if maxConns == "" {
			t.maxConns = DefaultSQLiteMaxConns
		}
	}
	return t, ""
}

// paramMaxConns is the parameter that bounds a store's connection pool,
// with the same name and meaning in every scheme that has a pool.
const paramMaxConns = "max_conns"

// DefaultMaxConns is the most connections that the pool of a redis,
// memcache, postgres or mysql store holds when its URL has no max_conns
// parameter (see the package documentation). An sqlite store's is
// [DefaultSQLiteMaxConns].
const DefaultMaxConns = 10

// MaxMaxConns is the largest max_conns value a URL may give.
const MaxMaxConns = 10000

// parseMaxConns checks a max_conns value ("" for none) and returns the
// bound, or a reason if the value is bad.
func parseMaxConns(v string) (int, string) {
	if v == "" {
		return DefaultMaxConns, ""
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxMaxConns {
		return 0, fmt.Sprintf("parameter %s=%q: want a whole number of connections from 1 to %d", paramMaxConns, v, MaxMaxConns)
	}
	return n, ""
}

// takeParams moves the parameters named in allowed out of q into their
// variables. Other parameters are an error unless passThrough is set.
func takeParams(scheme string, q url.Values, allowed map[string]*string, passThrough bool) string {
	for name, dst := range allowed {
		vs, ok := q[name]
		if !ok {
			continue
		}
		if len(vs) != 1 || vs[0] == "" {
			return fmt.Sprintf("parameter %s wants one non-empty value", name)
		}
		*dst = vs[0]
		delete(q, name)
	}
	if passThrough || len(q) == 0 {
		return ""
	}
	var unknown string
	for name := range q {
		if unknown == "" || name < unknown {
			unknown = name
		}
	}
	switch len(allowed) {
	case 0:
		return fmt.Sprintf("unknown parameter %q: %s: URLs take none", unknown, scheme)
	default:
		var names []string
		for name := range allowed {
			names = append(names, name)
		}
		slices.Sort(names)
		return fmt.Sprintf("unknown parameter %q: %s: URLs take %s", unknown, scheme, strings.Join(names, ", "))
	}
}

// parseNet parses the URL of a store on one or more servers; rest is what
// follows "scheme:". It returns a reason if the URL is bad.
func parseNet(scheme, rest string) (*target, string) {
	ex := examples[scheme]
	if !strings.HasPrefix(rest, "//") {
		return nil, fmt.Sprintf("missing //host after %s:; want %s", scheme, ex)
	}
	rest = rest[2:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, pathQuery := rest[:end], rest[end:]
	if i := strings.IndexByte(pathQuery, '#'); i >= 0 {
		return nil, fmt.Sprintf("unexpected fragment %s", pathQuery[i:])
	}
	rawPath, rawQuery, _ := strings.Cut(pathQuery, "?")
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return nil, fmt.Sprintf("path: %v", err)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Sprintf("query: %v", err)
	}

	t := &target{scheme: scheme, tls: scheme == "rediss"}
	hostList := authority
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(authority[:at], ":")
		if t.username, err = url.PathUnescape(user); err != nil {
			return nil, fmt.Sprintf("user name: %v", err)
		}
		if hasPass {
			if t.password, err = url.PathUnescape(pass); err != nil {
				return nil, "password: bad percent-encoding"
			}
		}
		hostList = authority[at+1:]
	}
	if hostList == "" && !(scheme == "postgres" && q.Has("host")) {
		return nil, fmt.Sprintf("missing host; want %s", ex)
	}
	if hostList != "" {
		for h := range strings.SplitSeq(hostList, ",") {
			addr, reason := hostPort(h, defaultPorts[scheme])
			if reason != "" {
				return nil, reason + "; want " + ex
			}
			t.addrs = append(t.addrs, addr)
		}
	}

	var maxConns string
	switch scheme {
	case "redis", "rediss", "redis+cluster", "redis+sentinel", "memcache":
		if reason := takeParams(scheme, q, map[string]*string{"prefix": &t.prefix, paramMaxConns: &maxConns}, false); reason != "" {
			return nil, reason
		}
	case "postgres", "mysql":
		if reason := takeParams(scheme, q, map[string]*string{"table": &t.table, paramMaxConns: &maxConns}, true); reason != "" {
			return nil, reason
		}
		if q.Has("pool_max_conns") { // pgxpool's own, which would fight max_conns
			return nil, fmt.Sprintf("parameter pool_max_conns: use %s, which bounds the pool of every scheme", paramMaxConns)
		}
	}
	n, reason := parseMaxConns(maxConns)
	if reason != "" {
		return nil, reason
	}
	t.maxConns = n
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		segs = nil
	}
	switch scheme {
	case "redis", "rediss":
		if len(t.addrs) > 1 {
			return nil, fmt.Sprintf("%s: URLs take one host; for several use redis+cluster:// or redis+sentinel://", scheme)
		}
		if len(segs) > 1 {
			return nil, fmt.Sprintf("path %q: want a database number, as in %s", path, ex)
		}
		if len(segs) == 1 {
			if t.db, err = strconv.Atoi(segs[0]); err != nil || t.db < 0 {
				return nil, fmt.Sprintf("database %q is not a number; want %s", segs[0], ex)
			}
		}
	case "redis+cluster":
		if len(segs) > 0 {
			return nil, fmt.Sprintf("path %q: a cluster has only database 0, so redis+cluster: URLs take no path; want %s", path, ex)
		}
	case "redis+sentinel":
		if len(segs) == 0 {
			return nil, fmt.Sprintf("missing master name; want %s", ex)
		}
		if len(segs) > 2 {
			return nil, fmt.Sprintf("path %q: want /master or /master/db, as in %s", path, ex)
		}
		t.master = segs[0]
		if len(segs) == 2 {
			if t.db, err = strconv.Atoi(segs[1]); err != nil || t.db < 0 {
				return nil, fmt.Sprintf("database %q is not a number; want %s", segs[1], ex)
			}
		}
	case "memcache":
		if t.username != "" || t.password != "" {
			return nil, "memcache: URLs take no user name or password"
		}
		if len(segs) > 0 {
			return nil, fmt.Sprintf("path %q: memcache: URLs take no path; want %s", path, ex)
		}
	case "postgres":
		dsn := "postgres://" + authority + rawPath
		if len(q) > 0 {
			dsn += "?" + q.Encode()
		}
		if t.pg, err = pgxpool.ParseConfig(dsn); err != nil {
			return nil, oneLine(errors.Unwrap(err), err)
		}
	case "mysql":
		if len(t.addrs) > 1 {
			return nil, "mysql: URLs take one host"
		}
		if len(segs) == 0 {
			return nil, fmt.Sprintf("missing database name; want %s", ex)
		}
		if len(segs) > 1 {
			return nil, fmt.Sprintf("path %q: want one database name, as in %s", path, ex)
		}
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr, c.DBName = t.username, t.password, "tcp", t.addrs[0], segs[0]
		dsn := c.FormatDSN()
		if len(q) > 0 {
			sep := "?"
			if strings.Contains(dsn, "?") {
				sep = "&"
			}
			dsn += sep + q.Encode()
		}
		if t.mysql, err = mysql.ParseDSN(dsn); err != nil {
			return nil, "mysql: " + oneLine(err)
		}
	}
	return t, ""
}

// hostPort checks one host[:port] and fills in the default port.
func hostPort(h, defPort string) (string, string) {
	if h == "" {
		return "", "missing host (an empty entry in the host list?)"
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		switch {
		case strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]"):
			host = h[1 : len(h)-1]
		case strings.Contains(h, ":") || strings.ContainsAny(h, "[]"):
			return "", fmt.Sprintf("bad host %q (an IPv6 address goes in brackets: [::1]:%s)", h, defPort)
		default:
			host = h
		}
		port = defPort
	}
	if host == "" {
		return "", fmt.Sprintf("missing host name in %q", h)
	}
	ipv6 := strings.Contains(host, ":")
	for _, c := range host {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' ||
			ipv6 && (c == ':' || c == '%') // an IPv6 address, with a zone
		if !ok {
			return "", fmt.Sprintf("bad host %q", host)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Sprintf("bad port %q in %q", port, h)
	}
	return net.JoinHostPort(host, port), ""
}

// oneLine returns the text of the first non-nil error, on one line.
func oneLine(errs ...error) string {
	for _, err := range errs {
		if err != nil {
			return strings.Join(strings.Fields(err.Error()), " ")
		}
	}
	return ""
}

// Redact returns rawURL with its password, if any, replaced by "xxxxx",
// both in the user information and in a password parameter, so that it can
// be logged or shown in errors.
func Redact(rawURL string) string {
	out := rawURL
	if scheme, rest, ok := strings.Cut(rawURL, "://"); ok {
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
				out = scheme + "://" + user + ":xxxxx" + rest[at:]
			}
		}
	}
	base, query, ok := strings.Cut(out, "?")
	if !ok {
		return out
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if hasValue && strings.Contains(strings.ToLower(name), "password") {
			parts[i] = name + "=xxxxx"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}
