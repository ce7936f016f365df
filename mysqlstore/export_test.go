package mysqlstore

// SchemaStatements returns the statements CreateSchema runs.
func (s *Store) SchemaStatements() []string { return s.schema }
