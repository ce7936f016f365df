module github.com/kvsession/kvsession/bench

go 1.26.0

replace github.com/kvsession/kvsession => ../

replace github.com/kvsession/kvsession/redisstore => ../redisstore

replace github.com/kvsession/kvsession/rueidisstore => ../rueidisstore

require (
	github.com/alexedwards/scs/goredisstore v0.0.0-20250212122300-421ef1d8611c
	github.com/alexedwards/scs/v2 v2.9.0
	github.com/boj/redistore v1.4.1
	github.com/gomodule/redigo v1.9.2
	github.com/gorilla/securecookie v1.1.2
	github.com/gorilla/sessions v1.4.0
	github.com/kvsession/kvsession v0.0.0
	github.com/kvsession/kvsession/redisstore v0.0.0
	github.com/kvsession/kvsession/rueidisstore v0.0.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/redis/rueidis v1.0.79
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
