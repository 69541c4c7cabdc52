package main

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"pipeline/errclass"
	"pipeline/pipeline"
	"pipeline/store"
)

const sqlHelp = `Runs one or more SQL statements on the feature database and prints the
rows of every statement that returns rows. The schema is in docs/SCHEMA.md;
sqlite-vec's functions (vec_distance_cosine, vec_distance_L2, vec_length,
vec_to_json, vec_f32, vec_add, ...) work on the features.vector BLOBs.

The query is the argument, or -f FILE, or -f NAME of an embedded example
(pipeline sql --list), or stdin (no argument, or -f -). Parameters are
written :name in the query and given with --param name=value: a decimal
number binds as a number ("10", "0.5"; not "007"), anything else as text
(--param-text binds text always). A query file's header may give defaults:
    --   :k  neighbours to return (default: 10)

Output: an aligned table (BLOBs shown as <N bytes>, NULL as NULL), --csv
(one header line per result; NULL is empty; BLOBs base64), or --json (one
JSON object per row, keys in column order; BLOBs base64; a repeated column
name gets a suffix, "path:1"). To see a vector's numbers, select
vec_to_json(vector).

Read-only unless --write, which takes the writer lock (like extract) and
records the statement as a run.

Exit codes: 0 ok, 2 bad query or parameters, 1 database or I/O error,
4 the database is being written (with --write).`

// paramFlag collects repeated --param name=value flags.
type paramFlag struct {
	values map[string]any
	text   bool // --param-text: bind as text always
}

func (p *paramFlag) String() string { return "" }

func (p *paramFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimLeft(strings.TrimSpace(name), ":@$")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	if _, dup := p.values[name]; dup {
		return fmt.Errorf("parameter %s given twice", name)
	}
	if p.text {
		p.values[name] = value
	} else {
		p.values[name] = pipeline.ParseValue(value)
	}
	return nil
}

func cmdSQL(e *env, args []string) error {
	fs := newFlags(e, "sql", `sql [flags] "QUERY" | -f FILE|NAME|-`)
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintf(fs.Output(), "\n%s\n", sqlHelp)
	}
	db := addDBFlag(fs)
	file := fs.String("f", "", "read the query from FILE, from an embedded example NAME (see --list), or - for stdin")
	values := map[string]any{}
	fs.Var(&paramFlag{values: values}, "param", "bind :name to value (repeatable); numbers bind as numbers")
	fs.Var(&paramFlag{values: values, text: true}, "param-text", "bind :name to value as text (repeatable)")
	asCSV := fs.Bool("csv", false, "print CSV")
	asJSON := fs.Bool("json", false, "print one JSON object per row")
	write := fs.Bool("write", false, "allow statements that change the database (takes the writer lock)")
	wait := addWaitFlag(fs, "with --write")
	list := fs.Bool("list", false, "list the embedded example queries")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *list {
		return listExamples(e)
	}
	if *asCSV && *asJSON {
		return usageError("sql: give --csv or --json, not both")
	}
	if *wait != 0 && !*write {
		return usageError("sql: --wait is for --write (reading never waits for the writer)")
	}
	text, source, err := sqlText(e, *file, pos)
	if err != nil {
		return err
	}
	doc := pipeline.ParseQueryDoc(text)
	params := doc.WithDefaults(values)

	out := newSQLWriter(e.stdout, *asCSV, *asJSON)
	stmts, err := pipeline.SQL(e.ctx, pipeline.SQLOptions{
		DB: *db, Text: text, Params: params, Write: *write, Wait: *wait, Args: e.args, Row: out.row,
	})
	if ferr := out.finish(stmts); ferr != nil && err == nil {
		err = ferr
	}
	if *write && !e.quiet {
		for i, st := range stmts {
			if len(st.Columns) == 0 {
				e.infof("statement %d: %d rows changed", i+1, st.Changes)
			}
		}
	}
	if err != nil {
		return sqlError(e, err, text, source, doc)
	}
	return nil
}

// sqlText finds the query: the argument, -f, or stdin.
func sqlText(e *env, file string, pos []string) (text, source string, err error) {
	switch {
	case file != "" && len(pos) > 0:
		return "", "", usageError("sql: give the query as an argument or with -f, not both")
	case len(pos) > 1:
		return "", "", usageError("sql: the query must be one argument: quote it (pipeline sql \"SELECT * FROM runs\")")
	case len(pos) == 1:
		return pos[0], "", nil
	}
	if file == "" {
		file = "-"
		if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !e.quiet {
			fmt.Fprintln(e.stderr, "reading SQL from stdin (end with Ctrl-D; `pipeline sql --help` for usage)")
		}
	}
	text, source, err = pipeline.ReadQuery(file, e.stdin)
	if errors.Is(err, pipeline.ErrUsage) { // no such file or example
		return "", "", withHint(err, "`pipeline sql --list` describes the examples")
	}
	if err != nil {
		return "", "", err
	}
	if strings.TrimSpace(text) == "" {
		return "", "", usageError("sql: the query from %s is empty", source)
	}
	return text, source, nil
}

// sqlError turns a query error into the exit code and the message users
// see: the place SQLite blames, with the line and a caret.
func sqlError(e *env, err error, text, source string, doc pipeline.QueryDoc) error {
	if e.ctx.Err() != nil {
		return e.ctx.Err()
	}
	prefix := "sql: "
	if source != "" {
		prefix = "sql: " + source + ": "
	}
	class := errclass.Fatal
	if store.QueryFault(err) {
		class = errclass.Usage
	}
	hint := ""
	if errors.Is(err, store.ErrReadOnly) {
		hint = "; run with --write to change the database"
	}
	var qe *store.QueryError
	switch {
	case errors.As(err, &qe) && qe.Offset >= 0:
		return errclass.Errorf(class, "%s%w%s\n%s", prefix, err, hint, caretExcerpt(text, qe.Line, qe.Col))
	case errors.As(err, &qe):
		return errclass.Errorf(class, "%s%w%s\n  in: %s", prefix, err, hint, firstLine(qe.SQL))
	case errors.Is(err, store.ErrParams) && len(doc.Params) > 0:
		var b strings.Builder
		for _, p := range doc.Params {
			def := ""
			if p.HasDefault {
				def = " (default: " + p.Default + ")"
			}
			fmt.Fprintf(&b, "\n  :%-10s %s%s", p.Name, p.Doc, def)
		}
		return errclass.Errorf(errclass.Usage, "%s%w\nparameters:%s", prefix, err, b.String())
	case errors.Is(err, store.ErrParams):
		return errclass.Errorf(errclass.Usage, "%s%w", prefix, err)
	}
	return err // open, lock and run errors keep their own codes
}

// caretExcerpt shows line `line` of text with a caret under column col.
func caretExcerpt(text string, line, col int) string {
	lines := strings.Split(text, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	l := strings.TrimRight(lines[line-1], "\r")
	num := strconv.Itoa(line)
	// Tabs are kept in the padding so that the caret lines up with them.
	pad := []rune{}
	for i, r := range []rune(l) {
		if i >= col-1 {
			break
		}
		if r == '\t' {
			pad = append(pad, '\t')
		} else {
			pad = append(pad, ' ')
		}
	}
	return fmt.Sprintf("  %s | %s\n  %s | %s^", num, l, strings.Repeat(" ", len(num)), string(pad))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			if len(l) > 100 {
				l = l[:100] + "..."
			}
			return l
		}
	}
	return s
}

func listExamples(e *env) error {
	exs, err := pipeline.Examples()
	if err != nil {
		return err
	}
	width := 0
	for _, ex := range exs {
		width = max(width, len(ex.Name))
	}
	for _, ex := range exs {
		fmt.Fprintf(e.stdout, "%-*s  %s\n", width, ex.Name, ex.Doc.Summary)
		pw := 0
		for _, p := range ex.Doc.Params {
			pw = max(pw, len(p.Name))
		}
		for _, p := range ex.Doc.Params {
			def := ""
			if p.HasDefault {
				def = " (default: " + p.Default + ")"
			}
			fmt.Fprintf(e.stdout, "%-*s    :%-*s  %s%s\n", width, "", pw, p.Name, p.Doc, def)
		}
	}
	fmt.Fprintln(e.stdout, "\nrun one with: pipeline sql -f NAME [--param name=value]... (the files are sql/examples/NAME.sql)")
	return nil
}

// sqlWriter prints result rows as a table, CSV or JSON lines.
type sqlWriter struct {
	w         io.Writer
	csv, json bool
	cw        *csv.Writer
	cur       int // offset of the statement whose rows are being written; -1 before any
	printed   bool
	tables    map[int][][]string // table mode: rendered cells per statement offset
	jsonKeys  []string
}

func newSQLWriter(w io.Writer, asCSV, asJSON bool) *sqlWriter {
	s := &sqlWriter{w: w, csv: asCSV, json: asJSON, cur: -1, tables: map[int][][]string{}}
	if asCSV {
		s.cw = csv.NewWriter(w)
	}
	return s
}

func (s *sqlWriter) row(st *store.Statement, row []any) error {
	switch {
	case s.csv:
		if st.Offset != s.cur {
			if s.printed {
				s.cw.Write(nil) // a blank line between results
			}
			s.cw.Write(st.Columns)
			s.cur = st.Offset
		}
		rec := make([]string, len(row))
		for i, v := range row {
			rec[i] = csvCell(v)
		}
		s.printed = true
		if err := s.cw.Write(rec); err != nil {
			return err
		}
		s.cw.Flush()
		return s.cw.Error()
	case s.json:
		if st.Offset != s.cur {
			s.jsonKeys = uniqueNames(st.Columns)
			s.cur = st.Offset
		}
		s.printed = true
		return s.writeJSONRow(row)
	}
	cells := make([]string, len(row))
	for i, v := range row {
		cells[i] = tableCell(v)
	}
	s.tables[st.Offset] = append(s.tables[st.Offset], cells)
	return nil
}

// finish writes what is buffered: the tables (table mode), or the header
// of an empty result (CSV) so that a script still gets the column names.
func (s *sqlWriter) finish(stmts []store.Statement) error {
	switch {
	case s.csv:
		if !s.printed {
			for i := len(stmts) - 1; i >= 0; i-- {
				if len(stmts[i].Columns) > 0 {
					s.cw.Write(stmts[i].Columns)
					break
				}
			}
		}
		s.cw.Flush()
		return s.cw.Error()
	case s.json:
		return nil
	}
	first := true
	for _, st := range stmts {
		if len(st.Columns) == 0 {
			continue
		}
		if !first {
			fmt.Fprintln(s.w)
		}
		first = false
		if err := writeTable(s.w, st.Columns, s.tables[st.Offset]); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlWriter) writeJSONRow(row []any) error {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range row {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(s.jsonKeys[i])
		b.Write(k)
		b.WriteByte(':')
		j, err := json.Marshal(jsonValue(v))
		if err != nil {
			return fmt.Errorf("column %s: %w", s.jsonKeys[i], err)
		}
		b.Write(j)
		// Text that is not UTF-8 (a path with Latin-1 bytes) would come
		// out with U+FFFD in place of its bytes: add them, base64, under
		// KEY_b64, so that the value can be recovered.
		if t, ok := v.(string); ok && !utf8.ValidString(t) {
			k, _ := json.Marshal(s.jsonKeys[i] + "_b64")
			b.WriteByte(',')
			b.Write(k)
			b.WriteString(`:"` + base64.StdEncoding.EncodeToString([]byte(t)) + `"`)
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(s.w, b.String())
	return err
}

// uniqueNames gives repeated column names a suffix (path, path:1), as
// SQLite does for subquery columns, so JSON objects have distinct keys.
func uniqueNames(cols []string) []string {
	out := make([]string, len(cols))
	used := map[string]bool{}
	for i, c := range cols {
		name := c
		for n := 1; used[name]; n++ {
			name = c + ":" + strconv.Itoa(n)
		}
		used[name] = true
		out[i] = name
	}
	return out
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case float64:
		// SQLite can hold ±Inf (1e999); JSON cannot.
		if math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v // []byte marshals as base64
}

func csvCell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	}
	return scalarString(v)
}

func tableCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("<%d bytes>", len(x))
	case string:
		return strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(x)
	}
	return scalarString(v)
}

func scalarString(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// writeTable prints an aligned table: numbers right-aligned, a rule under
// the header, and the row count.
func writeTable(w io.Writer, cols []string, rows [][]string) error {
	width := make([]int, len(cols))
	numeric := make([]bool, len(cols))
	for i, c := range cols {
		width[i] = utf8.RuneCountInString(c)
		numeric[i] = len(rows) > 0
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
			if c != "NULL" && !isNumber(c) {
				numeric[i] = false
			}
		}
	}
	var b strings.Builder
	line := func(cells []string, rule bool) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case rule:
				b.WriteString(strings.Repeat("-", width[i]))
			case numeric[i]:
				b.WriteString(pad + c)
			case i == len(cells)-1:
				b.WriteString(c) // no trailing blanks
			default:
				b.WriteString(c + pad)
			}
		}
		b.WriteByte('\n')
	}
	line(cols, false)
	line(cols, true)
	for _, r := range rows {
		line(r, false)
	}
	if len(rows) == 1 {
		b.WriteString("(1 row)\n")
	} else {
		fmt.Fprintf(&b, "(%d rows)\n", len(rows))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
