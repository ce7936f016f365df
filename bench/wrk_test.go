package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWrk measures end to end with a load generator in another process:
// each library's app on a real net/http server on 127.0.0.1, loaded by wrk
// (Debian's package) over keep-alive connections, each request carrying
// one of wrkSessions sessions in turn. Unlike BenchmarkServe*, whose
// clients are Go goroutines in the server's process, wrk is a small C
// program: most of the CPU goes to the server, as in production.
//
// It runs only when KVSESSION_BENCH_WRK names the wrk binary (under
// CI=true it fails without one; .ci/services/wrk.sh installs it). It writes its
// results in Go's benchmark format, which benchstat reads, to
// KVSESSION_BENCH_WRK_OUT (default: the test log):
//
//	BenchmarkWrkRead/lib=kvsession/store=mem 123456 8100 ns/op 123456 req/s
//
// where the iteration count is the requests wrk completed. Rounds are
// interleaved (every library and store once, then again), so a busy minute
// on the machine weighs on all columns alike:
//
//	KVSESSION_BENCH_WRK_ROUNDS    rounds (default 1)
//	KVSESSION_BENCH_WRK_DURATION  wrk's -d per measurement (default 2s)
//	KVSESSION_BENCH_WRK_CONNECTIONS  wrk's -c (default 16)
//	KVSESSION_BENCH_WRK_FILTER    a regular expression: only the measurements
//	                              whose name (Read/lib=kvsession/store=mem)
//	                              it matches, for profiling one of them
//
// Besides measuring, it checks what a user relies on under load: every
// response is a 200, and no kvsession increment is lost (each session's
// counter, read afterwards, accounts for every completed request).
func TestWrk(t *testing.T) {
	wrk := os.Getenv("KVSESSION_BENCH_WRK")
	if wrk == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KVSESSION_BENCH_WRK is unset under CI=true: source .ci/services/wrk.sh")
		}
		t.Skip("KVSESSION_BENCH_WRK is unset")
	}
	rounds := envInt(t, "KVSESSION_BENCH_WRK_ROUNDS", 1)
	conns := envInt(t, "KVSESSION_BENCH_WRK_CONNECTIONS", wrkConnections)
	duration := 2 * time.Second
	if s := os.Getenv("KVSESSION_BENCH_WRK_DURATION"); s != "" {
		var err error
		if duration, err = time.ParseDuration(s); err != nil || duration < time.Second {
			t.Fatalf("KVSESSION_BENCH_WRK_DURATION=%q: want a duration of at least 1s", s)
		}
	}
	out := io.Writer(testWriter{t})
	if path := os.Getenv("KVSESSION_BENCH_WRK_OUT"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out = f
	}
	filter := regexp.MustCompile(os.Getenv("KVSESSION_BENCH_WRK_FILTER"))
	script := filepath.Join(t.TempDir(), "sessions.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		t.Fatal(err)
	}

	// One server per library and store, set up once and loaded in turn.
	type target struct {
		name     string // lib=...,store=...
		url      string
		cookies  string // file of Cookie headers, one a line
		kv       bool   // kvsession: its increments are checked
		readOnly bool   // serves READ only
	}
	var targets []target
	for _, lib := range libraries {
		for _, store := range stores {
			if store == "redis" && redisAddr == "" || store != "redis" && lib.redisOnly {
				continue
			}
			in := lib.new(t, store, options{uncounted: true})
			url, _ := loopbackServer(t, in.handler, 1)
			cookies := make([]string, wrkSessions)
			for i := range cookies {
				cookies[i] = prepare(t, in.handler, "/setup")
			}
			targets = append(targets, target{
				name:    "lib=" + lib.name + "/store=" + store,
				url:     url,
				cookies: writeLines(t, cookies),
				kv:      strings.HasPrefix(lib.name, "kvsession"),
			})
		}
	}
	// The server without sessions gets the same requests, cookies included
	// (a browser sends them whatever the server does with them), so that
	// the difference is the middleware's work alone.
	url, _ := loopbackServer(t, newNoSession(t, "", options{uncounted: true}).handler, 1)
	targets = append(targets, target{name: "lib=nosession/store=mem", url: url, cookies: targets[0].cookies})
	// The floor of a signed-ID session on a read (signedfloor_test.go):
	// verify the cookie, derive the key, look the record up.
	url, _ = loopbackServer(t, newSignedFloor(readLines(t, targets[0].cookies)), 1)
	targets = append(targets, target{name: "lib=signed-floor/store=mem", url: url, cookies: targets[0].cookies, readOnly: true})
	// The floor of the Redis stores: the same requests, each making the
	// bare rueidis commands of the scenario on a record of its own
	// (rueidis_test.go): READ one GET, WRITE a GET and a SET.
	if redisAddr != "" {
		br := newBareRueidis(t)
		for _, cookie := range readLines(t, targets[0].cookies) {
			br.store(t, cookie)
		}
		url, _ := loopbackServer(t, br, 1)
		targets = append(targets, target{name: "lib=bare-rueidis/store=redis", url: url, cookies: targets[0].cookies})
	}

	completed := map[string]int{} // WRITE requests per kvsession target
	for round := range rounds {
		for _, sc := range []struct{ name, path string }{{"Read", "/read"}, {"Write", "/inc"}} {
			for _, tg := range targets {
				if !filter.MatchString(sc.name+"/"+tg.name) || tg.readOnly && sc.name != "Read" {
					continue
				}
				path := sc.path
				if tg.name == "lib=nosession/store=mem" {
					path = "/nosession"
				}
				res := runWrk(t, wrk, script, tg.url, path, tg.cookies, duration, conns)
				fmt.Fprintf(out, "BenchmarkWrk%s/%s \t%d\t%.0f ns/op\t%.0f req/s\n",
					sc.name, tg.name, res.requests, 1e9/res.perSecond, res.perSecond)
				if sc.name == "Write" && tg.kv {
					completed[tg.url] += res.requests
				}
			}
		}
		t.Logf("round %d of %d done", round+1, rounds)
	}

	// No lost update: each kvsession session's counter accounts for every
	// WRITE that wrk saw completed (it may count more: requests still in
	// flight when wrk stopped were served too).
	for _, tg := range targets {
		if !tg.kv {
			continue
		}
		total := 0
		for _, cookie := range readLines(t, tg.cookies) {
			n, err := fetchCount(tg.url, cookie)
			if err != nil {
				t.Fatalf("%s: %v", tg.name, err)
			}
			total += n - 1 // the increment just made
		}
		if total < completed[tg.url] {
			t.Errorf("%s: the sessions counted %d increments, wrk completed %d: updates were lost", tg.name, total, completed[tg.url])
		}
	}
}

// wrkSessions is the number of sessions the requests cycle through: many
// more than the connections, so two requests of one session rarely overlap.
const wrkSessions = 256

// wrkConnections and wrkThreads: one wrk thread keeps 16 connections busy,
// and leaves the server most of the CPU. KVSESSION_BENCH_WRK_CONNECTIONS
// sets another number of connections (the numbers use 50).
const (
	wrkConnections = 16
	wrkThreads     = 1
)

// wrkScript gives each request the next session's cookie, from the file
// named by its first argument; the second is the path.
const wrkScript = `
local reqs = {}
local sent = 0
function init(args)
	for line in io.lines(args[1]) do
		local headers = nil
		if line ~= "" then headers = {Cookie = line} end
		reqs[#reqs + 1] = wrk.format("GET", args[2], headers)
	end
end
function request()
	sent = sent + 1
	return reqs[(sent % #reqs) + 1]
end
`

type wrkResult struct {
	requests  int
	perSecond float64
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkRate     = regexp.MustCompile(`(?m)^Requests/sec:\s*([0-9.]+)`)
	wrkBad      = regexp.MustCompile(`(?m)^\s*(Non-2xx or 3xx responses|Socket errors):.*$`)
)

func runWrk(t *testing.T, wrk, script, url, path, cookies string, d time.Duration, conns int) wrkResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk,
		"-t", strconv.Itoa(wrkThreads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(int(d/time.Second))+"s", "--timeout", "10s",
		"-s", script, url, "--", cookies, path)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrk %s%s: %v\n%s", url, path, err, b)
	}
	text := string(b)
	if m := wrkBad.FindString(text); m != "" {
		t.Fatalf("wrk %s%s: %s\n%s", url, path, strings.TrimSpace(m), text)
	}
	n, rate := wrkRequests.FindStringSubmatch(text), wrkRate.FindStringSubmatch(text)
	if n == nil || rate == nil {
		t.Fatalf("wrk %s%s: no result in its output:\n%s", url, path, text)
	}
	var res wrkResult
	res.requests, _ = strconv.Atoi(n[1])
	res.perSecond, _ = strconv.ParseFloat(rate[1], 64)
	if res.requests == 0 || res.perSecond <= 0 {
		t.Fatalf("wrk %s%s: no request completed:\n%s", url, path, text)
	}
	return res
}

// fetchCount increments a session's counter once and returns the new value.
func fetchCount(url, cookie string) (int, error) {
	req, err := http.NewRequest("GET", url+"/inc", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /inc: %d %s %v", resp.StatusCode, body, err)
	}
	return strconv.Atoi(string(body))
}

func writeLines(t *testing.T, lines []string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "cookies")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
	return f.Name()
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// testWriter sends benchmark lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
