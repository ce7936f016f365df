package memcachestore

// Expiration exposes expiration to the tests.
var Expiration = expiration

// ItemKey exposes the memcached key of a record ("s:") or user index ("u:").
func ItemKey(s *Store, kind, key string) string { return s.itemKey(kind, key) }
