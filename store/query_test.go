package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDB_Query(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	fs := testSet(t, db, "fc2", 4)
	var items []Item
	for _, c := range []string{"a", "b", "c"} {
		items = append(items, item(c, []string{"/data/cat/" + c + ".jpg"}, fs))
	}
	items[2].Paths[0].Label = "dog"
	if err := db.WriteBatch(ctx, 0, Batch{Items: items}); err != nil {
		t.Fatal(err)
	}

	t.Run("NamedParams", func(t *testing.T) {
		for _, q := range []string{
			`SELECT path FROM images WHERE label = :label AND width = :w ORDER BY path`,
			`SELECT path FROM images WHERE label = @label AND width = @w ORDER BY path`,
			`SELECT path FROM images WHERE label = $label AND width = $w ORDER BY path`,
		} {
			cols, rows, err := db.Query(ctx, q, map[string]any{"label": "cat", ":w": 640}, false)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if !slices.Equal(cols, []string{"path"}) || len(rows) != 2 || rows[0][0] != "/data/cat/a.jpg" || rows[1][0] != "/data/cat/b.jpg" {
				t.Errorf("%s: %v %v", q, cols, rows)
			}
		}
	})

	t.Run("Types", func(t *testing.T) {
		_, rows, err := db.Query(ctx, `SELECT 1, 2.5, 'x', x'0102', NULL`, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		want := []any{int64(1), 2.5, "x", []byte{1, 2}, nil}
		for i, v := range rows[0] {
			if b, ok := v.([]byte); ok {
				if string(b) != string(want[i].([]byte)) {
					t.Errorf("column %d = %v, want %v", i, v, want[i])
				}
			} else if v != want[i] {
				t.Errorf("column %d = %#v, want %#v", i, v, want[i])
			}
		}
	})

	t.Run("ErrParams", func(t *testing.T) {
		for _, tc := range []struct {
			q      string
			params map[string]any
			parts  []string
		}{
			{`SELECT * FROM images WHERE label = :label AND id > :min`, map[string]any{"label": "cat"}, []string{":min", "no value"}},
			{`SELECT * FROM images`, map[string]any{"label": "cat"}, []string{"label", "not used"}},
			{`SELECT * FROM images WHERE label = ?`, nil, []string{"positional"}},
			{`SELECT :a`, map[string]any{"a": 1, "@a": 2}, []string{"twice"}},
		} {
			_, _, err := db.Query(ctx, tc.q, tc.params, false)
			if !errors.Is(err, ErrParams) {
				t.Errorf("%s: got %v, want ErrParams", tc.q, err)
				continue
			}
			wantErr(t, err, tc.parts...)
		}
		// Parameter-like text inside strings, identifiers and comments
		// is not a parameter.
		_, rows, err := db.Query(ctx, "SELECT ':x', \"a:b\" FROM (SELECT 1 AS \"a:b\") -- :y\n /* @z */", nil, false)
		if err != nil || len(rows) != 1 || rows[0][0] != ":x" {
			t.Errorf("got %v, %v", rows, err)
		}
	})

	t.Run("ErrorPosition", func(t *testing.T) {
		for _, tc := range []struct {
			q         string
			line, col int
			parts     []string
		}{
			{"SELECT path\nFROM images\nWHERE lable = 'cat'", 3, 7, []string{"no such column: lable"}},
			{"SELECT path FROM imagez", 1, 18, []string{"no such table: imagez"}},
			{"SELECT 1;\n  SELEC 2", 2, 3, []string{"syntax error"}},
		} {
			_, _, err := db.Query(ctx, tc.q, nil, false)
			var qe *QueryError
			if !errors.As(err, &qe) {
				t.Fatalf("%q: got %v, want a *QueryError", tc.q, err)
			}
			if qe.Line != tc.line || qe.Col != tc.col {
				t.Errorf("%q: error at line %d, column %d (offset %d), want %d:%d", tc.q, qe.Line, qe.Col, qe.Offset, tc.line, tc.col)
			}
			wantErr(t, err, tc.parts...)
		}
		// A runtime error has no position but names the statement.
		_, _, err := db.Query(ctx, `SELECT 1; SELECT json_extract('{', '$')`, nil, false)
		var qe *QueryError
		if !errors.As(err, &qe) || qe.Statement != 1 || qe.Offset != -1 {
			t.Errorf("got %#v, want a QueryError of statement 1 without offset", err)
		}
	})

	t.Run("Script", func(t *testing.T) {
		text := `
			-- two statements that write, then one that reads
			INSERT INTO settings (key, value) VALUES ('k1', :v);
			UPDATE settings SET value = value || '!' WHERE key LIKE 'k%';
			CREATE TEMP TRIGGER t AFTER INSERT ON settings BEGIN
				UPDATE settings SET value = 'trig' WHERE key = NEW.key;
			END;
			INSERT INTO settings (key, value) VALUES ('k2', 'x');
			SELECT key, value FROM settings WHERE key LIKE 'k%' ORDER BY key;`
		var stmts []Statement
		var got []string
		stmts, err := db.QueryEach(ctx, text, map[string]any{"v": "one"}, true, func(st *Statement, row []any) error {
			got = append(got, row[0].(string)+"="+row[1].(string))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(stmts) != 5 {
			t.Fatalf("%d statements, want 5: %+v", len(stmts), stmts)
		}
		if stmts[0].Changes != 1 || stmts[1].Changes != 1 || stmts[4].Rows != 2 {
			t.Errorf("statements = %+v", stmts)
		}
		if !strings.HasPrefix(stmts[2].SQL, "\n\t\t\tCREATE TEMP TRIGGER") || !strings.HasSuffix(stmts[2].SQL, "END;") {
			t.Errorf("trigger statement split wrong: %q", stmts[2].SQL)
		}
		if want := []string{"k1=one!", "k2=trig"}; !slices.Equal(got, want) {
			t.Errorf("rows = %v, want %v", got, want)
		}
	})

	t.Run("ErrReadOnly", func(t *testing.T) {
		_, _, err := db.Query(ctx, `DELETE FROM images`, nil, false)
		if !errors.Is(err, ErrReadOnly) {
			t.Fatalf("got %v, want ErrReadOnly", err)
		}
		wantErr(t, err, "refused in read-only mode", "DELETE from main.images")
		// query_only cannot be switched off from the text.
		_, _, err = db.Query(ctx, `PRAGMA query_only = 0; DELETE FROM images`, nil, false)
		if err == nil {
			t.Fatal("a read-only query deleted rows")
		}
		if n := queryInt(t, db, `SELECT count(*) FROM images`); n != 3 {
			t.Errorf("%d images left, want 3", n)
		}
	})

	t.Run("PragmasDoNotLeak", func(t *testing.T) {
		if _, _, err := db.Query(ctx, `PRAGMA foreign_keys = OFF`, nil, true); err != nil {
			t.Fatal(err)
		}
		_, err := db.QueryEach(ctx, `INSERT INTO image_paths (path, relpath, image_id, size, mtime_ns, last_seen)
			VALUES ('/x', 'x', 999, 0, 0, '')`, nil, true, nil)
		wantErr(t, err, "FOREIGN KEY")
	})
}

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		text   string
		want   []string
		params [][]string
	}{
		{"SELECT 1", []string{"SELECT 1"}, [][]string{nil}},
		{"SELECT 1; SELECT 2;", []string{"SELECT 1;", " SELECT 2;"}, [][]string{nil, nil}},
		{";; SELECT ';' ; -- c;\n", []string{" SELECT ';' ;"}, [][]string{nil}},
		{"SELECT :a, @b, $c, :a, a$b, [x:y], `p:q`", []string{"SELECT :a, @b, $c, :a, a$b, [x:y], `p:q`"}, [][]string{{"a", "b", "c"}}},
		{"SELECT 'it''s :not' /* ; :no */, :yes", []string{"SELECT 'it''s :not' /* ; :no */, :yes"}, [][]string{{"yes"}}},
	} {
		got := splitStatements(tc.text)
		var sqls []string
		var params [][]string
		for _, s := range got {
			if s.empty {
				continue
			}
			sqls = append(sqls, s.sql)
			params = append(params, s.params)
			if tc.text[s.offset:s.offset+len(s.sql)] != s.sql {
				t.Errorf("%q: offset %d does not point at %q", tc.text, s.offset, s.sql)
			}
		}
		if !slices.Equal(sqls, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.text, sqls, tc.want)
		}
		if !slices.EqualFunc(params, tc.params, func(a, b []string) bool { return slices.Equal(a, b) }) {
			t.Errorf("%q: params %q, want %q", tc.text, params, tc.params)
		}
	}
}
