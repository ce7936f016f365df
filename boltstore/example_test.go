package boltstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	"github.com/kvsession/kvsession/boltstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "boltstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// bbolt locks the file: give a timeout so that a second process fails
	// instead of waiting forever.
	db, err := bbolt.Open(filepath.Join(dir, "sessions.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	store, err := boltstore.New(db, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Set(ctx, "session:abc", []byte(`{"user":"ada"}`), time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}
	e, err := store.Get(ctx, "session:abc")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", e.Value)

	// Remove expired records; run this periodically.
	n, err := store.DeleteExpired(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("expired records removed:", n)
	// Output:
	// {"user":"ada"}
	// expired records removed: 0
}
