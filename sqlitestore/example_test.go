package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the pure Go SQLite driver, registered as "sqlite"

	"github.com/kvsession/kvsession/sqlitestore"
)

func Example() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// See "Connection settings" in the package documentation: one
	// connection, so that concurrent requests queue in the pool within
	// their contexts; a busy_timeout well below the manager's StoreTimeout
	// for locks held by other processes; WAL, synced at checkpoints.
	dsn := "file:" + filepath.Join(dir, "sessions.db") +
		"?_pragma=busy_timeout(1000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	ctx := context.Background()
	store, err := sqlitestore.New(db, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateSchema(ctx); err != nil {
		log.Fatal(err)
	}

	if err := store.Set(ctx, "session:abc", []byte(`{"user":"ada"}`), time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}
	e, err := store.Get(ctx, "session:abc")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", e.Value)

	// Remove expired rows; run this periodically.
	n, err := store.DeleteExpired(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("expired rows removed:", n)
	// Output:
	// {"user":"ada"}
	// expired rows removed: 0
}
