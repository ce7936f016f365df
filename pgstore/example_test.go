package pgstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsession/kvsession/pgstore"
)

func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	store, err := pgstore.New(pool, &pgstore.Options{Table: "app.sessions"})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CreateSchema(ctx); err != nil {
		log.Fatal(err)
	}

	// PostgreSQL has no TTL of its own: sweep expired sessions now and then.
	go func() {
		for range time.Tick(5 * time.Minute) {
			if n, err := store.DeleteExpired(ctx); err != nil {
				log.Printf("session sweep: %v", err)
			} else {
				log.Printf("session sweep: %d expired sessions removed", n)
			}
		}
	}()

	// store is a kvsession.Store: hand it to the session manager.
	if err := store.Set(ctx, "greeting", []byte("hello"), time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}
}
