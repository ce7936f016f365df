package memcachestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
		if !changed && !pruned {
			return nil
		}
		err = s.storeUser(ctx, k, it, live, now)
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
// entries as it goes.
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
