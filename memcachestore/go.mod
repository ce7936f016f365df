module github.com/kvsession/kvsession/memcachestore

go 1.25.2

require (
	github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c
	github.com/kvsession/kvsession v0.0.0-00010101000000-000000000000
)

replace github.com/kvsession/kvsession => ../
