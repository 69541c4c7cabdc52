package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/errclass"
	"pipeline/store"
)

const tinyResNet = "../testdata/models/resnet-v1-zoo-tiny.onnx"

// TestSweep_EndToEnd sweeps every alias of the tiny ResNet with two
// classifiers on tinted pictures, then checks the table against fit's own
// cross-validation, the stored rows, the recommendation and a rerun.
func TestSweep_EndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath, root := filepath.Join(dir, "f.db"), filepath.Join(dir, "images")
	classes := []string{"blue", "green", "red"}
	for c, name := range classes {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 15 {
			classPicture(t, filepath.Join(root, name, fmt.Sprintf("%02d.png", i)), c, i)
		}
	}
	m := tinyModel(t, tinyResNet, "torch")
	aliases, err := modelAliases(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	o := SweepOptions{DB: dbPath, Model: m, Classifiers: []string{"logreg", "svm"}, Params: classify.DefaultParams(""),
		Folds: 3, TestFrac: 0.2, Extract: ExtractOptions{Images: root, Batch: 8}, Args: []string{"pipeline", "sweep"}}
	var progress []string
	o.Progress = func(p SweepProgress) {
		if p.Row != nil {
			progress = append(progress, fmt.Sprintf("%d/%d %s %s", p.Done, p.Total, p.Layer, p.Classifier))
		}
	}
	res, err := Sweep(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != store.RunOK || res.Extract.Counts.Extracted != 45 || res.Train != 36 || res.Test != 9 || res.NewlySplit != 45 {
		t.Fatalf("sweep: status %s, extract %+v, train %d, test %d, newly split %d", res.Status, res.Extract.Counts, res.Train, res.Test, res.NewlySplit)
	}
	if len(res.Rows) != 2*len(aliases) || len(progress) != len(res.Rows) || progress[0] != fmt.Sprintf("1/%d %s logreg", len(res.Rows), res.Rows[0].Layer) {
		t.Fatalf("%d rows, progress %q, for %d aliases %v", len(res.Rows), progress, len(aliases), aliases)
	}
	// Rows by depth (the aliases' network order), classifiers in --clf order.
	for i, r := range res.Rows {
		if r.Layer != aliases[i/2] || r.Classifier != []string{"logreg", "svm"}[i%2] || r.Error != "" {
			t.Errorf("row %d: %s %s (%s), want %s %s", i, r.Layer, r.Classifier, r.Error, aliases[i/2], []string{"logreg", "svm"}[i%2])
		}
		if i > 0 && r.Depth < res.Rows[i-1].Depth {
			t.Errorf("row %d: depth %d after %d", i, r.Depth, res.Rows[i-1].Depth)
		}
		if !(r.Accuracy >= 0 && r.Accuracy <= 1) || !(r.FitSeconds > 0) || r.Train != 36 {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	// The sweep measures what fit --cv reports for the same pair.
	for _, i := range []int{1, len(res.Rows) - 2} {
		r := res.Rows[i]
		p := classify.DefaultParams(r.Classifier)
		fit, err := Fit(ctx, FitOptions{DB: dbPath, Set: SetQuery{ID: r.FeatureSetID}, Name: "check", Replace: true, Params: p, CV: 3, TestFrac: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		if fit.CV.MeanAccuracy != r.Accuracy || fit.CV.StdAccuracy != r.AccuracyStd || fit.CV.MeanMacroF1 != r.MacroF1 {
			t.Errorf("%s %s: sweep %.6f ± %.6f (F1 %.6f), fit --cv %.6f ± %.6f (F1 %.6f)", r.Layer, r.Classifier,
				r.Accuracy, r.AccuracyStd, r.MacroF1, fit.CV.MeanAccuracy, fit.CV.StdAccuracy, fit.CV.MeanMacroF1)
		}
	}
	// Stored: the run and one sweeps row per pair, one recommended.
	rec := res.Recommend
	if rec == nil || !strings.HasPrefix(rec.Command, "pipeline fit --model resnet-v1-zoo-tiny.onnx --layer "+rec.Layer) ||
		!strings.HasSuffix(rec.Command, "--cv 3 --name "+rec.Layer+"-"+rec.Classifier+" --final") {
		t.Fatalf("recommendation %+v", rec)
	}
	rows := query(t, dbPath, `SELECT layer, classifier, accuracy, accuracy_std, macro_f1, train, folds, recommended, r.command, r.status
		FROM sweeps s JOIN runs r ON r.id = s.run_id WHERE s.run_id = :run ORDER BY s.id`, map[string]any{"run": res.RunID})
	if len(rows) != len(res.Rows) {
		t.Fatalf("%d sweeps rows, want %d", len(rows), len(res.Rows))
	}
	recommended := 0
	for i, row := range rows {
		r := res.Rows[i]
		if row[0] != r.Layer || row[1] != r.Classifier || row[2].(float64) != r.Accuracy || row[3].(float64) != r.AccuracyStd ||
			row[4].(float64) != r.MacroF1 || asInt(row[5]) != 36 || asInt(row[6]) != 3 || row[8] != "sweep" || row[9] != "ok" {
			t.Errorf("sweeps row %d = %v, want %+v", i, row, r)
		}
		if asInt(row[7]) == 1 {
			recommended++
			if r.Layer != rec.Layer || r.Classifier != rec.Classifier || !r.Recommended {
				t.Errorf("recommended row %v, recommendation %s %s", row, rec.Layer, rec.Classifier)
			}
		}
	}
	if recommended != 1 {
		t.Errorf("%d recommended rows", recommended)
	}
	// The JSON contract.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	row0 := doc["rows"].([]any)[0].(map[string]any)
	for _, k := range []string{"layer", "dim", "classifier", "cv_accuracy", "cv_accuracy_std", "macro_f1", "fit_seconds", "depth", "feature_set_id", "recommended"} {
		if _, ok := row0[k]; !ok {
			t.Errorf("JSON row has no %q: %v", k, row0)
		}
	}
	if r := doc["recommendation"].(map[string]any); r["command"] != rec.Command || len(r["text"].([]any)) < 4 {
		t.Errorf("JSON recommendation %v", r)
	}

	// A rerun extracts nothing and measures the same.
	progress = nil
	again, err := Sweep(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if again.Extract.Counts.Extracted != 0 || again.Extract.Counts.Present != 45 || again.RunID == res.RunID {
		t.Errorf("rerun: extract %+v, run %d", again.Extract.Counts, again.RunID)
	}
	for i := range res.Rows {
		if a, b := again.Rows[i], res.Rows[i]; a.Accuracy != b.Accuracy || a.MacroF1 != b.MacroF1 {
			t.Errorf("rerun row %d: %.6f/%.6f, first %.6f/%.6f", i, a.Accuracy, a.MacroF1, b.Accuracy, b.MacroF1)
		}
	}

	t.Run("ErrUnknownClassifier", func(t *testing.T) {
		o := o
		o.Classifiers = []string{"svm", "tree"}
		_, err := Sweep(ctx, o)
		if !errors.Is(err, classify.ErrUnknownClassifier) || !strings.Contains(err.Error(), "sweep: classifier tree: unknown classifier") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSweepClassifiers(t *testing.T) {
	got, notes, err := sweepClassifiers(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every default this build has, in order; softmax falls back to
	// logreg; each missing one is named.
	var want []string
	var missing []string
	for _, n := range DefaultSweepClassifiers {
		switch {
		case classify.DefaultParams(n).Validate() == nil:
			want = append(want, n)
		case n == "softmax":
			want = append(want, classify.LogReg)
			missing = append(missing, n)
		default:
			missing = append(missing, n)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("defaults %v, want %v", got, want)
	}
	for _, n := range missing {
		if len(notes) != 1 || !strings.Contains(notes[0], "no "+n) {
			t.Errorf("notes %q do not name missing %s", notes, n)
		}
	}
	if len(missing) == 0 && len(notes) != 0 {
		t.Errorf("notes %q with every default present", notes)
	}
	if got, _, err := sweepClassifiers([]string{"svm", "logreg", "svm"}); err != nil || fmt.Sprint(got) != "[svm logreg]" {
		t.Errorf("explicit: %v, %v", got, err)
	}
}

// row makes a synthetic sweep result.
func row(layer string, depth int, clf string, acc, std float64) SweepRow {
	pool, spatial := store.PoolAvg, true
	if strings.HasPrefix(layer, "fc") || layer == "predictions" {
		pool, spatial = store.PoolNone, false
	}
	return SweepRow{Layer: layer, Depth: depth, Classifier: clf, Accuracy: acc, AccuracyStd: std, MacroF1: acc, Pooling: pool,
		Spatial: spatial, FeatureSetID: int64(depth), Dim: 512}
}

func TestRecommend(t *testing.T) {
	base := RecommendInput{Classes: []string{"a", "b", "c", "d"}, ClassCounts: []int{150, 160, 155, 151}, Model: "vgg16",
		Pool: "avg", Folds: 5, Params: classify.DefaultParams("")}
	text := func(r Recommendation) string { return strings.Join(r.Text, "\n") }

	t.Run("PeakEarly", func(t *testing.T) {
		in := base
		in.Rows = []SweepRow{
			row("block3_pool", 10, "softmax", 0.70, 0.03), row("block3_pool", 10, "svm", 0.74, 0.02),
			row("block4_pool", 14, "softmax", 0.80, 0.02), row("block4_pool", 14, "svm", 0.86, 0.02),
			row("fc2", 20, "softmax", 0.72, 0.02), row("fc2", 20, "svm", 0.71, 0.03),
		}
		rec, ok := Recommend(in)
		if !ok || !rec.PeakEarly || rec.LinearTopWithinNoise || rec.PeakLayer != "block4_pool" || rec.TopLayer != "fc2" ||
			rec.Layer != "block4_pool" || rec.Classifier != "svm" || !rec.Small || rec.NearChance {
			t.Fatalf("%+v", rec)
		}
		if want := "pipeline fit --model vgg16 --layer block4_pool --pool avg --clf svm --cv 5 --name block4_pool-svm --final"; rec.Command != want {
			t.Errorf("command %q\nwant    %q", rec.Command, want)
		}
		for _, s := range []string{"616 images in 4 classes (150 to 160 per class, median 155)", "small dataset",
			"a peak at an earlier layer means the data is unlike ImageNet", "0.140 below the best"} {
			if !strings.Contains(text(rec), s) {
				t.Errorf("text does not say %q:\n%s", s, text(rec))
			}
		}
	})
	t.Run("LinearTopWithinNoise", func(t *testing.T) {
		in := base
		in.DB = "my db.sqlite"
		in.Params.C = 4
		in.Rows = []SweepRow{
			row("block4_pool", 14, "softmax", 0.80, 0.03), row("block4_pool", 14, "svm", 0.82, 0.03),
			row("fc2", 20, "softmax", 0.90, 0.02), row("fc2", 20, "svm", 0.915, 0.02),
			row("predictions", 22, "svm", 0.92, 0.01), // deeper, but not the top layer for a head
		}
		rec, ok := Recommend(in)
		if !ok || rec.PeakEarly || !rec.LinearTopWithinNoise || rec.TopLayer != "fc2" || rec.Layer != "fc2" || rec.Classifier != "softmax" {
			t.Fatalf("%+v", rec)
		}
		if want := "pipeline fit --db 'my db.sqlite' --model vgg16 --layer fc2 --clf softmax --C 4 --cv 5 --name fc2-softmax --final"; rec.Command != want {
			t.Errorf("command %q\nwant    %q", rec.Command, want)
		}
		if !strings.Contains(text(rec), "within one standard deviation of the best (svm on predictions") {
			t.Errorf("text:\n%s", text(rec))
		}
	})
	t.Run("EarlierPeakWithinNoise", func(t *testing.T) {
		in := base
		in.ClassCounts = []int{1200, 1500}
		in.Rows = []SweepRow{row("block5_pool", 16, "svm", 0.86, 0.03), row("fc2", 20, "svm", 0.84, 0.02), row("fc2", 20, "logreg", 0.70, 0.02)}
		rec, _ := Recommend(in)
		if rec.PeakEarly || rec.LinearTopWithinNoise || rec.Small || rec.Layer != "block5_pool" || rec.Classifier != "svm" {
			t.Fatalf("%+v", rec)
		}
		for _, s := range []string{"no clear sign that the data is unlike ImageNet", "a large dataset", "fine-tuning"} {
			if !strings.Contains(text(rec), s) {
				t.Errorf("text does not say %q:\n%s", s, text(rec))
			}
		}
	})
	t.Run("NearChanceAndFailures", func(t *testing.T) {
		in := base
		in.ClassCounts = []int{10, 10}
		bad := row("fc2", 20, "mlp", math.NaN(), math.NaN())
		bad.Error = "did not converge"
		in.Rows = []SweepRow{row("fc1", 18, "svm", 0.52, 0.05), row("fc2", 20, "svm", 0.50, 0.04), bad}
		rec, ok := Recommend(in)
		if !ok || !rec.NearChance || rec.Layer != "fc1" || !strings.Contains(text(rec), "No linear head") {
			t.Fatalf("%+v", rec)
		}
		in.Rows = []SweepRow{bad}
		if _, ok := Recommend(in); ok {
			t.Error("a recommendation from failed rows only")
		}
	})
}

func TestRecommend_TieAtTheTop(t *testing.T) {
	in := RecommendInput{ClassCounts: []int{10, 10, 10}, Model: "m", Folds: 3, Params: classify.DefaultParams("")}
	in.Rows = []SweepRow{row("block1_pool", 3, "logreg", 1, 0), row("fc2", 9, "logreg", 1, 0), row("fc2", 9, "svm", 0.9, 0.05)}
	rec, _ := Recommend(in)
	if rec.PeakEarly || rec.PeakLayer != "fc2" || rec.Layer != "fc2" || rec.Classifier != "logreg" ||
		!strings.Contains(strings.Join(rec.Text, "\n"), "Accuracy peaks at the top layer fc2 (logreg 1.000 ± 0.000)") {
		t.Errorf("%+v", rec)
	}
}

// TestSweep_RunExitCode: a sweep that fails after its run started records
// the exit code the process returns for its error (errclass's table), as
// fit and extract do: too few samples for the folds is a data error (5).
func TestSweep_RunExitCode(t *testing.T) {
	dir := t.TempDir()
	dbPath, root := filepath.Join(dir, "f.db"), filepath.Join(dir, "images")
	for c, name := range []string{"blue", "green"} {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			classPicture(t, filepath.Join(root, name, fmt.Sprintf("%02d.png", i)), c, i)
		}
	}
	o := SweepOptions{DB: dbPath, Model: tinyModel(t, tinyResNet, "torch"), Layers: []string{"avg_pool"}, Classifiers: []string{"logreg"},
		Params: classify.DefaultParams(""), Folds: 50, TestFrac: 0.2, Extract: ExtractOptions{Images: root, Batch: 8}}
	res, err := Sweep(context.Background(), o)
	if !errors.Is(err, classify.ErrTooFewSamples) {
		t.Fatalf("sweep with 50 folds on 8 images: %v, want ErrTooFewSamples", err)
	}
	if res.Status != store.RunFailed {
		t.Errorf("status %s, want %s", res.Status, store.RunFailed)
	}
	r := query(t, dbPath, `SELECT status, exit_code FROM runs WHERE id = :run`, map[string]any{"run": res.RunID})
	if len(r) != 1 || r[0][0] != store.RunFailed || asInt(r[0][1]) != int64(errclass.ExitCode(err)) || asInt(r[0][1]) != 5 {
		t.Errorf("run %d row: %v, want failed with exit code %d (5, a data error)", res.RunID, r, errclass.ExitCode(err))
	}
}
