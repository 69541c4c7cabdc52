package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	schema "pipeline/sql"
)

// migration is one numbered file of sql/migrations.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded files in version order; version i+1 is at
// index i (checked at init: numbering is contiguous from 1).
var migrations = mustLoadMigrations(schema.Migrations)

// SchemaVersion is the schema version this binary creates and reads: the
// number of the last migration. The database stores its own in
// PRAGMA user_version.
var SchemaVersion = len(migrations)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err) // a build with a broken migrations folder must not ship
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (numbers are contiguous from 1)", name, v, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations embedded")
	}
	return ms, nil
}

// readVersion reads user_version and checks that the file is ours: SQLite
// at all (the first read fails with SQLITE_NOTADB otherwise), and either
// empty or marked with our application_id.
func (db *DB) readVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v, app, objects int
	err := q.QueryRowContext(ctx, `SELECT (SELECT user_version FROM pragma_user_version),
		(SELECT application_id FROM pragma_application_id),
		(SELECT count(*) FROM sqlite_schema)`).Scan(&v, &app, &objects)
	if err != nil {
		return 0, wrapOpenErr(db.path, err)
	}
	if app != applicationID && (app != 0 || v != 0 || objects != 0) {
		return 0, fmt.Errorf("open %s: %w (SQLite, but application_id %d, user_version %d, %d schema objects: another program's file?)",
			db.path, ErrNotDatabase, app, v, objects)
	}
	return v, nil
}

// checkVersion compares the database's schema version with this binary's.
func (db *DB) checkVersion(v int, readOnly bool) error {
	if v > SchemaVersion {
		return fmt.Errorf("open %s: %w: the database has schema version %d, this pipeline knows up to %d; use a newer pipeline",
			db.path, ErrSchemaNew, v, SchemaVersion)
	}
	if readOnly && v < SchemaVersion {
		return fmt.Errorf("open %s: %w: the database has schema version %d, this pipeline needs %d; run a command that writes to it (such as `pipeline extract`) once to upgrade it",
			db.path, ErrSchemaOld, v, SchemaVersion)
	}
	return nil
}

// migrate brings the database to schema version target, one migration per
// transaction. user_version lives in the header page, which the transaction
// covers, so a migration and its version number commit together: a crash
// leaves the database at the old version, and the next open redoes the whole
// migration. The version is re-read inside each write transaction, so two
// processes opening an old database at once cannot both apply a step.
func (db *DB) migrate(ctx context.Context, target int) error {
	v, err := db.readVersion(ctx, db.rw)
	if err != nil {
		return err
	}
	if err := db.checkVersion(v, false); err != nil {
		return err
	}
	if err := db.checkSchema(ctx, db.rw, v); err != nil {
		return err
	}
	for v < target {
		m := migrations[v]
		done, err := db.applyMigration(ctx, m)
		if err != nil {
			return err
		}
		v = done
	}
	return nil
}

// applyMigration applies m if the database is still at m.version-1 and
// returns the version the database is at afterwards.
func (db *DB) applyMigration(ctx context.Context, m migration) (int, error) {
	// A migration that rebuilds a table others reference says so; it runs
	// with foreign keys off (a PRAGMA that is a no-op inside a transaction,
	// so it is set on the only writer connection around it), and the keys
	// are checked before it commits.
	noFK := strings.Contains(m.sql, "\n-- pipeline: foreign_keys off\n")
	if noFK {
		if _, err := db.rw.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
			return 0, wrapOpenErr(db.path, err)
		}
		defer db.rw.ExecContext(context.Background(), `PRAGMA foreign_keys = ON`)
	}
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return 0, wrapOpenErr(db.path, err)
	}
	defer rollback(tx)
	cur, err := db.readVersion(ctx, tx)
	if err != nil {
		return 0, err
	}
	if cur != m.version-1 {
		return cur, db.checkVersion(cur, false) // someone else migrated
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return 0, fmt.Errorf("open %s: migration %s: %w", db.path, m.name, err)
	}
	if noFK {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&n); err != nil || n != 0 {
			return 0, fmt.Errorf("open %s: migration %s: %d foreign key violations (%v)", db.path, m.name, n, err)
		}
	}
	// PRAGMA arguments cannot be bound; both values are integers we own.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, m.version)); err != nil {
		return 0, fmt.Errorf("open %s: migration %s: %w", db.path, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("open %s: migration %s: commit: %w", db.path, m.name, err)
	}
	return m.version, nil
}

// Version returns the database's schema version (PRAGMA user_version).
func (db *DB) Version(ctx context.Context) (int, error) {
	return db.readVersion(ctx, db.reader())
}
