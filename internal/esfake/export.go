package esfake

// ValidIndexName reports why name is not a valid Elasticsearch index name,
// or "" if it is valid.
func ValidIndexName(name string) string { return validIndexName(name) }
