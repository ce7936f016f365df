package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// End to end: each library's app served by net/http on 127.0.0.1:0 (an
// httptest.Server), under a load generator in the same process: workers
// goroutines, each with a session of its own, sending keep-alive requests
// over loopback until b.N are done (a fixed number: the benchmark's, so a
// run is bounded by -benchtime). The server and the load generator share
// the machine's cores, so req/s is the throughput of the pair; compare the
// libraries with each other and with lib=nosession, the same server
// without sessions. B/op and allocs/op count the client's side too.

// serveWorkers is the number of concurrent clients per GOMAXPROCS.
const serveWorkers = 8

// BenchmarkServeRead: READ over loopback.
func BenchmarkServeRead(b *testing.B) { benchServe(b, "/read") }

// BenchmarkServeWrite: WRITE over loopback.
func BenchmarkServeWrite(b *testing.B) { benchServe(b, "/inc") }

func benchServe(b *testing.B, path string) {
	for _, lib := range libraries {
		b.Run("lib="+lib.name, func(b *testing.B) {
			for _, store := range stores {
				b.Run("store="+store, func(b *testing.B) {
					serve(b, lib.new(b, store, options{}), path, store == "redis")
				})
			}
		})
	}
	b.Run("lib=nosession", func(b *testing.B) {
		b.Run("store=mem", func(b *testing.B) {
			serve(b, newNoSession(b, "", options{}), "/nosession", false)
		})
	})
}

// loopbackServer serves h on 127.0.0.1 and returns its URL and a client
// that keeps enough idle connections for every worker.
func loopbackServer(tb testing.TB, h http.Handler, workers int) (string, *http.Client) {
	srv := httptest.NewServer(h) // listens on 127.0.0.1:0
	tb.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2, DisableCompression: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return srv.URL, &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends one request and reads the whole response.
func get(client *http.Client, req *http.Request) (int, string, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), err
}

func serve(b *testing.B, in *instance, path string, redis bool) {
	workers := serveWorkers * runtime.GOMAXPROCS(0)
	url, client := loopbackServer(b, in.handler, workers)
	var cookies []string
	if path != "/nosession" {
		for range workers {
			cookies = append(cookies, prepare(b, in.handler, "/setup"))
		}
	}
	var next atomic.Int64
	in.counts.reset()
	b.SetParallelism(serveWorkers)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequest("GET", url+path, nil)
		if err != nil {
			b.Error(err)
			return
		}
		if cookies != nil {
			req.Header.Set("Cookie", cookies[int(next.Add(1)-1)%len(cookies)])
		}
		for pb.Next() {
			code, body, err := get(client, req)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("%d %s", code, body)
			}
			if err != nil {
				b.Errorf("GET %s: %v", path, err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	reportCounts(b, in.counts, redis)
}
