package redisstore_test

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/redisstore"
	"github.com/redis/go-redis/v9"
)

// Example keeps sessions in Redis. The same code works with a Sentinel
// (redis.NewFailoverClient) or a Cluster (redis.NewClusterClient) client.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr: "localhost:6379",
		// Let the deadline of each store call (the manager's StoreTimeout)
		// bound it on the network too.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	store, err := redisstore.New(client, &redisstore.Options{Namespace: "myapp:"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := kvsession.New(store, kvsession.Config{
		Secrets: [][]byte{[]byte(os.Getenv("SESSION_SECRET"))}, // 32 random bytes or more
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := kvsession.From(r)
		n, _ := kvsession.Get[int](s, "visits") // 0 for a new session
		if err := s.Set("visits", n+1); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "visit %d\n", n+1)
	})
	log.Fatal(http.ListenAndServe("localhost:8080", m.Handler(mux)))
}
