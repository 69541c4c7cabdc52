// Package schema embeds the SQL that defines the feature database: numbered
// migrations (applied in order by package store) and example queries.
//
// The package is named schema, not sql, so that it does not clash with
// database/sql in the packages that import both.
package schema

import "embed"

// Migrations holds migrations/NNNN_name.sql, applied in lexical order, each in
// its own transaction. They are append-only: a released migration never changes.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Examples holds examples/*.sql, the commented example queries that
// `pipeline sql -f` runs and the tests check.
//
//go:embed examples
var Examples embed.FS
