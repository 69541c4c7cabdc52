// Package store keeps images, their CNN codes, runs, splits, classifiers and
// predictions in one SQLite file. It is the only package that talks to SQLite
// (mattn/go-sqlite3) and sqlite-vec; see DESIGN.md for the concurrency model,
// the vector encoding and the crash-safety argument.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	vec "github.com/asg017/sqlite-vec-go-bindings/cgo"
	"github.com/mattn/go-sqlite3"

	"pipeline/errclass"
)

// Sentinel errors callers test with errors.Is.
var (
	// ErrNotDatabase: the file exists but is not a pipeline database
	// (not SQLite at all, or SQLite with someone else's tables).
	ErrNotDatabase = errclass.New(errclass.Fatal, "not a pipeline database")
	// ErrNoDatabase: a read-only open of a path where no database exists.
	ErrNoDatabase = errclass.New(errclass.NotFound, "no database")
	// ErrSchemaOld: a read-only open of a database whose schema is older
	// than this binary's; a writing command upgrades it.
	ErrSchemaOld = errclass.New(errclass.Fatal, "database schema is older than this pipeline")
	// ErrSchemaNew: the database was written by a newer pipeline.
	ErrSchemaNew = errclass.New(errclass.Fatal, "database schema is newer than this pipeline")
	// ErrSchemaMismatch: the database's user_version is not one this
	// pipeline wrote for the tables it holds (negative, or lower than its
	// tables): something else changed the header.
	ErrSchemaMismatch = errclass.New(errclass.Integrity, "database schema version does not match its tables")
	// ErrHardLinked: a writing open of a database file that has more than
	// one name (hard link): SQLite's WAL and locks are per name.
	ErrHardLinked = errclass.New(errclass.Fatal, "database file has several hard links")
	// ErrCorrupt: SQLite finds the file damaged (PRAGMA quick_check or
	// SQLITE_CORRUPT); `pipeline check` lists the problems.
	ErrCorrupt = errclass.New(errclass.Integrity, "database file is corrupt")
	// ErrReadOnly: a write through a read-only DB or a read-only query.
	ErrReadOnly = errclass.New(errclass.Usage, "database is open read-only")
)

// BusyTimeout is how long a connection waits for another connection's write
// transaction before failing with "database is locked". Batches are short
// transactions, so this only matters when something is badly stuck.
const BusyTimeout = 10 * time.Second

// Notify, when set, receives notes on how a database was opened that the
// user should know about (a database read as immutable because its
// directory is not writable). The CLI logs them.
var Notify func(msg string)

// applicationID marks pipeline databases in the SQLite header
// (PRAGMA application_id): "PiPe".
const applicationID = 0x50695065

// Options configure Open.
type Options struct {
	// ReadOnly opens with mode=ro, query_only and the read-only authorizer
	// (authorizer.go): no migration, no writes, whatever the SQL.
	ReadOnly bool
}

// DB is an open feature database. It is safe for concurrent use.
type DB struct {
	path      string // absolute, symlinks resolved
	readOnly  bool
	immutable bool    // read-only in a directory we cannot write: opened immutable=1
	rw        *sql.DB // one connection: the process's only writer; nil when read-only
	ro        *sql.DB // read-only pool for queries

	mu      sync.Mutex
	closed  bool
	lock    *writerLock        // held writer lock, nil if none
	started map[int64]struct{} // runs started through this DB (not stale)
}

var vecOnce sync.Once

// registerVec makes every SQLite connection opened from now on in this
// process load sqlite-vec (sqlite3_auto_extension), so pooled connections,
// the read-only pool and one-off query connections all have it.
func registerVec() { vecOnce.Do(vec.Auto) }

// dsn builds the URI filename with the per-connection settings mattn applies
// at connect time, so every pooled connection has them.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(BusyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	if readOnly {
		q.Set("mode", "ro")
		q.Set("_query_only", "1")
	} else {
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "NORMAL")
		// BEGIN IMMEDIATE: a write transaction takes the write lock when it
		// starts (waiting up to busy_timeout), instead of failing with
		// SQLITE_BUSY when a read turns into a write.
		q.Set("_txlock", "immediate")
	}
	q.Set("_stmt_cache_size", "32")
	u := url.URL{Path: path}
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// Open opens (and, unless read-only, creates and migrates) the database at
// path.
func Open(path string, opts Options) (*DB, error) {
	abs, err := resolvePath(path)
	if err != nil {
		return nil, err
	}
	if err := checkFile(abs, opts.ReadOnly); err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := checkLinks(abs); err != nil {
			return nil, err
		}
	}
	registerVec()
	db := &DB{path: abs, readOnly: opts.ReadOnly, started: map[int64]struct{}{}}
	ctx := context.Background()
	if !opts.ReadOnly {
		db.rw, err = sql.Open("sqlite3", dsn(abs, false))
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", abs, err)
		}
		// One writer connection: in-process writers queue in Go instead
		// of spinning on SQLite's busy handler.
		db.rw.SetMaxOpenConns(1)
		db.rw.SetConnMaxIdleTime(time.Minute)
		// A damaged file is refused before anything is written to it.
		if err := db.refuseCorrupt(ctx); err != nil {
			db.rw.Close()
			return nil, err
		}
		if err := db.migrate(ctx, len(migrations)); err != nil {
			db.rw.Close()
			return nil, err
		}
	}
	if opts.ReadOnly && needsImmutable(abs) {
		db.immutable = true
		if Notify != nil {
			Notify(fmt.Sprintf("the directory of %s is not writable, so SQLite cannot create its -wal and -shm files there: reading the database as immutable (a writer's changes made meanwhile are not seen)", abs))
		}
	}
	db.ro, _ = openRO(db.roDSN())
	db.ro.SetMaxOpenConns(8)
	db.ro.SetConnMaxIdleTime(time.Minute)
	if opts.ReadOnly {
		v, err := db.readVersion(ctx, db.ro)
		if err != nil {
			db.Close()
			return nil, err
		}
		err = db.checkVersion(v, false) // newer than we know
		if err == nil {
			err = db.checkSchema(ctx, db.ro, v)
		}
		if err == nil {
			err = db.checkVersion(v, true) // older: needs a writer
		}
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// resolvePath returns the absolute path of the database with every
// symbolic link resolved, so that every name of one file leads to one lock
// file and one WAL (SQLite keeps both per name). A database that does not
// exist yet resolves through its directory.
func resolvePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	if fi, lerr := os.Lstat(abs); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
		target, _ := os.Readlink(abs)
		return "", fmt.Errorf("open %s: it is a symbolic link to %s, which does not exist", abs, target)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return abs, nil // checkFile names the missing directory
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// checkLinks refuses to write a database file with more than one hard
// link. SQLite names its WAL and shared-memory files and takes its locks
// per file name, so two writers through two names of one file each see
// their own WAL: both commit, and the file ends up malformed for good.
func checkLinks(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // does not exist yet: checkFile decided
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink <= 1 {
		return nil
	}
	return fmt.Errorf("open %s: %w: it has %d hard links (the same file under other names); SQLite keeps its write-ahead log and locks per file name, so writers through two names can corrupt it. Remove the other names (find %s -samefile %s lists those in this directory tree) or write to a copy",
		path, ErrHardLinked, st.Nlink, filepath.Dir(path), path)
}

// roDSN is the DSN of read-only connections to the database.
func (db *DB) roDSN() string {
	if db.immutable {
		return dsn(db.path, true) + "&immutable=1"
	}
	return dsn(db.path, true)
}

// roURI is the URI filename for read-only connections the store opens in
// C (the nearest-neighbour scan, error offsets).
func (db *DB) roURI() string {
	u := url.URL{Path: db.path}
	s := "file:" + u.EscapedPath() + "?mode=ro"
	if db.immutable {
		s += "&immutable=1"
	}
	return s
}

// needsImmutable reports whether a reader must open the database with
// immutable=1: its directory is not writable by this process (a read-only
// file system, or permissions) and the WAL files a WAL-mode reader needs
// are not both there, so SQLite would try to create them and fail
// ("unable to open database file"). When they exist, SQLite reads them
// read-only and plain mode=ro works (and sees a writer's changes).
// immutable=1 reads the main file without locks: right on a read-only file
// system, where nobody can write; where only this user cannot, a writer
// that starts meanwhile is not seen.
func needsImmutable(path string) bool {
	if syscall.Access(filepath.Dir(path), 2 /* W_OK */) == nil {
		return false
	}
	_, errWAL := os.Stat(path + "-wal")
	_, errSHM := os.Stat(path + "-shm")
	return errWAL != nil || errSHM != nil
}

// checkFile turns the common ways of pointing at the wrong place into errors
// that name the path, before SQLite says "unable to open database file".
func checkFile(path string, readOnly bool) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("open %s: is a directory, not a database file", path)
	case err == nil:
		return checkHeader(path)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("open %s: %w", path, err)
	}
	// The file does not exist.
	dst, derr := os.Stat(dir)
	if derr != nil || !dst.IsDir() {
		return fmt.Errorf("open %s: directory %s does not exist", path, dir)
	}
	if readOnly {
		return fmt.Errorf("open %s: %w there (a writing command such as `pipeline extract` creates it)", path, ErrNoDatabase)
	}
	// Access(2) rather than trying: a failed create would leave nothing
	// behind, but its error ("unable to open database file") names nothing.
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return fmt.Errorf("open %s: directory %s is not writable: %w", path, dir, err)
	}
	return nil
}

// checkHeader rejects files that are not SQLite before any pragma touches
// them. An empty file is what SQLite itself creates, so it passes.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var hdr [16]byte
	n, err := io.ReadFull(f, hdr[:])
	if n == 0 && (err == io.EOF || err == nil) {
		return nil
	}
	if string(hdr[:n]) != "SQLite format 3\x00" {
		return fmt.Errorf("open %s: %w (not an SQLite file)", path, ErrNotDatabase)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// ReadOnly reports whether db was opened read-only.
func (db *DB) ReadOnly() bool { return db.readOnly }

// Close closes the database. A writing DB first checkpoints the WAL into
// the main file and truncates it (see checkpoint), so that the file at rest
// holds every committed row; then the writer lock, if held, is released.
func (db *DB) Close() error {
	db.mu.Lock()
	closed := db.closed
	db.closed = true
	db.mu.Unlock()
	if closed {
		return nil
	}
	var errs []error
	if db.ro != nil {
		errs = append(errs, db.ro.Close())
	}
	if db.rw != nil {
		errs = append(errs, db.checkpoint())
		errs = append(errs, db.rw.Close())
	}
	db.mu.Lock()
	l := db.lock
	db.mu.Unlock()
	if l != nil {
		errs = append(errs, l.release())
	}
	return errors.Join(errs...)
}

// checkpointTimeout bounds how long Close waits for readers of an older
// snapshot before it leaves the WAL as it is (still durable and consistent;
// the next writer's checkpoints fold it in).
const checkpointTimeout = 2 * time.Second

// checkpoint copies the WAL into the main file and truncates the WAL
// (PRAGMA wal_checkpoint(TRUNCATE)), so that a plain copy of an idle
// database is complete. SQLite does this by itself only when the last
// connection to the file closes, which a reader anywhere prevents.
func (db *DB) checkpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*checkpointTimeout)
	defer cancel()
	conn, err := db.rw.Conn(ctx)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", db.path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", checkpointTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("checkpoint %s: %w", db.path, err)
	}
	var busy, logFrames, done int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil &&
		sqliteCode(err) != sqlite3.ErrBusy && sqliteCode(err) != sqlite3.ErrLocked {
		return fmt.Errorf("checkpoint %s: %w", db.path, err)
	}
	return nil
}

// writer returns the write pool, or ErrReadOnly naming the operation.
func (db *DB) writer(op string) (*sql.DB, error) {
	if db.readOnly {
		return nil, fmt.Errorf("%s: %s: %w", op, db.path, ErrReadOnly)
	}
	return db.rw, nil
}

// reader returns the pool for reads: the read-only pool, so reads never
// queue behind the single writer connection.
func (db *DB) reader() *sql.DB { return db.ro }

// timeFormat is the schema's time format: RFC 3339, UTC, milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func now() string { return formatTime(time.Now()) }

// parseTime reads a schema time; the zero time for NULL or garbage (a
// hand-edited row should not make listing runs fail).
func parseTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		return time.Time{}
	}
	return t
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullInt(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: v != 0} }

// sqliteCode returns the primary SQLite result code of err, or 0.
func sqliteCode(err error) sqlite3.ErrNo {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// wrapOpenErr maps SQLite's open-time errors to ones that name the file.
func wrapOpenErr(path string, err error) error {
	switch sqliteCode(err) {
	case sqlite3.ErrNotADB:
		return fmt.Errorf("open %s: %w: %w", path, ErrNotDatabase, err)
	case sqlite3.ErrCantOpen:
		return fmt.Errorf("open %s: cannot open: %w", path, err)
	case sqlite3.ErrCorrupt:
		return newCorruptError(path, err)
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// rollback is for defer: Rollback after Commit is a harmless ErrTxDone.
func rollback(tx *sql.Tx) { _ = tx.Rollback() }

// Versions returns the versions of the SQLite library and of sqlite-vec
// this binary links, from an in-memory database (nothing is opened on
// disk).
func Versions() (sqlite, sqliteVec string, err error) {
	registerVec()
	mem, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		return "", "", err
	}
	defer mem.Close()
	if err := mem.QueryRow(`SELECT sqlite_version(), vec_version()`).Scan(&sqlite, &sqliteVec); err != nil {
		return "", "", fmt.Errorf("sqlite versions: %w", err)
	}
	return sqlite, sqliteVec, nil
}
