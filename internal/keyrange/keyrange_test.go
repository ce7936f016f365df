package keyrange

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSuccessor(t *testing.T) {
	for in, want := range map[string]string{
		"a": "b", "ab": "ac", "a\xff": "b", "a\xff\xff": "b", "\x00": "\x01", "\xfe\xff": "\xff",
	} {
		got, ok := Successor([]byte(in))
		if !ok || string(got) != want {
			t.Errorf("Successor(%q) = %q, %v; want %q, true", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "\xff", "\xff\xff"} {
		if got, ok := Successor([]byte(in)); ok {
			t.Errorf("Successor(%q) = %q, true; want none", in, got)
		}
	}
}

// sortedKeys is a fake table: a range query over sorted keys, which also
// counts its queries.
type sortedKeys struct {
	keys    []string
	queries int
}

func (s *sortedKeys) query(_ context.Context, p Page) ([][]byte, error) {
	s.queries++
	var page [][]byte
	for _, k := range s.keys {
		kb := []byte(k)
		if bytes.Compare(kb, p.Prefix) < 0 || !p.First() && bytes.Compare(kb, p.After) <= 0 ||
			p.Bounded && bytes.Compare(kb, p.To) >= 0 {
			continue
		}
		if len(page) == 3 {
			break
		}
		page = append(page, kb)
	}
	return page, nil
}

// Every key of the prefix is reported once, in order, across pages,
// including around 0xff bytes where the prefix has no simple successor.
func TestWalk(t *testing.T) {
	keys := []string{"", "\xff", "\xff\xff", "\xff\xffa", "\xfe\xff", "a", "a\xff", "a\xff\x00", "aa", "ab", "ac", "ad", "b"}
	slices.Sort(keys)
	for prefix, want := range map[string]int{"": 13, "\xff": 3, "\xff\xff": 2, "a\xff": 2, "a": 7, "\xfe": 1, "c": 0} {
		table := &sortedKeys{keys: keys}
		var got []string
		err := Walk(context.Background(), "test", prefix, 3, table.query, func(k string) error {
			got = append(got, k)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("Walk(%q) reported %q, want %d distinct keys in order", prefix, got, want)
		}
		for _, k := range got {
			if !strings.HasPrefix(k, prefix) {
				t.Errorf("Walk(%q) reported %q", prefix, k)
			}
		}
		if wantQueries := want/3 + 1; table.queries != wantQueries {
			t.Errorf("Walk(%q) made %d queries, want %d", prefix, table.queries, wantQueries)
		}
	}
}

func TestWalkStops(t *testing.T) {
	table := &sortedKeys{keys: []string{"a1", "a2", "a3", "a4", "a5"}}
	stop := errors.New("stop")
	n := 0
	err := Walk(context.Background(), "test", "a", 3, table.query, func(string) error {
		n++
		if n == 4 {
			return stop
		}
		return nil
	})
	if err != stop || n != 4 {
		t.Errorf("fn's error: Walk returned %v after %d keys, want it as it is after 4", err, n)
	}

	queryErr := errors.New("query failed")
	err = Walk(context.Background(), "test", "a", 3, func(context.Context, Page) ([][]byte, error) { return nil, queryErr },
		func(string) error { return nil })
	if err != queryErr {
		t.Errorf("query's error: Walk returned %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = Walk(ctx, "test: keys", "a", 3, table.query, func(string) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "test: keys: ") || n != 1 {
		t.Errorf("canceled: Walk returned %v after %d keys, want the wrapped context error after 1", err, n)
	}
}
