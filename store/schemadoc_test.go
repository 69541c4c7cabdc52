package store

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	schema "pipeline/sql"
)

// docs/SCHEMA.md has hand-written prose around a part generated from the
// migrations' comments (tables, columns, indexes, views) and the example
// queries' headers. TestSchemaDoc checks that the generated part is up to
// date and that it describes exactly the schema a fresh database has;
// `go test ./store -run TestSchemaDoc -update` rewrites the part.
const (
	schemaDocPath  = "../docs/SCHEMA.md"
	schemaDocBegin = "<!-- BEGIN GENERATED: go test ./store -run TestSchemaDoc -update rewrites this part from sql/migrations and sql/examples; edit those, not this -->"
	schemaDocEnd   = "<!-- END GENERATED -->"
)

// docColumn is a column as a migration declares and comments it.
type docColumn struct {
	name, typ, constraints, meaning string
}

type docTable struct {
	name        string
	about       string // the comment block above CREATE TABLE
	columns     []docColumn
	constraints []string // table constraints (UNIQUE (...), ...)
	migration   string
}

type docIndex struct{ name, table, columns, about string }

type docView struct {
	name    string
	about   string
	columns []docColumn // meaning = the expression
}

type docSchema struct {
	intros  [][2]string // migration file, its header comment
	tables  []*docTable
	indexes []docIndex
	views   []docView
}

func (s *docSchema) table(name string) *docTable {
	for _, t := range s.tables {
		if t.name == name {
			return t
		}
	}
	return nil
}

var (
	createTable = regexp.MustCompile(`(?i)^CREATE TABLE\s+(\w+)\s*\($`)
	createIndex = regexp.MustCompile(`(?i)^CREATE (?:UNIQUE )?INDEX\s+(\w+)\s+ON\s+(\w+)\s*\((.*)\);$`)
	createView  = regexp.MustCompile(`(?i)^CREATE VIEW\s+(\w+)\s+AS$`)
	addColumn   = regexp.MustCompile(`(?i)^ALTER TABLE\s+(\w+)\s+ADD COLUMN\s+([^;]*?)\s*(?:;\s*(--.*)|;)$`)
	renameTable = regexp.MustCompile(`(?i)^ALTER TABLE\s+(\w+)\s+RENAME TO\s+(\w+);$`)
	dropObject  = regexp.MustCompile(`(?i)^DROP (TABLE|VIEW)\s+(\w+);$`)
	insertInto  = regexp.MustCompile(`(?i)^INSERT INTO\s+\w+`)
	viewColumn  = regexp.MustCompile(`(?i)^(?:SELECT\s+)?(.*?)\s+AS\s+(\w+),?$`)
	tableConstr = regexp.MustCompile(`(?i)^(UNIQUE|PRIMARY KEY|CHECK|FOREIGN KEY|CONSTRAINT)\b`)
	// A data rewrite (UPDATE, a temporary table it uses): nothing to document.
	dataStatement = regexp.MustCompile(`(?i)^(UPDATE\s|DELETE FROM temp\.|CREATE TEMP TABLE\s|DROP TABLE temp\.)`)
	// "-- column TABLE.COLUMN: meaning" in a later migration says what a
	// column holds when its own comment (migrations never change) is wrong.
	columnNote = regexp.MustCompile(`^column (\w+)\.(\w+): (.+)$`)
)

// splitComment cuts a line into code and its trailing -- comment (outside
// quotes).
func splitComment(line string) (code, comment string) {
	inQuote := false
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\'':
			inQuote = !inQuote
		case !inQuote && strings.HasPrefix(line[i:], "--"):
			return strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+2:])
		}
	}
	return strings.TrimSpace(line), ""
}

// parseColumn reads "name TYPE constraints" (a trailing comma removed).
func parseColumn(code, comment string) docColumn {
	code = strings.TrimSuffix(strings.TrimSpace(code), ",")
	f := strings.Fields(code)
	c := docColumn{name: f[0], meaning: comment}
	if len(f) > 1 {
		c.typ = f[1]
		c.constraints = strings.Join(f[2:], " ")
	}
	return c
}

// parseMigrations reads the commented migrations. It understands the
// shapes the migrations use (CREATE TABLE with one column per line,
// continuation comment lines, single-line CREATE INDEX, CREATE VIEW with one
// "expr AS name" per line, ALTER TABLE ADD COLUMN); the test below fails if
// anything in the real schema escaped it.
func parseMigrations(t *testing.T) *docSchema {
	t.Helper()
	s := &docSchema{}
	type droppedTable struct {
		at    int
		about string
	}
	var dropped *droppedTable
	notes := map[[2]string]string{}
	for _, m := range migrations {
		file := m.name
		var comment []string
		sawStatement := false
		lines := strings.Split(m.sql, "\n")
		for i := 0; i < len(lines); i++ {
			line := strings.TrimSpace(lines[i])
			switch {
			case line == "":
				if !sawStatement && len(comment) > 0 && len(s.intros) < m.version {
					s.intros = append(s.intros, [2]string{file, strings.Join(comment, "\n")})
				}
				comment = nil
				continue
			case strings.HasPrefix(line, "--"):
				c := strings.TrimSpace(strings.TrimPrefix(line, "--"))
				if mt := columnNote.FindStringSubmatch(c); mt != nil {
					notes[[2]string{mt[1], mt[2]}] = mt[3]
					continue
				}
				comment = append(comment, c)
				continue
			}
			sawStatement = true
			about := strings.Join(comment, "\n")
			comment = nil
			if mt := createTable.FindStringSubmatch(line); mt != nil {
				tb := &docTable{name: mt[1], about: about, migration: file}
				for i++; i < len(lines); i++ {
					l := strings.TrimSpace(lines[i])
					if strings.HasPrefix(l, ");") || l == ")" {
						break
					}
					code, cm := splitComment(l)
					switch {
					case code == "" && cm != "":
						// A continuation of the previous column's comment.
						if n := len(tb.columns); n > 0 && len(tb.constraints) == 0 {
							tb.columns[n-1].meaning = strings.TrimSpace(tb.columns[n-1].meaning + " " + cm)
						}
					case code == "":
					case tableConstr.MatchString(code):
						tb.constraints = append(tb.constraints, strings.TrimSuffix(code, ","))
					default:
						tb.columns = append(tb.columns, parseColumn(code, cm))
					}
				}
				s.tables = append(s.tables, tb)
				continue
			}
			if mt := createIndex.FindStringSubmatch(line); mt != nil {
				s.indexes = append(s.indexes, docIndex{mt[1], mt[2], mt[3], about})
				continue
			}
			if mt := dropObject.FindStringSubmatch(line); mt != nil {
				// A table rebuilt (a new key) keeps its place and description.
				if strings.EqualFold(mt[1], "view") {
					s.views = slices.DeleteFunc(s.views, func(v docView) bool { return v.name == mt[2] })
				} else {
					for k, tb := range s.tables {
						if tb.name == mt[2] {
							dropped = &droppedTable{k, tb.about}
							s.tables = slices.Delete(s.tables, k, k+1)
							break
						}
					}
				}
				continue
			}
			if mt := renameTable.FindStringSubmatch(line); mt != nil {
				for k, tb := range s.tables {
					if tb.name != mt[1] {
						continue
					}
					tb.name = mt[2]
					if dropped != nil {
						if tb.about == "" {
							tb.about = dropped.about
						}
						s.tables = slices.Insert(slices.Delete(s.tables, k, k+1), min(dropped.at, len(s.tables)-1), tb)
						dropped = nil
					}
					break
				}
				continue
			}
			if insertInto.MatchString(line) || dataStatement.MatchString(line) { // data copied or rewritten: nothing to document
				for ; i < len(lines) && !strings.HasSuffix(strings.TrimSpace(lines[i]), ";"); i++ {
				}
				continue
			}
			if mt := addColumn.FindStringSubmatch(line); mt != nil {
				code, cm := splitComment(mt[2])
				if mt[3] != "" {
					cm = strings.TrimSpace(strings.TrimPrefix(mt[3], "--"))
				}
				if cm == "" {
					cm = strings.ReplaceAll(about, "\n", " ")
				}
				if tb := s.table(mt[1]); tb != nil {
					tb.columns = append(tb.columns, parseColumn(code, cm))
				}
				continue
			}
			if mt := createView.FindStringSubmatch(line); mt != nil {
				v := docView{name: mt[1], about: about}
				for i++; i < len(lines); i++ {
					l := strings.TrimSpace(lines[i])
					if strings.HasPrefix(strings.ToUpper(l), "FROM ") {
						for ; i < len(lines) && !strings.HasSuffix(strings.TrimSpace(lines[i]), ";"); i++ {
						}
						break
					}
					if vm := viewColumn.FindStringSubmatch(l); vm != nil {
						v.columns = append(v.columns, docColumn{name: vm[2], meaning: strings.TrimSpace(vm[1])})
					}
				}
				s.views = append(s.views, v)
				continue
			}
			if strings.HasPrefix(strings.ToUpper(line), "INSERT ") {
				continue // data (settings rows), not schema: the header comment says what
			}
			t.Errorf("%s: statement %q is not understood by the SCHEMA.md generator (store/schemadoc_test.go): teach it", file, line)
		}
	}
	for k, meaning := range notes {
		found := false
		if tb := s.table(k[0]); tb != nil {
			for i := range tb.columns {
				if tb.columns[i].name == k[1] {
					tb.columns[i].meaning, found = meaning, true
				}
			}
		}
		if !found {
			t.Errorf("a migration's \"-- column %s.%s:\" names no column", k[0], k[1])
		}
	}
	return s
}

// uncommented gives the meaning of the columns the released migrations
// left without a comment (migrations never change, so it is said here).
var uncommented = map[string]string{
	"runs.exit_code":   "the process's exit code (README.md, Exit codes); NULL while running",
	"runs.pid":         "process id of the command",
	"runs.host":        "host name it ran on",
	"failures.run_id":  "the run that met the file",
	"failures.path":    "the file, absolute path",
	"failures.message": "what went wrong",
	"settings.key":     "setting name (see the table's description)",
	"settings.value":   "its value, as text",
	"splits.part":      "'train' or 'test'",
}

var references = regexp.MustCompile(`REFERENCES (\w+)\((\w+)\)`)

// columnMeaning is a column's comment, or what is known without one: the
// table above, and conventions (ids, references, times).
func columnMeaning(table string, c docColumn) string {
	if c.meaning != "" {
		return c.meaning
	}
	if m, ok := uncommented[table+"."+c.name]; ok {
		return m
	}
	switch {
	case c.name == "id":
		return "row id"
	case c.name == "run_id":
		return "the run that wrote the row, NULL if none"
	case references.MatchString(c.constraints):
		m := references.FindStringSubmatch(c.constraints)
		return "`" + m[1] + "." + m[2] + "`"
	case c.name == "at" || strings.HasSuffix(c.name, "_at") || c.name == "last_seen":
		return "time, RFC 3339 UTC text"
	}
	return ""
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// renderSchemaDoc writes the generated part of docs/SCHEMA.md.
func renderSchemaDoc(t *testing.T, s *docSchema) string {
	t.Helper()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n\n", schemaDocBegin)
	w("Schema version %d: `PRAGMA user_version` of a current database.\n\n", SchemaVersion)
	w("### Migrations\n\n")
	for _, in := range s.intros {
		w("- `sql/migrations/%s`: %s\n", in[0], strings.ReplaceAll(in[1], "\n", " "))
	}
	w("\n### Tables\n\n")
	for _, tb := range s.tables {
		w("#### `%s`\n\n", tb.name)
		if tb.about != "" {
			w("%s\n\n", strings.ReplaceAll(tb.about, "\n", " "))
		}
		w("| column | type | constraints | meaning |\n|---|---|---|---|\n")
		for _, c := range tb.columns {
			w("| `%s` | %s | %s | %s |\n", c.name, c.typ, mdEscape(c.constraints), mdEscape(columnMeaning(tb.name, c)))
		}
		w("\n")
		for _, c := range tb.constraints {
			w("Constraint: `%s`. ", c)
		}
		var idx []string
		for _, ix := range s.indexes {
			if ix.table == tb.name {
				idx = append(idx, fmt.Sprintf("`%s` (%s)", ix.name, ix.columns))
			}
		}
		if len(idx) > 0 {
			w("Indexes: %s. ", strings.Join(idx, ", "))
		}
		w("Defined in `%s`.\n\n", tb.migration)
	}
	w("### Views\n\n")
	for _, v := range s.views {
		w("#### `%s`\n\n%s\n\n", v.name, strings.ReplaceAll(v.about, "\n", " "))
		w("| column | from |\n|---|---|\n")
		for _, c := range v.columns {
			w("| `%s` | `%s` |\n", c.name, mdEscape(c.meaning))
		}
		w("\n")
	}
	w("### Example queries\n\n")
	w("In `sql/examples/` and embedded in the binary: `pipeline sql -f NAME [--param name=value]...`; the header of each file says what it returns.\n\n")
	w("| name | answers | parameters |\n|---|---|---|\n")
	names, err := fs.Glob(schema.Examples, "examples/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	param := regexp.MustCompile(`^--\s+:(\w+)\s+.*?(?:\(default:\s*([^()]*)\))?\s*$`)
	for _, n := range names {
		text, err := fs.ReadFile(schema.Examples, n)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(text), "\n")
		summary := strings.TrimSpace(strings.TrimPrefix(lines[0], "--"))
		var ps []string
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l, "--") {
				break
			}
			if m := param.FindStringSubmatch(l); m != nil {
				p := "`:" + m[1] + "`"
				if m[2] != "" {
					p += " = " + m[2]
				}
				ps = append(ps, p)
			}
		}
		name := strings.TrimSuffix(path.Base(n), ".sql")
		w("| [`%s`](../sql/examples/%s.sql) | %s | %s |\n", name, name, mdEscape(summary), mdEscape(strings.Join(ps, ", ")))
	}
	w("\n%s", schemaDocEnd)
	return b.String()
}

func TestSchemaDoc(t *testing.T) {
	s := parseMigrations(t)

	t.Run("MatchesTheDatabase", func(t *testing.T) {
		db := newDB(t)
		ctx := context.Background()
		rows, err := db.reader().QueryContext(ctx, `SELECT type, name, tbl_name FROM sqlite_master
			WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`)
		if err != nil {
			t.Fatal(err)
		}
		type object struct{ typ, name, table string }
		var objs []object
		for rows.Next() {
			var o object
			if err := rows.Scan(&o.typ, &o.name, &o.table); err != nil {
				t.Fatal(err)
			}
			objs = append(objs, o)
		}
		rows.Close()
		inDB := map[string]bool{}
		for _, o := range objs {
			inDB[o.typ+" "+o.name] = true
			var doc []docColumn
			switch o.typ {
			case "table":
				tb := s.table(o.name)
				if tb == nil {
					t.Errorf("table %s is in the database but not in docs/SCHEMA.md", o.name)
					continue
				}
				doc = tb.columns
				for i := range doc {
					doc[i].meaning = columnMeaning(tb.name, doc[i])
				}
			case "view":
				i := slices.IndexFunc(s.views, func(v docView) bool { return v.name == o.name })
				if i < 0 {
					t.Errorf("view %s is in the database but not in docs/SCHEMA.md", o.name)
					continue
				}
				doc = s.views[i].columns
			case "index":
				if !slices.ContainsFunc(s.indexes, func(ix docIndex) bool { return ix.name == o.name && ix.table == o.table }) {
					t.Errorf("index %s on %s is in the database but not in docs/SCHEMA.md", o.name, o.table)
				}
				continue
			default:
				t.Errorf("%s %s: the generator does not document %ss", o.typ, o.name, o.typ)
				continue
			}
			// Column names and declared types, in order.
			cr, err := db.reader().QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?) ORDER BY cid`, o.name)
			if err != nil {
				t.Fatal(err)
			}
			var real []docColumn
			for cr.Next() {
				var c docColumn
				if err := cr.Scan(&c.name, &c.typ); err != nil {
					t.Fatal(err)
				}
				real = append(real, c)
			}
			cr.Close()
			for i := 0; i < max(len(real), len(doc)); i++ {
				switch {
				case i >= len(doc):
					t.Errorf("%s %s: column %s is in the database but not in docs/SCHEMA.md", o.typ, o.name, real[i].name)
				case i >= len(real):
					t.Errorf("%s %s: docs/SCHEMA.md has column %s, which the database does not", o.typ, o.name, doc[i].name)
				case real[i].name != doc[i].name || (o.typ == "table" && !strings.EqualFold(real[i].typ, doc[i].typ)):
					t.Errorf("%s %s: column %d is %s %s in the database, %s %s in docs/SCHEMA.md", o.typ, o.name, i+1,
						real[i].name, real[i].typ, doc[i].name, doc[i].typ)
				case o.typ == "table" && doc[i].meaning == "":
					t.Errorf("table %s: column %s has no comment in its migration: add one (a new migration) or say it in store/schemadoc_test.go's uncommented", o.name, doc[i].name)
				}
			}
		}
		for _, tb := range s.tables {
			if !inDB["table "+tb.name] {
				t.Errorf("docs/SCHEMA.md has table %s, which the database does not", tb.name)
			}
		}
		for _, v := range s.views {
			if !inDB["view "+v.name] {
				t.Errorf("docs/SCHEMA.md has view %s, which the database does not", v.name)
			}
		}
		for _, ix := range s.indexes {
			if !inDB["index "+ix.name] {
				t.Errorf("docs/SCHEMA.md has index %s, which the database does not", ix.name)
			}
		}
		if len(s.intros) != len(migrations) {
			t.Errorf("%d migration header comments for %d migrations", len(s.intros), len(migrations))
		}
	})

	t.Run("UpToDate", func(t *testing.T) {
		gen := renderSchemaDoc(t, s)
		b, err := os.ReadFile(schemaDocPath)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		i, j := strings.Index(doc, schemaDocBegin), strings.Index(doc, schemaDocEnd)
		if i < 0 || j < i {
			t.Fatalf("%s: no generated part (%q ... %q)", schemaDocPath, schemaDocBegin, schemaDocEnd)
		}
		j += len(schemaDocEnd)
		if doc[i:j] == gen {
			return
		}
		if *update {
			if err := os.WriteFile(schemaDocPath, []byte(doc[:i]+gen+doc[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the generated part of %s", schemaDocPath)
			return
		}
		t.Errorf("%s is out of date with sql/migrations or sql/examples: run go test ./store -run TestSchemaDoc -update", schemaDocPath)
	})
}
