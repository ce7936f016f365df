package storeurl

// DefaultSQLiteMaxConns is the pool bound of an sqlite store whose URL has
// no max_conns parameter: one connection, so that the store's writes queue
// in the pool, where a wait honours the request's context, rather than on
// SQLite's write lock, where it does not (see "SQLite" in the package
// documentation).
const DefaultSQLiteMaxConns = 1

// sqliteBusyTimeoutMillis is the busy_timeout of a read-write sqlite
// store: how long a statement waits for a lock that another process (the
// kvsession command, say) holds before it fails with SQLITE_BUSY. SQLite
// does not interrupt that wait when the context ends, so it must stay well
// below kvsession's default Config.StoreTimeout (3s).
const sqliteBusyTimeoutMillis = 1000
