package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "features.db")
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if got, want := len(migrations), 2; got < want {
			t.Fatalf("got %d migrations, want at least %d", got, want)
		}
		v, err := db.Version(ctx)
		if err != nil || v != SchemaVersion {
			t.Fatalf("Version = %d, %v; want %d", v, err, SchemaVersion)
		}
		for _, name := range []string{"images", "image_paths", "feature_sets", "features", "runs", "failures",
			"feature_vectors", "settings", "splits", "classifiers", "predictions"} {
			if n := queryInt(t, db, `SELECT count(*) FROM sqlite_schema WHERE name = ?`, name); n != 1 {
				t.Errorf("schema object %s: got %d, want 1", name, n)
			}
		}
	})

	t.Run("Pragmas", func(t *testing.T) {
		db := newDB(t)
		check := func(name string, c *sql.Conn, want map[string]string) {
			t.Helper()
			for pragma, want := range want {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s: PRAGMA %s = %s, want %s", name, pragma, got, want)
				}
			}
			var vecVersion string
			if err := c.QueryRowContext(ctx, `SELECT vec_version()`).Scan(&vecVersion); err != nil {
				t.Errorf("%s: sqlite-vec not loaded: %v", name, err)
			}
		}
		rw, err := db.rw.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		check("rw", rw, map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000",
			"synchronous": "1", "query_only": "0"})
		rw.Close()
		// Three read connections held at once, so that a setting applied
		// to one connection instead of each would show.
		var ros []*sql.Conn
		for range 3 {
			c, err := db.ro.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ros = append(ros, c)
		}
		for i, c := range ros {
			check(fmt.Sprintf("ro conn %d", i), c, map[string]string{"journal_mode": "wal", "foreign_keys": "1",
				"busy_timeout": "10000", "query_only": "1"})
			c.Close()
		}
	})

	t.Run("ReopenIdempotent", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "features.db")
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		fs := testSet(t, db, "fc2", 4)
		if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("a", []string{"/data/cat/a.jpg"}, fs)}}); err != nil {
			t.Fatal(err)
		}
		schemaBefore := schemaSQL(t, db)
		db.Close()
		for i := range 2 {
			db, err = Open(path, Options{})
			if err != nil {
				t.Fatalf("reopen %d: %v", i, err)
			}
			if got := schemaSQL(t, db); got != schemaBefore {
				t.Errorf("reopen %d changed the schema:\n%s\nwant\n%s", i, got, schemaBefore)
			}
			if n := queryInt(t, db, `SELECT count(*) FROM features`); n != 1 {
				t.Errorf("reopen %d: %d vectors, want 1", i, n)
			}
			db.Close()
		}
		ro, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only open: %v", err)
		}
		ro.Close()
	})

	t.Run("ErrSchemaOld", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "old.db")
		makeVersion(t, path, 1)
		_, err := Open(path, Options{ReadOnly: true})
		if !errors.Is(err, ErrSchemaOld) {
			t.Fatalf("got %v, want ErrSchemaOld", err)
		}
		wantErr(t, err, path, "schema version 1", fmt.Sprintf("needs %d", SchemaVersion), "writes")
		// A writing open upgrades it, and then read-only works.
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("writing open of version 1: %v", err)
		}
		db.Close()
		ro, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only open after upgrade: %v", err)
		}
		ro.Close()
	})

	t.Run("ErrSchemaNew", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new.db")
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		newer := SchemaVersion + 3
		mustExec(t, rawDB(t, path), fmt.Sprintf("PRAGMA user_version = %d", newer))
		for _, ro := range []bool{false, true} {
			_, err := Open(path, Options{ReadOnly: ro})
			if !errors.Is(err, ErrSchemaNew) {
				t.Fatalf("read-only %v: got %v, want ErrSchemaNew", ro, err)
			}
			wantErr(t, err, path, fmt.Sprintf("version %d", newer), fmt.Sprint(SchemaVersion))
		}
	})

	t.Run("ErrNotDatabase", func(t *testing.T) {
		dir := t.TempDir()
		text := filepath.Join(dir, "notes.txt")
		if err := os.WriteFile(text, []byte("these are not the droids\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		other := filepath.Join(dir, "other.sqlite")
		mustExec(t, rawDB(t, other), `CREATE TABLE stuff (x)`)
		for _, path := range []string{text, other} {
			for _, ro := range []bool{false, true} {
				_, err := Open(path, Options{ReadOnly: ro})
				if !errors.Is(err, ErrNotDatabase) {
					t.Fatalf("%s (read-only %v): got %v, want ErrNotDatabase", path, ro, err)
				}
				wantErr(t, err, path, "not a pipeline database")
			}
		}
		// Nothing was written to the non-database.
		b, _ := os.ReadFile(text)
		if string(b) != "these are not the droids\n" {
			t.Errorf("Open changed %s: %q", text, b)
		}
	})

	t.Run("MissingDirectory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "such", "features.db")
		_, err := Open(path, Options{})
		wantErr(t, err, path, "does not exist")
	})

	t.Run("UnwritableDirectory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root can write anywhere")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
		path := filepath.Join(dir, "features.db")
		_, err := Open(path, Options{})
		wantErr(t, err, path, "not writable")
	})

	t.Run("ReadOnlyMissingFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "features.db")
		_, err := Open(path, Options{ReadOnly: true})
		if !errors.Is(err, ErrNoDatabase) {
			t.Fatalf("got %v, want ErrNoDatabase", err)
		}
		wantErr(t, err, path)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("read-only open created %s", path)
		}
	})

	t.Run("PathWithURICharacters", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a?b#c%20 d", "features.db")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		if _, err := os.Stat(path); err != nil {
			t.Errorf("database not at %s: %v", path, err)
		}
	})
}

// TestDB_ReadOnly checks that a read-only DB refuses every write, by name.
func TestDB_ReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "features.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs := testSet(t, db, "fc2", 4)
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()

	for name, err := range map[string]error{
		"WriteBatch": ro.WriteBatch(ctx, 0, Batch{Items: []Item{item("a", []string{"/data/cat/a.jpg"}, fs)}}),
		"Lock":       func() error { _, err := ro.Lock(ctx, 0, Holder{}); return err }(),
		"EnsureFeatureSet": func() error {
			_, err := ro.EnsureFeatureSet(ctx, fs)
			return err
		}(),
		"AssignSplit": func() error { _, err := ro.AssignSplit(ctx, 0.2); return err }(),
		"QueryWrite":  func() error { _, _, err := ro.Query(ctx, `DELETE FROM images`, nil, true); return err }(),
	} {
		t.Run(name, func(t *testing.T) {
			if !errors.Is(err, ErrReadOnly) {
				t.Fatalf("got %v, want ErrReadOnly", err)
			}
			wantErr(t, err, "read-only", path)
		})
	}
	t.Run("QueryWithoutWrite", func(t *testing.T) {
		_, _, err := ro.Query(ctx, `INSERT INTO settings (key, value) VALUES ('a', 'b')`, nil, false)
		if !errors.Is(err, ErrReadOnly) {
			t.Fatalf("got %v, want ErrReadOnly", err)
		}
		wantErr(t, err, "refused in read-only mode", "INSERT into main.settings")
	})
	t.Run("Reads", func(t *testing.T) {
		sets, err := ro.FeatureSets(ctx)
		if err != nil || len(sets) != 1 {
			t.Fatalf("FeatureSets = %v, %v; want 1 set", sets, err)
		}
	})
}

// schemaSQL is the whole schema as text, for comparing before and after.
func schemaSQL(t *testing.T, db *DB) string {
	t.Helper()
	rows, err := db.reader().Query(`SELECT type, name, COALESCE(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, s string
		if err := rows.Scan(&typ, &name, &s); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %s\n", typ, name, s)
	}
	fmt.Fprintf(&b, "version %d\n", queryInt(t, db, `PRAGMA user_version`))
	return b.String()
}

// makeVersion creates a database at schema version v (< SchemaVersion).
func makeVersion(t *testing.T, path string, v int) {
	t.Helper()
	registerVec()
	rw, err := sql.Open("sqlite3", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	rw.SetMaxOpenConns(1)
	db := &DB{path: path, rw: rw}
	if err := db.migrate(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	var got int
	if err := rw.QueryRow(`PRAGMA user_version`).Scan(&got); err != nil || got != v {
		t.Fatalf("user_version = %d, %v; want %d", got, err, v)
	}
}
