module github.com/kvsession/kvsession/reliability

go 1.26.0

require (
	github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c
	github.com/jackc/pgx/v5 v5.12.0
	github.com/kvsession/kvsession v0.0.0
	github.com/kvsession/kvsession/memcachestore v0.0.0
	github.com/kvsession/kvsession/pgstore v0.0.0
	github.com/kvsession/kvsession/redisstore v0.0.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)

replace (
	github.com/kvsession/kvsession => ../
	github.com/kvsession/kvsession/memcachestore => ../memcachestore
	github.com/kvsession/kvsession/pgstore => ../pgstore
	github.com/kvsession/kvsession/redisstore => ../redisstore
)
