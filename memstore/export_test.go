package memstore

// NewColliding returns a Store as New does, whose keys share four hashes:
// the chains of records of equal hashes are then long and always used.
func NewColliding(opts *Options) *Store {
	s := New(opts)
	s.hashMask = 3
	return s
}
