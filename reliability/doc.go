// Package reliability holds kvsession's reliability tests, in a module of
// their own so that the library never depends on the backends' drivers or
// on the tests' servers. It has no API: everything is in the _test.go
// files, and docs/RELIABILITY.md at the repository's root describes what
// each test checks, the results of a run, and how to reproduce them.
//
// Every test goes through the real middleware (kvsession.New and
// Manager.Handler) with a small application handler, over HTTP on
// loopback, and is bounded in count and in time:
//
//   - TestRedisKilledMidLoad: a redis-server of the test's own, with
//     appendfsync always, is SIGKILLed during a mixed load and restarted.
//   - TestPostgresTerminatedMidLoad: the pool's backends are ended with
//     pg_terminate_backend, again and again, during a write load.
//   - TestMemcachedRestart: a memcached of the test's own is killed and
//     restarted.
//   - TestFileStoreKilledWriters: writer processes are SIGKILLed at random
//     points; no record is ever torn.
//   - TestSoak: a mixed-traffic soak against the memory store and Redis,
//     KVSESSION_SOAK long, with flat heap and goroutine counts.
package reliability
