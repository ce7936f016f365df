package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/keyrange"
)

var (
	_ kvsession.Store          = (*Store)(nil)
	_ kvsession.Lister         = (*Store)(nil)
	_ kvsession.ExpiredDeleter = (*Store)(nil)
)

// DefaultTable is the name of the sessions table when [Options.Table] is
// empty.
const DefaultTable = "kvsession_sessions"

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Table is the name of the sessions table. The user index table is
	// Table+"_users". It must be an SQL identifier of ASCII letters, digits
	// and underscores, not starting with a digit, at most 48 bytes long.
	// Default: DefaultTable.
	Table string

	// Now is the clock that decides expiry. Default: time.Now.
	Now func() time.Time
}

// Store is a store in an SQLite database. It is safe for concurrent use.
// Create one with [New].
type Store struct {
	db  *sql.DB
	now func() time.Time
	q   queries
}

type queries struct {
	schema []string

	get, set, del                            string
	cas, cad, touch                          string
	keysFirst, keysFirstTo, keysNext, keysTo string
	sweep, sweepUsers                        string
	addUser, userKeys, removeUser            string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,47}$`)

// New returns a Store that keeps its records in db, which must be opened
// with an SQLite driver. It does not touch the database: call
// [Store.CreateSchema] once before use, or create the schema by other means.
// A nil opts means the zero Options. New fails if db is nil or
// Options.Table is not a valid name. Create the database file with mode
// 0600 before opening it (see "File permissions" in the package
// documentation): SQLite would make it, and the -wal and -shm files,
// readable by every local user.
func New(db *sql.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlitestore: new: nil *sql.DB")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !identRE.MatchString(o.Table) {
		return nil, fmt.Errorf("sqlitestore: new: invalid table name %q: want ASCII letters, digits and underscores, not starting with a digit, at most 48 bytes", o.Table)
	}
	if strings.HasPrefix(strings.ToLower(o.Table), "sqlite_") {
		return nil, fmt.Errorf("sqlitestore: new: invalid table name %q: SQLite reserves names that start with sqlite_", o.Table)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{db: db, now: o.Now, q: buildQueries(o.Table)}, nil
}

func buildQueries(t string) queries {
	// Names are quoted, so that a table named like a keyword (order,
	// select) works; identRE keeps quotes out of them.
	q := func(name string) string { return `"` + name + `"` }
	u := t + "_users"
	r := strings.NewReplacer("{t}_expires_at", q(t+"_expires_at"), "{u}_expires_at", q(u+"_expires_at"), "{t}", q(t), "{u}", q(u))
	const live = "(expires_at = 0 OR expires_at > ?)"
	f := func(s string) string { return r.Replace(strings.ReplaceAll(s, "{live}", live)) }
	return queries{
		schema: []string{
			f(`CREATE TABLE IF NOT EXISTS {t} (
	key        BLOB    NOT NULL PRIMARY KEY,
	value      BLOB    NOT NULL,
	expires_at INTEGER NOT NULL,
	version    INTEGER NOT NULL
)`),
			f(`CREATE INDEX IF NOT EXISTS {t}_expires_at ON {t} (expires_at)`),
			f(`CREATE TABLE IF NOT EXISTS {u} (
	user       BLOB    NOT NULL,
	key        BLOB    NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (user, key)
)`),
			f(`CREATE INDEX IF NOT EXISTS {u}_expires_at ON {u} (expires_at)`),
		},
		get: f(`SELECT value, expires_at, version FROM {t} WHERE key = ? AND {live}`),
		set: f(`INSERT INTO {t} (key, value, expires_at, version) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = excluded.version`),
		del:   f(`DELETE FROM {t} WHERE key = ?`),
		cas:   f(`UPDATE {t} SET value = ?, expires_at = ?, version = ? WHERE key = ? AND version = ? AND {live}`),
		cad:   f(`DELETE FROM {t} WHERE key = ? AND version = ? AND {live}`),
		touch: f(`UPDATE {t} SET expires_at = ? WHERE key = ? AND {live}`),

		keysFirst:   f(`SELECT key FROM {t} WHERE key >= ? ORDER BY key LIMIT ?`),
		keysFirstTo: f(`SELECT key FROM {t} WHERE key >= ? AND key < ? ORDER BY key LIMIT ?`),
		keysNext:    f(`SELECT key FROM {t} WHERE key > ? ORDER BY key LIMIT ?`),
		keysTo:      f(`SELECT key FROM {t} WHERE key > ? AND key < ? ORDER BY key LIMIT ?`),

		sweep:      f(`DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE expires_at > 0 AND expires_at <= ? LIMIT ?)`),
		sweepUsers: f(`DELETE FROM {u} WHERE rowid IN (SELECT rowid FROM {u} WHERE expires_at > 0 AND expires_at <= ? LIMIT ?)`),

		addUser: f(`INSERT INTO {u} (user, key, expires_at) VALUES (?, ?, ?)
ON CONFLICT (user, key) DO UPDATE SET expires_at = CASE
	WHEN {u}.expires_at = 0 OR excluded.expires_at = 0 THEN 0
	ELSE max({u}.expires_at, excluded.expires_at) END`),
		userKeys:   f(`SELECT key FROM {u} WHERE user = ? AND {live}`),
		removeUser: f(`DELETE FROM {u} WHERE user = ? AND key = ?`),
	}
}

// CreateSchema creates the store's tables and indexes if they do not exist.
// Each statement is idempotent, so it is safe to call on every start, from
// several processes at once, and again after a failure.
func (s *Store) CreateSchema(ctx context.Context) error {
	for _, q := range s.q.schema {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlitestore: create schema: %w", err)
		}
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlitestore: create schema: %w", err)
		}
	}
	return nil
}

// millis converts an expiry to the stored form: Unix milliseconds, 0 for
// the zero time (no expiry). Instants at or before the epoch become 1, so
// they stay expired rather than turning into "never".
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// newVersion returns a random version in [1, 2^63-1] other than old.
func newVersion(old uint64) uint64 {
	for {
		if v := rand.Uint64() >> 1; v != 0 && v != old {
			return v
		}
	}
}

// Get implements [kvsession.Store]. A row that does not hold what the store
// writes reads as missing.
func (s *Store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := ctx.Err(); err != nil {
		return kvsession.Entry{}, fmt.Errorf("sqlitestore: get: %w", err)
	}
	var value, exp, ver any
	err := s.db.QueryRowContext(ctx, s.q.get, []byte(key), s.now().UnixMilli()).Scan(&value, &exp, &ver)
	if errors.Is(err, sql.ErrNoRows) {
		return kvsession.Entry{}, fmt.Errorf("sqlitestore: get: %w", kvsession.ErrNotFound)
	}
	if err != nil {
		return kvsession.Entry{}, fmt.Errorf("sqlitestore: get: %w", err)
	}
	e, ok := decode(value, exp, ver)
	if !ok {
		return kvsession.Entry{}, fmt.Errorf("sqlitestore: get: %w: %w", kvsession.ErrCorrupt, kvsession.ErrNotFound)
	}
	return e, nil
}

// decode checks the types of a scanned row. database/sql has already copied
// the bytes, so the returned value is the caller's.
func decode(value, exp, ver any) (kvsession.Entry, bool) {
	var e kvsession.Entry
	switch v := value.(type) {
	case []byte:
		e.Value = v
	case string:
		e.Value = []byte(v)
	default:
		return e, false
	}
	if e.Value == nil {
		e.Value = []byte{}
	}
	ms, ok := exp.(int64)
	if !ok || ms < 0 {
		return e, false
	}
	e.ExpiresAt = fromMillis(ms)
	v, ok := ver.(int64)
	if !ok || v <= 0 {
		return e, false
	}
	e.Version = uint64(v)
	return e, true
}

// Set implements [kvsession.Store].
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: set: %w", err)
	}
	if value == nil {
		value = []byte{} // NULL would violate NOT NULL
	}
	if _, err := s.db.ExecContext(ctx, s.q.set, []byte(key), value, millis(expiresAt), int64(newVersion(0))); err != nil {
		return fmt.Errorf("sqlitestore: set: %w", err)
	}
	return nil
}

// Delete implements [kvsession.Store].
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: delete: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q.del, []byte(key)); err != nil {
		return fmt.Errorf("sqlitestore: delete: %w", err)
	}
	return nil
}

// CompareAndSwap implements [kvsession.Store].
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	const op = "compare and swap"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	if value == nil {
		value = []byte{}
	}
	now := s.now().UnixMilli()
	return s.conditional(ctx, op, key, now, old, s.q.cas,
		value, millis(expiresAt), int64(newVersion(old)), []byte(key), versionArg(old), now)
}

// CompareAndDelete implements [kvsession.Store].
func (s *Store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	const op = "compare and delete"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	now := s.now().UnixMilli()
	return s.conditional(ctx, op, key, now, old, s.q.cad, []byte(key), versionArg(old), now)
}

// versionArg maps a caller's version to a query argument. Versions above
// 2^63-1 are never issued, so they become -1, which matches no row.
func versionArg(v uint64) int64 {
	if v > 1<<63-1 {
		return -1
	}
	return int64(v)
}

// conditional runs a statement that changes at most the one live row under
// key with version old. When it changes none, it tells a missing record
// from one with another version, which it returns in a
// *kvsession.ConflictError.
func (s *Store) conditional(ctx context.Context, op, key string, now int64, old uint64, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	if n > 0 {
		return nil
	}
	var value, exp, ver any
	err = s.db.QueryRowContext(ctx, s.q.get, []byte(key), now).Scan(&value, &exp, &ver)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlitestore: %s: %w", op, kvsession.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	current, ok := decode(value, exp, ver)
	if !ok {
		return fmt.Errorf("sqlitestore: %s: corrupt record: %w", op, kvsession.ErrNotFound)
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, &kvsession.ConflictError{Current: current})
}

// Touch implements [kvsession.Store]. It keeps the record's version.
func (s *Store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: touch: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.q.touch, millis(expiresAt), []byte(key), s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("sqlitestore: touch: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlitestore: touch: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlitestore: touch: %w", kvsession.ErrNotFound)
	}
	return nil
}

// keysPage is how many keys Keys reads per query.
const keysPage = 500

// Keys implements [kvsession.Lister]. It reads the keys in pages, in key
// order, each page with one short query by key range; fn runs between the
// queries, so it may call the store. It reports every row, expired ones
// too until DeleteExpired removes them.
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	page := make([][]byte, 0, keysPage)
	query := func(ctx context.Context, p keyrange.Page) ([][]byte, error) {
		var q string
		var args []any
		switch {
		case p.First() && p.Bounded:
			q, args = s.q.keysFirstTo, []any{p.Prefix, p.To}
		case p.First():
			q, args = s.q.keysFirst, []any{p.Prefix}
		case p.Bounded:
			q, args = s.q.keysTo, []any{p.After, p.To}
		default:
			q, args = s.q.keysNext, []any{p.After}
		}
		args = append(args, keysPage)
		var err error
		if page, err = s.keysPage(ctx, page[:0], q, args...); err != nil {
			return nil, fmt.Errorf("sqlitestore: keys: %w", err)
		}
		return page, nil
	}
	return keyrange.Walk(ctx, "sqlitestore: keys", prefix, keysPage, query, fn)
}

func (s *Store) keysPage(ctx context.Context, page [][]byte, q string, args ...any) ([][]byte, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		page = append(page, k)
	}
	return page, rows.Err()
}

// sweepBatch is how many rows DeleteExpired removes per statement.
const sweepBatch = 1000

// DeleteExpired implements [kvsession.ExpiredDeleter]. It deletes expired
// records, then expired user index entries, 1000 rows per statement, and
// reports how many records it deleted: after each statement that deleted
// some to ctx's progress function ([kvsession.WithSweepProgress]), and in
// all at the end. If ctx is cancelled between two batches it stops and
// returns the count so far with the context's error.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sqlitestore: delete expired: %w", err)
	}
	now := s.now().UnixMilli()
	total := 0
	for _, q := range []string{s.q.sweep, s.q.sweepUsers} {
		for {
			if err := ctx.Err(); err != nil {
				return total, fmt.Errorf("sqlitestore: delete expired: %w", err)
			}
			res, err := s.db.ExecContext(ctx, q, now, sweepBatch)
			if err != nil {
				return total, fmt.Errorf("sqlitestore: delete expired: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("sqlitestore: delete expired: %w", err)
			}
			if q == s.q.sweep && n > 0 {
				total += int(n)
				kvsession.ReportSweepProgress(ctx, total)
			}
			if n < sweepBatch {
				break
			}
		}
	}
	return total, nil
}

// AddUserKey implements [kvsession.UserIndex].
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: add user key: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q.addUser, []byte(user), []byte(key), millis(expiresAt)); err != nil {
		return fmt.Errorf("sqlitestore: add user key: %w", err)
	}
	return nil
}

// UserKeys implements [kvsession.UserIndex].
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: user keys: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.q.userKeys, []byte(user), s.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: user keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("sqlitestore: user keys: %w", err)
		}
		keys = append(keys, string(k))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: user keys: %w", err)
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex].
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: remove user key: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q.removeUser, []byte(user), []byte(key)); err != nil {
		return fmt.Errorf("sqlitestore: remove user key: %w", err)
	}
	return nil
}
