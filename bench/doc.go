// Package bench measures kvsession side by side with
// github.com/alexedwards/scs/v2 and github.com/gorilla/sessions, on the same
// scenarios, through the same application handler, on the same backends
// (an in-process memory store and Redis). It is a module of its own so that
// the library never depends on its peers.
//
// Everything lives in the tests:
//
//	go test -run '^$' -bench . -benchmem        # the comparison
//	go test ./...                               # checks that every handler really works
//
// Redis benchmarks and tests read the server's address from
// KVSESSION_TEST_REDIS_ADDR and skip when it is unset; their keys live under
// a prefix unique to the process and are deleted afterwards.
// KVSESSION_BENCH_SCALE=full adds the 1e6-session case of BenchmarkScale.
//
// The script scripts/bench (at the repository's root) starts a private Redis,
// runs the whole comparison, runs benchstat, profiles kvsession and
// regenerates docs/BENCHMARKS.md from the results and from
// BENCHMARKS.tmpl.md in this directory (with cmd/benchdoc).
package bench
