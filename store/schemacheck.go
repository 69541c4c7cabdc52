package store

import (
	"pipeline/errclass"

	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// A database's user_version must be one this pipeline wrote for the tables
// the file holds: migrations set it in the same transaction as their
// tables, so a mismatch means something else changed the header (a hand
// edit, another program, a tool "fixing" it). Migrating from such a
// version would fail half-way ("table images already exists") or index out
// of range (a negative version), so it is an error that names the version,
// the version the tables say and how to set it back.

// schemaObjects is a schema as a set of "table images", "column
// images.path", "index ...", "view ...", "trigger ..." entries.
type schemaObjects map[string]bool

var (
	expectedOnce sync.Once
	expectedObjs []schemaObjects // expectedObjs[v]: the schema after migrations 1..v
	expectedErr  error
)

// expectedSchemas applies the embedded migrations one by one to an
// in-memory database and records the schema after each.
func expectedSchemas(ctx context.Context) ([]schemaObjects, error) {
	expectedOnce.Do(func() {
		registerVec()
		mem, err := sql.Open("sqlite3", ":memory:")
		if err != nil {
			expectedErr = err
			return
		}
		defer mem.Close()
		mem.SetMaxOpenConns(1)
		objs, err := readSchemaObjects(ctx, mem)
		if err != nil {
			expectedErr = err
			return
		}
		expectedObjs = append(expectedObjs, objs)
		for _, m := range migrations {
			if _, err := mem.ExecContext(ctx, m.sql); err != nil {
				expectedErr = fmt.Errorf("migration %s: %w", m.name, err)
				return
			}
			objs, err := readSchemaObjects(ctx, mem)
			if err != nil {
				expectedErr = err
				return
			}
			expectedObjs = append(expectedObjs, objs)
		}
	})
	return expectedObjs, expectedErr
}

type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// readSchemaObjects lists the main schema's objects and the columns of its
// tables.
func readSchemaObjects(ctx context.Context, q queryer) (schemaObjects, error) {
	rows, err := q.QueryContext(ctx, `SELECT m.type, m.name, COALESCE(p.name, '')
		FROM sqlite_schema m LEFT JOIN pragma_table_info(m.name) p ON m.type = 'table'
		WHERE m.name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	objs := schemaObjects{}
	for rows.Next() {
		var typ, name, col string
		if err := rows.Scan(&typ, &name, &col); err != nil {
			return nil, err
		}
		objs[typ+" "+name] = true
		if col != "" {
			objs["column "+name+"."+col] = true
		}
	}
	return objs, rows.Err()
}

// missing returns the entries of want that have lacks, sorted.
func (have schemaObjects) missing(want schemaObjects) []string {
	var out []string
	for k := range want {
		if !have[k] {
			out = append(out, k)
		}
	}
	sortObjects(out)
	return out
}

// sortObjects sorts tables first, then views, indexes, triggers, columns.
func sortObjects(s []string) {
	rank := func(k string) int {
		for i, p := range []string{"table ", "view ", "index ", "trigger "} {
			if strings.HasPrefix(k, p) {
				return i
			}
		}
		return 4
	}
	sort.Slice(s, func(i, j int) bool {
		if ri, rj := rank(s[i]), rank(s[j]); ri != rj {
			return ri < rj
		}
		return s[i] < s[j]
	})
}

// checkSchema verifies that user_version v (0 <= v <= SchemaVersion, or
// negative) matches the objects of the database: every object of version v
// is there, and none of those version v+1 adds. The error names v, the
// version the tables look like and the fix.
func (db *DB) checkSchema(ctx context.Context, q queryer, v int) error {
	if v > SchemaVersion {
		return nil // checkVersion's ErrSchemaNew
	}
	exp, err := expectedSchemas(ctx)
	if err != nil {
		return fmt.Errorf("open %s: embedded schema: %w", db.path, err)
	}
	have, err := readSchemaObjects(ctx, q)
	if err != nil {
		return wrapOpenErr(db.path, err)
	}
	var problem string
	switch {
	case v < 0:
		problem = "which no pipeline writes"
	case len(have.missing(exp[v])) > 0:
		problem = "but it lacks " + strings.Join(firstN(have.missing(exp[v]), 3), ", ") + " of that version"
	case v < SchemaVersion:
		// The objects version v+1 adds must not be there yet.
		var present []string
		for k := range exp[v+1] {
			if !exp[v][k] && have[k] {
				present = append(present, k)
			}
		}
		sortObjects(present)
		if len(present) > 0 {
			problem = "but it already has " + strings.Join(firstN(present, 3), ", ") + fmt.Sprintf(" of version %d", v+1)
		}
	}
	if problem == "" {
		return nil
	}
	// The version the tables look like: the highest whose objects are
	// all present.
	looks := -1
	for k := len(exp) - 1; k >= 0; k-- {
		if len(have.missing(exp[k])) == 0 {
			looks = k
			break
		}
	}
	msg := fmt.Sprintf("open %s: %v: the file's user_version %d, %s", db.path, ErrSchemaMismatch, v, problem)
	if looks > 0 {
		msg += fmt.Sprintf("; its tables are those of schema version %d. The header was changed outside pipeline: "+
			"if nothing else was, set it back with: sqlite3 %s 'PRAGMA user_version = %d' (after a backup); otherwise restore a backup",
			looks, db.path, looks)
	} else {
		msg += "; its tables match no schema version of this pipeline: restore a backup"
	}
	return &schemaError{msg: msg}
}

// schemaError is an ErrSchemaMismatch with its full message.
type schemaError struct{ msg string }

func (e *schemaError) Error() string        { return e.msg }
func (e *schemaError) Is(target error) bool { return target == ErrSchemaMismatch }

// Class is ErrSchemaMismatch's.
func (e *schemaError) Class() errclass.Class { return errclass.Integrity }

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
