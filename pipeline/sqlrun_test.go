package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pipeline/internal/testutil"
	"pipeline/store"
)

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"42", int64(42)},
		{"-3", int64(-3)},
		{"+5", int64(5)},
		{"0", int64(0)},
		{"007", "007"}, // leading zeros: an identifier, not a number
		{"0.25", 0.25},
		{"1e-3", 1e-3},
		{"-.5", -0.5},
		{"inf", "inf"},
		{"NaN", "NaN"},
		{"0x10", "0x10"},
		{"1_000", "1_000"},
		{"9223372036854775808", 9223372036854775808.0}, // beyond int64: a float
		{"cats/cat.12.jpg", "cats/cat.12.jpg"},
		{"", ""},
		{"-", "-"},
		{"e", "e"},
	} {
		if got := ParseValue(tc.in); got != tc.want {
			t.Errorf("ParseValue(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestParseQueryDoc(t *testing.T) {
	text := `
-- Nearest neighbours of an image.
--
-- Parameters:
--   :image  the image (required)
--   :layer  feature set; '' = any (default: '')
--   :k      how many (default: 10)
--   :t      a threshold (default: 0.5) and more words
--   not a parameter line
-- Returns: things.
SELECT 1 -- :notdoc  x (default: 3)
`
	d := ParseQueryDoc(text)
	if d.Summary != "Nearest neighbours of an image." {
		t.Errorf("summary %q", d.Summary)
	}
	want := []ParamDoc{
		{Name: "image", Doc: "the image (required)"},
		{Name: "layer", Doc: "feature set; '' = any", Default: "''", HasDefault: true},
		{Name: "k", Doc: "how many", Default: "10", HasDefault: true},
		{Name: "t", Doc: "a threshold (default: 0.5) and more words"},
	}
	if len(d.Params) != len(want) {
		t.Fatalf("params %+v, want %+v", d.Params, want)
	}
	for i := range want {
		if d.Params[i] != want[i] {
			t.Errorf("param %d = %+v, want %+v", i, d.Params[i], want[i])
		}
	}
	got := d.WithDefaults(map[string]any{":k": int64(3), "image": "x"})
	if len(got) != 3 || got["k"] != int64(3) || got["layer"] != "" || got["image"] != "x" {
		t.Errorf("WithDefaults = %#v", got)
	}
	if d := ParseQueryDoc("SELECT 1"); d.Summary != "" || d.Params != nil {
		t.Errorf("no header: %+v", d)
	}
}

func TestReadQuery(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "q.sql")
	testutil.WriteFile(t, file, []byte("SELECT 42"))
	exs, err := Examples()
	if err != nil || len(exs) < 7 {
		t.Fatalf("Examples: %d, %v", len(exs), err)
	}
	var nearest string
	for _, ex := range exs {
		if ex.Name == "nearest" {
			nearest = ex.Text
		}
	}
	if !strings.Contains(nearest, "vec_distance_cosine") {
		t.Fatalf("embedded nearest.sql: %q", nearest)
	}
	// The repository's file is the embedded one.
	onDisk, err := os.ReadFile("../sql/examples/nearest.sql")
	if err != nil || string(onDisk) != nearest {
		t.Errorf("sql/examples/nearest.sql differs from the embedded example (%v)", err)
	}

	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct{ name, text, source string }{
			{file, "SELECT 42", file},
			{"-", "SELECT 'stdin'", "stdin"},
			{"nearest", nearest, "nearest.sql"},
			{"nearest.sql", nearest, "nearest.sql"},
			{"examples/nearest.sql", nearest, "nearest.sql"},
			{"sql/examples/nearest.sql", nearest, "nearest.sql"},
		} {
			text, source, err := ReadQuery(tc.name, strings.NewReader("SELECT 'stdin'"))
			if err != nil || text != tc.text || source != tc.source {
				t.Errorf("ReadQuery(%q) = %.30q, %q, %v; want %.30q from %s", tc.name, text, source, err, tc.text, tc.source)
			}
		}
	})
	t.Run("ErrUnknown", func(t *testing.T) {
		_, _, err := ReadQuery("neerest", nil)
		if !errors.Is(err, ErrUsage) {
			t.Fatalf("got %v, want ErrUsage", err)
		}
		for _, part := range []string{"query file neerest", "no such file", "nearest", "centroid_outliers"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("%q lacks %q", err, part)
			}
		}
	})
	t.Run("ErrUnreadable", func(t *testing.T) {
		_, _, err := ReadQuery(dir, nil) // a directory
		if err == nil || errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), dir) {
			t.Errorf("got %v, want a read error naming %s", err, dir)
		}
	})
}

func TestSQL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	t.Run("ReadOnly", func(t *testing.T) {
		var got [][]any
		stmts, err := SQL(ctx, SQLOptions{DB: path, Text: "SELECT :a + 1 AS x, vec_length(vec_f32('[1,2,3]')) AS n",
			Params: map[string]any{"a": int64(2)}, Row: func(st *store.Statement, row []any) error {
				got = append(got, row)
				return nil
			}})
		if err != nil || len(stmts) != 1 || len(got) != 1 || got[0][0] != int64(3) || got[0][1] != int64(3) {
			t.Fatalf("got %v %+v, %v", got, stmts, err)
		}
		_, err = SQL(ctx, SQLOptions{DB: path, Text: "INSERT INTO settings VALUES ('a', 'b')"})
		// The --write hint is the CLI's (store and pipeline name no flags).
		if !errors.Is(err, store.ErrReadOnly) || !strings.Contains(err.Error(), "refused in read-only mode") || !store.QueryFault(err) {
			t.Errorf("write without Write: %v", err)
		}
	})

	t.Run("WriteRecordsARun", func(t *testing.T) {
		stmts, err := SQL(ctx, SQLOptions{DB: path, Write: true, Args: []string{"pipeline", "sql", "--write"},
			Text: "INSERT INTO settings VALUES ('a', '1'), ('b', '2'); UPDATE settings SET value = value || '!' WHERE key IN ('a', 'b')"})
		if err != nil || len(stmts) != 2 || stmts[0].Changes != 2 || stmts[1].Changes != 2 {
			t.Fatalf("%+v, %v", stmts, err)
		}
		runs, err := db.Runs(ctx, 1)
		if err != nil || len(runs) != 1 {
			t.Fatal(runs, err)
		}
		r := runs[0]
		if r.Command != "sql" || r.Status != store.RunOK || r.ExitCode == nil || *r.ExitCode != 0 || strings.Join(r.Args, " ") != "pipeline sql --write" {
			t.Errorf("run %+v", r)
		}
		// A failing statement: the run is failed with the message, and
		// the statements before it are committed (one per statement).
		_, err = SQL(ctx, SQLOptions{DB: path, Write: true, Text: "INSERT INTO settings VALUES ('c', '3'); INSERT INTO settings VALUES ('a', 'dup')"})
		if !store.QueryFault(err) || !strings.Contains(err.Error(), "UNIQUE constraint failed: settings.key") {
			t.Fatalf("got %v, want a constraint error", err)
		}
		runs, _ = db.Runs(ctx, 1)
		if r := runs[0]; r.Status != store.RunFailed || !strings.Contains(r.Message, "UNIQUE") || *r.ExitCode != 2 {
			t.Errorf("failed run %+v", r)
		}
		_, rows, err := db.Query(ctx, "SELECT count(*) FROM settings WHERE key = 'c'", nil, false)
		if err != nil || rows[0][0] != int64(1) {
			t.Errorf("the statement before the failing one: %v %v", rows, err)
		}
		// Deleting every run, its own included, is allowed.
		if _, err := SQL(ctx, SQLOptions{DB: path, Write: true, Text: "DELETE FROM runs"}); err != nil {
			t.Errorf("DELETE FROM runs: %v", err)
		}
	})

	t.Run("WriteWaitsForTheLock", func(t *testing.T) {
		release, err := db.Lock(ctx, 0, store.Holder{Command: "extract"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = SQL(ctx, SQLOptions{DB: path, Write: true, Text: "DELETE FROM settings"})
		if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "extract") {
			t.Errorf("got %v, want ErrLocked naming the holder", err)
		}
		// Reading does not wait.
		if _, err := SQL(ctx, SQLOptions{DB: path, Text: "SELECT * FROM settings"}); err != nil {
			t.Errorf("read under the lock: %v", err)
		}
		go func() {
			time.Sleep(300 * time.Millisecond)
			release()
		}()
		start := time.Now()
		if _, err := SQL(ctx, SQLOptions{DB: path, Write: true, Wait: 10 * time.Second, Text: "DELETE FROM settings"}); err != nil {
			t.Errorf("with Wait: %v", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("took %v: did not wait for the lock", d)
		}
	})
}
