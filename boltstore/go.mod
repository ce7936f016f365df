module github.com/kvsession/kvsession/boltstore

go 1.25.2

require (
	github.com/kvsession/kvsession v0.0.0-00010101000000-000000000000
	go.etcd.io/bbolt v1.5.0
)

require golang.org/x/sys v0.45.0 // indirect

replace github.com/kvsession/kvsession => ../
