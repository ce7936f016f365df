module github.com/kvsession/kvsession/gorillasession

go 1.26.0

require (
	github.com/gorilla/sessions v1.4.0
	github.com/kvsession/kvsession v0.0.0
	github.com/kvsession/kvsession/redisstore v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/gorilla/securecookie v1.1.2 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

replace (
	github.com/kvsession/kvsession => ../
	github.com/kvsession/kvsession/redisstore => ../redisstore
)
