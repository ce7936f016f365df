// Package chi shows kvsession under the chi router: chi is built on
// net/http, so Manager.Handler is chi middleware as it is. See the example.
package chi
