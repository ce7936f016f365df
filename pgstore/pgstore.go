package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Table names the session table: a plain SQL identifier (a letter or
	// underscore, then letters, digits or underscores, at most 45 bytes),
	// optionally qualified by a schema ("app.sessions"). The user index
	// table is named after it with the suffix "_users". The name is quoted,
	// so its case is kept. Default: DefaultTable.
	Table string

	// Now is the clock that decides expiry. Default: time.Now.
	Now func() time.Time
}

// Store is a session store on PostgreSQL. It is safe for concurrent use.
// Create one with [New].
type Store struct {
	pool     *pgxpool.Pool
	now      func() time.Time
	attempts int   // most runs of one statement, see retry
	lockID   int64 // advisory lock key for CreateSchema

	schema []string // CREATE statements

	get, set, del, cas, cad, touch string
	keys                           [2]string // [with an upper bound]
	sweep, sweepUsers              string
	addUser, userKeys, removeUser  string
}

// The most rows one statement of DeleteExpired removes, and the most keys
// one query of Keys reads.
const (
	sweepBatch = 1000
	keysPage   = 1000
)

// The longest table name New accepts, so that the longest derived name
// (table + "_users_expires_idx") fits PostgreSQL's 63-byte identifiers.
const maxTableLen = 63 - len("_users_expires_idx")

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// New returns a Store that keeps sessions in pool's database. It does no
// I/O: call [Store.CreateSchema] to create the tables. A nil opts means the
// zero Options. New fails if pool is nil or Options.Table is not a valid
// name.
//
// Bound pool below the server's max_connections (Config.MaxConns, or
// pool_max_conns in the connection string; see "Connection pool" in the
// package documentation): the store uses as many of its connections as
// there are calls in flight.
func New(pool *pgxpool.Pool, opts *Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: new: nil *pgxpool.Pool")
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
	schema, name, qualified := "", o.Table, strings.Contains(o.Table, ".")
	if qualified {
		schema, name, _ = strings.Cut(o.Table, ".")
		if !identRE.MatchString(schema) || len(schema) > 63 {
			return nil, fmt.Errorf("pgstore: new: invalid schema name %q in table name", schema)
		}
	}
	if !identRE.MatchString(name) || len(name) > maxTableLen {
		return nil, fmt.Errorf("pgstore: new: invalid table name %q: want a letter or underscore then letters, digits or underscores, at most %d bytes, optionally after a schema name and a dot", o.Table, maxTableLen)
	}
	qualify := func(n string) string {
		if qualified {
			return quote(schema) + "." + quote(n)
		}
		return quote(n)
	}
	t, u := qualify(name), qualify(name+"_users")
	h := fnv.New64a()
	h.Write([]byte("kvsession/pgstore " + o.Table))

	s := &Store{
		pool:     pool,
		now:      o.Now,
		attempts: int(pool.Config().MaxConns) + 1,
		lockID:   int64(h.Sum64()),
		schema: []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	"key"        bytea PRIMARY KEY,
	"value"      bytea NOT NULL,
	"expires_at" timestamptz,
	"version"    bigint NOT NULL
)`,
			`CREATE INDEX IF NOT EXISTS ` + quote(name+"_expires_idx") + "\n\tON " + t + ` ("expires_at")`,
			`CREATE TABLE IF NOT EXISTS ` + u + ` (
	"user"       bytea NOT NULL,
	"key"        bytea NOT NULL,
	"expires_at" timestamptz,
	PRIMARY KEY ("user", "key")
)`,
			`CREATE INDEX IF NOT EXISTS ` + quote(name+"_users_expires_idx") + "\n\tON " + u + ` ("expires_at")`,
		},
	}
	// $now is always the parameter that carries Options.Now.
	const live = `("expires_at" IS NULL OR "expires_at" > $now)`
	q := func(query string, now int) string {
		return strings.ReplaceAll(query, "$now", fmt.Sprintf("$%d", now))
	}
	s.get = q(`SELECT "value", "expires_at", "version" FROM `+t+` WHERE "key" = $1 AND `+live, 2)
	s.set = `INSERT INTO ` + t + ` ("key", "value", "expires_at", "version") VALUES ($1, $2, $3, $4)
ON CONFLICT ("key") DO UPDATE SET "value" = EXCLUDED."value", "expires_at" = EXCLUDED."expires_at", "version" = EXCLUDED."version"`
	s.del = `DELETE FROM ` + t + ` WHERE "key" = $1`
	s.cas = q(`UPDATE `+t+` SET "value" = $2, "expires_at" = $3, "version" = $4 WHERE "key" = $1 AND "version" = $5 AND `+live, 6)
	s.cad = q(`DELETE FROM `+t+` WHERE "key" = $1 AND "version" = $2 AND `+live, 3)
	s.touch = q(`UPDATE `+t+` SET "expires_at" = $2 WHERE "key" = $1 AND `+live, 3)
	for bounded, upper := range []string{``, ` AND "key" < $3`} {
		s.keys[bounded] = `SELECT "key" FROM ` + t + ` WHERE "key" >= $1 AND "key" > $2` + upper +
			fmt.Sprintf(` ORDER BY "key" LIMIT %d`, keysPage)
	}
	s.sweep = fmt.Sprintf(`DELETE FROM %[1]s WHERE "key" IN (
	SELECT "key" FROM %[1]s WHERE "expires_at" <= $1 LIMIT %[2]d FOR UPDATE SKIP LOCKED
) AND "expires_at" <= $1`, t, sweepBatch)
	s.sweepUsers = fmt.Sprintf(`DELETE FROM %[1]s WHERE ("user", "key") IN (
	SELECT "user", "key" FROM %[1]s WHERE "expires_at" <= $1 LIMIT %[2]d FOR UPDATE SKIP LOCKED
) AND "expires_at" <= $1`, u, sweepBatch)
	s.addUser = `INSERT INTO ` + u + ` AS u ("user", "key", "expires_at") VALUES ($1, $2, $3)
ON CONFLICT ("user", "key") DO UPDATE SET "expires_at" = CASE
	WHEN u."expires_at" IS NULL OR EXCLUDED."expires_at" IS NULL THEN NULL
	ELSE GREATEST(u."expires_at", EXCLUDED."expires_at") END`
	s.userKeys = q(`SELECT "key" FROM `+u+` WHERE "user" = $1 AND `+live+` ORDER BY "key"`, 2)
	s.removeUser = `DELETE FROM ` + u + ` WHERE "user" = $1 AND "key" = $2`
	return s, nil
}

func quote(ident string) string { return `"` + ident + `"` }

// CreateSchema creates the tables and indexes described in the package
// documentation if they do not exist. It is idempotent, and concurrent
// calls from several processes are serialised by an advisory lock.
func (s *Store) CreateSchema(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: create schema: %w", err)
	}
	err := s.retry(ctx, true, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.lockID); err != nil {
				return err
			}
			for _, stmt := range s.schema {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return s.fail(ctx, "create schema", err)
}

// fail wraps err, a failure of operation op, making sure that it wraps the
// context's error if the context has ended. It returns nil for a nil err.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("pgstore: %s: %w: %w", op, err, cerr)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

func notFound(op string) error {
	return fmt.Errorf("pgstore: %s: %w", op, kvsession.ErrNotFound)
}

// retry runs f and runs it again while it fails because the connection it
// got from the pool had died, at most once per pooled connection. A
// statement runs again only if it certainly did not run (the driver never
// sent it, or the server terminated the session first), or if running it
// twice is harmless (idempotent). Failed connection attempts and a done
// context are not retried.
func (s *Store) retry(ctx context.Context, idempotent bool, f func() error) error {
	var err error
	for range s.attempts {
		err = f()
		if err == nil || ctx.Err() != nil || !retryable(err, idempotent) {
			return err
		}
	}
	return err
}

func retryable(err error, idempotent bool) bool {
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// admin_shutdown, crash_shutdown: the session was terminated
		// before the statement committed.
		return pgErr.Code == "57P01" || pgErr.Code == "57P02"
	}
	// Anything else that is not a server error (EOF, reset, closed
	// connection) means the connection broke, maybe after the statement
	// ran.
	return idempotent && !errors.Is(err, pgx.ErrNoRows)
}

// newVersion returns a random non-zero 63-bit version other than old.
func newVersion(old uint64) int64 {
	for {
		if v := rand.Int64(); v != 0 && uint64(v) != old {
			return v
		}
	}
}

// expiry converts an expiry for a query parameter: NULL for "never".
func expiry(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
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
		return kvsession.Entry{}, fmt.Errorf("pgstore: get: %w", err)
	}
	e, err := s.read(ctx, key, s.now())
	if errors.Is(err, pgx.ErrNoRows) {
		return kvsession.Entry{}, notFound("get")
	}
	if err != nil {
		return kvsession.Entry{}, s.fail(ctx, "get", err)
	}
	return e, nil
}

// read returns the record under key if it is live at now, and
// pgx.ErrNoRows if it is not.
func (s *Store) read(ctx context.Context, key string, now time.Time) (kvsession.Entry, error) {
	var (
		e       kvsession.Entry
		exp     *time.Time
		version int64
	)
	err := s.retry(ctx, true, func() error {
		return s.pool.QueryRow(ctx, s.get, []byte(key), now).Scan(&e.Value, &exp, &version)
	})
	if err != nil {
		return kvsession.Entry{}, err
	}
	if e.Value == nil {
		e.Value = []byte{}
	}
	if exp != nil {
		e.ExpiresAt = *exp
	}
	e.Version = uint64(version)
	return e, nil
}

// Set implements [kvsession.Store].
func (s *Store) Set(ctx context.Context, key string, value []byte, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: set: %w", err)
	}
	version := newVersion(0)
	err := s.retry(ctx, true, func() error {
		_, err := s.pool.Exec(ctx, s.set, []byte(key), nonNil(value), expiry(expiresAt), version)
		return err
	})
	return s.fail(ctx, "set", err)
}

// Delete implements [kvsession.Store].
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: delete: %w", err)
	}
	err := s.retry(ctx, true, func() error {
		_, err := s.pool.Exec(ctx, s.del, []byte(key))
		return err
	})
	return s.fail(ctx, "delete", err)
}

// exec runs a conditional statement and reports how many rows it changed.
func (s *Store) exec(ctx context.Context, idempotent bool, query string, args ...any) (int64, error) {
	var n int64
	err := s.retry(ctx, idempotent, func() error {
		tag, err := s.pool.Exec(ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// whyNot explains a conditional statement on key that changed no row:
// ErrNotFound if no live record exists under key at now, else a
// *kvsession.ConflictError holding that record.
func (s *Store) whyNot(ctx context.Context, op, key string, now time.Time) error {
	current, err := s.read(ctx, key, now)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notFound(op)
	case err != nil:
		return s.fail(ctx, op, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, &kvsession.ConflictError{Current: current})
}

// CompareAndSwap implements [kvsession.Store].
func (s *Store) CompareAndSwap(ctx context.Context, key string, value []byte, expiresAt time.Time, old uint64) error {
	const op = "compare and swap"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: %s: %w", op, err)
	}
	now := s.now()
	n, err := s.exec(ctx, false, s.cas, []byte(key), nonNil(value), expiry(expiresAt), newVersion(old), int64(old), now)
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
		return fmt.Errorf("pgstore: %s: %w", op, err)
	}
	now := s.now()
	n, err := s.exec(ctx, false, s.cad, []byte(key), int64(old), now)
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
		return fmt.Errorf("pgstore: touch: %w", err)
	}
	n, err := s.exec(ctx, true, s.touch, []byte(key), expiry(expiresAt), s.now())
	switch {
	case err != nil:
		return s.fail(ctx, "touch", err)
	case n == 0:
		return notFound("touch")
	}
	return nil
}

// Keys implements [kvsession.Lister]. It reports the keys of every record,
// expired ones too until DeleteExpired removes them, in byte order, reading
// them 1000 at a time, and holds no connection while fn runs, so fn may
// call the store.
func (s *Store) Keys(ctx context.Context, prefix string, fn func(key string) error) error {
	page := make([][]byte, 0, keysPage)
	query := func(ctx context.Context, p keyrange.Page) ([][]byte, error) {
		// Every key is greater than the empty string.
		args := []any{nonNil(p.Prefix), nonNil(p.After)}
		query := s.keys[0]
		if p.Bounded {
			query = s.keys[1]
			args = append(args, p.To)
		}
		err := s.retry(ctx, true, func() error {
			page = page[:0]
			rows, _ := s.pool.Query(ctx, query, args...)
			var k []byte
			_, err := pgx.ForEachRow(rows, []any{&k}, func() error {
				page = append(page, k)
				return nil
			})
			return err
		})
		if err != nil {
			return nil, s.fail(ctx, "keys", err)
		}
		return page, nil
	}
	return keyrange.Walk(ctx, "pgstore: keys", prefix, keysPage, query, fn)
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
		return 0, fmt.Errorf("pgstore: delete expired: %w", err)
	}
	now := s.now()
	total := 0
	for _, query := range []string{s.sweep, s.sweepUsers} {
		for {
			if err := ctx.Err(); err != nil {
				return total, fmt.Errorf("pgstore: delete expired: %w", err)
			}
			n, err := s.exec(ctx, true, query, now)
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

// AddUserKey implements [kvsession.UserIndex].
func (s *Store) AddUserKey(ctx context.Context, user, key string, expiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: add user key: %w", err)
	}
	_, err := s.exec(ctx, true, s.addUser, []byte(user), []byte(key), expiry(expiresAt))
	return s.fail(ctx, "add user key", err)
}

// UserKeys implements [kvsession.UserIndex]. It returns the keys in byte
// order.
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: user keys: %w", err)
	}
	now := s.now()
	var keys []string
	err := s.retry(ctx, true, func() error {
		keys = keys[:0]
		rows, _ := s.pool.Query(ctx, s.userKeys, []byte(user), now)
		var k []byte
		_, err := pgx.ForEachRow(rows, []any{&k}, func() error {
			keys = append(keys, string(k))
			return nil
		})
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, "user keys", err)
	}
	return keys, nil
}

// RemoveUserKey implements [kvsession.UserIndex].
func (s *Store) RemoveUserKey(ctx context.Context, user, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: remove user key: %w", err)
	}
	_, err := s.exec(ctx, true, s.removeUser, []byte(user), []byte(key))
	return s.fail(ctx, "remove user key", err)
}
