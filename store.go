package kvsession

import (
	"context"
	"errors"
	"time"
)

// Errors returned by stores. Stores may wrap them; test with [errors.Is].
var (
	// ErrNotFound reports that no live record exists under a key: it was
	// never written, was deleted, or has expired.
	ErrNotFound = errors.New("kvsession: not found")

	// ErrConflict reports that a conditional write or delete did not happen
	// because the record's version is no longer the one the caller read.
	ErrConflict = errors.New("kvsession: version conflict")
)

// ConflictError is an error wrapping ErrConflict that also carries the
// record as it is now. A [Store] may return one from
// CompareAndSwap when it has read the current record anyway, so that the
// caller can merge its changes without reading the record again: a
// conflict then costs one extra write and no extra read.
type ConflictError struct {
	Current Entry
}

func (e *ConflictError) Error() string { return ErrConflict.Error() }

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Entry is a record as a [Store] returns it.
type Entry struct {
	// Value is the stored bytes. It belongs to the caller: a store never
	// keeps or reuses the slice it returns.
	Value []byte

	// ExpiresAt is the instant after which the record reads as missing,
	// as last set by a write or by [Store.Touch]. The zero time means the
	// record never expires.
	ExpiresAt time.Time

	// Version identifies this state of the record for
	// [Store.CompareAndSwap]. Every write that changes the value gives the
	// record a version different from every earlier one under the same key,
	// even across a delete and a new write: a counter, or a random 64-bit
	// value (a repeat is then as likely as guessing a key).
	Version uint64
}

// Store is the storage contract: a key-value map with expiry, conditional
// writes, and an index of each user's sessions. Keys are non-empty strings
// of at most 250 bytes chosen by the caller; a store must accept every such
// key, whatever bytes it holds, and must not let any key name a location
// outside the store's own namespace. The [Manager] uses keys of the form
// prefix plus URL-safe base64 for sessions, and prefix plus "!r:" plus
// URL-safe base64 for the users' revocation marks.
//
// A Store is safe for concurrent use. Every method honours its context: a
// cancelled or expired context makes it return promptly with an error that
// wraps the context's error. A write cancelled while in flight may or may
// not have taken effect, as with any network call; the conditional writes
// keep that from losing or resurrecting data.
//
// Every method is required: the manager's promises rest on all of them.
// CompareAndSwap and CompareAndDelete give "no lost updates" and "no
// resurrection"; Touch refreshes idle deadlines without rewriting data; the
// [UserIndex] methods give "list my devices" and an airtight "log out
// everywhere". What a real engine may lack is optional, in separate
// interfaces found with a type assertion: [Lister] and [ExpiredDeleter].
// The package storetest checks the whole contract.
type Store interface {
	// Get returns the record stored under key. A key that was never
	// written, was deleted, or whose expiry has passed gives an error
	// wrapping ErrNotFound, never a system error; so does a stored record
	// the store itself cannot parse.
	Get(ctx context.Context, key string) (Entry, error)

	// Set stores value under key until expiresAt, replacing any earlier
	// record whatever its version. A zero expiresAt means no expiry. The
	// store copies value; the caller may reuse it after Set returns.
	Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error

	// Delete removes the record under key. Deleting a missing key is not
	// an error.
	Delete(ctx context.Context, key string) error

	// CompareAndSwap stores value under key until expiresAt only if the
	// record's current version is old. It returns an error wrapping
	// ErrNotFound if no live record exists under key (it never creates
	// one), and ErrConflict if the record exists with another version;
	// that error may be a *ConflictError holding the current record.
	CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error

	// CompareAndDelete removes the record under key only if its current
	// version is old, with the errors of CompareAndSwap.
	CompareAndDelete(ctx context.Context, key string, old uint64) error

	// Touch sets the expiry of the live record under key to expiresAt,
	// keeping its value: the idle-timeout refresh. It returns an error
	// wrapping ErrNotFound if no live record exists under key; it never
	// creates one. Touch may or may not change the record's version.
	Touch(ctx context.Context, key string, expiresAt time.Time) error

	UserIndex
}

// UserIndex is the part of the [Store] contract that finds the sessions of
// one user without scanning the store: "list my devices", "log out
// everywhere". User IDs are strings of up to [MaxUserBytes] bytes of any
// value; a store whose engine limits key length hashes long ones, keeping
// every two users apart.
type UserIndex interface {
	// AddUserKey records that key belongs to user, until expiresAt (the
	// latest instant at which that key can still be live; zero means no
	// limit). Adding a pair twice keeps one entry with the later expiry.
	AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error

	// UserKeys returns the keys recorded for user whose index expiry has
	// not passed. The result may name keys whose records are already
	// gone; callers check each with Get and remove the stale ones.
	UserKeys(ctx context.Context, user string) ([]string, error)

	// RemoveUserKey forgets that key belongs to user. Removing a pair that
	// is not recorded is not an error.
	RemoveUserKey(ctx context.Context, user, key string) error
}

// Lister is the capability to enumerate the keys of a store, for tools that
// inspect sessions while their clients are away.
type Lister interface {
	// Keys calls fn for every key in the store that starts with prefix,
	// in no particular order, streaming rather than loading every key into
	// memory. It reports every record the store still holds: expired
	// records that await a sweep ([ExpiredDeleter]) and records the store
	// cannot parse included, so that tools count them exactly (Get then
	// tells them apart). A store whose engine drops expired records by
	// itself (Redis) reports only what it holds. A key
	// written or deleted during the walk may or may not be reported, and a
	// key may be reported more than once (Redis SCAN does so while it
	// rehashes). If fn returns an error, Keys stops and returns it.
	Keys(ctx context.Context, prefix string, fn func(key string) error) error
}

// ExpiredDeleter is the capability to remove expired records, for stores
// whose engine does not drop them by itself.
type ExpiredDeleter interface {
	// DeleteExpired removes every record whose expiry has passed and
	// returns how many it removed. It works in bounded batches so that a
	// large sweep does not block other users of the store.
	DeleteExpired(ctx context.Context) (int, error)
}

// sweepProgressKey is the context key of WithSweepProgress.
type sweepProgressKey struct{}

// WithSweepProgress returns a copy of ctx that carries fn, for a call of
// [ExpiredDeleter.DeleteExpired] (or [Admin.Cleanup]) that should say how
// far it is. A store that reports calls fn after each batch that removed
// records, with the number of records removed so far by that call: each
// count greater than the one before and, when DeleteExpired succeeds, the
// last one equal to what it returns. A store that never reports still sweeps; the
// caller then learns only the total, when DeleteExpired returns.
//
// The store calls fn from the goroutine running DeleteExpired, never
// concurrently and never after DeleteExpired returns, possibly while it
// holds a lock of its own: fn should be cheap (store the count in an
// atomic, say) and must not call the store.
//
// A ctx that carries fn already carries the new fn instead. A wrapper
// that sweeps several stores in one call should give each a context with
// a fn of its own that adds the counts of the stores swept before.
func WithSweepProgress(ctx context.Context, fn func(deleted int)) context.Context {
	return context.WithValue(ctx, sweepProgressKey{}, fn)
}

// ReportSweepProgress is for implementations of [ExpiredDeleter]: it calls
// the function that [WithSweepProgress] put in ctx with deleted, the
// records removed so far by this call of DeleteExpired, and does nothing
// if ctx carries none. Call it after each batch that removed records.
func ReportSweepProgress(ctx context.Context, deleted int) {
	if fn, _ := ctx.Value(sweepProgressKey{}).(func(int)); fn != nil {
		fn(deleted)
	}
}
