package mysqlstore_test

import (
	"context"
	"database/sql"
	"log"
	"os"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/kvsession/kvsession/mysqlstore"
)

func Example() {
	ctx := context.Background()
	db, err := sql.Open("mysql", os.Getenv("MYSQL_DSN")) // user:password@tcp(host:3306)/dbname
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	// Bound the pool well under the server's max_connections.
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(10)

	store, err := mysqlstore.New(db, &mysqlstore.Options{Table: "sessions"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.CreateSchema(ctx); err != nil {
		log.Fatal(err)
	}

	// MariaDB has no TTL of its own: sweep expired sessions now and then.
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
