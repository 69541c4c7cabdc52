package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mattn/go-sqlite3"

	"pipeline/errclass"
)

// ErrParams: the query's named parameters and the given values disagree.
var ErrParams = errclass.New(errclass.Usage, "query parameters")

// QueryError is an error of one statement of a query text, with the place
// SQLite blames when it names one.
type QueryError struct {
	Statement int    // 0-based index of the statement in the text
	SQL       string // the statement
	Offset    int    // byte offset of the error in the whole text; -1 if unknown
	Line, Col int    // 1-based position of Offset (0 if unknown)
	Err       error
}

func (e *QueryError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("line %d, column %d: %v", e.Line, e.Col, e.Err)
	}
	return fmt.Sprintf("statement %d: %v", e.Statement+1, e.Err)
}

func (e *QueryError) Unwrap() error { return e.Err }

// RefusedError is a statement that a read-only query refused: What says
// what it tried. errors.Is(err, ErrReadOnly) holds.
type RefusedError struct {
	What string
	Err  error // SQLite's error, if SQLite refused it
}

func (e *RefusedError) Error() string {
	return "statement refused in read-only mode: " + e.What
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrReadOnly) true.
func (e *RefusedError) Is(target error) bool { return target == ErrReadOnly }

// Class is ErrReadOnly's: the statement, not the environment, is at fault.
func (e *RefusedError) Class() errclass.Class { return errclass.Usage }

// Statement describes one executed statement of a query text.
type Statement struct {
	SQL     string   `json:"sql"`
	Offset  int      `json:"offset"`  // byte offset in the query text
	Columns []string `json:"columns"` // empty for statements that return no rows
	Rows    int64    `json:"rows"`    // rows returned
	Changes int64    `json:"changes"` // rows inserted, updated or deleted (statements without columns)
}

// QueryEach runs SQL text, one or more statements separated by semicolons,
// and calls fn for every row of every statement that returns rows, with
// values as int64, float64, string, []byte or nil (time.Time for columns
// declared DATE, DATETIME or TIMESTAMP).
//
// params binds named parameters written :name, @name or $name; the keys may
// be given with or without the prefix. Every parameter the text uses must
// have a value and every value must be used (ErrParams); positional ? is
// refused. A []float32 value is bound as an encoded vector (EncodeVector).
//
// Unless write, the text runs on a read-only connection (mode=ro,
// query_only) and a statement that writes fails with ErrReadOnly. Each call
// uses its own connection, so PRAGMAs in the text do not leak into the
// store's pools. Errors are *QueryError, with the line and column SQLite
// blames for prepare errors (syntax, unknown table or column).
func (db *DB) QueryEach(ctx context.Context, text string, params map[string]any, write bool,
	fn func(st *Statement, row []any) error) ([]Statement, error) {
	if write && db.readOnly {
		return nil, fmt.Errorf("query: %s: %w (opened read-only)", db.path, ErrReadOnly)
	}
	stmts := splitStatements(text)
	values, err := bindParams(stmts, params)
	if err != nil {
		return nil, err
	}
	var pool *sql.DB
	var auth *authorizer
	if write {
		pool, err = sql.Open("sqlite3", dsn(db.path, false))
		if err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
	} else {
		pool, auth = openRO(db.roDSN())
	}
	defer pool.Close()
	pool.SetMaxOpenConns(1)
	conn, err := pool.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("query: %w", wrapOpenErr(db.path, err))
	}
	defer conn.Close()

	var done []Statement
	for i, s := range stmts {
		if s.empty {
			continue
		}
		st := Statement{SQL: s.sql, Offset: s.offset}
		if !write {
			if why := readOnlyStatement(s.sql); why != "" {
				return done, &QueryError{Statement: i, SQL: s.sql, Offset: -1, Err: &RefusedError{What: why}}
			}
			auth.lastDenied() // forget earlier statements' denials
		}
		if err := db.runStatement(ctx, conn, &st, values[i], write, fn); err != nil {
			return done, db.queryError(text, i, s, auth, err)
		}
		done = append(done, st)
	}
	return done, nil
}

func (db *DB) runStatement(ctx context.Context, conn *sql.Conn, st *Statement, args []any, write bool,
	fn func(*Statement, []any) error) error {
	var before int64
	if write {
		if err := conn.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&before); err != nil {
			return err
		}
	}
	rows, err := conn.QueryContext(ctx, st.SQL, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if st.Columns, err = rows.Columns(); err != nil {
		return err
	}
	for rows.Next() {
		row := make([]any, len(st.Columns))
		ptrs := make([]any, len(row))
		for k := range row {
			ptrs[k] = &row[k]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		st.Rows++
		if err := fn(st, row); err != nil {
			return userError{err}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	if write {
		var after int64
		if err := conn.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&after); err != nil {
			return err
		}
		st.Changes = after - before
	}
	return nil
}

// userError marks an error returned by the caller's fn: passed through as is.
type userError struct{ error }

// queryError wraps a statement's error; auth is the read-only connection's
// authorizer (nil when writing).
func (db *DB) queryError(text string, i int, s stmtText, auth *authorizer, err error) error {
	var ue userError
	if errors.As(err, &ue) {
		return ue.error
	}
	if auth != nil {
		what := auth.lastDenied()
		switch code := sqliteCode(err); {
		case what != "":
			err = &RefusedError{What: what, Err: err}
		case code == sqlite3.ErrAuth:
			err = &RefusedError{What: "it is not a read", Err: err}
		case code == sqlite3.ErrReadonly:
			err = &RefusedError{What: "it writes", Err: err}
		}
	}
	qe := &QueryError{Statement: i, SQL: s.sql, Offset: -1, Err: err}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrError {
		// Prepare-time errors (syntax, no such table/column/function).
		off, msg := errorOffset(db.roURI(), s.sql)
		if msg == se.Error() {
			if off < 0 {
				off = missingTableOffset(s.sql, msg)
			}
			if off >= 0 {
				qe.Offset = s.offset + off
				qe.Line, qe.Col = lineCol(text, qe.Offset)
			}
		}
	}
	return qe
}

// missingTableOffset finds the table of a "no such table: [schema.]name"
// error in the statement, for which SQLite gives no offset: the first
// whole-word, case-insensitive occurrence of the name as written.
func missingTableOffset(stmt, msg string) int {
	name, ok := strings.CutPrefix(msg, "no such table: ")
	if !ok || name == "" {
		return -1
	}
	lower, name := strings.ToLower(stmt), strings.ToLower(name)
	for from := 0; ; {
		k := strings.Index(lower[from:], name)
		if k < 0 {
			return -1
		}
		k += from
		end := k + len(name)
		if (k == 0 || !isIdentChar(lower[k-1])) && (end == len(lower) || !isIdentChar(lower[end])) {
			return k
		}
		from = k + 1
	}
}

// bindParams checks the parameters against the statements and returns the
// arguments of each statement.
func bindParams(stmts []stmtText, params map[string]any) ([][]any, error) {
	given := map[string]any{}
	for k, v := range params {
		name := strings.TrimLeft(k, ":@$")
		if name == "" {
			return nil, fmt.Errorf("%w: empty parameter name %q", ErrParams, k)
		}
		if _, dup := given[name]; dup {
			return nil, fmt.Errorf("%w: parameter %s given twice", ErrParams, name)
		}
		if v32, ok := v.([]float32); ok {
			v = EncodeVector(v32)
		}
		given[name] = v
	}
	used := map[string]bool{}
	var missing []string
	out := make([][]any, len(stmts))
	for i, s := range stmts {
		if s.positional {
			return nil, &QueryError{Statement: i, SQL: s.sql, Offset: -1,
				Err: fmt.Errorf("%w: positional ? parameters are not supported; name them (:name)", ErrParams)}
		}
		for _, name := range s.params {
			v, ok := given[name]
			if !ok {
				if !slices.Contains(missing, name) {
					missing = append(missing, name)
				}
				continue
			}
			used[name] = true
			out[i] = append(out[i], sql.Named(name, v))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: the query uses :%s but no value was given", ErrParams, strings.Join(missing, ", :"))
	}
	var unused []string
	for name := range given {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return nil, fmt.Errorf("%w: %s given but not used by the query", ErrParams, strings.Join(unused, ", "))
	}
	return out, nil
}

// Query is QueryEach collecting the rows: the columns and rows of the last
// statement that returns columns.
func (db *DB) Query(ctx context.Context, text string, params map[string]any, write bool) (cols []string, rows [][]any, err error) {
	byStmt := map[int][][]any{}
	stmts, err := db.QueryEach(ctx, text, params, write, func(st *Statement, row []any) error {
		byStmt[st.Offset] = append(byStmt[st.Offset], row)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, st := range slices.Backward(stmts) {
		if len(st.Columns) > 0 {
			return st.Columns, byStmt[st.Offset], nil
		}
	}
	return nil, nil, nil
}
