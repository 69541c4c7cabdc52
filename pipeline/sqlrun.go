package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"pipeline/errclass"
	schema "pipeline/sql"
	"pipeline/store"
)

// SQLOptions configure `pipeline sql`.
type SQLOptions struct {
	DB     string
	Text   string         // the query: one or more statements
	Params map[string]any // named parameters, without prefix
	// Write runs the text on a writing connection, under the writer lock,
	// recorded as a run with command "sql". Without it the connection is
	// read-only and a writing statement fails with store.ErrReadOnly.
	Write bool
	Wait  time.Duration // with Write: wait this long for the writer lock
	Args  []string      // the command line, for the runs table
	// Row receives every row of every statement that returns rows.
	Row func(st *store.Statement, row []any) error
}

// SQL runs a query text against the database and returns the statements
// it executed (for a script that fails midway, those that completed, with
// the error). Query errors are *store.QueryError.
func SQL(ctx context.Context, o SQLOptions) ([]store.Statement, error) {
	if o.Row == nil {
		o.Row = func(*store.Statement, []any) error { return nil }
	}
	db, err := store.Open(o.DB, store.Options{ReadOnly: !o.Write})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if !o.Write {
		return db.QueryEach(ctx, o.Text, o.Params, false, o.Row)
	}
	var stmts []store.Statement
	err = withRun(ctx, db, "sql", o.Args, o.Wait, func(*runScope) error {
		var err error
		stmts, err = db.QueryEach(ctx, o.Text, o.Params, true, o.Row)
		if store.QueryFault(err) && errclass.Of(err) != errclass.Usage {
			err = errclass.Wrap(errclass.Usage, err) // the query's own fault
		}
		return err
	})
	return stmts, err
}

// ParseValue turns a --param value into what is bound: an int64 when it is
// a decimal integer written canonically ("42", "-3"; not "007", which stays
// text), a float64 when it is a finite decimal number (digits, sign, point,
// exponent: not "inf", "nan" or hex), else the text itself.
func ParseValue(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if strconv.FormatInt(n, 10) == strings.TrimPrefix(s, "+") {
			return n
		}
		return s
	}
	if strings.ContainsFunc(s, func(r rune) bool {
		return !strings.ContainsRune("0123456789+-.eE", r)
	}) {
		return s
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return s
}

// ParamDoc is one parameter described in a query's header comment.
type ParamDoc struct {
	Name       string // without the ':'
	Doc        string // the description, without the default
	Default    string // the default as written ('' for an empty text)
	HasDefault bool
}

// DefaultValue is the default as it is bound: two apostrophes (an empty
// SQL string literal) are the empty text, anything else is read like a
// --param value.
func (p ParamDoc) DefaultValue() any {
	if p.Default == "''" {
		return ""
	}
	return ParseValue(p.Default)
}

// QueryDoc is what the header comment of a query file says: the header is
// the block of `--` comment lines the file starts with; its first line is
// the summary, and lines of the form
//
//	--   :name  what it is (default: value)
//
// document the parameters, with an optional default.
type QueryDoc struct {
	Summary string
	Params  []ParamDoc
}

var (
	paramLine   = regexp.MustCompile(`^--\s+:([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$`)
	defaultPart = regexp.MustCompile(`\s*\(default:\s*([^()]*)\)\s*$`)
)

// ParseQueryDoc reads the header comment of a query text.
func ParseQueryDoc(text string) QueryDoc {
	var d QueryDoc
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			if d.Summary == "" {
				continue
			}
			break
		}
		if !strings.HasPrefix(line, "--") {
			break
		}
		if d.Summary == "" {
			d.Summary = strings.TrimSpace(strings.TrimPrefix(line, "--"))
			continue
		}
		m := paramLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		p := ParamDoc{Name: m[1], Doc: m[2]}
		if dm := defaultPart.FindStringSubmatchIndex(p.Doc); dm != nil {
			p.Default = strings.TrimSpace(p.Doc[dm[2]:dm[3]])
			p.HasDefault = true
			p.Doc = strings.TrimSpace(p.Doc[:dm[0]])
		}
		d.Params = append(d.Params, p)
	}
	return d
}

// WithDefaults returns params completed with the defaults of the query's
// header for the parameters it documents and params lacks.
func (d QueryDoc) WithDefaults(params map[string]any) map[string]any {
	out := make(map[string]any, len(params)+len(d.Params))
	for k, v := range params {
		out[strings.TrimLeft(k, ":@$")] = v
	}
	for _, p := range d.Params {
		if _, ok := out[p.Name]; !ok && p.HasDefault {
			out[p.Name] = p.DefaultValue()
		}
	}
	return out
}

// Example is an example query embedded in the binary (sql/examples).
type Example struct {
	Name string // file name without .sql, e.g. "nearest"
	Text string
	Doc  QueryDoc
}

// Examples lists the embedded example queries by name.
func Examples() ([]Example, error) {
	names, err := fs.Glob(schema.Examples, "examples/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Example
	for _, n := range names {
		b, err := fs.ReadFile(schema.Examples, n)
		if err != nil {
			return nil, err
		}
		out = append(out, Example{Name: strings.TrimSuffix(path.Base(n), ".sql"), Text: string(b), Doc: ParseQueryDoc(string(b))})
	}
	return out, nil
}

// ReadQuery reads the text for `pipeline sql -f NAME`: "-" is stdin, an
// existing file is read, and otherwise NAME may name an embedded example
// ("nearest", "nearest.sql", "examples/nearest.sql" or
// "sql/examples/nearest.sql"), so that the examples work without the
// repository. source names it for messages (the file name).
func ReadQuery(name string, stdin io.Reader) (text, source string, err error) {
	if name == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return "", "", fmt.Errorf("read query from stdin: %w", err)
		}
		return string(b), "stdin", nil
	}
	b, ferr := os.ReadFile(name)
	if ferr == nil {
		return string(b), name, nil
	}
	if !errors.Is(ferr, fs.ErrNotExist) {
		return "", "", fmt.Errorf("read query: %w", ferr)
	}
	exs, err := Examples()
	if err != nil {
		return "", "", err
	}
	base := strings.TrimSuffix(name, ".sql")
	for _, prefix := range []string{"sql/examples/", "examples/"} {
		base = strings.TrimPrefix(base, prefix)
	}
	var names []string
	for _, ex := range exs {
		if ex.Name == base {
			return ex.Text, ex.Name + ".sql", nil
		}
		names = append(names, ex.Name)
	}
	return "", "", usagef("query file %s: no such file, and no example of that name (examples: %s)",
		name, strings.Join(names, ", "))
}
