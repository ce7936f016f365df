package memcachestore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/kvsession/kvsession/memcachestore"
)

func Example() {
	client := memcache.New("127.0.0.1:11211")
	client.MaxIdleConns = 64 // at least the peak number of concurrent requests
	client.Timeout = time.Second

	store, err := memcachestore.New(client, &memcachestore.Options{Namespace: "myapp:"})
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
	fmt.Printf("%s, version %d\n", e.Value, e.Version)
}
