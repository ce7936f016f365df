package otelsession_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// wantDocumented fails unless the package doc's "# Metrics" section lists
// exactly the metrics of rm, each with its unit, and names every attribute
// key they carry.
func wantDocumented(t *testing.T, rm metricdata.ResourceMetrics) {
	t.Helper()
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start, end := strings.Index(doc, "// # Metrics\n"), strings.Index(doc, "// # Overhead\n")
	if start < 0 || end < start {
		t.Fatal("doc.go has no # Metrics section before # Overhead")
	}
	section := doc[start:end]
	listed := map[string]string{} // name: unit
	for _, m := range regexp.MustCompile(`(?m)^//\t((?:kvsession|db)\.[a-z_.]+)\s+(\{[a-z]+\}|s)(?:\s|$)`).FindAllStringSubmatch(section, -1) {
		listed[m[1]] = m[2]
	}
	got := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			got[m.Name] = true
			unit, ok := listed[m.Name]
			switch {
			case !ok:
				t.Errorf("the package doc does not list %s", m.Name)
			case unit != m.Unit:
				t.Errorf("the package doc gives %s the unit %q, the code %q", m.Name, unit, m.Unit)
			}
			for _, key := range attributeKeys(m) {
				if !strings.Contains(section, key) {
					t.Errorf("the package doc does not name the attribute %s of %s", key, m.Name)
				}
			}
		}
	}
	for name := range listed {
		if !got[name] {
			t.Errorf("the package doc lists %s, which the script did not record", name)
		}
	}
}

// attributeKeys returns the attribute keys of m's points.
func attributeKeys(m metricdata.Metrics) []string {
	var keys []string
	add := func(set attribute.Set) {
		for _, kv := range set.ToSlice() {
			if !slices.Contains(keys, string(kv.Key)) {
				keys = append(keys, string(kv.Key))
			}
		}
	}
	switch data := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range data.DataPoints {
			add(p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range data.DataPoints {
			add(p.Attributes)
		}
	}
	return keys
}
