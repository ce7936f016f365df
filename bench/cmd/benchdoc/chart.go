package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// chartLibs orders the libraries of the end-to-end chart; any other
// library the results name (a second kvsession store, say) comes after
// them, sorted.
var chartLibs = []string{"nosession", "kvsession", "scs", "gorilla"}

// chartColors are the bars' colours, in chartLibs order, then for the
// others; picked to stay apart for colour-blind readers (Okabe-Ito).
var chartColors = []string{"#999999", "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"}

// wrkChart returns an SVG bar chart of TestWrk's throughput: one group of
// bars per request and store (READ on the memory store, ...), one bar per
// library, each labelled with its requests per second, all on one scale.
// It returns "" when the results hold no wrk measurement.
func wrkChart(s *resultSet) string {
	type bar struct {
		lib string
		v   float64
	}
	type group struct {
		label string
		bars  []bar
	}
	var libs []string
	for _, r := range s.results {
		if strings.HasPrefix(r.base, "Wrk") && len(r.samples["req/s"]) > 0 && !slices.Contains(libs, r.keys["lib"]) {
			libs = append(libs, r.keys["lib"])
		}
	}
	slices.SortFunc(libs, func(a, b string) int {
		ia, ib := slices.Index(chartLibs, a), slices.Index(chartLibs, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	var groups []group
	top := 0.0
	for _, op := range []struct{ base, label string }{{"WrkRead", "READ"}, {"WrkWrite", "WRITE"}} {
		for _, store := range stores {
			g := group{label: op.label + ", " + storeTitle(store)}
			for _, lib := range libs {
				// The server without sessions runs on no store; its bar
				// stands in every group as the ceiling.
				st := store
				if lib == "nosession" {
					st = "mem"
				}
				if v, ok := s.get(op.base, "req/s", "lib", lib, "store", st); ok {
					g.bars = append(g.bars, bar{lib, v})
					top = math.Max(top, v)
				}
			}
			if len(g.bars) > 1 || (len(g.bars) == 1 && g.bars[0].lib != "nosession") {
				groups = append(groups, g)
			}
		}
	}
	if len(groups) == 0 || top <= 0 {
		return ""
	}

	const (
		width, left, right  = 800, 190, 110
		barH, gap, groupGap = 18, 4, 22
		top0, legendRow     = 40, 20
	)
	// The legend, in rows that fit the width.
	type item struct {
		lib  string
		x, y int
	}
	var legend []item
	lx, ly := left, top0
	for _, lib := range libs {
		w := 30 + 7*len(libLabel(lib))
		if lx+w > width && lx > left {
			lx, ly = left, ly+legendRow
		}
		legend = append(legend, item{lib, lx, ly})
		lx += w
	}
	legendH := ly - top0 + legendRow + 10
	plot := float64(width - left - right)
	height := top0 + legendH
	for _, g := range groups {
		height += len(g.bars)*(barH+gap) + groupGap
	}
	color := func(lib string) string { return chartColors[slices.Index(libs, lib)%len(chartColors)] }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">End to end under wrk: requests per second (more is better)</text>`+"\n", left)
	for _, it := range legend {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			it.x, it.y-6, color(it.lib), it.x+16, it.y+5, html.EscapeString(libLabel(it.lib)))
	}
	y := top0 + legendH
	for _, g := range groups {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-weight="bold">%s</text>`+"\n",
			left-10, y+barH-4, html.EscapeString(g.label))
		for _, br := range g.bars {
			w := int(math.Round(plot * br.v / top))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %s req/s</title></rect>`+"\n",
				left, y, max(w, 1), barH, color(br.lib), html.EscapeString(libLabel(br.lib)), fmtCount(math.Round(br.v)))
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+w+6, y+barH-5, fmtCount(math.Round(br.v)))
			y += barH + gap
		}
		y += groupGap
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// libLabel names a library in the chart's legend.
func libLabel(lib string) string {
	if lib == "nosession" {
		return "no sessions"
	}
	return lib
}
