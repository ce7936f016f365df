module github.com/kvsession/kvsession/cmd/kvsession

go 1.26.0

require (
	github.com/go-sql-driver/mysql v1.10.1
	github.com/jackc/pgx/v5 v5.12.0
	github.com/kvsession/kvsession v0.0.0
	github.com/kvsession/kvsession/examples/demo v0.0.0-00010101000000-000000000000
	github.com/kvsession/kvsession/storeurl v0.0.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/kvsession/kvsession/boltstore v0.0.0 // indirect
	github.com/kvsession/kvsession/memcachestore v0.0.0 // indirect
	github.com/kvsession/kvsession/mysqlstore v0.0.0 // indirect
	github.com/kvsession/kvsession/pgstore v0.0.0 // indirect
	github.com/kvsession/kvsession/redisstore v0.0.0 // indirect
	github.com/kvsession/kvsession/sqlitestore v0.0.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.0.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	go.etcd.io/bbolt v1.5.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	modernc.org/libc v1.76.0 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
	modernc.org/sqlite v1.59.0 // indirect
)

replace (
	github.com/kvsession/kvsession => ../..
	github.com/kvsession/kvsession/boltstore => ../../boltstore
	github.com/kvsession/kvsession/examples/demo => ../../examples/demo
	github.com/kvsession/kvsession/memcachestore => ../../memcachestore
	github.com/kvsession/kvsession/mysqlstore => ../../mysqlstore
	github.com/kvsession/kvsession/pgstore => ../../pgstore
	github.com/kvsession/kvsession/redisstore => ../../redisstore
	github.com/kvsession/kvsession/sqlitestore => ../../sqlitestore
	github.com/kvsession/kvsession/storeurl => ../../storeurl
)
