package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// TestOpen_ForeignUserVersion: a user_version we did not write (negative,
// lower than the tables say, higher than we know) is a clear error naming
// the version and what to do, for writing and read-only opens; never a
// panic, never a half-applied migration.
func TestOpen_ForeignUserVersion(t *testing.T) {
	// setVersion makes a current database and sets its user_version.
	setVersion := func(t *testing.T, v int) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "features.db")
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		mustExec(t, rawDB(t, path), fmt.Sprintf("PRAGMA user_version = %d", v))
		return path
	}
	fix := fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion)
	for _, tc := range []struct {
		v     int
		err   error
		parts []string
	}{
		{-1, ErrSchemaMismatch, []string{"user_version -1", "no pipeline writes", fmt.Sprintf("version %d", SchemaVersion), fix}},
		{0, ErrSchemaMismatch, []string{"user_version 0", fmt.Sprintf("version %d", SchemaVersion), "already has table failures", fix}},
		{1, ErrSchemaMismatch, []string{"user_version 1", fmt.Sprintf("version %d", SchemaVersion), fix}},
		{99, ErrSchemaNew, []string{"schema version 99", fmt.Sprintf("knows up to %d", SchemaVersion), "newer pipeline"}},
	} {
		if tc.v == SchemaVersion {
			continue
		}
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/readonly=%v", tc.v, ro), func(t *testing.T) {
				path := setVersion(t, tc.v)
				db, err := Open(path, Options{ReadOnly: ro})
				if err == nil {
					db.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, tc.err) {
					t.Errorf("got %v, want %v", err, tc.err)
				}
				wantErr(t, err, append(tc.parts, path)...)
				// Nothing was changed: the version is still the foreign one.
				var v int
				if err := rawDB(t, path).QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != tc.v {
					t.Errorf("user_version = %d, %v after the failed open; want %d", v, err, tc.v)
				}
			})
		}
	}

	// A user_version that matches the tables is fine, also for an older
	// schema (it migrates).
	t.Run("OlderConsistent", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "features.db")
		makeVersion(t, path, 1)
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if n := queryInt(t, db, `PRAGMA user_version`); n != int64(SchemaVersion) {
			t.Errorf("user_version = %d after migrating, want %d", n, SchemaVersion)
		}
	})
	// A table of the user's own (pipeline sql --write) is not a mismatch.
	t.Run("UserTable", func(t *testing.T) {
		path := setVersion(t, SchemaVersion)
		mustExec(t, rawDB(t, path), `CREATE TABLE my_notes (a)`)
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	})
}
