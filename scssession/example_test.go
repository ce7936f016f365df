package scssession_test

import (
	"context"
	"fmt"

	"github.com/alexedwards/scs/v2"
	"github.com/kvsession/kvsession/memstore"
	"github.com/kvsession/kvsession/scssession"
)

// Any kvsession backend behind scs: here the memory store; redisstore,
// memcachestore, pgstore and the others plug in the same way.
func Example() {
	st, err := scssession.New(memstore.New(nil), scssession.Config{})
	if err != nil {
		panic(err)
	}
	sm := scs.New()
	sm.Store = st

	// What sm.LoadAndSave does around each request.
	ctx, _ := sm.Load(context.Background(), "")
	sm.Put(ctx, "user", "alice")
	token, _, err := sm.Commit(ctx)
	if err != nil {
		panic(err)
	}

	ctx, _ = sm.Load(context.Background(), token)
	fmt.Println(sm.GetString(ctx, "user"))
	_, found, _ := st.Find(token)
	fmt.Println(found, len(st.StoreKey(token)) > len(scssession.DefaultKeyPrefix))
	// Output:
	// alice
	// true true
}
