package main

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/classify"
)

// TestCLI_FitHeads: the classifier heads and the grid search as a user
// sees them: help, progress-free output without --verbose, the table with
// it, the edge warning, --json, --final and eval's refusal.
func TestCLI_FitHeads(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b"}, 12)
	db := filepath.Join(dir, "f.db")
	dbEnv := []string{"PIPELINE_DB=" + db}
	run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 0)

	r := run(t, dbEnv, "fit", "--help")
	r.want(t, 0, "softmax (multinomial logistic regression", "one-vs-rest for more than 2 classes", "-grid-c", "-final", "-hidden")

	// At C = 2^-30 the model does not depend on C: accuracies tie, the
	// smallest C wins, which is the lower edge of the searched range.
	r = run(t, dbEnv, "fit", "--layer", "fc2", "--clf", "softmax", "--name", "sm", "--grid-c", "-30:-26:2", "--cv", "3")
	r.want(t, 0, "grid: best C=", "on the lower edge of the searched range -31..-26", "widen the range with --grid-c", "classifier sm: softmax")
	if strings.Contains(r.stdout, "log2 gamma") {
		t.Errorf("grid table printed without --verbose:\n%s", r.stdout)
	}
	r = run(t, dbEnv, "fit", "--layer", "fc2", "--clf", "softmax", "--name", "sm", "--replace", "--grid-c", "-30:-26:2", "--cv", "3", "--verbose")
	r.want(t, 0, "log2 gamma", "coarse", "fine")

	r = run(t, dbEnv, "fit", "--layer", "fc2", "--clf", "logreg", "--name", "lr", "--grid-c", "-3:3:3", "--cv", "3", "--json")
	r.want(t, 0)
	var res struct {
		Grid struct {
			Points []struct {
				Log2Gamma *float64 `json:"log2_gamma"`
			}
			Edges []struct{ Param, Side string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Grid.Points) == 0 || res.Grid.Points[0].Log2Gamma != nil || res.Grid.Edges == nil {
		t.Errorf("fit --json: %v %+v\n%s", err, res, r.stdout)
	}
	run(t, dbEnv, "fit", "--layer", "fc2", "--name", "x", "--grid-c", "1:5").want(t, 2, "--grid-c", "start:stop:step")
	run(t, dbEnv, "fit", "--layer", "fc2", "--name", "x", "--clf", "mlp", "--hidden", "12,x").want(t, 2, "--hidden")

	r = run(t, dbEnv, "fit", "--layer", "fc2", "--clf", "mlp", "--hidden", "16", "--name", "mlp-final", "--cv", "2", "--final")
	r.want(t, 0, "2-fold CV: accuracy", "refitted on all 24 labelled images", "no held-out estimate exists")
	run(t, dbEnv, "eval", "mlp-final").want(t, 5, "no held-out estimate for classifier mlp-final", "trained on all 24 labelled images", "2-fold cross-validation on the training split")
	run(t, dbEnv, "classifiers").want(t, 0, "24/- (final)")
	run(t, dbEnv, "predict", "mlp-final", imgs, "--top", "2", "--model", tiny).want(t, 0, "PROBABILITY")
}

func TestGridProgress(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var b bytes.Buffer
		g := newGridProgress(&env{stderr: &b, tty: tty})
		g.report(classify.GridProgress{Stage: "coarse", Done: 3, Total: 10, Best: classify.GridPoint{Log2C: 1, Log2Gamma: -7, Gamma: 1.0 / 128, MeanAccuracy: 0.875}})
		g.report(classify.GridProgress{Stage: "fine", Done: 1, Total: 24, Best: classify.GridPoint{Log2C: 1.5, Log2Gamma: math.NaN(), MeanAccuracy: 0.9}})
		g.done()
		want := "\r\033[Kgrid: coarse 3/10 points; best so far C=2^1 gamma=2^-7: CV accuracy 0.8750" +
			"\r\033[Kgrid: fine 1/24 points; best so far C=2^1.5: CV accuracy 0.9000\n"
		if !tty {
			want = ""
		}
		if b.String() != want {
			t.Errorf("tty %v: %q, want %q", tty, b.String(), want)
		}
	}
}
