package rueidisstore_test

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/rueidisstore"
	"github.com/redis/rueidis"
)

// Example keeps sessions in Redis through rueidis, which pipelines the
// commands of concurrent requests. The same code works with a Cluster
// (several InitAddress entries, or any one node) or behind Sentinel
// (ClientOption.Sentinel).
func Example() {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"localhost:6379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	store, err := rueidisstore.New(client, &rueidisstore.Options{Namespace: "myapp:"})
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

// ExampleOptions_cacheTTL serves read-only requests from a client-side
// cache that Redis keeps coherent. A session logged out or revoked on
// another instance can still be read here for at most one second; writes
// to it fail at once.
func ExampleOptions_cacheTTL() {
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{"localhost:6379"},
		CacheSizeEachConn: 32 << 20, // per connection; size it for the sessions read within a second
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	store, err := rueidisstore.New(client, &rueidisstore.Options{Namespace: "myapp:", CacheTTL: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	_ = store // kvsession.New(store, cfg), as in the package example
}
