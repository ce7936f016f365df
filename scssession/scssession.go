package scssession

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/kvsession/kvsession"
)

// DefaultKeyPrefix is the key prefix used when Config.KeyPrefix is empty.
// kvsession's own default is no prefix: its keys are bare hashes of 43
// characters, so scs records and kvsession records sharing a store stay
// apart.
const DefaultKeyPrefix = "scs:"

// maxKeyPrefix bounds Config.KeyPrefix, as kvsession bounds its own, so
// that every key fits the 250 bytes a Store accepts.
const maxKeyPrefix = 100

// Config configures a [Store].
type Config struct {
	// KeyPrefix is put before every key the adapter writes, so that several
	// applications can share one store. At most 100 bytes. Default:
	// [DefaultKeyPrefix].
	KeyPrefix string
}

// Store is an scs Store and CtxStore over a kvsession backend. It is safe
// for concurrent use.
type Store struct {
	store  kvsession.Store
	prefix string
}

// New returns a Store that keeps scs sessions in store.
func New(store kvsession.Store, cfg Config) (*Store, error) {
	if store == nil {
		return nil, errors.New("scssession: nil store")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if len(cfg.KeyPrefix) > maxKeyPrefix {
		return nil, fmt.Errorf("scssession: KeyPrefix is %d bytes, want at most %d", len(cfg.KeyPrefix), maxKeyPrefix)
	}
	return &Store{store: store, prefix: cfg.KeyPrefix}, nil
}

// StoreKey returns the store key under which the session named by token
// is kept: the prefix and an unpadded URL-safe base64 SHA-256 of the
// token.
func (s *Store) StoreKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return s.prefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Key is the former name of [Store.StoreKey].
//
// Deprecated: use StoreKey.
func (s *Store) Key(token string) string { return s.StoreKey(token) }

// FindCtx returns the blob stored for token. found is false, with a nil
// error, if there is none or it has expired; a store failure is returned
// as an error.
func (s *Store) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	if token == "" {
		return nil, false, nil
	}
	e, err := s.store.Get(ctx, s.StoreKey(token))
	if errors.Is(err, kvsession.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("scssession: find: %w", err)
	}
	return e.Value, true, nil
}

// CommitCtx stores b for token until expiry, replacing any earlier blob.
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	if token == "" {
		return errors.New("scssession: commit: empty token")
	}
	if err := s.store.Set(ctx, s.StoreKey(token), b, expiry); err != nil {
		return fmt.Errorf("scssession: commit: %w", err)
	}
	return nil
}

// DeleteCtx removes the blob stored for token. Deleting a missing one is
// not an error.
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	if err := s.store.Delete(ctx, s.StoreKey(token)); err != nil {
		return fmt.Errorf("scssession: delete: %w", err)
	}
	return nil
}

// Find is FindCtx with a background context. scs calls the Ctx methods
// when a store has them; Find is there for the Store interface.
func (s *Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit is CommitCtx with a background context.
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx with a background context.
func (s *Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// Cleanup removes expired records from a backend whose engine does not
// drop them by itself (kvsession.ExpiredDeleter: files, SQL, bbolt) and
// returns how many it removed. It removes every expired record of the
// store, kvsession's included. A backend without that capability returns
// an error wrapping errors.ErrUnsupported: Redis and memcached need none.
func (s *Store) Cleanup(ctx context.Context) (int, error) {
	d, ok := s.store.(kvsession.ExpiredDeleter)
	if !ok {
		return 0, fmt.Errorf("scssession: cleanup: %w", errors.ErrUnsupported)
	}
	n, err := d.DeleteExpired(ctx)
	if err != nil {
		return n, fmt.Errorf("scssession: cleanup: %w", err)
	}
	return n, nil
}
