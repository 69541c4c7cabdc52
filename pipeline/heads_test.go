package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/store"
)

// TestFit_GridCOnlyNaNSafe: a C-only grid (logreg, linear) has no gamma;
// its results must still marshal to JSON (the --json output) and be
// stored in classifiers.metrics (once NULL: json.Marshal failed on the
// NaN log2 gamma and the error was dropped).
func TestFit_GridCOnlyNaNSafe(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "f.db")
	classDataset(t, filepath.Join(dir, "images"), db, []string{"blue", "red"}, 12)
	res, err := Fit(context.Background(), FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "lr",
		Params: classify.DefaultParams(classify.LogReg), TestFrac: 0.25, Grid: true, CV: 3})
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("fit --json: %v", err)
	}
	var back struct {
		Grid struct {
			Best map[string]any
		}
	}
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if v, ok := back.Grid.Best["log2_gamma"]; !ok || v != nil {
		t.Errorf("grid best log2 gamma in JSON: %v (present %v), want null", v, ok)
	}
	rows := query(t, db, `SELECT metrics FROM classifiers WHERE name = 'lr'`, nil)
	m, ok := rows[0][0].(string)
	if !ok || !json.Valid([]byte(m)) {
		t.Fatalf("classifiers.metrics = %#v, want a JSON object", rows[0][0])
	}
	var stored struct {
		GridBest *struct{ C float64 } `json:"grid_best"`
	}
	if err := json.Unmarshal([]byte(m), &stored); err != nil || stored.GridBest == nil || stored.GridBest.C != res.Grid.Best.C {
		t.Errorf("stored grid_best %+v (err %v), want C=%g", stored.GridBest, err, res.Grid.Best.C)
	}
}

// TestFit_Final: --final reports CV on the training split, then refits the
// chosen configuration (the grid's best C) on every labelled image; eval
// refuses to score it, saying why.
func TestFit_Final(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "f.db")
	classDataset(t, filepath.Join(dir, "images"), db, []string{"blue", "red"}, 12)
	ctx := context.Background()
	p := classify.DefaultParams(classify.Softmax)
	res, err := Fit(ctx, FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "final", Params: p, TestFrac: 0.25,
		CV: 3, Grid: true, GridC: [3]float64{-4, 4, 4}, Final: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Final || res.FinalTrain != 24 || res.Train != 18 || res.Test != 6 || res.CV == nil {
		t.Fatalf("final %v, trained on %d (train %d, test %d), cv %+v; want a CV on 18 and a refit on 24", res.Final, res.FinalTrain, res.Train, res.Test, res.CV)
	}
	if res.Params.C != res.Grid.Best.C {
		t.Errorf("refit with C=%g, grid's best is %g", res.Params.C, res.Grid.Best.C)
	}
	// The stored model is the refit: the same fit on all 24 vectors.
	db2, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := LoadClassifier(ctx, db2, "final")
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := loadSplit(ctx, db2, lc.Set, partAll, nil)
	db2.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, err := classify.Fit(all, res.Params)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := want.MarshalBinary()
	b, _ := lc.Model.MarshalBinary()
	if string(a) != string(b) {
		t.Error("stored model differs from a fit of the chosen params on all labelled vectors")
	}
	_, err = Eval(ctx, db, "final")
	if !errors.Is(err, ErrNoHeldOut) || !strings.Contains(err.Error(), "trained on all 24 labelled images") ||
		!strings.Contains(err.Error(), "3-fold cross-validation on the training split") {
		t.Errorf("eval of a final classifier: %v", err)
	}
}

// TestFit_Heads: softmax and mlp go through fit, eval and predict like the
// other kinds (stored, reloaded, scored).
func TestFit_Heads(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "f.db")
	imgs := filepath.Join(dir, "images")
	classDataset(t, imgs, db, []string{"blue", "green", "red"}, 10)
	ctx := context.Background()
	for _, kind := range []string{classify.Softmax, classify.MLP} {
		p := classify.DefaultParams(kind)
		p.Hidden = []int{16}
		if _, err := Fit(ctx, FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: kind, Params: p, TestFrac: 0.3, CV: 2}); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		ev, err := Eval(ctx, db, kind)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if ev.Kind != kind || ev.Metrics.N != 9 {
			t.Errorf("%s: eval kind %s on %d images", kind, ev.Kind, ev.Metrics.N)
		}
		n := 0
		if _, err := Predict(ctx, PredictOptions{DB: db, Name: kind, Paths: []string{imgs}, ModelPath: tinyVGG, TopK: 3,
			Emit: func(r PredictRow) error {
				n++
				if r.Probability == nil || len(r.Top) != 3 || r.Top[0].Label != r.Label || r.Top[0].Probability != *r.Probability {
					t.Errorf("%s %s: label %s probability %v, top %+v", kind, r.Path, r.Label, r.Probability, r.Top)
				}
				return nil
			}}); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if n != 30 {
			t.Errorf("%s: %d predictions, want 30", kind, n)
		}
	}
}
