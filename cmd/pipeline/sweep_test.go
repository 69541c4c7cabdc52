package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/classify"
)

// TestCLI_Sweep runs `pipeline sweep` on the tiny VGG: the table, the
// recommendation, --json, --plot, the default classifier list and errors.
func TestCLI_Sweep(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b", "c"}, 12)
	db := filepath.Join(dir, "f.db")
	plotPath := filepath.Join(dir, "sweep.png")
	args := []string{"sweep", "--db", db, "--model", tiny, "--preprocess", "caffe", "--images", imgs,
		"--layers", "block1_pool,block3_pool,fc1,fc2", "--clf", "logreg,svm", "--cv", "3"}

	r := run(t, nil, append(args, "--json", "--plot", plotPath)...)
	r.want(t, 0)
	var res struct {
		RunID int64 `json:"run_id"`
		Rows  []struct {
			Layer       string   `json:"layer"`
			Dim         int      `json:"dim"`
			Classifier  string   `json:"classifier"`
			Accuracy    *float64 `json:"cv_accuracy"`
			Std         *float64 `json:"cv_accuracy_std"`
			MacroF1     *float64 `json:"macro_f1"`
			FitSeconds  *float64 `json:"fit_seconds"`
			Recommended bool     `json:"recommended"`
		} `json:"rows"`
		Recommendation struct {
			Command string   `json:"command"`
			Text    []string `json:"text"`
		} `json:"recommendation"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("sweep --json: %v\n%s", err, r.stdout)
	}
	if len(res.Rows) != 8 || res.Rows[0].Layer != "block1_pool" || res.Rows[0].Dim != 4 || res.Rows[7].Layer != "fc2" || res.Rows[7].Classifier != "svm" {
		t.Fatalf("rows %+v", res.Rows)
	}
	for _, row := range res.Rows {
		if row.Accuracy == nil || row.Std == nil || row.MacroF1 == nil || row.FitSeconds == nil {
			t.Errorf("row %+v has a null number", row)
		}
	}
	if !strings.HasPrefix(res.Recommendation.Command, "pipeline fit --db "+db+" --model vgg-zoo-tiny.onnx --layer ") ||
		!strings.HasSuffix(res.Recommendation.Command, " --final") {
		t.Errorf("command %q", res.Recommendation.Command)
	}
	// The plot: a PNG of the documented size (96 dpi).
	b, err := os.ReadFile(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("plot: %v", err)
	}
	w, h := classify.SweepPlotSize(4)
	if got, wantW, wantH := img.Bounds().Size(), int(w.Dots(96)+0.5), int(h.Dots(96)+0.5); got.X != wantW || got.Y != wantH {
		t.Errorf("plot is %v, want %dx%d", got, wantW, wantH)
	}

	// The table: a rerun extracts nothing and prints the same numbers.
	r = run(t, nil, args...)
	r.want(t, 0, "layer", "classifier", "CV accuracy", "macro-F1", "block3_pool", "<- recommended", "Recommended: ",
		"extract run", "(0 extracted, 36 present", res.Recommendation.Command, res.Recommendation.Text[0])
	rows := run(t, nil, "sql", "--db", db, "--csv", "SELECT run_id, count(*), sum(recommended) FROM sweeps GROUP BY run_id ORDER BY run_id")
	rows.want(t, 0)
	if lines := strings.Split(strings.TrimSpace(rows.stdout), "\n"); len(lines) != 3 || !strings.HasSuffix(lines[1], ",8,1") || !strings.HasSuffix(lines[2], ",8,1") {
		t.Errorf("sweeps by run:\n%s", rows.stdout)
	}

	// Errors: unknown classifier (usage), no input (usage), too many folds (data).
	run(t, nil, "sweep", "--db", db, "--model", tiny, "--preprocess", "caffe", "--images", imgs, "--clf", "tree").want(t, 2, "sweep: classifier tree: unknown classifier", "this build has", "hint: --clf takes a comma-separated list")
	run(t, nil, "sweep", "--db", db, "--model", tiny, "--preprocess", "caffe").want(t, 2, "--images DIR or --list FILE")
	run(t, nil, append(args[:len(args)-1], "50")...).want(t, 5, "fewer than the 50 folds")
}
