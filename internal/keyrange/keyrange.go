// Package keyrange walks the keys that start with a prefix in pages, as
// the SQL stores list them: a range query per page, ordered by key, each
// page starting after the last key of the one before (keyset paging), so
// that no query skips or repeats keys as OFFSET would while keys change.
//
// It is shared by pgstore, mysqlstore and sqlitestore, and not promised to
// users.
package keyrange

import (
	"bytes"
	"context"
	"fmt"
)

// Successor returns the least byte string greater than every string that
// starts with prefix, and false if there is none (prefix is empty or all
// 0xff bytes): the exclusive upper bound of the prefix's range.
func Successor(prefix []byte) ([]byte, bool) {
	s := bytes.Clone(prefix)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 0xff {
			s[i]++
			return s[:i+1], true
		}
	}
	return nil, false
}

// Page says which keys a page query returns: those at least Prefix and,
// after the first page, greater than After; below To when Bounded; in key
// order, at most the page size.
type Page struct {
	Prefix  []byte
	After   []byte // nil on the first page
	To      []byte // the prefix's Successor, when Bounded
	Bounded bool
}

// First reports whether this is the first page.
func (p Page) First() bool { return p.After == nil }

// Walk calls fn with every key that starts with prefix, reading them with
// query one page of at most size keys at a time, until a page comes back
// short. It checks ctx before each query and each key and, when ctx has
// ended, returns its error wrapped as "op: error". It returns query's
// errors and fn's as they are: if fn returns an error, Walk stops and
// returns it.
func Walk(ctx context.Context, op, prefix string, size int,
	query func(ctx context.Context, p Page) ([][]byte, error),
	fn func(key string) error) error {
	p := Page{Prefix: []byte(prefix)}
	p.To, p.Bounded = Successor(p.Prefix)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		keys, err := query(ctx, p)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			if err := fn(string(k)); err != nil {
				return err
			}
		}
		if len(keys) < size {
			return nil
		}
		// A copy: query may reuse the page's memory.
		p.After = bytes.Clone(keys[len(keys)-1])
		if p.After == nil {
			p.After = []byte{} // the empty key: still not the first page
		}
	}
}
