package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

const wrkResults = `goos: linux
BenchmarkWrkRead/lib=kvsession/store=mem 	100	20000 ns/op	50000 req/s
BenchmarkWrkRead/lib=kvsession/store=mem 	100	20000 ns/op	52000 req/s
BenchmarkWrkRead/lib=scs/store=mem 	100	40000 ns/op	25000 req/s
BenchmarkWrkRead/lib=nosession/store=mem 	100	16000 ns/op	60000 req/s
BenchmarkWrkRead/lib=kvsession/store=redis 	100	30000 ns/op	33000 req/s
BenchmarkWrkRead/lib=kvsession-rueidis/store=redis 	100	15000 ns/op	66000 req/s
BenchmarkWrkWrite/lib=gorilla/store=mem 	100	50000 ns/op	20000 req/s
BenchmarkRead/lib=kvsession/store=mem 	100	1300 ns/op
`

// The chart draws one bar per library and group measured, on one scale,
// labelled with the median, and is well-formed SVG.
func TestWrkChart(t *testing.T) {
	set, err := parse(strings.NewReader(wrkResults))
	if err != nil {
		t.Fatal(err)
	}
	svg := wrkChart(set)
	dec := xml.NewDecoder(strings.NewReader(svg))
	bars := map[string]int{} // title prefix -> count
	var widths []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "title" {
			var title string
			if err := dec.DecodeElement(&title, &se); err != nil {
				t.Fatal(err)
			}
			bars[title]++
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "width" {
					widths = append(widths, a.Value)
				}
			}
		}
	}
	// READ mem: no sessions, kvsession (median 51000), scs; READ redis:
	// no sessions (the ceiling), kvsession, kvsession-rueidis; WRITE mem:
	// gorilla alone.
	want := []string{
		"no sessions: 60000 req/s", "kvsession: 51000 req/s", "scs: 25000 req/s",
		"kvsession: 33000 req/s", "kvsession-rueidis: 66000 req/s", "gorilla: 20000 req/s",
	}
	for _, w := range want {
		if bars[w] == 0 {
			t.Errorf("no bar %q; bars: %v", w, bars)
		}
	}
	if n := len(bars); n != len(want) {
		t.Errorf("%d distinct bars, want %d: %v", n, len(want), bars)
	}
	if !strings.Contains(svg, "READ, ") || !strings.Contains(svg, "WRITE, ") {
		t.Errorf("group labels missing:\n%s", svg)
	}
	// The longest bar is the largest value: 66000 req/s spans the plot.
	if !strings.Contains(svg, `width="500" height="18" fill=`) {
		t.Errorf("no bar spans the plot (500 px) for the largest value; widths %v", widths)
	}
	if got := wrkChart(&resultSet{results: map[string]*result{}}); got != "" {
		t.Errorf("a run without wrk gives a chart: %q", got)
	}
}
