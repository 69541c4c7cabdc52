package classify

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
)

// refLinearModel reads a liblinear-train model (trained with -B 1) into our
// predictor, for C's decision values.
func refLinearModel(t *testing.T, path, loss string, classes, d int) *LinearClassifier {
	t.Helper()
	fit, err := readLiblinearModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if fit.bias < 0 {
		t.Fatalf("%s: trained without bias", path)
	}
	nf := len(fit.w[0]) - 1
	m := &LinearClassifier{Loss: loss, NClasses: classes, Labels: fit.labels}
	for _, w := range fit.w {
		row := make([]float64, d) // features past the last index seen are zero
		copy(row, w[:nf])
		m.W = append(m.W, row)
		m.Bias = append(m.Bias, w[nf]*fit.bias)
	}
	return m
}

func TestLinearClassifier_ParityLiblinear(t *testing.T) {
	needTool(t, "liblinear-train", "liblinear-predict")
	cases := []struct {
		name     string
		loss     string
		C        float64
		weighted bool
	}{
		{"linear", Linear, 1, false},
		{"linear_smallC", Linear, 0.01, false},
		{"linear_weights", Linear, 0.1, true},
		{"logreg", LogReg, 1, false},
		{"logreg_smallC", LogReg, 0.01, false},
		{"logreg_weights", LogReg, 0.1, true},
	}
	sets := append([]refSet{synthRefSet(512, 9)}, fileRefSets(t)...)
	for _, set := range sets {
		for _, tc := range cases {
			t.Run(set.name+"/"+tc.name, func(t *testing.T) {
				if tc.weighted {
					set = imbalance(set)
				}
				eps := map[string]float64{Linear: 1e-4, LogReg: 1e-6}[tc.loss]
				d := len(set.trainX[0])
				p := DefaultParams(tc.loss)
				p.C, p.Tol, p.Balanced = tc.C, eps, tc.weighted
				got := &LinearClassifier{Loss: tc.loss}
				if err := got.Fit(set.trainX, set.trainY, set.classes, p); err != nil {
					t.Fatal(err)
				}

				dir := t.TempDir()
				train := writeLibsvmFile(t, dir, "train", set.trainX, set.trainY)
				test := writeLibsvmFile(t, dir, "test", set.testX, set.testY)
				model, out := filepath.Join(dir, "model"), filepath.Join(dir, "out")
				solver := "1"
				if tc.loss == LogReg {
					solver = "0"
				}
				args := []string{"-q", "-s", solver, "-c", g17(tc.C), "-e", g17(eps), "-B", "1"}
				if w := classWeights(set.trainY, set.classes, tc.weighted); w != nil {
					for c, f := range w {
						args = append(args, fmt.Sprintf("-w%d", c), g17(f))
					}
				}
				run(t, "liblinear-train", append(args, train, model)...)
				predArgs := []string{test, model, out}
				if tc.loss == LogReg {
					predArgs = append([]string{"-b", "1"}, predArgs...)
				}
				run(t, "liblinear-predict", predArgs...)
				cLabels, cProbs := readPredictions(t, out, set.classes)
				ref := refLinearModel(t, model, tc.loss, set.classes, d)

				disagree, correct := 0, 0
				var maxDiff, maxDec, maxPDiff float64
				for i, x := range set.testX {
					if cLabels[i] == set.testY[i] {
						correct++
					}
					if l, _ := ref.Predict(x); l != cLabels[i] {
						t.Errorf("C model, our predictor: sample %d label %d, liblinear-predict %d", i, l, cLabels[i])
					}
					dGo, dC := got.Decision(x), ref.Decision(x)
					for k := range dGo {
						maxDiff = math.Max(maxDiff, math.Abs(dGo[k]-dC[k]))
						maxDec = math.Max(maxDec, math.Abs(dC[k]))
					}
					l, pr := got.Predict(x)
					if l != cLabels[i] {
						disagree++
						// One-vs-rest: a near-tie is two top decision values within tolerance.
						if gap := topGap(dC); gap > 0.02 {
							t.Errorf("sample %d: go %d, C %d, not a near-tie (C's top-2 decision gap %.3g)", i, l, cLabels[i], gap)
						}
					}
					for c := range pr {
						maxPDiff = math.Max(maxPDiff, math.Abs(pr[c]-cProbs[i][c]))
					}
				}
				t.Logf("%d test vectors (C accuracy %.3f): %d label disagreements; max |decision diff| %.3g (max |decision| %.3g); max |prob diff| %.3g",
					len(set.testX), float64(correct)/float64(len(set.testX)), disagree, maxDiff, maxDec, maxPDiff)
				if limit := max(2, len(set.testX)/100); disagree > limit {
					t.Errorf("%d disagreements with liblinear, want <= %d", disagree, limit)
				}
				if maxPDiff > 1e-2 {
					t.Errorf("max |probability diff| %.3g with liblinear-predict -b 1, want <= 1e-2", maxPDiff)
				}
				if tc.loss == Linear && got.HasProbabilities() {
					t.Error("linear SVM claims probabilities")
				}
			})
		}
	}
}

// topGap is the gap between the two largest values (binary: |value|).
func topGap(dec []float64) float64 {
	if len(dec) == 1 {
		return math.Abs(dec[0])
	}
	a, b := math.Inf(-1), math.Inf(-1)
	for _, v := range dec {
		if v > a {
			a, b = v, a
		} else if v > b {
			b = v
		}
	}
	return a - b
}
