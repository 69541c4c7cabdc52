package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pipeline/extract/onnx"
)

// lastRun is the newest runs row's status and exit code, read with the CLI.
func lastRun(t *testing.T, env []string) (status string, exit int, n int) {
	t.Helper()
	r := run(t, env, "sql", "--json", "SELECT status, exit_code, (SELECT count(*) FROM runs) AS n FROM runs ORDER BY id DESC LIMIT 1")
	r.want(t, 0)
	var row struct {
		Status   string `json:"status"`
		ExitCode *int   `json:"exit_code"`
		N        int    `json:"n"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &row); err != nil {
		t.Fatalf("runs row: %v\n%s", err, r.stdout)
	}
	if row.ExitCode == nil {
		t.Fatalf("last run (%s) has no exit code", row.Status)
	}
	return row.Status, *row.ExitCode, row.N
}

// TestCLI_RunExitCode: runs.exit_code is the code the process exits with
// (issue 11.7), for a partial run (3), a data error (5), a bad query (2)
// and an interrupt (130).
func TestCLI_RunExitCode(t *testing.T) {
	db, env, imgs := extractedDB(t, 6)
	check := func(t *testing.T, r result, code int, status string) {
		t.Helper()
		r.want(t, code)
		st, exit, _ := lastRun(t, env)
		if exit != code || st != status {
			t.Errorf("runs row: status %s exit_code %d; the process exited %d (want status %s)", st, exit, r.code, status)
		}
	}
	t.Run("Partial3", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(imgs, "a", "bad.jpg"), []byte("not a jpeg"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(imgs, "a", "bad.jpg"))
		check(t, run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs), 3, "partial")
	})
	t.Run("Data5", func(t *testing.T) {
		check(t, run(t, env, "fit", "--layer", "fc2", "--name", "x", "--cv", "50"), 5, "failed")
	})
	t.Run("Usage2", func(t *testing.T) {
		check(t, run(t, env, "sql", "--write", "UPDATE nosuchtable SET x = 1"), 2, "failed")
	})
	t.Run("Interrupted130", func(t *testing.T) {
		// extract --list - waits for stdin; SIGTERM once the run has started.
		cmd := exec.Command(bin, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--list", "-")
		cmd.Env = append(os.Environ(), "PIPELINE_CACHE="+filepath.Join(t.TempDir(), "cache"), "PIPELINE_DB="+db)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		sc := bufio.NewScanner(stderr)
		var log bytes.Buffer
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "run ") {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			for sc.Scan() {
			}
		}()
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("extract: %v, want an exit code\n%s", err, log.String())
		}
		check(t, result{code: ee.ExitCode()}, 130, "interrupted")
	})
}

// TestCLI_UsageChangesNothing: usage errors exit 2 and leave no database,
// no lock file and no run row (issue 11.9).
func TestCLI_UsageChangesNothing(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b"}, 2)
	db := filepath.Join(dir, "f.db")
	env := []string{"PIPELINE_DB=" + db}
	ex := []string{"extract", "--model", tiny, "--preprocess", "caffe", "--images", imgs}
	exNoInput := []string{"extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2"}
	aFile := filepath.Join(imgs, "a", "00.png")
	nothing := func(t *testing.T) {
		t.Helper()
		for _, p := range []string{db, db + ".lock", db + "-wal"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s exists after a usage error", p)
			}
		}
	}
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"UnknownLayer", append(ex, "--layer", "fc9"), `unknown layer "fc9"`},
		{"BadPool", append(ex, "--layer", "fc2", "--pool", "bogus"), `pool "bogus"`},
		{"BadBackend", append(ex, "--layer", "fc2", "--backend", "tpu"), `backend "tpu"`},
		{"Batch0", append(ex, "--layer", "fc2", "--batch", "0"), "--batch 0"},
		{"BatchNegative", append(ex, "--layer", "fc2", "--batch", "-5"), "--batch -5"},
		{"WorkersNegative", append(ex, "--layer", "fc2", "--workers", "-1"), "--workers -1"},
		{"ThreadsNegative", append(ex, "--layer", "fc2", "--threads", "-3"), "--threads -3"},
		{"MaxPixelsNegative", append(ex, "--layer", "fc2", "--max-pixels", "-1"), "--max-pixels -1"},
		{"FitNoDatabase", []string{"fit", "--layer", "fc2", "--name", "x"}, "no database"},
		{"FitCVNegative", []string{"fit", "--layer", "fc2", "--name", "x", "--cv", "-1"}, "--cv -1"},
		{"SimilarK0", []string{"similar", "x.png", "--layer", "fc2", "--k", "0"}, "--k 0"},
		{"PredictBatch0", []string{"predict", "x", "a.png", "--batch", "0"}, "--batch 0"},
		// A wrong --images or --list is found before the model loads.
		{"ImagesMissing", append(exNoInput, "--images", filepath.Join(dir, "nope")), "images " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"ImagesIsFile", append(exNoInput, "--images", aFile), "not a directory\npipeline: hint: use --list"},
		{"ListMissing", append(exNoInput, "--list", filepath.Join(dir, "nope.csv")), "list " + filepath.Join(dir, "nope.csv") + ": no such file or directory"},
		{"ListIsFolder", append(exNoInput, "--list", imgs), "is a folder, not a list of files\npipeline: hint: give a folder of images as --images"},
	} {
		t.Run(c.name, func(t *testing.T) {
			run(t, env, c.args...).want(t, 2, c.msg)
			nothing(t)
		})
	}
	// With a database: an unknown layer adds no run row.
	run(t, env, append(ex, "--layer", "fc2")...).want(t, 0)
	run(t, env, append(ex, "--layer", "fc9")...).want(t, 2, `unknown layer "fc9"`)
	run(t, env, "fit", "--layer", "fc9", "--name", "x").want(t, 5, "no feature set with vectors matches layer fc9")
	if _, _, n := lastRun(t, env); n != 1 {
		t.Errorf("%d runs after one extract and two refused commands, want 1", n)
	}
}

// TestCLI_ModelsAddMissingFile: README and code agree: a --file that does
// not exist is a usage error (exit 2), and nothing is registered.
func TestCLI_ModelsAddMissingFile(t *testing.T) {
	cache := []string{"PIPELINE_CACHE=" + t.TempDir()}
	run(t, cache, "models", "add", "mine", "--file", filepath.Join(t.TempDir(), "nope.onnx"), "--preprocess", "caffe").want(t, 2, "nope.onnx")
	if r := run(t, cache, "models", "list"); strings.Contains(r.stdout, "mine") {
		t.Errorf("models list shows the refused model:\n%s", r.stdout)
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "a file named on the command line that does not exist") {
		t.Errorf("README's exit-code table does not say that a missing --file/--model is exit 2")
	}
}

// TestCLI_FitGridJSON: fit --grid --json of a classifier without gamma
// (Log2Gamma NaN inside) prints valid JSON and exits 0 (issue 11.7: it
// exited 1 while the run was logged ok and the classifier stored).
func TestCLI_FitGridJSON(t *testing.T) {
	_, env, _ := extractedDB(t, 6)
	r := run(t, env, "fit", "--layer", "fc2", "--clf", "logreg", "--name", "g", "--grid", "--cv", "2", "--json")
	r.want(t, 0)
	var res struct {
		Grid struct {
			Points []struct {
				Log2Gamma *float64 `json:"log2_gamma"`
			}
		} `json:"grid"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Grid.Points) == 0 {
		t.Fatalf("fit --grid --json: %v\n%s", err, r.stdout)
	}
	if res.Grid.Points[0].Log2Gamma != nil {
		t.Errorf("Log2Gamma = %v for logreg, want null", *res.Grid.Points[0].Log2Gamma)
	}
	if st, exit, _ := lastRun(t, env); st != "ok" || exit != 0 {
		t.Errorf("runs row %s/%d", st, exit)
	}
	// A NaN on the command line is a usage error, before any run.
	run(t, env, "fit", "--layer", "fc2", "--clf", "svm", "--name", "n", "--coef0", "nan").want(t, 2, "--coef0")
}

// TestCLI_ListAndJSONPaths: --list strips a BOM and makes a malformed line
// one failure while the rest is processed; predict --json keeps non-UTF-8
// path bytes recoverable (issue 11.10).
func TestCLI_ListAndJSONPaths(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b"}, 3)
	// A file whose name is Latin-1 bytes.
	latin := filepath.Join(imgs, "a", "caf\xe9.png")
	b, err := os.ReadFile(filepath.Join(imgs, "a", "00.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(latin, append(b, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "list.csv")
	text := "\ufeffpath,label\n" +
		"images/a/00.png,a\n" +
		"images/a/01.png,a,extra\n" +
		"images/b/00.png,b\n" +
		"\"images/b/01.png,b\n"
	if err := os.WriteFile(list, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "f.db")
	env := []string{"PIPELINE_DB=" + db}
	r := run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--list", list, "--json")
	r.want(t, 3, "list.csv:3", "3 fields, want path,label")
	var sum struct {
		Counts struct{ Seen, Extracted, Failed int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Extracted != 2 || sum.Counts.Failed != 2 {
		t.Errorf("counts %+v, want 2 extracted (the BOM line's header skipped) and 2 failed lines", sum.Counts)
	}
	r = run(t, env, "sql", "--csv", "SELECT path, stage FROM failures ORDER BY path")
	if !strings.Contains(r.stdout, "list.csv:3,list") {
		t.Errorf("failures:\n%s", r.stdout)
	}

	// predict --json: path_b64 holds the bytes of a non-UTF-8 path.
	run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 0)
	run(t, env, "fit", "--layer", "fc2", "--name", "lr").want(t, 0)
	r = run(t, env, "predict", "lr", latin, "--json", "--model", tiny)
	r.want(t, 0)
	var row struct {
		Path    string `json:"path"`
		PathB64 string `json:"path_b64"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &row); err != nil {
		t.Fatal(err)
	}
	got, err := base64.StdEncoding.DecodeString(row.PathB64)
	if err != nil || string(got) != latin {
		t.Errorf("path_b64 %q decodes to %q, want %q", row.PathB64, got, latin)
	}
	// sql --json: the same for a text column.
	r = run(t, env, "sql", "--json", "SELECT path FROM image_paths WHERE path LIKE '%caf%'")
	var srow map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &srow); err != nil {
		t.Fatal(err)
	}
	if got, _ := base64.StdEncoding.DecodeString(srow["path_b64"]); string(got) != latin {
		t.Errorf("sql --json: %s", r.stdout)
	}
	_ = time.Second
}

// TestCLI_ExportNonFinite: export refuses NaN vectors unless
// --allow-nonfinite (issue 11.12).
func TestCLI_ExportNonFinite(t *testing.T) {
	_, env, _ := extractedDB(t, 3)
	// Overwrite one vector's first float with a NaN (0x7fc00000, little-endian).
	run(t, env, "sql", "--write", "UPDATE features SET vector = X'0000C07F' || substr(vector, 5) WHERE rowid = (SELECT min(rowid) FROM features)").want(t, 0)
	out := filepath.Join(t.TempDir(), "x.csv")
	run(t, env, "export", "--layer", "fc2", "--format", "csv", "--out", out).want(t, 5, "NaN", "--allow-nonfinite")
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused export left %s behind", out)
	}
	r := run(t, env, "export", "--layer", "fc2", "--format", "csv", "--allow-nonfinite")
	r.want(t, 0)
	if !strings.Contains(r.stdout, "NaN") {
		t.Errorf("--allow-nonfinite: no NaN in the output")
	}
}

// TestCLI_ModelsAddLoads: models add loads the file with OpenCV before
// registering it (issue 11.11): an ONNX graph OpenCV cannot build is
// refused with exit 2 and the framework's message; a good file registers.
func TestCLI_ModelsAddLoads(t *testing.T) {
	dir := t.TempDir()
	cache := []string{"PIPELINE_CACHE=" + filepath.Join(dir, "cache")}
	m := &onnx.Model{IRVersion: 7, OpsetImports: []onnx.OpsetID{{Domain: "", Version: 13}}, Graph: &onnx.Graph{
		Name:    "bad",
		Nodes:   []*onnx.Node{{OpType: "NoSuchOpAnywhere", Name: "n", Inputs: []string{"x"}, Outputs: []string{"y"}}},
		Inputs:  []*onnx.ValueInfo{{Name: "x", ElemType: onnx.Float, HasShape: true, Dims: []onnx.Dim{{Value: 1}, {Value: 3}, {Value: 8}, {Value: 8}}}},
		Outputs: []*onnx.ValueInfo{{Name: "y", ElemType: onnx.Float}},
	}}
	b, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, cache, "models", "add", "bad", "--file", bad, "--preprocess", "torch").want(t, 2, "does not load with OpenCV", "OpenCV(4.6.0)")
	if r := run(t, cache, "models", "list"); strings.Contains(r.stdout, "bad.onnx") {
		t.Errorf("the refused model is registered:\n%s", r.stdout)
	}
	good, _ := filepath.Abs(tiny)
	run(t, cache, "models", "add", "good", "--file", good, "--preprocess", "caffe").want(t, 0, "registered")
}
