module github.com/kvsession/kvsession/examples/chi

go 1.26.0

require github.com/kvsession/kvsession v0.0.0

require github.com/go-chi/chi/v5 v5.5.0

replace github.com/kvsession/kvsession => ../..
