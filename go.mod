module github.com/kvsession/kvsession

go 1.25.2
