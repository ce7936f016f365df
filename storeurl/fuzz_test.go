package storeurl

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
)

// FuzzParse checks that no input makes parse panic, that every rejection
// is a one-line error wrapping ErrBadURL, and that what parse accepts is
// consistent.
func FuzzParse(f *testing.F) {
	for _, s := range schemes {
		f.Add(s.Example)
	}
	for _, tt := range parseTests {
		f.Add(tt.url)
	}
	for _, tt := range badURLTests {
		f.Add(tt.url)
	}
	for _, u := range []string{
		"memcache://host?prefix=a%20b", // panicked in memcachestore.New once; now the old name of namespace
		"memcache://host?prefix=%00",
		"redis://h/0?prefix=%0A&max_conns=3",
		"memcache://host?namespace=a%20b",
		"memcache://host?namespace=%00",
		"redis://h/0?namespace=%0A&max_conns=3",
		"redis://h/0?namespace=a&prefix=b",
		"postgres://app@db/app?max_conns=0",
		"mysql://root@h/db?max_conns=99999999999999999999",
		"sqlite:///a/b.db?max_conns=1&table=select",
		"bolt:///a/b.db?bucket=%FF%00",
		"file:///%2e%2e/etc",
		"redis+sentinel://[::1%25lo]:1/m/0",
		"postgres://u@h/d?host=/tmp&port=x",
	} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := parse(raw)
		_ = Redact(raw)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Errorf("parse(%q): error %q does not wrap ErrBadURL", raw, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("parse(%q): error %q is not one line", raw, err)
			}
			return
		}
		if !slices.Contains(schemes, tg.scheme) {
			t.Fatalf("parse(%q): scheme %+v not in the table", raw, tg.scheme)
		}
		switch tg.scheme.syntax {
		case syntaxPath:
			if !filepath.IsAbs(tg.path) {
				t.Errorf("parse(%q): relative path %q", raw, tg.path)
			}
		case syntaxNone:
		default:
			if tg.maxConns < 1 || tg.maxConns > MaxMaxConns {
				t.Errorf("parse(%q): maxConns %d", raw, tg.maxConns)
			}
		}
	})
}

// deadAddr is a loopback address where nothing listens (port 1, tcpmux),
// so that FuzzOpen's network schemes fail at once without leaving the
// machine.
const deadAddr = "127.0.0.1:1"

// fuzzSchemes are the schemes FuzzOpen builds URLs for, in an order its
// seeds rely on.
var fuzzSchemes = []string{"mem", "file", "bolt", "sqlite", "redis", "rediss", "redis+cluster", "redis+sentinel", "memcache", "postgres", "mysql"}

// FuzzOpen checks that no URL makes Open panic. It opens the stores kept
// in files under a temporary directory and, when one opens, writes, reads
// and deletes a record through it. For the network schemes the host is
// always deadAddr: the fuzzer picks the path and the parameters.
func FuzzOpen(f *testing.F) {
	f.Add(uint8(0), "", false)
	f.Add(uint8(1), "sessions", false)
	f.Add(uint8(1), "a/../b", true)
	f.Add(uint8(2), "s.db?bucket=app1", false)
	f.Add(uint8(2), "s.db?bucket=%FF%00", false)
	f.Add(uint8(2), "missing.db", true)
	f.Add(uint8(3), "s.db?table=app_sessions&max_conns=2", false)
	f.Add(uint8(3), "s.db?table=select", false)
	f.Add(uint8(3), "s.db?table=sqlite_x", false)
	f.Add(uint8(3), "s.db?max_conns=0", false)
	f.Add(uint8(3), "", false)
	f.Add(uint8(4), "0?prefix=a%20b", false)
	f.Add(uint8(5), "1", false)
	f.Add(uint8(6), "?prefix={app}:&max_conns=3", false)
	f.Add(uint8(7), "mymaster/2", false)
	f.Add(uint8(8), "?prefix=a%20b", false) // panicked in memcachestore.New once
	f.Add(uint8(8), "?prefix=%00%0A", false)
	f.Add(uint8(4), "0?namespace=a%20b", false)
	f.Add(uint8(6), "?namespace={app}:&max_conns=3", false)
	f.Add(uint8(8), "?namespace=a%20b", false)
	f.Add(uint8(8), "?namespace=%00%0A", false)
	f.Add(uint8(9), "test?sslmode=disable&table=t&max_conns=2", true)
	f.Add(uint8(9), "test?pool_min_conns=50", false)
	f.Add(uint8(10), "test?table=t&parseTime=true", true)
	f.Fuzz(func(t *testing.T, which uint8, rest string, readOnly bool) {
		scheme := fuzzSchemes[int(which)%len(fuzzSchemes)]
		dir := t.TempDir()
		var raw string
		sep := "/"
		if strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "?") {
			sep = ""
		}
		switch scheme {
		case "mem":
			raw = "mem:" + rest
		case "file", "bolt", "sqlite":
			raw = scheme + "://" + dir + sep + rest
		default:
			raw = scheme + "://" + deadAddr + sep + rest
		}
		tg, err := parse(raw)
		if err != nil {
			return
		}
		switch {
		case tg.path != "" && !strings.HasPrefix(tg.path+"/", dir+"/"):
			return // outside the temporary directory
		case !offline(tg):
			return // a parameter names another server
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		s, c, err := Open(ctx, raw, Options{ReadOnly: readOnly, CreateSchema: true, Timeout: 200 * time.Millisecond})
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("Open(%q): error %q is not one line", raw, err)
			}
			return
		}
		defer c.Close()
		if readOnly {
			s.Get(ctx, "k")
			return
		}
		if err := s.Set(ctx, "k", []byte("v"), time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Open(%q) succeeded, then Set: %v", raw, err)
		}
		if e, err := s.Get(ctx, "k"); err != nil || string(e.Value) != "v" {
			t.Fatalf("Open(%q) succeeded, then Get = %q, %v", raw, e.Value, err)
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatalf("Open(%q) succeeded, then Delete: %v", raw, err)
		}
		if _, err := s.Get(ctx, "k"); !errors.Is(err, kvsession.ErrNotFound) {
			t.Fatalf("Open(%q) succeeded, then Get after Delete: %v", raw, err)
		}
	})
}

// offline reports whether every server that tg names is deadAddr.
func offline(tg *target) bool {
	for _, a := range tg.addrs {
		if a != deadAddr {
			return false
		}
	}
	switch {
	case tg.pg != nil:
		c := tg.pg.ConnConfig
		if c.Host != "127.0.0.1" || c.Port != 1 {
			return false
		}
		for _, fb := range c.Fallbacks {
			if fb.Host != "127.0.0.1" || fb.Port != 1 {
				return false
			}
		}
	case tg.mysql != nil:
		return tg.mysql.Net == "tcp" && tg.mysql.Addr == deadAddr
	}
	return true
}
