module github.com/kvsession/kvsession/examples/websocket

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/kvsession/kvsession v0.0.0
)

replace github.com/kvsession/kvsession => ../..
