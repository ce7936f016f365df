package mysqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/internal/keyrange"
)

var (
	_ kvsession.Store          = (*Store)(nil)
	_ kvsession.Lister         = (*Store)(nil)
	_ kvsession.ExpiredDeleter = (*Store)(nil)
)

// DefaultTable is the session table's name when [Options].Table is empty.
const DefaultTable = "kvsession_sessions"

// MaxKeyLen is the longest key the store accepts: the width of its
// VARBINARY columns. User IDs may be longer (see [Store.AddUserKey]).
const MaxKeyLen = 255

// hashedUserTag starts the stored form of a user ID of MaxKeyLen bytes or
// more: the tag, padding, then the hex SHA-256 of the user ID, MaxKeyLen
// bytes in all. Shorter user IDs are stored as they are, so no hashed form
// equals a stored short one.
const hashedUserTag = "kvsession-user-sha256:"

// storedUser returns the user column's value for user: user itself if it
// is shorter than MaxKeyLen bytes, else its hashed form, exactly MaxKeyLen
// bytes long.
func storedUser(user string) []byte {
	if len(user) < MaxKeyLen {
		return []byte(user)
	}
	sum := sha256.Sum256([]byte(user))
	b := make([]byte, 0, MaxKeyLen)
	b = append(b, hashedUserTag...)
	b = append(b, strings.Repeat("_", MaxKeyLen-len(hashedUserTag)-2*len(sum))...)
	return hex.AppendEncode(b, sum[:])
}

// legacyUser returns the user column's value that the previous version of
// this package wrote for user, if it differs from storedUser's: a user ID
// of exactly MaxKeyLen bytes was stored as it is. Reads and removals look
// there too, so that sessions indexed before an upgrade stay listed and
// revocable; except for a user ID that starts with hashedUserTag, which
// could otherwise be chosen to equal another user's hashed form.
func legacyUser(user string) ([]byte, bool) {
	return []byte(user), len(user) == MaxKeyLen && !strings.HasPrefix(user, hashedUserTag)
}

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Table names the session table: a plain SQL identifier (a letter or
	// underscore, then letters, digits or underscores, at most 58 bytes).
	// The user index table is named after it with the suffix "_users".
	// Default: DefaultTable.
	Table string

	// Now is the clock that decides expiry. Default: time.Now.
	Now func() time.Time
}

// Store is a session store on MariaDB or MySQL. It is safe for concurrent
// use. Create one with [New].
type Store struct {
	db  *sql.DB
	now func() time.Time

	schema []string // CREATE statements

	get, set, del, cas, cad, touch, live string
	keys                                 [2]string // [with an upper bound]
	sweep, sweepUsers                    string
	addUser, userKeys, removeUser        string

	mu     sync.RWMutex
	stmts  map[string]*sql.Stmt // prepared on first use, by query
	closed bool
}

// The most rows one statement of DeleteExpired removes, and the most keys
// one query of Keys reads.
const (
	sweepBatch = 1000
	keysPage   = 1000
)

// The longest table name New accepts, so that the user index table's name
// fits MariaDB's 64-byte identifiers.
const maxTableLen = 64 - len("_users")

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// errClosed reports a call on a closed Store.
var errClosed = errors.New("store closed")

// New returns a Store that keeps sessions in db's database. It does no
// I/O: call [Store.CreateSchema] to create the tables. A nil opts means the
// zero Options. New fails if db is nil or Options.Table is not a valid
// name.
//
// Bound db's pool before serving requests: db.SetMaxOpenConns(n) and
// db.SetMaxIdleConns(n), with n well under the server's max_connections
// (see "Connection pool" in the package documentation). An unbounded pool
// lets a burst of requests exhaust the server's connections.
func New(db *sql.DB, opts *Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("mysqlstore: new: nil *sql.DB")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if !identRE.MatchString(o.Table) || len(o.Table) > maxTableLen {
		return nil, fmt.Errorf("mysqlstore: new: invalid table name %q: want a letter or underscore then letters, digits or underscores, at most %d bytes", o.Table, maxTableLen)
	}
	t, u := quote(o.Table), quote(o.Table+"_users")
	s := &Store{
		db:    db,
		now:   o.Now,
		stmts: make(map[string]*sql.Stmt),
		schema: []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	` + "`key`        VARBINARY(255) NOT NULL," + `
	` + "`value`      LONGBLOB NOT NULL," + `
	` + "`expires_at` BIGINT NULL," + `
	` + "`version`    BIGINT NOT NULL," + `
	` + "PRIMARY KEY (`key`)," + `
	` + "KEY `expires_at` (`expires_at`)" + `
) ENGINE=InnoDB`,
			`CREATE TABLE IF NOT EXISTS ` + u + ` (
	` + "`user`       VARBINARY(255) NOT NULL," + `
	` + "`key`        VARBINARY(255) NOT NULL," + `
	` + "`expires_at` BIGINT NULL," + `
	` + "PRIMARY KEY (`user`, `key`)," + `
	` + "KEY `expires_at` (`expires_at`)" + `
) ENGINE=InnoDB`,
		},
	}
	// The live condition takes the current time, in Unix microseconds, as
	// its parameter.
	const live = "(`expires_at` IS NULL OR `expires_at` > ?)"
	s.get = "SELECT `value`, `expires_at`, `version` FROM " + t + " WHERE `key` = ? AND " + live
	s.set = "INSERT INTO " + t + " (`key`, `value`, `expires_at`, `version`) VALUES (?, ?, ?, ?)" +
		" ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), `expires_at` = VALUES(`expires_at`), `version` = VALUES(`version`)"
	s.del = "DELETE FROM " + t + " WHERE `key` = ?"
	s.cas = "UPDATE " + t + " SET `value` = ?, `expires_at` = ?, `version` = ? WHERE `key` = ? AND `version` = ? AND " + live
	s.cad = "DELETE FROM " + t + " WHERE `key` = ? AND `version` = ? AND " + live
	s.touch = "UPDATE " + t + " SET `expires_at` = ? WHERE `key` = ? AND " + live
	s.live = "SELECT 1 FROM " + t + " WHERE `key` = ? AND " + live
	for bounded, upper := range []string{"", " AND `key` < ?"} {
		s.keys[bounded] = "SELECT `key` FROM " + t + " WHERE `key` >= ? AND `key` > ?" + upper +
			fmt.Sprintf(" ORDER BY `key` LIMIT %d", keysPage)
	}
	s.sweep = "DELETE FROM " + t + " WHERE `expires_at` <= ? ORDER BY `expires_at`, `key`" + fmt.Sprintf(" LIMIT %d", sweepBatch)
	s.sweepUsers = "DELETE FROM " + u + " WHERE `expires_at` <= ? ORDER BY `expires_at`, `user`, `key`" + fmt.Sprintf(" LIMIT %d", sweepBatch)
	s.addUser = "INSERT INTO " + u + " (`user`, `key`, `expires_at`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `expires_at` = CASE" +
		" WHEN `expires_at` IS NULL OR VALUES(`expires_at`) IS NULL THEN NULL" +
		" ELSE GREATEST(`expires_at`, VALUES(`expires_at`)) END"
	// The user's stored form, then its legacy form (the same again for most
	// users): see storedUser and legacyUser.
	s.userKeys = "SELECT DISTINCT `key` FROM " + u + " WHERE `user` IN (?, ?) AND " + live + " ORDER BY `key`"
	s.removeUser = "DELETE FROM " + u + " WHERE `user` IN (?, ?) AND `key` = ?"
	return s, nil
}

func quote(ident string) string { return "`" + ident + "`" }

// CreateSchema creates the tables described in the package documentation
// if they do not exist. It is idempotent.
func (s *Store) CreateSchema(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: create schema: %w", err)
	}
	for _, stmt := range s.schema {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return s.fail(ctx, "create schema", err)
		}
	}
	return nil
}

// Close releases the statements the store has prepared. It does not close
// the database handle. Calls on a closed store return an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for q, st := range s.stmts {
		errs = append(errs, st.Close())
		delete(s.stmts, q)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mysqlstore: close: %w", err)
	}
	return nil
}

// stmt returns query prepared.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.RLock()
	st, closed := s.stmts[query], s.closed
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, errClosed
	case st != nil:
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		st.Close()
		return nil, errClosed
	}
	if prev := s.stmts[query]; prev != nil {
		st.Close() // another call prepared it meanwhile
		return prev, nil
	}
	s.stmts[query] = st
	return st, nil
}

// The most runs of a statement that loses deadlocks.
const attempts = 3

// erDeadlock is ER_LOCK_DEADLOCK: the server rolled the statement back.
const erDeadlock = 1213

// retry runs f again when it loses a deadlock. The server rolled the
// statement back, so running it again is safe whatever it does. Dead
// pooled connections are retried by database/sql itself.
func retry(ctx context.Context, f func() error) error {
	var err error
	for range attempts {
		err = f()
		var myErr *mysql.MySQLError
		if err == nil || ctx.Err() != nil || !errors.As(err, &myErr) || myErr.Number != erDeadlock {
			return err
		}
	}
	return err
}

// exec runs a prepared statement and reports how many rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := retry(ctx, func() error {
		st, err := s.stmt(ctx, query)
		if err != nil {
			return err
		}
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// queryRow runs a prepared query and scans its first row into dest. It
// returns sql.ErrNoRows if there is none.
func (s *Store) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return retry(ctx, func() error {
		st, err := s.stmt(ctx, query)
		if err != nil {
			return err
		}
		return st.QueryRowContext(ctx, args...).Scan(dest...)
	})
}

// queryKeys runs a prepared query whose rows are one binary column and
// appends each to keys.
func (s *Store) queryKeys(ctx context.Context, query string, args ...any) ([][]byte, error) {
	var keys [][]byte
	err := retry(ctx, func() error {
		keys = keys[:0]
		st, err := s.stmt(ctx, query)
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k []byte
			if err := rows.Scan(&k); err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return rows.Err()
	})
	return keys, err
}

// fail wraps err, a failure of operation op, making sure that it wraps the
// context's error if the context has ended. It returns nil for a nil err.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("mysqlstore: %s: %w: %w", op, err, cerr)
	}
	return fmt.Errorf("mysqlstore: %s: %w", op, err)
}

func notFound(op string) error {
	return fmt.Errorf("mysqlstore: %s: %w", op, kvsession.ErrNotFound)
}

func tooLong(op, what string, s string) error {
	return fmt.Errorf("mysqlstore: %s: %s is %d bytes, longer than %d", op, what, len(s), MaxKeyLen)
}

// newVersion returns a random non-zero 63-bit version other than old.
func newVersion(old uint64) int64 {
	for {
		if v := rand.Int64(); v != 0 && uint64(v) != old {
			return v
		}
	}
}

// expiry converts an expiry for a query parameter: Unix microseconds, or
// NULL for "never".
func expiry(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// nonNil keeps an empty value from being stored as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Get implements [kvsession.Store].
func (s *Store) Get(ctx context.Context, key string) (kvsession.Entry, error) {
	if err := ctx.Err(); err != nil {
		return kvsession.Entry{}, fmt.Errorf("mysqlstore: get: %w", err)
	}
	if len(key) > MaxKeyLen {
		return kvsession.Entry{}, notFound("get")
	}
	e, err := s.read(ctx, key, s.now().UnixMicro())
	if errors.Is(err, sql.ErrNoRows) {
		return kvsession.Entry{}, notFound("get")
	}
	if err != nil {
		return kvsession.Entry{}, s.fail(ctx, "get", err)
	}
	return e, nil
}

// read returns the record under key if it is live at now, and
// sql.ErrNoRows if it is not.
func (s *Store) read(ctx context.Context, key string, now int64) (kvsession.Entry, error) {
	var (
		value   []byte
		exp     sql.NullInt64
		version int64
	)
	err := s.queryRow(ctx, s.get, []any{[]byte(key), now}, &value, &exp, &version)
	if err != nil {
		return kvsession.Entry{}, err
	}
	e := kvsession.Entry{Value: nonNil(value), Version: uint64(version)}
	if exp.Valid {
		e.ExpiresAt = time.UnixMicro(exp.Int64)
	}
	return e, nil
}

// Set implements [kvsession.Store].
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: set: %w", err)
	}
	if len(key) > MaxKeyLen {
		return tooLong("set", "key", key)
	}
	_, err := s.exec(ctx, s.set, []byte(key), nonNil(value), expiry(expiresAt), newVersion(0))
	return s.fail(ctx, "set", err)
}

// Delete implements [kvsession.Store].
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: delete: %w", err)
	}
	if len(key) > MaxKeyLen {
		return nil
	}
	_, err := s.exec(ctx, s.del, []byte(key))
	return s.fail(ctx, "delete", err)
}

// isLive reports whether a live record exists under key at now.
func (s *Store) isLive(ctx context.Context, key string, now int64) (bool, error) {
	var one int
	err := s.queryRow(ctx, s.live, []any{[]byte(key), now}, &one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// whyNot explains a conditional statement on key that changed no row:
// ErrNotFound if no live record exists under key at now, else a
// *kvsession.ConflictError holding that record.
func (s *Store) whyNot(ctx context.Context, op, key string, now int64) error {
	current, err := s.read(ctx, key, now)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound(op)
	case err != nil:
		return s.fail(ctx, op, err)
	}
	return fmt.Errorf("mysqlstore: %s: %w", op, &kvsession.ConflictError{Current: current})
}

// CompareAndSwap implements [kvsession.Store].
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	const op = "compare and swap"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: %s: %w", op, err)
	}
	if len(key) > MaxKeyLen {
		return notFound(op)
	}
	now := s.now().UnixMicro()
	// The new version differs from old, so a matched row always changes
	// and RowsAffected counts it with or without clientFoundRows.
	n, err := s.exec(ctx, s.cas, nonNil(value), expiry(expiresAt), newVersion(old), []byte(key), int64(old), now)
	switch {
	case err != nil:
		return s.fail(ctx, op, err)
	case n == 0:
		return s.whyNot(ctx, op, key, now)
	}
	return nil
}

// CompareAndDelete implements [kvsession.Store].
func (s *Store) CompareAndDelete(ctx context.Context, key string, old uint64) error {
	const op = "compare and delete"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: %s: %w", op, err)
	}
	if len(key) > MaxKeyLen {
		return notFound(op)
	}
	now := s.now().UnixMicro()
	n, err := s.exec(ctx, s.cad, []byte(key), int64(old), now)
	switch {
	case err != nil:
		return s.fail(ctx, op, err)
	case n == 0:
		return s.whyNot(ctx, op, key, now)
	}
	return nil
}

// Touch implements [kvsession.Store]. It keeps the record's version.
func (s *Store) Touch(ctx context.Context, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: touch: %w", err)
	}
	if len(key) > MaxKeyLen {
		return notFound("touch")
	}
	now := s.now().UnixMicro()
	n, err := s.exec(ctx, s.touch, expiry(expiresAt), []byte(key), now)
	if err != nil {
		return s.fail(ctx, "touch", err)
	}
	if n > 0 {
		return nil
	}
	// Without clientFoundRows, a record that already had this expiry
	// counts as unchanged: look.
	ok, err := s.isLive(ctx, key, now)
	switch {
	case err != nil:
		return s.fail(ctx, "touch", err)
	case !ok:
		return notFound("touch")
	}
	return nil
}

// Keys implements [kvsession.Lister]. It reports the keys of every record,
// expired ones too until DeleteExpired removes them, in byte order, reading
// them 1000 at a time, and holds no connection while fn runs, so fn may
// call the store.
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: keys: %w", err)
	}
	if len(prefix) > MaxKeyLen {
		return nil
	}
	query := func(ctx context.Context, p keyrange.Page) ([][]byte, error) {
		// Every key is greater than the empty string.
		args := []any{nonNil(p.Prefix), nonNil(p.After)}
		query := s.keys[0]
		if p.Bounded {
			query = s.keys[1]
			args = append(args, p.To)
		}
		page, err := s.queryKeys(ctx, query, args...)
		if err != nil {
			return nil, s.fail(ctx, "keys", err)
		}
		return page, nil
	}
	return keyrange.Walk(ctx, "mysqlstore: keys", prefix, keysPage, query, fn)
}

// DeleteExpired implements [kvsession.ExpiredDeleter]. It deletes expired
// records in statements of at most 1000 rows, then the expired entries of
// the user index, which it does not count. After each statement that
// removed records it reports the count so far to ctx's progress function
// ([kvsession.WithSweepProgress]). It checks ctx between statements; when
// ctx ends it returns the records removed so far with an error wrapping
// ctx's error.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("mysqlstore: delete expired: %w", err)
	}
	now := s.now().UnixMicro()
	total := 0
	for _, query := range []string{s.sweep, s.sweepUsers} {
		for {
			if err := ctx.Err(); err != nil {
				return total, fmt.Errorf("mysqlstore: delete expired: %w", err)
			}
			n, err := s.exec(ctx, query, now)
			if err != nil {
				return total, s.fail(ctx, "delete expired", err)
			}
			if query == s.sweep && n > 0 {
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

// userArgs returns the user's stored and legacy forms, the arguments of
// the userKeys and removeUser statements.
func userArgs(user string) (stored, legacy []byte) {
	stored = storedUser(user)
	if l, ok := legacyUser(user); ok {
		return stored, l
	}
	return stored, stored
}

// AddUserKey implements [kvsession.UserIndex]. A user ID of any length
// works: one of MaxKeyLen bytes or more is stored as a hash that no other
// user ID, short or long, shares (see the package documentation).
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	const op = "add user key"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: %s: %w", op, err)
	}
	if len(key) > MaxKeyLen {
		return tooLong(op, "key", key)
	}
	_, err := s.exec(ctx, s.addUser, storedUser(user), []byte(key), expiry(expiresAt))
	return s.fail(ctx, op, err)
}

// UserKeys implements [kvsession.UserIndex]. It returns the keys in byte
// order.
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mysqlstore: user keys: %w", err)
	}
	stored, legacy := userArgs(user)
	raw, err := s.queryKeys(ctx, s.userKeys, stored, legacy, s.now().UnixMicro())
	if err != nil {
		return nil, s.fail(ctx, "user keys", err)
	}
	keys := make([]string, len(raw))
	for i, k := range raw {
		keys[i] = string(k)
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex].
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mysqlstore: remove user key: %w", err)
	}
	if len(key) > MaxKeyLen {
		return nil
	}
	stored, legacy := userArgs(user)
	_, err := s.exec(ctx, s.removeUser, stored, legacy, []byte(key))
	return s.fail(ctx, "remove user key", err)
}
