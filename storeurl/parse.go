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

// target is a parsed store URL.
type target struct {
	scheme   *scheme
	path     string   // file, bolt, sqlite: clean and absolute
	addrs    []string // network schemes: host:port, default ports filled in
	username string
	password string
	db       int    // redis, rediss, redis+sentinel: database number
	master   string // redis+sentinel: the name the Sentinels know the primary by
	tls      bool   // rediss

	namespace string // redis schemes, memcache: Options.Namespace
	table     string // postgres, mysql, sqlite: Options.Table
	bucket    string // bolt: Options.Bucket

	maxConns int // sqlite and the network schemes: the pool's bound, see DefaultMaxConns

	pg    *pgxpool.Config // postgres
	mysql *mysql.Config   // mysql
}

// netURL is what check functions see of a network URL.
type netURL struct {
	authority string     // [user[:pass]@]hosts, as written
	rawPath   string     // as written
	path      string     // unescaped
	segs      []string   // path's segments, without empty ends
	query     url.Values // the parameters left to the driver
}

// parse checks a store URL and takes it apart.
func parse(raw string) (*target, error) {
	t, reason := parseReason(raw)
	if reason != "" {
		return nil, &badURLError{url: Redact(raw), reason: reason}
	}
	return t, nil
}

// parseReason is parse, returning the reason a URL is bad.
func parseReason(raw string) (*target, string) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Sprintf("empty; want a URL such as %s or %s", example("file"), example("redis"))
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return nil, "contains white space (percent-encode it as %20)"
	}
	name, rest, ok := strings.Cut(raw, ":")
	if !ok || name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Sprintf("missing scheme; want one of %s, as in %s", schemeNames(), example("file"))
	}
	name = strings.ToLower(name)
	s := lookupScheme(name)
	if s == nil {
		return nil, fmt.Sprintf("unknown scheme %q; want one of %s", name, schemeNames())
	}
	switch s.syntax {
	case syntaxNone:
		if rest != "" && rest != "//" {
			return nil, fmt.Sprintf("%s: takes nothing after the colon", s.Name)
		}
		return &target{scheme: s}, ""
	case syntaxPath:
		return parsePath(s, raw)
	default:
		return parseNet(s, rest)
	}
}

// parsePath parses the URL of a store kept in a local file or directory.
// It returns a reason if the URL is bad.
func parsePath(s *scheme, raw string) (*target, string) {
	ex := s.Example
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Sprintf("%v; want %s", errors.Unwrap(err), ex)
	}
	if u.Opaque != "" {
		p, _ := url.PathUnescape(u.Opaque)
		return nil, fmt.Sprintf("relative path %q; want an absolute path, as in %s", p, ex)
	}
	if u.User != nil {
		return nil, fmt.Sprintf("a %s: URL takes no user name; want %s", s.Name, ex)
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Sprintf("host %q in a %s: URL (a relative path?); want three slashes and an absolute path, as in %s", u.Host, s.Name, ex)
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
	t := &target{scheme: s, path: filepath.Clean(u.Path)}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Sprintf("query: %v", err)
	}
	if reason := takeParams(t, q); reason != "" {
		return nil, reason
	}
	return t, ""
}

// DefaultMaxConns is the most connections that the pool of a redis,
// memcache, postgres or mysql store holds when its URL has no max_conns
// parameter (see the package documentation). An sqlite store's is
// [DefaultSQLiteMaxConns].
const DefaultMaxConns = 10

// MaxMaxConns is the largest max_conns value a URL may give.
const MaxMaxConns = 10000

// parseMaxConns checks a max_conns value and returns the bound, or a
// reason if the value is bad.
func parseMaxConns(v string) (int, string) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxMaxConns {
		return 0, fmt.Sprintf("parameter %s=%q: want a whole number of connections from 1 to %d", paramMaxConns, v, MaxMaxConns)
	}
	return n, ""
}

// takeParams moves the parameters of t's scheme out of q into t, and fills
// in the default pool bound. The other parameters stay in q if the scheme
// passes them to its driver, and are an error otherwise. It returns a
// reason if a parameter is bad.
func takeParams(t *target, q url.Values) string {
	s := t.scheme
	t.maxConns = s.maxConns
	values := map[string]string{}
	for _, name := range s.Params {
		vs, ok := q[name]
		if !ok {
			continue
		}
		if len(vs) != 1 || vs[0] == "" {
			return fmt.Sprintf("parameter %s wants one non-empty value", name)
		}
		values[name] = vs[0]
		delete(q, name)
	}
	if unknown := unknownParam(s, q); unknown != "" {
		if msg, ok := renamedParams[unknown]; ok && slices.Contains(s.Params, paramNamespace) {
			return msg
		}
		if len(s.Params) == 0 {
			return fmt.Sprintf("unknown parameter %q: %s: URLs take none", unknown, s.Name)
		}
		return fmt.Sprintf("unknown parameter %q: %s: URLs take %s", unknown, s.Name, strings.Join(s.Params, ", "))
	}
	for _, p := range s.params {
		if v, ok := values[p.name]; ok {
			p.set(t, v)
		}
	}
	if v, ok := values[paramMaxConns]; ok {
		var reason string
		if t.maxConns, reason = parseMaxConns(v); reason != "" {
			return reason
		}
	}
	return ""
}

// unknownParam returns the first (by name) of the parameters left in q
// that s refuses: any, unless s passes them to its driver; then only
// those that name a parameter of another scheme. It returns "" if there
// is none.
func unknownParam(s *scheme, q url.Values) string {
	var unknown string
	for name := range q {
		if (unknown == "" || name < unknown) && (!s.DriverParams || isOurParam(name)) {
			unknown = name
		}
	}
	return unknown
}

// isOurParam reports whether name is a parameter of some scheme, or the old
// name of one: one that a scheme which passes the others to its driver
// refuses if it does not take it, rather than send it to the server.
func isOurParam(name string) bool {
	if _, ok := renamedParams[name]; ok {
		return true
	}
	return slices.ContainsFunc(paramDocs, func(p Param) bool { return p.Name == name })
}

// parseNet parses the URL of a store on one or more servers; rest is what
// follows "scheme:". It returns a reason if the URL is bad.
func parseNet(s *scheme, rest string) (*target, string) {
	ex := s.Example
	if !strings.HasPrefix(rest, "//") {
		return nil, fmt.Sprintf("missing //host after %s:; want %s", s.Name, ex)
	}
	rest = rest[2:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	u := &netURL{authority: rest[:end]}
	pathQuery := rest[end:]
	if i := strings.IndexByte(pathQuery, '#'); i >= 0 {
		return nil, fmt.Sprintf("unexpected fragment %s", pathQuery[i:])
	}
	rawPath, rawQuery, _ := strings.Cut(pathQuery, "?")
	u.rawPath = rawPath
	var err error
	if u.path, err = url.PathUnescape(rawPath); err != nil {
		return nil, fmt.Sprintf("path: %v", err)
	}
	if u.query, err = url.ParseQuery(rawQuery); err != nil {
		return nil, fmt.Sprintf("query: %v", err)
	}

	t := &target{scheme: s}
	hostList := u.authority
	if at := strings.LastIndexByte(u.authority, '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(u.authority[:at], ":")
		if t.username, err = url.PathUnescape(user); err != nil {
			return nil, fmt.Sprintf("user name: %v", err)
		}
		if hasPass {
			if t.password, err = url.PathUnescape(pass); err != nil {
				return nil, "password: bad percent-encoding"
			}
		}
		hostList = u.authority[at+1:]
	}
	if hostList == "" && (s.hostParam == "" || !u.query.Has(s.hostParam)) {
		return nil, fmt.Sprintf("missing host; want %s", ex)
	}
	if hostList != "" {
		for h := range strings.SplitSeq(hostList, ",") {
			addr, reason := hostPort(h, s.DefaultPort)
			if reason != "" {
				return nil, reason + "; want " + ex
			}
			t.addrs = append(t.addrs, addr)
		}
	}
	if reason := takeParams(t, u.query); reason != "" {
		return nil, reason
	}
	u.segs = strings.Split(strings.Trim(u.path, "/"), "/")
	if len(u.segs) == 1 && u.segs[0] == "" {
		u.segs = nil
	}
	if reason := s.check(t, u); reason != "" {
		return nil, reason
	}
	return t, ""
}

// parseDB parses a Redis database number.
func parseDB(seg, ex string) (int, string) {
	db, err := strconv.Atoi(seg)
	if err != nil || db < 0 {
		return 0, fmt.Sprintf("database %q is not a number; want %s", seg, ex)
	}
	return db, ""
}

func checkRedis(t *target, u *netURL) string {
	s := t.scheme
	t.tls = s.Name == "rediss"
	if len(t.addrs) > 1 {
		return fmt.Sprintf("%s: URLs take one host; for several use redis+cluster:// or redis+sentinel://", s.Name)
	}
	if len(u.segs) > 1 {
		return fmt.Sprintf("path %q: want a database number, as in %s", u.path, s.Example)
	}
	if len(u.segs) == 1 {
		var reason string
		t.db, reason = parseDB(u.segs[0], s.Example)
		return reason
	}
	return ""
}

func checkRedisCluster(t *target, u *netURL) string {
	if len(u.segs) > 0 {
		return fmt.Sprintf("path %q: a cluster has only database 0, so redis+cluster: URLs take no path; want %s", u.path, t.scheme.Example)
	}
	return ""
}

func checkRedisSentinel(t *target, u *netURL) string {
	ex := t.scheme.Example
	if len(u.segs) == 0 {
		return fmt.Sprintf("missing master name; want %s", ex)
	}
	if len(u.segs) > 2 {
		return fmt.Sprintf("path %q: want /master or /master/db, as in %s", u.path, ex)
	}
	t.master = u.segs[0]
	if len(u.segs) == 2 {
		var reason string
		t.db, reason = parseDB(u.segs[1], ex)
		return reason
	}
	return ""
}

func checkMemcache(t *target, u *netURL) string {
	if t.username != "" || t.password != "" {
		return "memcache: URLs take no user name or password"
	}
	if len(u.segs) > 0 {
		return fmt.Sprintf("path %q: memcache: URLs take no path; want %s", u.path, t.scheme.Example)
	}
	return ""
}

func checkPostgres(t *target, u *netURL) string {
	if u.query.Has("pool_max_conns") { // pgxpool's own, which would fight max_conns
		return fmt.Sprintf("parameter pool_max_conns: use %s, which bounds the pool of every scheme", paramMaxConns)
	}
	dsn := "postgres://" + u.authority + u.rawPath
	if len(u.query) > 0 {
		dsn += "?" + u.query.Encode()
	}
	var err error
	if t.pg, err = pgxpool.ParseConfig(dsn); err != nil {
		return oneLine(errors.Unwrap(err), err)
	}
	return ""
}

func checkMySQL(t *target, u *netURL) string {
	ex := t.scheme.Example
	if len(t.addrs) > 1 {
		return "mysql: URLs take one host"
	}
	if len(u.segs) == 0 {
		return fmt.Sprintf("missing database name; want %s", ex)
	}
	if len(u.segs) > 1 {
		return fmt.Sprintf("path %q: want one database name, as in %s", u.path, ex)
	}
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = t.username, t.password, "tcp", t.addrs[0], u.segs[0]
	dsn := c.FormatDSN()
	if len(u.query) > 0 {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + u.query.Encode()
	}
	var err error
	if t.mysql, err = mysql.ParseDSN(dsn); err != nil {
		return "mysql: " + oneLine(err)
	}
	return ""
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
