package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"pipeline/pipeline"
	"pipeline/store"
)

// runStdin is run with stdin.
func runStdin(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	return runInDir(t, "", env, stdin, args...)
}

// extractedDB extracts fc2 of 3 classes x n pictures with the tiny model
// and returns the database path, the environment naming it, and the
// images folder.
func extractedDB(t *testing.T, n int) (db string, env []string, imgs string) {
	t.Helper()
	dir := t.TempDir()
	imgs = filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b", "c"}, n)
	db = filepath.Join(dir, "f.db")
	env = []string{"PIPELINE_DB=" + db}
	run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 0)
	return db, env, imgs
}

func TestCLI_SQL(t *testing.T) {
	db, env, imgs := extractedDB(t, 4)

	t.Run("Table", func(t *testing.T) {
		r := run(t, env, "sql", "SELECT label, count(*) AS n, NULL AS none, 'x\ty' AS tab FROM images GROUP BY label ORDER BY label")
		r.want(t, 0)
		want := "label  n  none  tab\n" +
			"-----  -  ----  ----\n" +
			"a      4  NULL  x\\ty\n" +
			"b      4  NULL  x\\ty\n" +
			"c      4  NULL  x\\ty\n" +
			"(3 rows)\n"
		if r.stdout != want {
			t.Errorf("got\n%s\nwant\n%s", r.stdout, want)
		}
		// Numbers are right-aligned; several results are separated.
		r = run(t, env, "sql", "SELECT 5 AS n UNION ALL SELECT 1234; SELECT 'x' AS s WHERE 0")
		r.want(t, 0)
		if want := "   n\n----\n   5\n1234\n(2 rows)\n\ns\n-\n(0 rows)\n"; r.stdout != want {
			t.Errorf("got\n%q\nwant\n%q", r.stdout, want)
		}
	})

	t.Run("CSVAndJSON", func(t *testing.T) {
		q := "SELECT label, count(*) AS n, avg(width) AS w, NULL AS z FROM images GROUP BY label ORDER BY label"
		r := run(t, env, "sql", q, "--csv")
		r.want(t, 0)
		recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil || len(recs) != 4 || strings.Join(recs[0], ",") != "label,n,w,z" || strings.Join(recs[1], ",") != "a,4,40," {
			t.Errorf("csv: %v %q", err, recs)
		}
		r = run(t, env, "sql", q, "--json")
		r.want(t, 0)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 || lines[0] != `{"label":"a","n":4,"w":40,"z":null}` {
			t.Errorf("json lines: %q", lines)
		}
		// Empty result: CSV still has the header, JSON prints nothing.
		run(t, env, "sql", "SELECT path, label FROM images WHERE 0", "--csv").want(t, 0)
		if r := run(t, env, "sql", "SELECT path, label FROM images WHERE 0", "--csv"); r.stdout != "path,label\n" {
			t.Errorf("empty csv: %q", r.stdout)
		}
		if r := run(t, env, "sql", "SELECT path FROM images WHERE 0", "--json"); r.stdout != "" {
			t.Errorf("empty json: %q", r.stdout)
		}
		// Repeated names get a suffix in JSON.
		if r := run(t, env, "sql", "SELECT 1 AS a, 2 AS a, 3 AS a", "--json"); r.stdout != `{"a":1,"a:1":2,"a:2":3}`+"\n" {
			t.Errorf("repeated names: %q", r.stdout)
		}
		run(t, env, "sql", "SELECT 1", "--json", "--csv").want(t, 2, "not both")
	})

	t.Run("Params", func(t *testing.T) {
		r := run(t, env, "sql", "SELECT typeof(:i), typeof(:f), typeof(:s), typeof(:z), typeof(:t), :i + 1, :f * 2", "--csv",
			"--param", "i=3", "--param", "f=0.25", "--param", "s=cats/x.jpg", "--param", "z=007", "--param-text", "t=42")
		r.want(t, 0)
		if got := strings.Split(strings.TrimSpace(r.stdout), "\n")[1]; got != "integer,real,text,text,text,4,0.5" {
			t.Errorf("bound as %q", got)
		}
		// A path given as a parameter finds the image.
		r = run(t, env, "sql", "SELECT i.label FROM images i JOIN image_paths p ON p.image_id = i.id WHERE p.relpath = :p", "--csv", "--param", "p=b/02.png")
		if r.want(t, 0); r.stdout != "label\nb\n" {
			t.Errorf("got %q", r.stdout)
		}
		run(t, env, "sql", "SELECT :a, :b", "--param", "a=1").want(t, 2, "the query uses :b but no value was given")
		run(t, env, "sql", "SELECT 1", "--param", "x=1").want(t, 2, "x given but not used")
		run(t, env, "sql", "SELECT :x", "--param", "x").want(t, 2, `want name=value, got "x"`)
		run(t, env, "sql", "SELECT :x", "--param", "x=1", "--param", "x=2").want(t, 2, "parameter x given twice")
		run(t, env, "sql", "SELECT * FROM images WHERE id = ?").want(t, 2, "positional ? parameters are not supported")
	})

	t.Run("Vectors", func(t *testing.T) {
		// sqlite-vec is loaded, and the stored BLOBs are what it reads.
		r := run(t, env, "sql", "--csv", `SELECT vec_distance_cosine(vec_f32('[1,0]'), vec_f32('[0,1]')),
			vec_distance_L2(vec_f32('[0,0]'), vec_f32('[3,4]')), vec_to_json(vec_f32('[1.5]')),
			vec_length(vector), length(vector) FROM features LIMIT 1`)
		r.want(t, 0)
		if got := strings.Split(strings.TrimSpace(r.stdout), "\n")[1]; got != `1,5,[1.500000],32,128` {
			t.Errorf("sqlite-vec: %q", got)
		}
		r = run(t, env, "sql", "SELECT vector FROM features LIMIT 1")
		r.want(t, 0, "<128 bytes>")
		// CSV gives the BLOB in base64: 32 little-endian float32, the
		// numbers vec_to_json prints (to its 6 decimals).
		r = run(t, env, "sql", "--csv", "SELECT vector, vec_to_json(vector) FROM features ORDER BY image_id LIMIT 1")
		r.want(t, 0)
		recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil || len(recs) != 2 {
			t.Fatalf("%v %q", err, r.stdout)
		}
		raw, err := base64.StdEncoding.DecodeString(recs[1][0])
		var nums []float64
		if jerr := json.Unmarshal([]byte(recs[1][1]), &nums); err != nil || jerr != nil || len(raw) != 128 || len(nums) != 32 {
			t.Fatalf("blob %d bytes (%v), json %d numbers (%v)", len(raw), err, len(nums), jerr)
		}
		nonzero := 0
		for i, want := range nums {
			got := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
			if math.Abs(got-want) > 5e-7*math.Max(1, math.Abs(want)) {
				t.Errorf("element %d: blob %v, vec_to_json %v", i, got, want)
			}
			if got != 0 {
				nonzero++
			}
		}
		if nonzero == 0 {
			t.Error("the vector is all zeros: nothing was compared")
		}
	})

	t.Run("Sources", func(t *testing.T) {
		// stdin, with no argument or with -f -.
		runStdin(t, env, "SELECT 7 AS seven;", "sql", "--csv").want(t, 0, "seven\n7\n")
		runStdin(t, env, "SELECT 8 AS eight", "sql", "-f", "-", "--csv").want(t, 0, "eight\n8\n")
		runStdin(t, env, "  \n", "sql").want(t, 2, "the query from stdin is empty")
		run(t, env, "sql", "SELECT", "1").want(t, 2, "quote it")
		run(t, env, "sql", "SELECT 1", "-f", "nearest").want(t, 2, "not both")
		// An embedded example by name, by its file name in the
		// repository, and the repository's file itself: the same rows.
		var outs []string
		for _, f := range []string{"nearest", "examples/nearest.sql", "../../sql/examples/nearest.sql"} {
			r := run(t, env, "sql", "-f", f, "--param", "image=a/00.png", "--param", "k=3", "--csv")
			r.want(t, 0)
			outs = append(outs, r.stdout)
		}
		recs, err := csv.NewReader(strings.NewReader(outs[0])).ReadAll()
		if err != nil || len(recs) != 4 || strings.Join(recs[0], ",") != "rank,distance,path,label,sha256" || recs[1][0] != "1" || outs[1] != outs[0] || outs[2] != outs[0] {
			t.Errorf("nearest: %v\n%q", err, outs)
		}
		for _, rec := range recs[1:] {
			if rec[2] == filepath.Join(imgs, "a", "00.png") {
				t.Errorf("the image itself is its own neighbour: %v", rec)
			}
		}
		run(t, env, "sql", "-f", "neerest").want(t, 2, "no such file, and no example of that name", "nearest", "hint: `pipeline sql --list` describes the examples")
		// Every example is listed with its summary and parameters.
		r := run(t, env, "sql", "--list")
		r.want(t, 0)
		exs, err := pipeline.Examples()
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			if !strings.Contains(r.stdout, ex.Name+" ") || !strings.Contains(r.stdout, ex.Doc.Summary) {
				t.Errorf("--list lacks %s: %s", ex.Name, ex.Doc.Summary)
			}
		}
		r.want(t, 0, ":image", "(default: 10)")
	})

	t.Run("Errors", func(t *testing.T) {
		r := run(t, env, "sql", "SELECT path\nFROM images\nWHERE lable = 'cat'")
		r.want(t, 2, "line 3, column 7: no such column: lable", "  3 | WHERE lable = 'cat'\n    |       ^")
		q := filepath.Join(t.TempDir(), "q.sql")
		if err := os.WriteFile(q, []byte("-- a query\nSELECT count(*)\n  FROM imagez"), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, env, "sql", "-f", q).want(t, 2, "q.sql: line 3, column 8: no such table: imagez", "  3 |   FROM imagez\n    |        ^")
		// A missing parameter of an example lists its parameters.
		run(t, env, "sql", "-f", "nearest").want(t, 2, "the query uses :image but no value was given", "parameters:", ":image", "(default: 10)")
		// Runtime errors have no position; the statement is named.
		run(t, env, "sql", "SELECT 1; SELECT json_extract('{', '$')").want(t, 2, "statement 2", "malformed JSON", "in: SELECT json_extract")
		// Writing needs --write.
		run(t, env, "sql", "DELETE FROM images").want(t, 2, "refused in read-only mode: DELETE from main.images", "run with --write")
		// The attack of issue 11 is refused and changes nothing.
		count := run(t, env, "sql", "--csv", "SELECT count(*) FROM features")
		count.want(t, 0)
		attack := "PRAGMA query_only=0; ATTACH DATABASE '" + db + "' AS m2; DELETE FROM m2.features; PRAGMA m2.user_version=99"
		run(t, env, "sql", attack).want(t, 2, "refused in read-only mode: PRAGMA query_only with an argument", "run with --write")
		run(t, env, "sql", "ATTACH DATABASE '"+db+"' AS m2").want(t, 2, "refused in read-only mode: ATTACH of", "run with --write")
		run(t, env, "sql", "--csv", "SELECT count(*) FROM features").want(t, 0, count.stdout)
		run(t, env, "sql", "SELECT 1", "--wait", "1s").want(t, 2, "--wait is for --write")
		// No database: an I/O error.
		run(t, []string{"PIPELINE_DB=" + filepath.Join(t.TempDir(), "none.db")}, "sql", "SELECT 1").want(t, 2, "none.db", "no database")
		if _, err := os.Stat(db); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Write", func(t *testing.T) {
		r := run(t, env, "sql", "--write", "INSERT INTO settings VALUES ('a', '1'), ('b', '2'); SELECT key FROM settings WHERE key IN ('a', 'b') ORDER BY key")
		r.want(t, 0, "statement 1: 2 rows changed")
		if !strings.Contains(r.stdout, "key\n---\na\nb\n(2 rows)") {
			t.Errorf("got %q", r.stdout)
		}
		// Another writer holds the lock: exit 4 naming it, also after --wait.
		d, err := store.Open(db, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		release, err := d.Lock(context.Background(), 0, store.Holder{Command: "pipeline extract"})
		if err != nil {
			t.Fatal(err)
		}
		run(t, env, "sql", "--write", "DELETE FROM settings").want(t, 4, "is being written by another process (pipeline extract, pid", "--wait")
		run(t, env, "sql", "--write", "--wait", "300ms", "DELETE FROM settings").want(t, 4, "still busy after waiting")
		// Through a symlink it is the same file, hence the same lock; a
		// second hard link is refused for writing.
		link := filepath.Join(t.TempDir(), "link.db")
		if err := os.Symlink(db, link); err != nil {
			t.Fatal(err)
		}
		run(t, []string{"PIPELINE_DB=" + link}, "sql", "--write", "DELETE FROM settings").want(t, 4, "is being written by another process (pipeline extract, pid")
		hard := db + ".hard"
		if err := os.Link(db, hard); err != nil {
			t.Fatal(err)
		}
		run(t, []string{"PIPELINE_DB=" + hard}, "sql", "--write", "DELETE FROM settings").want(t, 1, "2 hard links", "per file name")
		os.Remove(hard)
		run(t, env, "sql", "SELECT count(*) FROM settings WHERE key IN ('a', 'b')", "--csv").want(t, 0, "\n2\n") // readers don't wait
		release()
		run(t, env, "sql", "--write", "--quiet", "DELETE FROM settings").want(t, 0)
		r = run(t, env, "runs", "--command", "sql", "--json")
		r.want(t, 0)
		var runs []struct {
			Command, Status string
			Args            []string
		}
		if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 2 || runs[0].Status != "ok" ||
			strings.Join(runs[0].Args, " ") != "pipeline sql --write --quiet DELETE FROM settings" {
			t.Errorf("sql runs: %v %+v", err, runs)
		}
	})
}

func TestCLI_Runs(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b"}, 3)
	if err := os.WriteFile(filepath.Join(imgs, "a", "bad.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PIPELINE_DB=" + filepath.Join(dir, "f.db")}
	run(t, env, "runs").want(t, 2, "no database")
	run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 3)
	run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 3)
	run(t, env, "sql", "--write", "INSERT INTO settings VALUES ('k', 'v')").want(t, 0)

	r := run(t, env, "runs")
	r.want(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "ID COMMAND STATUS STARTED DURATION SEEN EXTRACTED PRESENT DUPLICATES FAILED EXIT MESSAGE" {
		t.Fatalf("runs:\n%s", r.stdout)
	}
	for i, want := range []string{"3 sql ok", "2 extract partial", "1 extract partial"} {
		if !strings.HasPrefix(strings.Join(strings.Fields(lines[i+1]), " "), want) {
			t.Errorf("line %d: %q, want %q...", i+1, lines[i+1], want)
		}
	}
	// Counts: the first run extracted 6 and failed 1; the second found
	// them present.
	// Fields: id, command, status, date, time, duration, counts, exit.
	if f := strings.Fields(lines[3]); len(f) < 12 || strings.Join(f[6:12], " ") != "7 6 0 0 1 3" {
		t.Errorf("run 1: %q", lines[3])
	}
	if f := strings.Fields(lines[2]); len(f) < 12 || strings.Join(f[6:12], " ") != "7 0 6 0 1 3" {
		t.Errorf("run 2: %q", lines[2])
	}

	r = run(t, env, "runs", "--json", "--limit", "2")
	r.want(t, 0)
	var runs []struct {
		ID              int64
		Command         string
		Status          string
		ExitCode        *int     `json:"exit_code"`
		Seen            int64    `json:"seen"`
		Extracted       int64    `json:"extracted"`
		Failed          int64    `json:"failed"`
		DurationSeconds *float64 `json:"duration_seconds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("runs --json: %v\n%s", err, r.stdout)
	}
	if x := runs[1]; x.ID != 2 || x.Command != "extract" || x.Status != "partial" || x.ExitCode == nil || *x.ExitCode != 3 ||
		x.Seen != 7 || x.Failed != 1 || x.DurationSeconds == nil || *x.DurationSeconds < 0 {
		t.Errorf("run 2: %+v", x)
	}
	r = run(t, env, "runs", "--status", "partial", "--limit", "1", "--json")
	if r.want(t, 0); !strings.Contains(r.stdout, `"id": 2`) || strings.Contains(r.stdout, `"id": 1`) {
		t.Errorf("--status partial --limit 1:\n%s", r.stdout)
	}
	r = run(t, env, "runs", "--command", "sql")
	if r.want(t, 0); strings.Count(strings.TrimSpace(r.stdout), "\n") != 1 {
		t.Errorf("--command sql:\n%s", r.stdout)
	}
	run(t, env, "runs", "--status", "broken").want(t, 2, `--status "broken"`)
	run(t, env, "runs", "--status", "abandoned").want(t, 0, "no runs")
	run(t, env, "runs", "12").want(t, 2, "last_failures")
}

func TestCLI_Check(t *testing.T) {
	db, env, imgs := extractedDB(t, 3)
	r := run(t, env, "check")
	r.want(t, 0, "9 images, 9 vectors", "ok:")
	r = run(t, env, "check", "--json")
	r.want(t, 0)
	var rep struct {
		Healthy  bool
		Images   int
		Problems []struct{ Kind, Message, Path string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !rep.Healthy || rep.Images != 9 || rep.Problems == nil || len(rep.Problems) != 0 {
		t.Errorf("healthy --json: %v %+v\n%s", err, rep, r.stdout)
	}

	// Plant a vector one float short and a NaN, through SQL.
	short, nan := filepath.Join(imgs, "a", "01.png"), filepath.Join(imgs, "b", "02.png")
	run(t, env, "sql", "--write", "--quiet", `
		UPDATE features SET vector = substr(vector, 1, 124)
		WHERE image_id = (SELECT image_id FROM image_paths WHERE path = :short);
		UPDATE features SET vector = CAST(substr(vector, 1, 20) || x'0000c07f' || substr(vector, 25) AS BLOB)
		WHERE image_id = (SELECT image_id FROM image_paths WHERE path = :nan)`,
		"--param", "short="+short, "--param", "nan="+nan).want(t, 0)
	r = run(t, env, "check")
	r.want(t, 6, "UNHEALTHY: non_finite 1, vector_length 1",
		"has NaN at index 5 ("+nan+")",
		"is a blob of 124 bytes, want a blob of 128 (dim 32) ("+short+")",
		"pipeline: check: "+db+": 2 problems found")
	r = run(t, env, "check", "--json")
	r.want(t, 6)
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Healthy || len(rep.Problems) != 2 {
		t.Fatalf("unhealthy --json: %v %+v", err, rep)
	}
	for _, p := range rep.Problems {
		if want := map[string]string{"non_finite": nan, "vector_length": short}[p.Kind]; p.Path != want {
			t.Errorf("problem %+v: path %q, want %q", p, p.Path, want)
		}
	}
	run(t, env, "check", "extra").want(t, 2, "unexpected argument")
}

// TestCLI_CheckCorruption: a damaged b-tree page is an integrity problem
// naming the page (exit 6), writers refuse the file with the same code, and
// a file cut in half is exit 6 saying so.
func TestCLI_CheckCorruption(t *testing.T) {
	db, env, imgs := extractedDB(t, 3)
	cell := func(query string) int64 {
		r := run(t, env, "sql", "--csv", query)
		r.want(t, 0)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		n, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", query, r.stdout)
		}
		return n
	}
	pageSize := cell("PRAGMA page_size")
	root := cell("SELECT rootpage FROM sqlite_schema WHERE name = 'features'")
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	page := fmt.Sprintf("page %d", root)
	run(t, env, "check").want(t, 6, "UNHEALTHY: integrity", page, "problems found")
	r := run(t, env, "check", "--json")
	r.want(t, 6, `"integrity"`, page)
	run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).
		want(t, 6, db, "database file is corrupt", "quick_check found", page, "nothing was written")
	run(t, env, "sql", "--write", "DELETE FROM settings").want(t, 6, "database file is corrupt")

	// Half the file gone.
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, fi.Size()/2/pageSize*pageSize); err != nil {
		t.Fatal(err)
	}
	run(t, env, "check").want(t, 6, "UNHEALTHY: integrity", "problems found")
}

// TestCLI_ReadOnlyDirectory: sql, check and runs read a database on a
// read-only file system (today: "unable to open database file"), say that
// they read it as immutable, and create nothing there.
func TestCLI_ReadOnlyDirectory(t *testing.T) {
	db, env, _ := extractedDB(t, 3)
	dir := filepath.Dir(db)
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
	} else {
		if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err != nil {
			t.Skipf("running as root, and a read-only bind mount is not possible here (needs CAP_SYS_ADMIN; store.TestOpen_ReadOnlyDirectory covers the reads as nobody): %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", dir).Run() })
		if out, err := exec.Command("mount", "-o", "remount,ro,bind", dir).CombinedOutput(); err != nil {
			t.Skipf("remount read-only: %v: %s", err, out)
		}
	}
	list := func() string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return strings.Join(names, " ")
	}
	before := list()
	run(t, env, "sql", "--csv", "SELECT count(*) FROM images").want(t, 0, "9", "not writable", "immutable")
	run(t, env, "check").want(t, 0, "9 images, 9 vectors", "ok:")
	run(t, env, "runs").want(t, 0, "extract")
	run(t, env, "sql", "DELETE FROM images").want(t, 2, "refused in read-only mode")
	if after := list(); after != before {
		t.Errorf("files in the database's directory: %s, then %s", before, after)
	}
}
