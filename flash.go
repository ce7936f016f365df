package kvsession

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Conveniences on top of Get, Set and Delete: a get-and-delete, a getter
// with a fallback, and flash messages.

// Pop returns the value stored under key, decoded into a T, and deletes it,
// as Get then Delete. It returns an error wrapping ErrNoValue if there is
// none.
func Pop[T any](s *Session, key string) (T, error) {
	v, err := Get[T](s, key)
	if err != nil {
		return v, err
	}
	return v, s.Delete(key)
}

// GetOr returns the value stored under key, decoded into a T, or fallback
// if there is none. Unlike a getter that swallows every error, it still
// returns the error of a session that could not be loaded (ErrLoad) or of a
// value that does not fit a T: only a missing value gives the fallback.
func GetOr[T any](s *Session, key string, fallback T) (T, error) {
	v, err := Get[T](s, key)
	if errors.Is(err, ErrNoValue) {
		return fallback, nil
	}
	return v, err
}

// flashKey is the session value that holds pending flash messages, as a
// JSON array of {"id": ..., "v": message}.
const flashKey = "_flashes"

type flashEntry struct {
	ID string          `json:"id"`
	V  json.RawMessage `json:"v"`
}

// AddFlash adds a message to show once, on a later request (or later in
// this one): "saved", "logged out". Messages survive concurrent requests:
// two tabs that each add one keep both, and a request that reads the
// messages removes only those it read. v is encoded as JSON, as by Set.
func (s *Session) AddFlash(v any) error {
	raw, err := encodeValue(v)
	if err != nil {
		return fmt.Errorf("kvsession: add flash: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	entry, err := json.Marshal(flashEntry{ID: hex.EncodeToString(id[:]), V: raw})
	if err != nil {
		return fmt.Errorf("kvsession: add flash: %w", err)
	}
	if err := s.lockChange(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.record(op{kind: opFlashAdd, raw: entry})
	return nil
}

// Flashes returns the pending flash messages, oldest first, each decoded
// into a T, and removes them: each message is returned once. A message
// that does not fit a T gives an error and nothing is removed.
func Flashes[T any](s *Session) ([]T, error) {
	if err := s.lockChange(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	entries := readFlashes(&s.rec)
	if len(entries) == 0 {
		return nil, nil
	}
	msgs := make([]T, 0, len(entries))
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		var v T
		if !decodeScalar(e.V, &v) {
			if err := decodeJSON(e.V, &v); err != nil {
				return nil, fmt.Errorf("kvsession: flashes: %w", err)
			}
		}
		msgs = append(msgs, v)
		ids = append(ids, e.ID)
	}
	taken, _ := json.Marshal(ids)
	s.record(op{kind: opFlashTake, raw: taken})
	return msgs, nil
}

// readFlashes returns the flash entries a record holds; a value that is not
// a list of entries reads as none.
func readFlashes(r *record) []flashEntry {
	i := r.index(flashKey)
	if i < 0 {
		return nil
	}
	var entries []flashEntry
	if json.Unmarshal(r.fields[i].raw, &entries) != nil {
		return nil
	}
	return entries
}

// applyFlashAdd appends an entry, as replayed onto any copy of the session.
func applyFlashAdd(r *record, entry []byte) {
	var e flashEntry
	if json.Unmarshal(entry, &e) != nil {
		return
	}
	writeFlashes(r, append(readFlashes(r), e))
}

// applyFlashTake removes the entries with the given IDs, and no others:
// replayed after a conflict, it keeps messages a concurrent request added.
func applyFlashTake(r *record, rawIDs []byte) {
	var ids []string
	if json.Unmarshal(rawIDs, &ids) != nil {
		return
	}
	entries := slices.DeleteFunc(readFlashes(r), func(e flashEntry) bool { return slices.Contains(ids, e.ID) })
	writeFlashes(r, entries)
}

func writeFlashes(r *record, entries []flashEntry) {
	if len(entries) == 0 {
		r.del(flashKey)
		return
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return // entries came from JSON: cannot happen
	}
	r.set(flashKey, b)
}
