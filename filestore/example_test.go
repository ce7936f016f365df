package filestore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kvsession/kvsession/filestore"
)

func ExampleNew() {
	tmp, err := os.MkdirTemp("", "filestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	// New creates the directory, mode 0700, if it does not exist.
	store, err := filestore.New(filepath.Join(tmp, "sessions"), nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Set(ctx, "app:session-1", []byte("hello"), time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}
	if err := store.Set(ctx, "app:session-2", []byte("bye"), time.Now().Add(-time.Minute)); err != nil {
		log.Fatal(err)
	}
	e, err := store.Get(ctx, "app:session-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", e.Value)

	// Files of expired records stay until a sweep removes them: run one
	// periodically.
	n, err := store.DeleteExpired(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("removed", n)
	// Output:
	// hello
	// removed 1
}

func ExampleStore_Keys() {
	tmp, err := os.MkdirTemp("", "filestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	store, err := filestore.New(tmp, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"app1:a", "app1:b", "app2:c"} {
		if err := store.Set(ctx, k, []byte("v"), time.Time{}); err != nil {
			log.Fatal(err)
		}
	}
	var keys []string
	err = store.Keys(ctx, "app1:", func(k string) error {
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	slices.Sort(keys)
	fmt.Println(keys)
	// Output: [app1:a app1:b]
}
