module github.com/kvsession/kvsession/mysqlstore

go 1.25.2

require (
	github.com/go-sql-driver/mysql v1.10.1
	github.com/kvsession/kvsession v0.0.0
)

require filippo.io/edwards25519 v1.2.0 // indirect

replace github.com/kvsession/kvsession => ../
