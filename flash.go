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

// Pop returns the value stored under name, decoded into a T, and deletes it,
// as Get then Delete. It returns an error wrapping ErrNoValue if there is
// none.
func Pop[T any](s *Session, name string) (T, error) {
	v, err := Get[T](s, name)
	if err != nil {
		return v, err
	}
	return v, s.Delete(name)
}

// GetOr returns the value stored under name, decoded into a T, or fallback
// if there is none. Unlike a getter that swallows every error, it still
// returns the error of a session that could not be loaded (ErrLoad) or of a
// value that does not fit a T: only a missing value gives the fallback.
func GetOr[T any](s *Session, name string, fallback T) (T, error) {
	v, err := Get[T](s, name)
	if errors.Is(err, ErrNoValue) {
		return fallback, nil
	}
	return v, err
}

// FlashesName is the name of the session value that holds pending flash messages (a
// JSON array of {"id": ..., "v": message}); Names lists it. Leave it to
// AddFlash, Flashes, PeekFlashes and TakeFlashes: code that copies a
// session's values elsewhere (an adapter, a tool) skips it, and handles
// flash messages through those calls.
const FlashesName = "_flashes"

type flashEntry struct {
	ID string          `json:"id"`
	V  json.RawMessage `json:"v"`
}

// A Flash is a pending flash message as PeekFlashes returns it: its value,
// and the ID that names this message, and no other, to TakeFlashes.
type Flash[T any] struct {
	ID    string
	Value T
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
	fs, err := decodeFlashes[T](readFlashes(&s.rec), "flashes")
	if err != nil || len(fs) == 0 {
		return nil, err
	}
	msgs := make([]T, len(fs))
	ids := make([]string, len(fs))
	for i, f := range fs {
		msgs[i], ids[i] = f.Value, f.ID
	}
	s.takeFlashes(ids)
	return msgs, nil
}

// PeekFlashes returns the pending flash messages, oldest first, each
// decoded into a T, and removes none: a read, which costs no write. Pass
// the IDs of the messages shown to TakeFlashes. It is Flashes in two steps,
// for code that decides later which messages were consumed (an adapter
// whose own API reads them). A message that does not fit a T gives an
// error.
func PeekFlashes[T any](s *Session) ([]Flash[T], error) {
	if err := s.lockLoaded(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return decodeFlashes[T](readFlashes(&s.rec), "peek flashes")
}

// TakeFlashes removes the pending flash messages with the given IDs (from
// PeekFlashes), and only those. Like Flashes, it goes through the merge:
// messages a concurrent request added stay pending, and an ID a concurrent
// request already took is ignored. IDs of no pending message cost no
// write.
func (s *Session) TakeFlashes(ids ...string) error {
	if err := s.lockChange(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.takeFlashes(ids)
	return nil
}

// takeFlashes records the removal of the pending entries among ids, if
// any. s.mu is held.
func (s *Session) takeFlashes(ids []string) {
	if !slices.ContainsFunc(readFlashes(&s.rec), func(e flashEntry) bool { return slices.Contains(ids, e.ID) }) {
		return
	}
	taken, _ := json.Marshal(ids) // strings: cannot fail
	s.record(op{kind: opFlashTake, raw: taken})
}

// decodeFlashes decodes entries into Flashes of a T; op names the call in
// an error.
func decodeFlashes[T any](entries []flashEntry, op string) ([]Flash[T], error) {
	if len(entries) == 0 {
		return nil, nil
	}
	fs := make([]Flash[T], len(entries))
	for i, e := range entries {
		fs[i].ID = e.ID
		if !decodeScalar(e.V, &fs[i].Value) {
			if err := decodeJSON(e.V, &fs[i].Value); err != nil {
				return nil, fmt.Errorf("kvsession: %s: %w", op, err)
			}
		}
	}
	return fs, nil
}

// readFlashes returns the flash entries a record holds; a value that is not
// a list of entries reads as none.
func readFlashes(r *record) []flashEntry {
	raw, ok := r.get(FlashesName)
	if !ok {
		return nil
	}
	var entries []flashEntry
	if json.Unmarshal(raw, &entries) != nil {
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
		r.del(FlashesName)
		return
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return // entries came from JSON: cannot happen
	}
	r.set(FlashesName, b)
}
