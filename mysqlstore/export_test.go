package mysqlstore

// SchemaStatements returns the statements CreateSchema runs.
func (s *Store) SchemaStatements() []string { return s.schema }

// StoredUser returns the user column's value for user.
func StoredUser(user string) []byte { return storedUser(user) }
