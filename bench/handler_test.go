package bench

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// These tests check that every library's handler does the work the
// benchmarks time: sessions persist across requests, values round-trip,
// and every request that should reach the store does. They assert no
// performance target.

// request sends one request with cookie (if any) and returns the response
// and the cookie to use next: a new one if the response set one.
func request(t *testing.T, h http.Handler, path, cookie string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	if c, _, _ := strings.Cut(rec.Header().Get("Set-Cookie"), ";"); c != "" {
		cookie = c
	}
	return rec, cookie
}

func expectBody(t *testing.T, rec *httptest.ResponseRecorder, path, want string) {
	t.Helper()
	if got := rec.Body.String(); got != want {
		t.Errorf("GET %s: body %q, want %q", path, got, want)
	}
}

func forEachInstance(t *testing.T, o options, fn func(t *testing.T, in *instance)) {
	for _, lib := range libraries {
		if o.idle && !lib.idle {
			continue
		}
		for _, store := range stores {
			t.Run(lib.name+"/"+store, func(t *testing.T) { fn(t, lib.new(t, store, o)) })
		}
	}
}

func TestSessionsPersist(t *testing.T) {
	for _, o := range []options{{}, {idle: true}} {
		name := "plain"
		if o.idle {
			name = "idle"
		}
		t.Run(name, func(t *testing.T) {
			forEachInstance(t, o, func(t *testing.T, in *instance) {
				h := in.handler

				// NEW, then WRITE and READ on the session it made.
				rec, cookie := request(t, h, "/new", "")
				expectBody(t, rec, "/new", "ok")
				if cookie == "" {
					t.Fatal("GET /new set no cookie")
				}
				rec, cookie = request(t, h, "/inc", cookie)
				expectBody(t, rec, "/inc", "1")
				rec, cookie = request(t, h, "/inc", cookie)
				expectBody(t, rec, "/inc", "2")
				in.counts.reset()
				rec, _ = request(t, h, "/read", cookie)
				expectBody(t, rec, "/read", user)
				if in.counts.reads.Load() < 1 {
					t.Errorf("READ made no store read")
				}

				// The setup sessions of the benchmarks.
				_, small := request(t, h, "/setup", "")
				rec, small = request(t, h, "/inc", small)
				expectBody(t, rec, "/inc", "2")
				rec, _ = request(t, h, "/read", small)
				expectBody(t, rec, "/read", user)
				_, large := request(t, h, "/setup2k", "")
				in.counts.reset()
				rec, _ = request(t, h, "/read", large)
				expectBody(t, rec, "/read", user)
				if n := in.counts.readBytes.Load(); n < 1800 {
					t.Errorf("the 2 KB session read %d bytes from the store", n)
				}
				t.Logf("2 KB session: %d bytes stored", in.counts.readBytes.Load())

				// The structured values, read back whole (the handlers
				// compare them with what was stored).
				_, structured := request(t, h, "/setup2kv", "")
				for _, c := range []struct{ path, want string }{
					{"/map", structPrefs["theme"]}, {"/struct", structProfile.Email}, {"/slice", structRecent[19]},
				} {
					in.counts.reset()
					rec, _ = request(t, h, c.path, structured)
					expectBody(t, rec, c.path, c.want)
					if n := in.counts.readBytes.Load(); n < 1800 {
						t.Errorf("GET %s: the structured session read %d bytes from the store", c.path, n)
					}
				}
				t.Logf("structured 2 KB session: %d bytes stored", in.counts.readBytes.Load())

				// Without a cookie, READ finds nothing.
				rec = httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/read", nil))
				if rec.Code != http.StatusInternalServerError {
					t.Errorf("GET /read without a cookie: %d %s", rec.Code, rec.Body)
				}
			})
		})
	}
}

// TestScenarioCalls logs the store calls of each scenario, as the
// benchmarks report them, and checks that the benchmark harness's requests
// succeed.
func TestScenarioCalls(t *testing.T) {
	for _, sc := range []struct {
		name string
		scenario
	}{{"READ", scRead}, {"WRITE", scWrite}, {"NEW", scNew}, {"READ2K", scRead2K},
		{"READ2K-map", scRead2KMap}, {"READ2K-struct", scRead2KStruct}, {"READ2K-slice", scRead2KSlice}, {"IDLE", scIdle}, {"UNTOUCHED", scUntouched}} {
		t.Run(sc.name, func(t *testing.T) {
			forEachInstance(t, options{idle: sc.idle}, func(t *testing.T, in *instance) {
				cookie := ""
				if sc.setup != "" {
					cookie = prepare(t, in.handler, sc.setup)
				}
				in.counts.reset()
				const n = 3
				for range n {
					request(t, in.handler, sc.path, cookie)
				}
				t.Logf("%s: %.1f reads, %.1f writes, %.1f round trips per request", sc.name,
					float64(in.counts.reads.Load())/n, float64(in.counts.writes.Load())/n, float64(in.counts.rtt.Load())/n)
			})
		})
	}
}

// TestServe sends a few requests to each library's server over loopback, as
// BenchmarkServeRead and BenchmarkServeWrite do.
func TestServe(t *testing.T) {
	forEachInstance(t, options{}, func(t *testing.T, in *instance) {
		url, client := loopbackServer(t, in.handler, 2)
		cookie := prepare(t, in.handler, "/setup")
		for i, path := range []string{"/read", "/inc", "/inc", "/read"} {
			req, err := http.NewRequest("GET", url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Cookie", cookie)
			code, body, err := get(client, req)
			if err != nil || code != http.StatusOK {
				t.Fatalf("GET %s: %d %q %v", path, code, body, err)
			}
			want := []string{user, "2", "3", user}[i]
			if body != want {
				t.Errorf("GET %s: %q, want %q", path, body, want)
			}
		}
	})
}

// TestUncounted checks the instances TestWrk loads: each library on its
// bare store serves the scenarios as the counted instance does, and no
// call is counted.
func TestUncounted(t *testing.T) {
	forEachInstance(t, options{uncounted: true}, func(t *testing.T, in *instance) {
		cookie := prepare(t, in.handler, "/setup")
		for i, path := range []string{"/read", "/inc", "/inc", "/read"} {
			rec, _ := request(t, in.handler, path, cookie)
			expectBody(t, rec, path, []string{user, "2", "3", user}[i])
		}
		c := in.counts
		if r, w, rtt := c.reads.Load(), c.writes.Load(), c.rtt.Load(); r+w+rtt != 0 {
			t.Errorf("uncounted instance counted %d reads, %d writes, %d round trips", r, w, rtt)
		}
	})
}
