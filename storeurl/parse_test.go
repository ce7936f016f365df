package storeurl

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// parseTests are URLs that parse, with the parts that matter.
var parseTests = []struct {
	url  string
	want target
}{
	{"mem:", target{scheme: lookupScheme("mem")}},
	{"mem://", target{scheme: lookupScheme("mem")}},
	{"MEM:", target{scheme: lookupScheme("mem")}},

	{"file:///var/lib/app/sessions", target{scheme: lookupScheme("file"), path: "/var/lib/app/sessions"}},
	{"file:/var/lib/app/sessions/", target{scheme: lookupScheme("file"), path: "/var/lib/app/sessions"}},
	{"file://localhost/srv/s", target{scheme: lookupScheme("file"), path: "/srv/s"}},
	{"file:///srv/a%20b/../c", target{scheme: lookupScheme("file"), path: "/srv/c"}},
	{"bolt:///srv/sessions.db", target{scheme: lookupScheme("bolt"), path: "/srv/sessions.db"}},
	{"bolt:///srv/sessions.db?bucket=app1", target{scheme: lookupScheme("bolt"), path: "/srv/sessions.db", bucket: "app1"}},
	{"sqlite:///srv/sessions.db", target{scheme: lookupScheme("sqlite"), path: "/srv/sessions.db"}},
	{"sqlite:///srv/sessions.db?table=app_sessions", target{scheme: lookupScheme("sqlite"), path: "/srv/sessions.db", table: "app_sessions"}},

	{"redis://127.0.0.1:6379/0", target{scheme: lookupScheme("redis"), addrs: []string{"127.0.0.1:6379"}}},
	{"redis://redis.internal", target{scheme: lookupScheme("redis"), addrs: []string{"redis.internal:6379"}}},
	{"redis://redis.internal/", target{scheme: lookupScheme("redis"), addrs: []string{"redis.internal:6379"}}},
	{"redis://:p%40ss@10.0.0.1:6380/3?namespace=app:", target{scheme: lookupScheme("redis"), addrs: []string{"10.0.0.1:6380"}, password: "p@ss", db: 3, namespace: "app:"}},
	{"redis://alice:pw@[::1]/2", target{scheme: lookupScheme("redis"), addrs: []string{"[::1]:6379"}, username: "alice", password: "pw", db: 2}},
	{"rediss://redis.example.com:6380/1", target{scheme: lookupScheme("rediss"), addrs: []string{"redis.example.com:6380"}, db: 1, tls: true}},
	{"redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003", target{scheme: lookupScheme("redis+cluster"), addrs: []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}}},
	{"redis+cluster://u:p@a,b:7002/?namespace={app}:", target{scheme: lookupScheme("redis+cluster"), addrs: []string{"a:6379", "b:7002"}, username: "u", password: "p", namespace: "{app}:"}},
	{"redis+sentinel://10.0.0.1:26379,10.0.0.2/mymaster", target{scheme: lookupScheme("redis+sentinel"), addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, master: "mymaster"}},
	{"redis+sentinel://:pw@s1/mymaster/4", target{scheme: lookupScheme("redis+sentinel"), addrs: []string{"s1:26379"}, master: "mymaster", password: "pw", db: 4}},
	{"memcache://127.0.0.1:11211", target{scheme: lookupScheme("memcache"), addrs: []string{"127.0.0.1:11211"}}},
	{"memcache://m1,m2:11212?namespace=app:", target{scheme: lookupScheme("memcache"), addrs: []string{"m1:11211", "m2:11212"}, namespace: "app:"}},

	{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", target{scheme: lookupScheme("postgres"), addrs: []string{"127.0.0.1:5432"}, username: "postgres"}},
	{"postgresql://app:secret@db/app?table=app.sessions&sslmode=require", target{scheme: lookupScheme("postgres"), addrs: []string{"db:5432"}, username: "app", password: "secret", table: "app.sessions"}},
	{"postgres://app@db1,db2:5433/app", target{scheme: lookupScheme("postgres"), addrs: []string{"db1:5432", "db2:5433"}, username: "app"}},
	{"postgres:///app?host=/run/postgresql", target{scheme: lookupScheme("postgres")}},

	{"mysql://root@127.0.0.1:3306/test", target{scheme: lookupScheme("mysql"), addrs: []string{"127.0.0.1:3306"}, username: "root"}},
	{"mysql://app:s%3Acret@db/app?table=app_sessions&tls=preferred", target{scheme: lookupScheme("mysql"), addrs: []string{"db:3306"}, username: "app", password: "s:cret", table: "app_sessions"}},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parse(tt.url)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			w := tt.want
			if got.scheme != w.scheme || got.path != w.path || !slices.Equal(got.addrs, w.addrs) ||
				got.username != w.username || got.password != w.password || got.db != w.db ||
				got.master != w.master || got.tls != w.tls || got.namespace != w.namespace ||
				got.table != w.table || got.bucket != w.bucket {
				t.Errorf("parse =\n%+v, want\n%+v", *got, w)
			}
			if (got.scheme.Name == "postgres") != (got.pg != nil) || (got.scheme.Name == "mysql") != (got.mysql != nil) {
				t.Errorf("driver config missing or extra: pg %v, mysql %v", got.pg != nil, got.mysql != nil)
			}
		})
	}
}

func TestParseDriverConfig(t *testing.T) {
	pg, err := parse("postgres://app:secret@db:5433/appdb?sslmode=disable&table=t1&application_name=x")
	if err != nil {
		t.Fatal(err)
	}
	c := pg.pg.ConnConfig
	if c.Host != "db" || c.Port != 5433 || c.Database != "appdb" || c.User != "app" || c.Password != "secret" || c.TLSConfig != nil {
		t.Errorf("pgx config = host %q port %d db %q user %q password %q tls %v", c.Host, c.Port, c.Database, c.User, c.Password, c.TLSConfig != nil)
	}
	if c.RuntimeParams["table"] != "" || c.RuntimeParams["application_name"] != "x" {
		t.Errorf("runtime params = %v, want application_name only (table is ours)", c.RuntimeParams)
	}

	my, err := parse("mysql://app:s%40cret@db:3307/appdb?table=t1&parseTime=true")
	if err != nil {
		t.Fatal(err)
	}
	m := my.mysql
	if m.User != "app" || m.Passwd != "s@cret" || m.Net != "tcp" || m.Addr != "db:3307" || m.DBName != "appdb" || !m.ParseTime {
		t.Errorf("mysql config = %+v", m)
	}
	if _, ok := m.Params["table"]; ok {
		t.Errorf("mysql params = %v: table leaked to the driver", m.Params)
	}
}

// badURLTests are URLs that fail, with a piece of the reason.
var badURLTests = []struct {
	url, want string
}{
	{"", "empty"},
	{"/var/lib/sessions", "missing scheme"},
	{"./sessions", "missing scheme"},
	{"localhost:6379", "unknown scheme \"localhost\""},
	{"ftp://host/dir", "unknown scheme \"ftp\""},
	{"mem:x", "mem: takes nothing"},
	{"file:", "missing path"},
	{"file://", "missing path"},
	{"file:///", "missing path"},
	{"file:sessions", "relative path \"sessions\""},
	{"file://sessions/dir", "host \"sessions\""},
	{"file:///srv/s?x=1", "unknown parameter \"x\""},
	{"file:///srv/s#frag", "fragment"},
	{"file://u@/srv/s", "no user name"},
	{"bolt:sessions.db", "relative path"},
	{"bolt://./sessions.db", "host \".\""},
	{"bolt:///srv/s.db?table=x", "unknown parameter \"table\""},
	{"bolt:///srv/s.db?bucket=", "one non-empty value"},
	{"sqlite:data/s.db", "relative path"},
	{"sqlite:///srv/s.db?bucket=x", "unknown parameter \"bucket\""},
	{"sqlite:///srv/s.db?table=a&table=b", "one non-empty value"},
	{"redis:", "missing //host"},
	{"redis:127.0.0.1:6379", "missing //host"},
	{"redis://", "missing host"},
	{"redis:///0", "missing host"},
	{"redis://:6379/0", "missing host name"},
	{"redis://h:0/0", "bad port"},
	{"redis://h:99999/0", "bad port"},
	{"redis://h:port/0", "bad port"},
	{"redis://::1/0", "IPv6"},
	{"redis://h/x", "database \"x\" is not a number"},
	{"redis://h/-1", "not a number"},
	{"redis://h/0/1", "want a database number"},
	{"redis://a,b/0", "take one host"},
	{"redis://h/0?db=1", "unknown parameter \"db\""},
	{"redis://h/0?namespace=", "one non-empty value"},
	{"redis://h /0", "white space"},
	{"redis://h%zz/0", "bad host"},
	{"redis://h/%zz", "path"},
	{"redis+cluster://", "missing host"},
	{"redis+cluster://a,,b", "empty entry"},
	{"redis+cluster://a,b/1", "take no path"},
	{"redis+sentinel://s1,s2", "missing master name"},
	{"redis+sentinel://s1/", "missing master name"},
	{"redis+sentinel://s1/m/x", "not a number"},
	{"redis+sentinel://s1/m/1/2", "want /master or /master/db"},
	{"memcache://", "missing host"},
	{"memcache://u:p@h", "no user name or password"},
	{"memcache://h/x", "take no path"},
	{"memcache://h?table=x", "unknown parameter \"table\""},
	{"postgres://", "missing host"},
	{"postgres:///app", "missing host"},
	{"postgres://app@db/app?sslmode=sometimes", "sslmode"},
	{"postgres://app@db/app?table=", "one non-empty value"},
	{"mysql://", "missing host"},
	{"mysql://root@h", "missing database name"},
	{"mysql://root@h/", "missing database name"},
	{"mysql://root@h/a/b", "want one database name"},
	{"mysql://root@a,b/db", "take one host"},
	{"mysql://root@h/db?parseTime=maybe", "mysql:"},
}

func TestParseBadURL(t *testing.T) {
	for _, tt := range badURLTests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parse(tt.url)
			if err == nil {
				t.Fatalf("parse = %+v, want an error", *got)
			}
			if !errors.Is(err, ErrBadURL) {
				t.Errorf("error %q does not wrap ErrBadURL", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q is not one line", msg)
			}
		})
	}
}

// TestBadURLHidesPassword checks that a bad URL's error never shows the
// password it carries.
func TestBadURLHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://:hunter2@h/x",
		"redis://u:hunter2@a,b/0",
		"mysql://root:hunter2@h",
		"postgres://app:hunter2@db/app?sslmode=sometimes",
		"postgres://app@db/app?sslmode=sometimes&password=hunter2",
		"memcache://u:hunter2@h",
	} {
		_, err := parse(u)
		if err == nil {
			t.Fatalf("parse(%q) succeeded", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parse(%q) = %q: shows the password", u, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"mem:", "mem:"},
		{"file:///srv/s", "file:///srv/s"},
		{"redis://h:6379/0", "redis://h:6379/0"},
		{"redis://:pw@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"redis://user@h/0", "redis://user@h/0"},
		{"mysql://root:p@ss@h/db", "mysql://root:xxxxx@h/db"},
		{"postgres://a:b@h/db?sslmode=disable&password=c", "postgres://a:xxxxx@h/db?sslmode=disable&password=xxxxx"},
		{"redis+sentinel://u:p@s1,s2/m?namespace=a@b", "redis+sentinel://u:xxxxx@s1,s2/m?namespace=a@b"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseMaxConns(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want int
	}{
		{"sqlite:///srv/s.db", DefaultSQLiteMaxConns},
		{"sqlite:///srv/s.db?max_conns=1", 1},
		{"redis://h/0?max_conns=50", 50},
		{"rediss://h/0", DefaultMaxConns},
		{"redis+cluster://a,b?max_conns=7&namespace=p", 7},
		{"redis+sentinel://s1/m?max_conns=3", 3},
		{"memcache://m1?max_conns=64", 64},
		{"postgres://app@db/app?sslmode=disable&max_conns=20", 20},
		{"postgres://app@db/app", DefaultMaxConns},
		{"mysql://root@h/db?max_conns=10000&parseTime=true", MaxMaxConns},
		{"mysql://root@h/db", DefaultMaxConns},
	} {
		got, err := parse(tt.url)
		if err != nil {
			t.Errorf("parse(%q): %v", tt.url, err)
			continue
		}
		if got.maxConns != tt.want {
			t.Errorf("parse(%q).maxConns = %d, want %d", tt.url, got.maxConns, tt.want)
		}
		if got.mysql != nil {
			if _, ok := got.mysql.Params["max_conns"]; ok {
				t.Errorf("parse(%q): max_conns leaked to the driver", tt.url)
			}
		}
		if got.pg != nil {
			if _, ok := got.pg.ConnConfig.RuntimeParams["max_conns"]; ok {
				t.Errorf("parse(%q): max_conns leaked to the driver", tt.url)
			}
		}
	}
	for _, tt := range []struct{ url, want string }{
		{"mysql://root@h/db?max_conns=0", `parameter max_conns="0": want a whole number of connections from 1 to 10000`},
		{"redis://h/0?max_conns=-1", `max_conns="-1"`},
		{"postgres://app@db/app?max_conns=ten", `max_conns="ten"`},
		{"memcache://m?max_conns=10001", `max_conns="10001"`},
		{"sqlite:///srv/s.db?max_conns=1.5", `max_conns="1.5"`},
		{"redis://h/0?max_conns=+5", `max_conns=" 5"`}, // + is a space in a query
		{"redis://h/0?max_conns=", "one non-empty value"},
		{"redis://h/0?max_conns=1&max_conns=2", "one non-empty value"},
		{"postgres://app@db/app?pool_max_conns=5", "use max_conns"},
		{"bolt:///srv/s.db?max_conns=5", `unknown parameter "max_conns"`},
		{"file:///srv/s?max_conns=5", `unknown parameter "max_conns"`},
		{"sqlite:///srv/s.db?maxconns=5", `unknown parameter "maxconns": sqlite: URLs take max_conns, table`},
	} {
		_, err := parse(tt.url)
		if err == nil || !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tt.want) || strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("parse(%q) = %v, want a one-line ErrBadURL saying %q", tt.url, err, tt.want)
		}
	}
}
