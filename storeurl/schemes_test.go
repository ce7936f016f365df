package storeurl

import (
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

var updateDoc = flag.Bool("update-doc", false, "rewrite the URL synopsis in doc.go")

// TestSchemeExamples checks that every scheme's example URL parses as that
// scheme, and that its form names its default port.
func TestSchemeExamples(t *testing.T) {
	for _, s := range Schemes() {
		t.Run(s.Name, func(t *testing.T) {
			tg, err := parse(s.Example)
			if err != nil {
				t.Fatalf("parse(%q): %v", s.Example, err)
			}
			if tg.scheme.Name != s.Name {
				t.Errorf("parse(%q): scheme %q", s.Example, tg.scheme.Name)
			}
			if s.DefaultPort != "" && !strings.Contains(s.Form, "[:"+s.DefaultPort+"]") && !strings.Contains(s.Form, "host:port") {
				t.Errorf("form %q shows neither the default port %s nor host:port", s.Form, s.DefaultPort)
			}
			for _, alias := range s.Aliases {
				u := alias + strings.TrimPrefix(s.Example, s.Name)
				if tg, err := parse(u); err != nil || tg.scheme.Name != s.Name {
					t.Errorf("parse(%q) = %v, %v; want scheme %s", u, tg, err, s.Name)
				}
			}
		})
	}
}

// withParam adds name=v to u.
func withParam(u, name, v string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + name + "=" + v
}

// TestSchemeParams checks, for every scheme, that each parameter it takes
// is accepted on its example URL, and that every other parameter of this
// package, an unknown one (for the schemes that pass none to a driver)
// and the old name prefix are refused with an error saying why.
func TestSchemeParams(t *testing.T) {
	for _, s := range Schemes() {
		t.Run(s.Name, func(t *testing.T) {
			for _, p := range s.Params {
				u := withParam(s.Example, p, "7")
				if _, err := parse(u); err != nil {
					t.Errorf("parse(%q): %v", u, err)
				}
				u = withParam(s.Example, p, "")
				if _, err := parse(u); !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), "parameter "+p+" wants one non-empty value") {
					t.Errorf("parse(%q) = %v, want an empty value refused", u, err)
				}
			}
			refused := []string{"prefix"}
			for _, p := range Params() {
				if !slices.Contains(s.Params, p.Name) {
					refused = append(refused, p.Name)
				}
			}
			if !s.DriverParams {
				refused = append(refused, "no_such_param")
			}
			for _, name := range refused {
				u := withParam(s.Example, name, "x")
				_, err := parse(u)
				if !errors.Is(err, ErrBadURL) {
					t.Errorf("parse(%q) = %v, want ErrBadURL", u, err)
					continue
				}
				want := `unknown parameter "` + name + `": ` + s.Name + ": URLs take "
				switch {
				case lookupScheme(s.Name).syntax == syntaxNone:
					want = s.Name + ": takes nothing after the colon"
				case name == "prefix" && slices.Contains(s.Params, "namespace"):
					want = "use namespace="
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("parse(%q) = %q, want it to say %q", u, err, want)
				}
			}
		})
	}
}

// TestSchemesFuzzed checks that FuzzOpen builds URLs of every scheme.
func TestSchemesFuzzed(t *testing.T) {
	var names []string
	for _, s := range Schemes() {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, fuzzSchemes) {
		t.Errorf("fuzzSchemes = %v, want the table's %v", fuzzSchemes, names)
	}
}

// TestSynopsis checks that the synopsis names every scheme and parameter,
// and that the package documentation shows it (go test -run TestSynopsis
// -update-doc rewrites doc.go).
func TestSynopsis(t *testing.T) {
	syn := Synopsis()
	for _, s := range Schemes() {
		if !strings.Contains(syn, s.Form) {
			t.Errorf("synopsis lacks %q", s.Form)
		}
	}
	for _, p := range Params() {
		if !strings.Contains(syn, "\n"+p.Name+" (") {
			t.Errorf("synopsis lacks parameter %s", p.Name)
		}
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(syn, "\n"), "\n") {
		if len(line) > 79 {
			t.Errorf("synopsis line longer than 79 bytes: %q", line)
		}
	}

	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "// # URLs\n//\n", "//\n// Paths must be absolute"
	i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
	if i < 0 || j < i {
		t.Fatalf("doc.go lacks %q ... %q", begin, end)
	}
	var block strings.Builder
	for line := range strings.SplitSeq(strings.TrimSuffix(syn, "\n"), "\n") {
		if line == "" {
			block.WriteString("//\n")
		} else {
			block.WriteString("//\t" + line + "\n")
		}
	}
	got := string(doc[i+len(begin) : j])
	if got == block.String() {
		return
	}
	if *updateDoc {
		out := string(doc[:i+len(begin)]) + block.String() + string(doc[j:])
		if err := os.WriteFile("doc.go", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("doc.go's URL synopsis is out of date; run go test -run TestSynopsis -update-doc\ngot:\n%s\nwant:\n%s", got, block.String())
}
