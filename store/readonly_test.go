package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// dirState is a directory's files: name -> size and, for everything but
// SQLite's shared-memory index (<db>-shm, whose read marks every WAL reader
// updates by design), the SHA-256 of the contents.
type dirState map[string]string

func snapshotDir(t testing.TB, dir string) dirState {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := dirState{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		v := fi.Mode().String() + " " + strconv.FormatInt(fi.Size(), 10)
		if fi.Mode().IsRegular() && !strings.HasSuffix(e.Name(), "-shm") {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(b)
			v += " " + hex.EncodeToString(h[:])
		}
		st[e.Name()] = v
	}
	return st
}

// diff describes how two snapshots differ ("" when equal).
func (a dirState) diff(b dirState) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "removed "+k)
		} else if v != w {
			out = append(out, "changed "+k+": "+v+" -> "+w)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "new file "+k+" ("+b[k]+")")
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// readOnlyFixture is a database with rows, closed, in a directory of its
// own, and a second, empty directory that attacks try to write into. It
// has been read once, so SQLite's WAL index files (which every WAL reader
// in a writable directory creates) already exist: after that, a read-only
// query must change no file and create none.
func readOnlyFixture(t testing.TB) (db *DB, path, other string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	other = t.TempDir()
	path = filepath.Join(dir, "features.db")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := w.EnsureFeatureSet(ctx, FeatureSet{ModelSHA256: shaOf("model"), ModelName: "vgg16", Layer: "fc2",
		Alias: "Fc2", Pooling: PoolAvg, Preprocess: `{"size":224}`, Shape: "4", Dim: 4})
	if err != nil {
		t.Fatal(err)
	}
	var items []Item
	for _, c := range []string{"a", "b", "c"} {
		items = append(items, item(c, []string{"/data/cat/" + c + ".jpg"}, fs))
	}
	if err := w.WriteBatch(ctx, 0, Batch{Items: items}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, _, err := db.Query(ctx, `SELECT count(*) FROM features`, nil, false); err != nil {
		t.Fatal(err)
	}
	return db, path, other
}

// readOnlyAttacks are statements that try to write, create a file or change
// the connection's state through a read-only `pipeline sql`; %DB% is the
// database's path and %OTHER% another directory.
var readOnlyAttacks = []string{
	// The attack of issue 11, as reported.
	`PRAGMA query_only=0; ATTACH DATABASE '%DB%' AS m2; DELETE FROM m2.features; PRAGMA m2.user_version=99`,
	// query_only switched off in every spelling.
	`PRAGMA query_only=0`, `pragma QUERY_ONLY = false`, `PRAGMA query_only=OFF`, `PRAGMA query_only = no`,
	`PRAGMA query_only(0)`, `PRAGMA main.query_only=0`, `PRAGMA query_only=''`, `PRAGMA "query_only" = 0`,
	"/* hi */ PrAgMa\n\tquery_only\n=\n0 -- off", `PRAGMA [query_only]=0`,
	// ATTACH and DETACH, new and existing files, URIs.
	`ATTACH '%DB%' AS m2`, `attach database '%OTHER%/new.db' as x`, `ATTACH 'file:%OTHER%/new.db?mode=rwc' AS x`,
	`ATTACH 'file:%DB%?mode=rw' AS x`, `ATTACH ':memory:' AS x`, `ATTACH '%OTHER%/a' || '.db' AS x`,
	`ATTACH 'file:%OTHER%/u.db?mode=rwc&immutable=0' AS x; CREATE TABLE x.t(a)`, `DETACH main`, `DETACH DATABASE temp`,
	// Writes to the main schema, alone and through CTEs.
	`DELETE FROM features`, `delete from "features"`, `UPDATE images SET label = 'x'`,
	`INSERT INTO settings (key, value) VALUES ('a', 'b')`, `REPLACE INTO settings VALUES ('a', 'b')`,
	`WITH x AS (SELECT 1) DELETE FROM features`, `WITH x(k) AS (SELECT 'a') INSERT INTO settings SELECT k, k FROM x`,
	`INSERT INTO settings SELECT 'a', 'b' RETURNING key`,
	`DROP TABLE features`, `ALTER TABLE images ADD COLUMN x`, `ALTER TABLE settings RENAME TO s2`,
	`CREATE TABLE t(a)`, `CREATE INDEX i ON images(label)`, `DROP TABLE IF EXISTS settings`, `REINDEX`, `ANALYZE`,
	`EXPLAIN DELETE FROM features`,
	// Header and state pragmas.
	`PRAGMA user_version=99`, `PRAGMA main.user_version = -1`, `PRAGMA application_id=1`, `PRAGMA schema_version=1`,
	`PRAGMA journal_mode=DELETE`, `PRAGMA journal_mode=OFF`, `PRAGMA wal_checkpoint(TRUNCATE)`, `PRAGMA wal_checkpoint`,
	`PRAGMA optimize`, `SELECT * FROM pragma_optimize`, `PRAGMA writable_schema=ON`, `PRAGMA incremental_vacuum`,
	`PRAGMA foreign_keys=OFF`, `PRAGMA temp_store=FILE`, `PRAGMA cache_size=-1000`, `PRAGMA mmap_size=0`,
	`PRAGMA locking_mode=EXCLUSIVE`, `PRAGMA shrink_memory`, `PRAGMA auto_vacuum=FULL`, `PRAGMA page_size=1024`,
	`PRAGMA user_version=''`, `PRAGMA synchronous=OFF`, `PRAGMA secure_delete=ON`, `PRAGMA trusted_schema=ON`,
	// Temp objects, triggers, views, virtual tables.
	`CREATE TEMP TABLE t(a)`, `CREATE TEMPORARY TABLE t AS SELECT * FROM images`, `CREATE TABLE temp.t(a)`,
	`CREATE TEMP VIEW v AS SELECT 1`, `CREATE VIEW v AS SELECT 1`,
	`CREATE TEMP TRIGGER tr AFTER INSERT ON images BEGIN DELETE FROM features; END`,
	`CREATE TRIGGER tr AFTER INSERT ON images BEGIN DELETE FROM features; END`,
	`CREATE VIRTUAL TABLE temp.v USING vec0(embedding float[4])`, `CREATE VIRTUAL TABLE v USING rtree(id, a, b)`,
	`INSERT INTO temp.sqlite_master VALUES ('table', 't', 't', 0, 'CREATE TABLE t(a)')`,
	// VACUUM, which writes the file or a new one.
	`VACUUM`, `vacuum into '%OTHER%/copy.db'`, `VACUUM main INTO '%OTHER%/copy.db'`, `/**/VaCuUm/**/INTO/**/'%OTHER%/c2.db'`,
	`VACUUM INTO 'file:%OTHER%/c3.db?mode=rwc'`, `VACUUM temp`,
	// Several statements, the writing one not first; transactions.
	`SELECT 1; DELETE FROM features`, `SELECT 1;PRAGMA query_only=0;DELETE FROM features`,
	`BEGIN IMMEDIATE; DELETE FROM features; COMMIT`, `SAVEPOINT s; UPDATE images SET label = NULL; RELEASE s`,
	// Functions that reach outside the database.
	`SELECT load_extension('%OTHER%/x.so')`,
}

// readOnlyAllowed are reads that must keep working on the same connection.
var readOnlyAllowed = []string{
	`SELECT count(*) FROM features`, `PRAGMA table_info(images)`, `PRAGMA user_version`, `PRAGMA main.user_version`,
	`SELECT * FROM pragma_table_info('images')`, `PRAGMA integrity_check`, `PRAGMA quick_check(10)`,
	`PRAGMA query_only`, `PRAGMA foreign_key_check`, `PRAGMA index_list('images')`, `PRAGMA table_list`,
	`SELECT * FROM pragma_user_version`, `PRAGMA journal_mode`, `PRAGMA database_list`,
	`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT sum(x) FROM c`,
	`BEGIN; SELECT count(*) FROM images; COMMIT`, `EXPLAIN QUERY PLAN SELECT * FROM images WHERE label = 'cat'`,
	`SELECT vec_length(vector) FROM features LIMIT 1`, `SELECT json_extract('{"a":1}', '$.a')`,
}

func expandAttack(s, path, other string) string {
	return strings.NewReplacer("%DB%", path, "%OTHER%", other).Replace(s)
}

// TestDB_QueryReadOnlyCorpus runs every attack on a read-only connection:
// each is refused with ErrReadOnly saying so, and afterwards the database's
// directory and the other directory are exactly as before (no new file,
// not even an empty one; the database's bytes unchanged).
func TestDB_QueryReadOnlyCorpus(t *testing.T) {
	ctx := context.Background()
	db, path, other := readOnlyFixture(t)
	t.Chdir(other) // relative file names land where they are checked
	dir := filepath.Dir(path)
	before, beforeOther := snapshotDir(t, dir), snapshotDir(t, other)
	for _, a := range readOnlyAttacks {
		q := expandAttack(a, path, other)
		_, _, err := db.Query(ctx, q, nil, false)
		if err == nil {
			t.Errorf("%s: no error, want a refusal", q)
		} else {
			if !errors.Is(err, ErrReadOnly) {
				t.Errorf("%s: error %v is not ErrReadOnly", q, err)
			}
			if !strings.Contains(err.Error(), "refused in read-only mode") {
				t.Errorf("%s: error %q does not say it is refused in read-only mode", q, err)
			}
		}
		if d := before.diff(snapshotDir(t, dir)); d != "" {
			t.Fatalf("%s changed the database directory: %s", q, d)
		}
		if d := beforeOther.diff(snapshotDir(t, other)); d != "" {
			t.Fatalf("%s changed another directory: %s", q, d)
		}
	}
	for _, q := range readOnlyAllowed {
		if _, _, err := db.Query(ctx, q, nil, false); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if d := before.diff(snapshotDir(t, dir)); d != "" {
		t.Fatalf("reads changed the database directory: %s", d)
	}
	// The store's own read pool has the same guard.
	if _, err := db.reader().ExecContext(ctx, `DELETE FROM features`); err == nil {
		t.Error("the read pool deleted rows")
	}
	if n := queryInt(t, db, `SELECT count(*) FROM features`); n != 3 {
		t.Errorf("%d vectors left, want 3", n)
	}
}

// FuzzReadOnly runs arbitrary SQL on a read-only connection and checks that
// no file changes: the database's bytes and both directories' listings.
// The seed corpus (every attack and allowed read above) runs as part of the
// normal test run; `go test -run x -fuzz FuzzReadOnly -fuzztime 20s ./store`
// explores further.
func FuzzReadOnly(f *testing.F) {
	for _, a := range readOnlyAttacks {
		f.Add(a)
	}
	for _, q := range readOnlyAllowed {
		f.Add(q)
	}
	db, path, other := readOnlyFixture(f)
	dir := filepath.Dir(path)
	// Relative file names land in the working directory (the package's):
	// its list of names is watched too (not the contents: someone may be
	// editing the sources). No Chdir: the fuzzer saves failing inputs
	// relative to it.
	names := func(t testing.TB) dirState {
		st := snapshotDir(t, ".")
		for k := range st {
			st[k] = ""
		}
		return st
	}
	before, beforeOther, beforeCwd := snapshotDir(f, dir), snapshotDir(f, other), names(f)
	f.Fuzz(func(t *testing.T, q string) {
		q = expandAttack(q, path, other)
		_, _, err := db.Query(context.Background(), q, nil, false)
		if d := before.diff(snapshotDir(t, dir)); d != "" {
			t.Fatalf("%q (error %v) changed the database directory: %s", q, err, d)
		}
		if d := beforeOther.diff(snapshotDir(t, other)); d != "" {
			t.Fatalf("%q (error %v) changed another directory: %s", q, err, d)
		}
		if d := beforeCwd.diff(names(t)); d != "" {
			t.Fatalf("%q (error %v) changed the working directory: %s", q, err, d)
		}
	})
}
