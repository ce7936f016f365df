package kvsession_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

var configErrors = []struct {
	name string
	cfg  kvsession.Config
	want string
}{
	{"no secrets", kvsession.Config{}, "no Secrets"},
	{"secrets and deprecated keys", kvsession.Config{Secrets: [][]byte{testKey}, Keys: [][]byte{testKey}}, "both Secrets and Keys"},
	{"short deprecated key", kvsession.Config{Keys: [][]byte{testKey, []byte("short")}}, "Keys[1] is 5 bytes"},
	{"short key", kvsession.Config{Secrets: [][]byte{[]byte("short")}}, "at least 32"},
	{"short second key", kvsession.Config{Secrets: [][]byte{testKey, []byte("short")}}, "Secrets[1]"},
	{"all-zero key", kvsession.Config{Secrets: [][]byte{make([]byte, 32)}}, "distinct byte values"},
	{"repeated byte key", kvsession.Config{Secrets: [][]byte{[]byte(strings.Repeat("k", 64))}}, "Secrets[0] uses only 1 distinct"},
	{"repeated pair key", kvsession.Config{Secrets: [][]byte{[]byte(strings.Repeat("ab", 16))}}, "distinct byte values"},
	{"seven symbols key", kvsession.Config{Secrets: [][]byte{[]byte(strings.Repeat("1234567", 5))}}, "only 7 distinct"},
	{"weak second key", kvsession.Config{Secrets: [][]byte{testKey, []byte(strings.Repeat("\xff", 32))}}, "Secrets[1] uses only 1"},
	{"bad cookie name", kvsession.Config{Secrets: [][]byte{testKey}, CookieName: "a b"}, "cookie"},
	{"host prefix insecure", kvsession.Config{Secrets: [][]byte{testKey}, CookieName: "__Host-s", InsecureCookie: true}, "__Host-"},
	{"host prefix path", kvsession.Config{Secrets: [][]byte{testKey}, CookieName: "__Host-s", CookiePath: "/app"}, "__Host-"},
	{"host prefix domain", kvsession.Config{Secrets: [][]byte{testKey}, CookieName: "__Host-s", CookieDomain: "example.com"}, "__Host-"},
	{"secure prefix insecure", kvsession.Config{Secrets: [][]byte{testKey}, CookieName: "__Secure-s", InsecureCookie: true}, "__Secure-"},
	{"SameSite None insecure", kvsession.Config{Secrets: [][]byte{testKey}, SameSite: http.SameSiteNoneMode, InsecureCookie: true}, "SameSite=None"},
	{"id bits low", kvsession.Config{Secrets: [][]byte{testKey}, IDBits: 64}, "below 128"},
	{"id bits odd", kvsession.Config{Secrets: [][]byte{testKey}, IDBits: 130}, "multiple of 8"},
	{"lifetime tiny", kvsession.Config{Secrets: [][]byte{testKey}, Lifetime: time.Millisecond}, "Lifetime"},
	{"idle negative", kvsession.Config{Secrets: [][]byte{testKey}, IdleTimeout: -time.Second}, "IdleTimeout"},
	{"refresh without idle", kvsession.Config{Secrets: [][]byte{testKey}, IdleRefresh: time.Second}, "IdleRefresh"},
	{"refresh above idle", kvsession.Config{Secrets: [][]byte{testKey}, IdleTimeout: time.Minute, IdleRefresh: time.Hour}, "IdleRefresh"},
	{"timeout negative", kvsession.Config{Secrets: [][]byte{testKey}, StoreTimeout: -2}, "StoreTimeout"},
	{"record limit tiny", kvsession.Config{Secrets: [][]byte{testKey}, MaxRecordBytes: 10}, "MaxRecordBytes"},
	{"prefix long", kvsession.Config{Secrets: [][]byte{testKey}, KeyPrefix: strings.Repeat("p", 101)}, "KeyPrefix"},
	{"cookie too big", kvsession.Config{Secrets: [][]byte{testKey}, CookieName: strings.Repeat("n", 4060)}, "4096"},
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range configErrors {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kvsession.New(memstore.New(nil), tc.cfg)
			if !errors.Is(err, kvsession.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := kvsession.New(nil, kvsession.Config{Secrets: [][]byte{testKey}}); !errors.Is(err, kvsession.ErrInvalidConfig) {
		t.Errorf("New(nil store) = %v, want ErrInvalidConfig", err)
	}
	ok := kvsession.Config{Secrets: [][]byte{testKey}, CookieName: "__Host-session", IDBits: 128}
	if _, err := kvsession.New(memstore.New(nil), ok); err != nil {
		t.Errorf("New(%+v) = %v, want success", ok, err)
	}
}

// The deprecated Config.Keys still configures a working manager.
func TestDeprecatedKeys(t *testing.T) {
	old, err := kvsession.New(memstore.New(nil), kvsession.Config{Keys: [][]byte{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New(nil)
	cur, err := kvsession.New(store, kvsession.Config{Secrets: [][]byte{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	cur.Handler(app()).ServeHTTP(rec, newRequest("/set?key=a&value=b", ""))
	_, value, _ := strings.Cut(strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0], "=")
	got, err := old.StoreKey(value)
	if err != nil {
		t.Fatalf("a manager configured with Keys: StoreKey(cookie signed with the same secret as Secrets) = %v", err)
	}
	if want, _ := cur.StoreKey(value); got != want {
		t.Fatalf("StoreKey = %q with Keys, %q with Secrets", got, want)
	}
}

// Real secrets pass the weak-key check: random bytes, and the random hex
// or base64 text that people paste into an environment variable.
func TestRandomKeysAccepted(t *testing.T) {
	for i := range 2000 {
		raw := make([]byte, 32)
		rand.Read(raw)
		for _, k := range [][]byte{raw, []byte(hex.EncodeToString(raw[:16])), []byte(base64.RawStdEncoding.EncodeToString(raw[:24]))} {
			if _, err := kvsession.New(memstore.New(nil), kvsession.Config{Secrets: [][]byte{k}}); err != nil {
				t.Fatalf("key %d %q: New = %v, want success", i, k, err)
			}
		}
	}
}

// The Config is copied at New: changing it afterwards changes nothing.
func TestConfigFrozen(t *testing.T) {
	key := append([]byte(nil), testKey...)
	cfg := kvsession.Config{Secrets: [][]byte{key}}
	m, err := kvsession.New(memstore.New(nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	m.Handler(app()).ServeHTTP(rec, newRequest("/set?key=a&value=b", ""))
	cookie := strings.Split(rec.Result().Header.Get("Set-Cookie"), ";")[0]
	key[0] ^= 0xff
	cfg.CookieName = "changed"
	rec = newRecorder()
	m.Handler(app()).ServeHTTP(rec, newRequest("/get?key=a", cookie))
	if rec.Body.String() != "b" {
		t.Errorf("after changing the caller's Config and key, the session reads %q, want b", rec.Body.String())
	}
}

func TestRandomSource(t *testing.T) {
	m, _ := kvsession.New(memstore.New(nil), kvsession.Config{Secrets: [][]byte{testKey}, Rand: strings.NewReader("")})
	rec := newRecorder()
	m.Handler(app()).ServeHTTP(rec, newRequest("/set?key=a&value=b", ""))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("with a failing random source: %d, Set-Cookie %q; want 503 and no cookie", rec.Code, rec.Header().Get("Set-Cookie"))
	}
}
