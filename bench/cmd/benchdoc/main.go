// Command benchdoc writes docs/BENCHMARKS.md from the output of the
// benchmarks of this module, the benchstat summary of it, kvsession's
// profiles, and the template BENCHMARKS.tmpl.md, which holds the prose.
// scripts/bench runs it; nobody edits the generated file by hand.
//
//	go run ./cmd/benchdoc -results results.txt -benchstat benchstat.txt \
//		-profiles profiles/ -command '...' -out ../docs/BENCHMARKS.md
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

func main() {
	var (
		results   = flag.String("results", "", "raw output of go test -bench (required)")
		benchstat = flag.String("benchstat", "", "output of benchstat -col /lib")
		profiles  = flag.String("profiles", "", "directory of pprof -top outputs (*.txt)")
		tmpl      = flag.String("template", "BENCHMARKS.tmpl.md", "the document's template")
		out       = flag.String("out", "", "the document to write (default stdout)")
		command   = flag.String("command", "", "the command that produced the results")
		goVersion = flag.String("go", runtime.Version(), "go version of the benchmarks")
		commit    = flag.String("commit", "", "the revision benchmarked")
		note      = flag.String("note", "", "a remark on the run, such as a busy machine")
		chart     = flag.String("chart", "", "where to write the SVG chart of the end-to-end throughput, beside -out (default none)")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("benchdoc: ")
	if *results == "" {
		log.Fatal("-results is required")
	}
	f, err := os.Open(*results)
	if err != nil {
		log.Fatal(err)
	}
	set, err := parse(f)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	if len(set.results) == 0 {
		log.Fatalf("%s holds no benchmark results", *results)
	}
	d := doc{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Command:   *command,
		Commit:    *commit,
		Note:      *note,
		Machine:   machine(set, *goVersion),
		Tables:    tables(set),
		Targets:   targets(set),
		Scale:     scaleTable(set),
		Wrk:       serveTable(set, "Wrk"),
		Serve:     serveTable(set, "Serve"),
		Versions:  versions("go.mod"),
		Benchstat: benchstatTables(readOptional(*benchstat)),
		Profiles:  readProfiles(*profiles),
	}
	if *chart != "" {
		if svg := wrkChart(set); svg != "" {
			if err := os.WriteFile(*chart, []byte(svg), 0o644); err != nil {
				log.Fatal(err)
			}
			d.Chart = filepath.Base(*chart)
		}
	}
	t, err := template.ParseFiles(*tmpl)
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		log.Fatal(err)
	}
	if *out == "" {
		os.Stdout.Write(buf.Bytes())
		return
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// doc is what the template sees. Every field but the prose of the template
// comes from the run.
type doc struct {
	Date, Command, Commit, Note string
	Machine                     string
	Versions                    string // the peers and clients, from go.mod
	Tables                      string // the scenario x library tables
	Targets                     string // the targets and whether they are met
	Scale                       string // BenchmarkScale and BenchmarkCleanup
	Wrk                         string // TestWrk: WrkRead and WrkWrite
	Chart                       string // file name of the SVG chart of Wrk, beside the document, or "" if none
	Serve                       string // BenchmarkServeRead and BenchmarkServeWrite
	Benchstat                   string
	Profiles                    []profile
}

type profile struct{ Name, Text string }

// --- parsing -----------------------------------------------------------------

// result is one benchmark, all its runs.
type result struct {
	name    string               // without the Benchmark prefix and the -N suffix
	base    string               // the top-level name: Read, Write, ...
	keys    map[string]string    // lib, store, sessions, ...
	samples map[string][]float64 // unit -> one value per run
}

type resultSet struct {
	header  map[string]string // goos, goarch, cpu, pkg
	results map[string]*result
}

func parse(r io.Reader) (*resultSet, error) {
	set := &resultSet{header: map[string]string{}, results: map[string]*result{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, "Benchmark") && !strings.Contains(k, " ") {
			set.header[k] = strings.TrimSpace(v)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || len(fields)%2 != 0 {
			continue // a benchmark that logged, skipped or failed
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue
		}
		name := strings.TrimPrefix(fields[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		res := set.results[name]
		if res == nil {
			res = &result{name: name, keys: map[string]string{}, samples: map[string][]float64{}}
			parts := strings.Split(name, "/")
			res.base = parts[0]
			for _, p := range parts[1:] {
				if k, v, ok := strings.Cut(p, "="); ok {
					res.keys[k] = v
				}
			}
			set.results[name] = res
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", line, err)
			}
			res.samples[fields[i+1]] = append(res.samples[fields[i+1]], v)
		}
	}
	return set, sc.Err()
}

// get returns the median of unit for the benchmark base with keys, and
// whether it was measured.
func (s *resultSet) get(base, unit string, keys ...string) (float64, bool) {
	name := base
	for i := 0; i+1 < len(keys); i += 2 {
		name += "/" + keys[i] + "=" + keys[i+1]
	}
	r := s.results[name]
	if r == nil || len(r.samples[unit]) == 0 {
		return 0, false
	}
	return median(r.samples[unit]), true
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// spread returns the largest distance of a run from the median, relative
// to the median: a plain noise indicator beside benchstat's intervals.
func (s *resultSet) spread(base, unit string, keys ...string) float64 {
	name := base
	for i := 0; i+1 < len(keys); i += 2 {
		name += "/" + keys[i] + "=" + keys[i+1]
	}
	r := s.results[name]
	if r == nil || len(r.samples[unit]) < 2 {
		return 0
	}
	m := median(r.samples[unit])
	worst := 0.0
	for _, v := range r.samples[unit] {
		worst = max(worst, math.Abs(v-m)/m)
	}
	return worst
}

// --- formatting --------------------------------------------------------------

func fmtTime(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.3g ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	default:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	}
}

func fmtCount(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fmtRatio(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f×", v)
	case v >= 10:
		return fmt.Sprintf("%.1f×", v)
	}
	return fmt.Sprintf("%.3g×", v)
}

// --- the tables --------------------------------------------------------------

var scenarios = []struct{ base, label string }{
	{"Read", "READ"}, {"Write", "WRITE"}, {"New", "NEW"}, {"Read2K", "READ2K"},
	{"Read2KMap", "READ2K-map"}, {"Read2KStruct", "READ2K-struct"}, {"Read2KSlice", "READ2K-slice"},
	{"Idle", "IDLE"}, {"Untouched", "UNTOUCHED"},
}

var (
	libs   = []string{"kvsession", "scs", "gorilla", "floor", "nosession"}
	peers  = []string{"scs", "gorilla"}
	stores = []string{"mem", "redis"}
)

func storeTitle(store string) string {
	if store == "mem" {
		return "Memory store"
	}
	return "Redis (loopback)"
}

// cell describes one library in one scenario: time, allocations, store calls.
func cell(s *resultSet, base, lib, store string) string {
	ns, ok := s.get(base, "ns/op", "lib", lib, "store", store)
	if !ok {
		return "–"
	}
	parts := []string{"**" + fmtTime(ns) + "**"}
	if sp := s.spread(base, "ns/op", "lib", lib, "store", store); sp >= 0.2 {
		parts[0] += fmt.Sprintf(" ±%.0f%%", sp*100)
	}
	if a, ok := s.get(base, "allocs/op", "lib", lib, "store", store); ok {
		b, _ := s.get(base, "B/op", "lib", lib, "store", store)
		parts = append(parts, fmt.Sprintf("%s allocs, %s B", fmtCount(a), fmtCount(math.Round(b))))
	}
	if lib != "nosession" {
		r, _ := s.get(base, "reads/op", "lib", lib, "store", store)
		w, _ := s.get(base, "writes/op", "lib", lib, "store", store)
		calls := fmt.Sprintf("%s r + %s w", fmtCount(math.Round(r*100)/100), fmtCount(math.Round(w*100)/100))
		if rtt, ok := s.get(base, "rtt/op", "lib", lib, "store", store); ok {
			calls += fmt.Sprintf(", %s rtt", fmtCount(math.Round(rtt*100)/100))
		}
		if c, ok := s.get(base, "cookies/op", "lib", lib, "store", store); ok && c > 0 {
			calls += ", cookie"
		}
		parts = append(parts, calls)
	}
	return strings.Join(parts, "<br>")
}

func ratio(s *resultSet, base, unit, lib, other, store string) (float64, bool) {
	a, ok1 := s.get(base, unit, "lib", lib, "store", store)
	b, ok2 := s.get(base, unit, "lib", other, "store", store)
	if !ok1 || !ok2 || b == 0 {
		return 0, false
	}
	return a / b, true
}

func ratioCell(s *resultSet, base, unit, lib, other, store string) string {
	if r, ok := ratio(s, base, unit, lib, other, store); ok {
		return fmtRatio(r)
	}
	return "–"
}

func tables(s *resultSet) string {
	var b strings.Builder
	for _, store := range stores {
		if _, ok := s.get("Read", "ns/op", "lib", "kvsession", "store", store); !ok {
			fmt.Fprintf(&b, "### %s\n\nNot measured in this run.\n\n", storeTitle(store))
			continue
		}
		fmt.Fprintf(&b, "### %s\n\n", storeTitle(store))
		b.WriteString("| scenario |")
		for _, lib := range libs {
			if lib == "nosession" && store != "mem" {
				continue
			}
			fmt.Fprintf(&b, " %s |", lib)
		}
		b.WriteString("\n|---|")
		for _, lib := range libs {
			if lib == "nosession" && store != "mem" {
				continue
			}
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, sc := range scenarios {
			fmt.Fprintf(&b, "| %s |", sc.label)
			for _, lib := range libs {
				if lib == "nosession" && store != "mem" {
					continue
				}
				fmt.Fprintf(&b, " %s |", cell(s, sc.base, lib, store))
			}
			b.WriteString("\n")
		}
		b.WriteString("\nkvsession relative to the floor and to its peers (time, and allocations for the peers; below 1× is better):\n\n")
		b.WriteString("| scenario | ÷ floor | ÷ scs time | ÷ scs allocs | ÷ gorilla time | ÷ gorilla allocs |\n|---|---|---|---|---|---|\n")
		var belowFloor []string
		for _, sc := range scenarios {
			if r, ok := ratio(s, sc.base, "ns/op", "kvsession", "floor", store); ok && r < 1 {
				belowFloor = append(belowFloor, sc.label)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", sc.label,
				ratioCell(s, sc.base, "ns/op", "kvsession", "floor", store),
				ratioCell(s, sc.base, "ns/op", "kvsession", "scs", store),
				ratioCell(s, sc.base, "allocs/op", "kvsession", "scs", store),
				ratioCell(s, sc.base, "ns/op", "kvsession", "gorilla", store),
				ratioCell(s, sc.base, "allocs/op", "kvsession", "gorilla", store))
		}
		if len(belowFloor) > 0 {
			fmt.Fprintf(&b, "\nkvsession measured faster than its own floor in %s: a request cannot cost less than"+
				" the store operation it makes, so those columns met different load on the machine during their runs"+
				" (each benchmark's runs are consecutive); read these ratios as noise.\n",
				strings.Join(belowFloor, ", "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// --- the targets ---------------------------------------------------------------

type target struct {
	what, want, got string
	met             string // "yes", "**no**", or "–" when not measured
}

func verdict(ok, measured bool) string {
	switch {
	case !measured:
		return "–"
	case ok:
		return "yes"
	}
	return "**no**"
}

func targets(s *resultSet) string {
	var ts []target
	calls := func(label, base, store string, wantR, wantW float64) {
		r, ok1 := s.get(base, "reads/op", "lib", "kvsession", "store", store)
		w, ok2 := s.get(base, "writes/op", "lib", "kvsession", "store", store)
		ts = append(ts, target{
			what: fmt.Sprintf("%s store calls, %s", label, store),
			want: fmt.Sprintf("%s read + %s write", fmtCount(wantR), fmtCount(wantW)),
			got:  fmt.Sprintf("%s + %s", fmtCount(math.Round(r*1000)/1000), fmtCount(math.Round(w*1000)/1000)),
			met:  verdict(math.Abs(r-wantR) < 0.01 && math.Abs(w-wantW) < 0.01, ok1 && ok2),
		})
	}
	for _, store := range stores {
		calls("READ", "Read", store, 1, 0)
		calls("IDLE", "Idle", store, 1, 0)
		calls("WRITE", "Write", store, 1, 1)
		calls("UNTOUCHED", "Untouched", store, 0, 0)
	}
	covered := map[string]bool{}
	vs := func(label, base, unit, other, store string, limit float64) {
		covered[base+unit+other+store] = true
		r, ok := ratio(s, base, unit, "kvsession", other, store)
		what := "time"
		if unit == "allocs/op" {
			what = "allocations"
		}
		ts = append(ts, target{
			what: fmt.Sprintf("%s %s, %s, vs %s", label, what, store, other),
			want: "≤ " + fmtRatio(limit),
			got:  fmtRatio(r),
			met:  verdict(r <= limit, ok),
		})
	}
	vs("READ", "Read", "ns/op", "scs", "mem", 0.1) // DESIGN.md section 6
	vs("READ", "Read", "allocs/op", "scs", "mem", 0.15)
	vs("READ2K", "Read2K", "ns/op", "scs", "mem", 0.2)
	vs("READ2K", "Read2K", "allocs/op", "scs", "mem", 0.15)
	for _, sc := range [][2]string{{"READ2K-map", "Read2KMap"}, {"READ2K-struct", "Read2KStruct"}, {"READ2K-slice", "Read2KSlice"}} {
		vs(sc[0], sc[1], "ns/op", "scs", "mem", 0.2)
		vs(sc[0], sc[1], "allocs/op", "scs", "mem", 0.1)
	}
	vs("WRITE", "Write", "ns/op", "scs", "mem", 0.15)
	vs("NEW", "New", "ns/op", "scs", "mem", 0.5) // issue 14
	vs("NEW", "New", "ns/op", "scs", "redis", 1)
	for _, sc := range scenarios {
		for _, peer := range peers {
			if sc.base == "Untouched" || sc.base == "Idle" && peer == "gorilla" {
				continue // not a scenario of the design's comparison
			}
			for _, unit := range []string{"ns/op", "allocs/op"} {
				r, ok := ratio(s, sc.base, unit, "kvsession", peer, "mem")
				if ok && r >= 1 && !covered[sc.base+unit+peer+"mem"] {
					what := "time"
					if unit == "allocs/op" {
						what = "allocations"
					}
					ts = append(ts, target{
						what: fmt.Sprintf("%s %s, mem, vs %s (design: faster, fewer allocations)", sc.label, what, peer),
						want: "< 1×", got: fmtRatio(r), met: "**no**",
					})
				}
			}
		}
	}
	// End to end under wrk: throughput, so the ratios are the other way up.
	// The server without sessions is measured on the memory store only.
	// A row without a limit is a floor, for reference: what a server
	// without kvsession reached on the same comparison in the same run,
	// which bounds what kvsession can.
	for _, c := range []struct {
		label, base, lib, store, other, otherStore string
		limit                                      float64
		reference                                  string // of a row without a limit
	}{
		{"READ", "WrkRead", "kvsession", "mem", "nosession", "mem", 0.9, ""}, // issue 14
		{"READ", "WrkRead", "signed-floor", "mem", "nosession", "mem", 0, "the floor of the row above"},
		{"READ", "WrkRead", "kvsession", "mem", "signed-floor", "mem", 0, "kvsession's own work"},
		{"WRITE", "WrkWrite", "kvsession", "mem", "nosession", "mem", 0.8, ""},
		{"READ", "WrkRead", "kvsession", "redis", "scs", "redis", 1.3, ""},
		{"WRITE", "WrkWrite", "kvsession", "redis", "scs", "redis", 1.3, ""},
		{"READ", "WrkRead", "kvsession-rueidis", "redis", "scs", "redis", 2, ""},
		{"READ", "WrkRead", "bare-rueidis", "redis", "scs", "redis", 0, "the floor of the row above"},
		{"WRITE", "WrkWrite", "kvsession-rueidis", "redis", "scs", "redis", 1.7, ""},
		{"READ", "WrkRead", "kvsession-rueidis", "redis", "bare-rueidis", "redis", 0.9, ""},
	} {
		kv, ok1 := s.get(c.base, "req/s", "lib", c.lib, "store", c.store)
		o, ok2 := s.get(c.base, "req/s", "lib", c.other, "store", c.otherStore)
		r := kv / o
		t := target{
			what: fmt.Sprintf("%s throughput under wrk, %s, %s vs %s", c.label, c.store, c.lib, c.other),
			want: "≥ " + fmtRatio(c.limit),
			got:  fmtRatio(r),
			met:  verdict(r >= c.limit, ok1 && ok2),
		}
		if c.limit == 0 {
			t.want = "(" + c.reference + ")"
			if t.met != "–" {
				t.met = "reference"
			}
		}
		ts = append(ts, t)
	}
	// Coherent client-side caching: a cached Redis READ within 3x of the
	// memory store's.
	cached, ok1 := s.get("Read", "ns/op", "lib", "kvsession-rueidis-cache", "store", "redis")
	mem, ok2 := s.get("Read", "ns/op", "lib", "kvsession", "store", "mem")
	ts = append(ts, target{
		what: "READ time, redis with client-side caching (kvsession-rueidis-cache), vs kvsession on the memory store",
		want: "≤ " + fmtRatio(3),
		got:  fmtRatio(cached / mem),
		met:  verdict(cached/mem <= 3, ok1 && ok2),
	})
	vs("READ", "Read", "ns/op", "floor", "redis", 1.05) // issue 14, item 5
	vs("WRITE", "Write", "ns/op", "floor", "redis", 1.10)
	// The floor is a bare client call; kvsession's request also pays for
	// the HTTP harness, which lib=nosession measures alone.
	for _, c := range []struct {
		label, base string
		limit       float64
	}{{"READ", "Read", 1.05}, {"WRITE", "Write", 1.10}} {
		kv, ok1 := s.get(c.base, "ns/op", "lib", "kvsession", "store", "redis")
		fl, ok2 := s.get(c.base, "ns/op", "lib", "floor", "store", "redis")
		h, ok3 := s.get(c.base, "ns/op", "lib", "nosession", "store", "mem")
		r := kv / (fl + h)
		ts = append(ts, target{
			what: fmt.Sprintf("%s time, redis, vs floor + the bare HTTP harness (nosession)", c.label),
			want: "≤ " + fmtRatio(c.limit),
			got:  fmtRatio(r),
			met:  verdict(r <= c.limit, ok1 && ok2 && ok3),
		})
	}
	for _, store := range stores {
		small, ok1 := s.get("Scale", "ns/op", "store", store, "sessions", "1e3", "lib", "kvsession")
		bigName := "1e6"
		if store == "redis" {
			bigName = "1e5"
		}
		big, ok2 := s.get("Scale", "ns/op", "store", store, "sessions", bigName, "lib", "kvsession")
		if !ok2 && store == "mem" {
			bigName = "1e5"
			big, ok2 = s.get("Scale", "ns/op", "store", store, "sessions", bigName, "lib", "kvsession")
		}
		ts = append(ts, target{
			what: fmt.Sprintf("READ flat from 1e3 to %s sessions, %s", bigName, store),
			want: "within 10%",
			got:  fmt.Sprintf("%+.0f%%", (big/small-1)*100),
			met:  verdict(math.Abs(big/small-1) <= 0.10, ok1 && ok2),
		})
	}
	var b strings.Builder
	b.WriteString("| target | wanted | measured | met |\n|---|---|---|---|\n")
	for _, t := range ts {
		if t.met == "–" {
			t.got = "not measured"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.what, t.want, t.got, t.met)
	}
	return b.String()
}

// --- scale, cleanup, serve -------------------------------------------------------

func scaleTable(s *resultSet) string {
	var b strings.Builder
	b.WriteString("| store | sessions | kvsession READ | floor (bare lookup) | kvsession allocs |\n|---|---|---|---|---|\n")
	for _, store := range stores {
		for _, n := range []string{"1e3", "1e5", "1e6"} {
			kv, ok := s.get("Scale", "ns/op", "store", store, "sessions", n, "lib", "kvsession")
			if !ok {
				continue
			}
			fl, _ := s.get("Scale", "ns/op", "store", store, "sessions", n, "lib", "floor")
			a, _ := s.get("Scale", "allocs/op", "store", store, "sessions", n, "lib", "kvsession")
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", store, n, fmtTime(kv), fmtTime(fl), fmtCount(a))
		}
	}
	var cl []string
	for _, n := range []string{"1e3", "1e4", "1e5"} {
		if v, ok := s.get("Cleanup", "ns/record", "lib", "kvsession", "store", "mem", "expired", n); ok {
			cl = append(cl, fmt.Sprintf("| %s | %s | %s |", n, fmtTime(v), fmtTime(v*mustParse(n))))
		}
	}
	if len(cl) > 0 {
		b.WriteString("\nCleanup (Manager.Cleanup on the memory store, every record expired):\n\n| expired records | per record | per cleanup |\n|---|---|---|\n")
		b.WriteString(strings.Join(cl, "\n") + "\n")
	}
	return b.String()
}

func mustParse(n string) float64 {
	v, err := strconv.ParseFloat(n, 64)
	if err != nil {
		panic(err)
	}
	return v
}

// serveTable gives the throughputs of an end-to-end measurement: prefix
// "Wrk" (TestWrk) or "Serve" (BenchmarkServeRead and BenchmarkServeWrite).
func serveTable(s *resultSet, prefix string) string {
	// The peers' columns, then any other library measured (the rueidis
	// stores and their bare floor), then the server without sessions.
	cols := []string{"kvsession", "scs", "gorilla"}
	var extra []string
	for _, r := range s.results {
		lib := r.keys["lib"]
		if strings.HasPrefix(r.base, prefix) && lib != "nosession" && !slices.Contains(cols, lib) && !slices.Contains(extra, lib) {
			extra = append(extra, lib)
		}
	}
	slices.Sort(extra)
	cols = append(cols, extra...)
	var b strings.Builder
	b.WriteString("| request | store |")
	for _, lib := range cols {
		fmt.Fprintf(&b, " %s |", lib)
	}
	b.WriteString(" no sessions |\n|---|---|" + strings.Repeat("---|", len(cols)+1) + "\n")
	rows := 0
	for _, op := range []struct{ base, label string }{{prefix + "Read", "READ"}, {prefix + "Write", "WRITE"}} {
		none, okNone := s.get(op.base, "req/s", "lib", "nosession", "store", "mem")
		for _, store := range stores {
			if _, ok := s.get(op.base, "req/s", "lib", "kvsession", "store", store); !ok {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s |", op.label, store)
			for _, lib := range cols {
				v, ok := s.get(op.base, "req/s", "lib", lib, "store", store)
				if !ok {
					b.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&b, " %s req/s |", fmtCount(math.Round(v)))
			}
			if okNone {
				fmt.Fprintf(&b, " %s req/s |\n", fmtCount(math.Round(none)))
			} else {
				b.WriteString(" – |\n")
			}
			rows++
		}
	}
	if rows == 0 {
		return "Not measured in this run.\n"
	}
	return b.String()
}

// --- the rest ------------------------------------------------------------------

func machine(s *resultSet, goVersion string) string {
	model := s.header["cpu"]
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("- CPU: %s, %d logical CPUs (nproc), GOMAXPROCS %d\n- OS: %s/%s\n- Go: %s\n",
		cmp.Or(model, "unknown"), runtime.NumCPU(), runtime.GOMAXPROCS(0),
		cmp.Or(s.header["goos"], runtime.GOOS), cmp.Or(s.header["goarch"], runtime.GOARCH), goVersion)
}

// benchstatTables keeps, of benchstat's output, the header and the tables
// of time, memory, allocations and throughput; the store-call tables only
// repeat constants, and the tables above show them.
func benchstatTables(out string) string {
	var keep []string
	for _, block := range strings.Split(out, "\n\n") {
		lines := strings.SplitN(block, "\n", 3)
		if strings.HasPrefix(lines[0], "goos:") {
			keep = append(keep, block)
			continue
		}
		if len(lines) < 2 {
			continue
		}
		units := strings.Fields(strings.ReplaceAll(lines[1], "│", " "))
		if len(units) > 0 && slices.Contains([]string{"sec/op", "B/op", "allocs/op", "req/s"}, units[0]) {
			keep = append(keep, block)
		}
	}
	return strings.Join(keep, "\n\n")
}

// versions lists the modules under test, as go.mod requires them.
func versions(gomod string) string {
	data, err := os.ReadFile(gomod)
	if err != nil {
		log.Printf("%s: %v (versions left out)", gomod, err)
		return ""
	}
	want := []string{
		"github.com/alexedwards/scs/v2", "github.com/alexedwards/scs/goredisstore",
		"github.com/gorilla/sessions", "github.com/gorilla/securecookie", "github.com/boj/redistore",
		"github.com/gomodule/redigo", "github.com/redis/go-redis/v9",
	}
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && slices.Contains(want, f[0]) {
			fmt.Fprintf(&b, "- %s %s\n", f[0], f[1])
		}
	}
	return b.String()
}

func readOptional(path string) string {
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Printf("%s: %v (left out)", path, err)
		return ""
	}
	return strings.TrimRight(string(data), "\n")
}

func readProfiles(dir string) []profile {
	if dir == "" {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	slices.Sort(files)
	var ps []profile
	for _, f := range files {
		ps = append(ps, profile{Name: strings.TrimSuffix(filepath.Base(f), ".txt"), Text: readOptional(f)})
	}
	return ps
}
