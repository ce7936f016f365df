// Command connect shows a kvsession session in a connect-go service
// (connectrpc.com/connect), without protoc: the messages are plain Go
// structs and a small JSON codec (connect.WithCodec) encodes them. It
// listens on loopback, over HTTP/1.1 and unencrypted HTTP/2 (so gRPC
// clients work too):
//
//	go run . -addr 127.0.0.1:8080
//	curl -i -H 'Content-Type: application/json' -H 'Session-Token;' \
//		-d '{"counter":"a","delta":1}' http://127.0.0.1:8080/counter.v1.CounterService/Add
//
// The first call, with an empty Session-Token header, creates a session
// and returns its token in the Session-Token response header; later calls
// send it back. A browser client (connect-web) keeps the cookie instead.
//
// Each handler loads the call's session with Manager.Serve, which reads
// the token header (Config.Header) or the cookie under the rules of
// Manager.Handler, changes it, and saves it when the handler's function
// returns. Calls get the guarantees of HTTP requests: concurrent calls
// that change different counters all land, a revoked or destroyed session
// never comes back, and a call with a token that names no live session
// gets connect.CodeUnauthenticated (see service.go for the codes).
package main

import (
	"crypto/rand"
	"flag"
	"log"
	"net/http"

	"github.com/kvsession/kvsession"
	"github.com/kvsession/kvsession/memstore"
)

// tokenHeader carries the session token for API clients (Config.Header).
const tokenHeader = "Session-Token"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (loopback: the cookie is not Secure)")
	flag.Parse()
	secret := make([]byte, 32)
	rand.Read(secret) // development only: sessions end when the process does
	m, err := kvsession.New(memstore.New(nil), kvsession.Config{
		Secrets:        [][]byte{secret},
		Header:         tokenHeader,
		InsecureCookie: true, // plain HTTP on loopback; remove it behind HTTPS
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: routes(m), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	log.Printf("listening on http://%s", *addr)
	log.Fatal(srv.ListenAndServe())
}

// routes returns the service, behind http.CrossOriginProtection for
// browsers that call it with the cookie.
func routes(m *kvsession.Manager) http.Handler {
	return http.NewCrossOriginProtection().Handler((&service{m: m}).handler())
}
