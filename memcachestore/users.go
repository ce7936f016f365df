package memcachestore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/kvsession/kvsession"
)

// A user's index is one item (Flags 3) whose value is a sequence of
// entries: uvarint(len(key)), key, expiry (8 bytes, big-endian Unix
// milliseconds, 0 for none).

type userEntry struct {
	key string
	exp uint64 // Unix ms, 0 for none
}

func encodeUsers(entries []userEntry) []byte {
	n := 0
	for _, e := range entries {
		n += binary.MaxVarintLen64 + len(e.key) + 8
	}
	b := make([]byte, 0, n)
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e.key)))
		b = append(b, e.key...)
		b = binary.BigEndian.AppendUint64(b, e.exp)
	}
	return b
}

// decodeUsers parses an index. A malformed one decodes as far as it is
// well formed.
func decodeUsers(b []byte) []userEntry {
	var entries []userEntry
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) || uint64(len(b)-w)-n < 8 {
			break
		}
		b = b[w:]
		entries = append(entries, userEntry{key: string(b[:n]), exp: binary.BigEndian.Uint64(b[n:])})
		b = b[n+8:]
	}
	return entries
}

// keepLatest returns the n entries that expire last (no expiry is the
// latest), in their order in entries. Between entries that expire at the
// same time, the later one in entries (the one added last) stays.
func keepLatest(entries []userEntry, n int) []userEntry {
	if len(entries) <= n {
		return entries
	}
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := compareExpiry(entries[b].exp, entries[a].exp); c != 0 {
			return c
		}
		return b - a
	})
	keep := make([]bool, len(entries))
	for _, i := range order[:n] {
		keep[i] = true
	}
	kept := make([]userEntry, 0, n)
	for i, e := range entries {
		if keep[i] {
			kept = append(kept, e)
		}
	}
	return kept
}

// compareExpiry compares two stored expiries, 0 (none) being the latest.
func compareExpiry(a, b uint64) int {
	switch {
	case a == b:
		return 0
	case a == 0:
		return 1
	case b == 0:
		return -1
	}
	return cmp.Compare(a, b)
}

// tooLarge reports whether memcached refused an item as larger than its
// item size. gomemcache has no error value for it.
func tooLarge(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SERVER_ERROR object too large")
}

// userAttempts bounds the read-modify-cas loop on a user's index.
const userAttempts = 32

// updateUser applies change to the live entries of user's index and
// stores the result with add or cas, retrying when a concurrent change
// wins. change reports whether it changed anything.
func (s *Store) updateUser(ctx context.Context, user string, change func([]userEntry) ([]userEntry, bool)) error {
	k := s.userKey(user)
	for attempt := 1; ; attempt++ {
		now := time.Now()
		it, err := s.getItem(ctx, k)
		if errors.Is(err, memcache.ErrCacheMiss) {
			it, err = nil, nil
		}
		if err != nil {
			return err
		}
		var entries []userEntry
		if it != nil && it.Flags == flagUsers {
			entries = decodeUsers(it.Value)
		}
		live := entries[:0:0]
		for _, e := range entries {
			if !expired(e.exp, now) {
				live = append(live, e)
			}
		}
		pruned := len(live) != len(entries) || (it != nil && it.Flags != flagUsers)
		live, changed := change(live)
		wanted := live
		if len(live) > s.maxUsers {
			live, changed = keepLatest(live, s.maxUsers), true
		}
		if !changed && !pruned {
			return nil
		}
		err = s.storeUser(ctx, k, it, live, now)
		// A memcached whose item size (-I) cannot hold the index refuses
		// it and keeps the old one: keep the latest-expiring half and try
		// again, rather than fail the login that added an entry.
		for tooLarge(err) && len(live) > 1 {
			live = keepLatest(live, len(live)/2)
			err = s.storeUser(ctx, k, it, live, now)
		}
		if err == nil {
			return s.endDropped(ctx, wanted, live)
		}
		if !errors.Is(err, kvsession.ErrConflict) && !errors.Is(err, kvsession.ErrNotFound) {
			return err
		}
		// Someone else changed, created or removed the index: read again.
		if attempt == userAttempts {
			return fmt.Errorf("the user's index changed under each of %d attempts", userAttempts)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// endDropped deletes the sessions whose entries a full index dropped (in
// wanted, not in kept). A session the index no longer names could not be
// found by RevokeUser, so it must not outlive its entry: a user past the
// cap loses the sessions that would have expired first.
func (s *Store) endDropped(ctx context.Context, wanted, kept []userEntry) error {
	if len(wanted) == len(kept) {
		return nil
	}
	keep := make(map[string]bool, len(kept))
	for _, e := range kept {
		keep[e.key] = true
	}
	for _, e := range wanted {
		if keep[e.key] {
			continue
		}
		if err := s.Delete(ctx, e.key); err != nil {
			return fmt.Errorf("end a session dropped from the full index: %w", err)
		}
	}
	return nil
}

// storeUser writes entries as the new index, replacing old (nil if there
// was none) only if it has not changed.
func (s *Store) storeUser(ctx context.Context, k string, old *memcache.Item, entries []userEntry, now time.Time) error {
	if len(entries) == 0 {
		if old == nil {
			return nil
		}
		return s.cas(ctx, tombstone(k, old.CasID))
	}
	// The index lives as long as its longest-lived entry.
	var last time.Time
	for _, e := range entries {
		if e.exp == 0 {
			last = time.Time{}
			break
		}
		if t := time.UnixMilli(int64(e.exp)); t.After(last) {
			last = t
		}
	}
	exp, _ := expiration(last, now) // entries are live, so last is after now
	it := &memcache.Item{Key: k, Value: encodeUsers(entries), Flags: flagUsers, Expiration: exp}
	if old == nil {
		err := s.call(ctx, func() error { return s.c.Add(it) })
		if errors.Is(err, memcache.ErrNotStored) {
			return kvsession.ErrConflict // created meanwhile
		}
		return err
	}
	it.CasID = old.CasID
	return s.cas(ctx, it)
}

// AddUserKey implements [kvsession.UserIndex]. It drops the user's expired
// entries as it goes and, when the index would hold more than
// [Options.MaxUserKeys] entries (or more than memcached's item size
// allows), the entries that expire first, deleting their sessions: it never
// fails because the index is full, and every live session of a user stays
// in the index, so that RevokeUser ends them all.
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachestore: add user key: %w", err)
	}
	exp := millis(expiresAt)
	err := s.updateUser(ctx, user, func(entries []userEntry) ([]userEntry, bool) {
		for i, e := range entries {
			if e.key != key {
				continue
			}
			if e.exp == 0 || (exp != 0 && e.exp >= exp) {
				return entries, false // the recorded expiry is already the later one
			}
			entries[i].exp = exp
			return entries, true
		}
		return append(entries, userEntry{key, exp}), true
	})
	if err != nil {
		return fmt.Errorf("memcachestore: add user key: %w", err)
	}
	return nil
}

// UserKeys implements [kvsession.UserIndex].
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memcachestore: user keys: %w", err)
	}
	it, err := s.getItem(ctx, s.userKey(user))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("memcachestore: user keys: %w", err)
	}
	if it.Flags != flagUsers {
		return nil, nil
	}
	now := time.Now()
	var keys []string
	for _, e := range decodeUsers(it.Value) {
		if !expired(e.exp, now) {
			keys = append(keys, e.key)
		}
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex]. It drops the user's
// expired entries as it goes, and the index item with its last entry.
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachestore: remove user key: %w", err)
	}
	err := s.updateUser(ctx, user, func(entries []userEntry) ([]userEntry, bool) {
		for i, e := range entries {
			if e.key == key {
				return append(entries[:i], entries[i+1:]...), true
			}
		}
		return entries, false
	})
	if err != nil {
		return fmt.Errorf("memcachestore: remove user key: %w", err)
	}
	return nil
}
