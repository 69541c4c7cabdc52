package classify

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestStratifiedFolds(t *testing.T) {
	// 4 classes of 23, 17, 9 and 5 samples, interleaved.
	var y []int
	for c, n := range []int{23, 17, 9, 5} {
		for i := 0; i < n; i++ {
			y = append(y, c)
		}
	}
	classes := []string{"a", "b", "c", "d"}
	const k = 5
	t.Run("Stratified", func(t *testing.T) {
		folds, err := StratifiedFolds(y, classes, k, 3)
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]int, len(y))
		for f, fold := range folds {
			counts := make([]int, len(classes))
			for _, i := range fold {
				seen[i]++
				counts[y[i]]++
			}
			for c, n := range []int{23, 17, 9, 5} {
				lo, hi := n/k, (n+k-1)/k
				if counts[c] < lo || counts[c] > hi {
					t.Errorf("fold %d has %d of class %s, want %d..%d", f, counts[c], classes[c], lo, hi)
				}
			}
			if len(fold) < len(y)/k || len(fold) > (len(y)+k-1)/k {
				t.Errorf("fold %d has %d samples, want %d..%d", f, len(fold), len(y)/k, (len(y)+k-1)/k)
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Errorf("sample %d is in %d folds, want 1", i, n)
			}
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		a, _ := StratifiedFolds(y, classes, k, 3)
		b, _ := StratifiedFolds(y, classes, k, 3)
		c, _ := StratifiedFolds(y, classes, k, 4)
		if !slices.EqualFunc(a, b, slices.Equal) {
			t.Error("same seed, different folds")
		}
		if slices.EqualFunc(a, c, slices.Equal) {
			t.Error("seeds 3 and 4 give the same folds")
		}
	})
	t.Run("ErrTooFewSamples", func(t *testing.T) {
		_, err := StratifiedFolds(y, classes, 6, 1)
		if !errors.Is(err, ErrTooFewSamples) {
			t.Fatalf("err = %v, want ErrTooFewSamples", err)
		}
		for _, want := range []string{`class "d"`, "5 samples", "6 folds"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	})
}

func TestCrossValidate(t *testing.T) {
	// Features on very different scales, so that a scaler fitted on all
	// the data instead of each fold's training part changes neighbours.
	ds := synthCodes(120, 16, 3, 5)
	for i, x := range ds.X {
		x[0] *= 100
		if i%7 == 0 {
			x[1] += 50
		}
	}
	p := DefaultParams(KNN)
	p.K = 3
	p.Transform = TransformSpec{Scale: ScaleMinMax}
	p.Seed = 9
	const k = 4
	got, err := CrossValidate(ds, p, k)
	if err != nil {
		t.Fatal(err)
	}

	// Independent re-run: each fold's transform fitted on its training
	// part only; and the leaky variant, fitted on all the data.
	folds, _ := StratifiedFolds(ds.Y, ds.Classes, k, p.Seed)
	leakyT, _ := FitTransform(p.Transform, ds.X)
	leakyDiffers := false
	for f, test := range folds {
		train := trainIndices(len(ds.Y), test)
		tr := ds.subset(train)
		ft, err := FitTransform(p.Transform, tr.X)
		if err != nil {
			t.Fatal(err)
		}
		Z, _ := ft.ApplyAll(tr.X)
		LZ, _ := leakyT.ApplyAll(tr.X)
		var clf, leaky KNNClassifier
		if err := clf.Fit(Z, tr.Y, 3, p); err != nil {
			t.Fatal(err)
		}
		leaky.Fit(LZ, tr.Y, 3, p)
		correct := 0
		for _, i := range test {
			z, _ := ft.Apply(ds.X[i])
			want, _ := clf.Predict(z)
			if got.OutOfFold[i] != want {
				t.Errorf("fold %d sample %d: CV predicted %d, fold-fitted pipeline %d", f, i, got.OutOfFold[i], want)
			}
			lz, _ := leakyT.Apply(ds.X[i])
			if l, _ := leaky.Predict(lz); l != want {
				leakyDiffers = true
			}
			if want == ds.Y[i] {
				correct++
			}
		}
		if acc := float64(correct) / float64(len(test)); got.Folds[f].Accuracy != acc {
			t.Errorf("fold %d accuracy %v, want %v", f, got.Folds[f].Accuracy, acc)
		}
		if got.Folds[f].NTrain != len(train) || got.Folds[f].NTest != len(test) {
			t.Errorf("fold %d sizes %d/%d, want %d/%d", f, got.Folds[f].NTrain, got.Folds[f].NTest, len(train), len(test))
		}
	}
	if !leakyDiffers {
		t.Fatal("test data too easy: a scaler fitted on all data predicts the same, so leakage would go unnoticed")
	}
	acc := make([]float64, k)
	for i, f := range got.Folds {
		acc[i] = f.Accuracy
	}
	mean, std := meanStd(acc)
	if got.MeanAccuracy != mean || got.StdAccuracy != std {
		t.Errorf("mean/std %v/%v, want %v/%v", got.MeanAccuracy, got.StdAccuracy, mean, std)
	}
	t.Logf("CV accuracy %.3f ± %.3f, macro-F1 %.3f ± %.3f", got.MeanAccuracy, got.StdAccuracy, got.MeanMacroF1, got.StdMacroF1)
}

func TestMeanStd(t *testing.T) {
	// numpy 1.24: np.mean(v), np.std(v) (population, ddof=0).
	for _, tc := range []struct {
		v         []float64
		mean, std float64
	}{
		{[]float64{0.5, 0.75, 1.0, 0.75}, 0.75, 0.1767766952966369},
		{[]float64{0.9230769230769231, 0.8461538461538461, 0.9615384615384616, 0.8846153846153846, 0.9230769230769231}, 0.9076923076923077, 0.03922322702763683},
	} {
		m, s := meanStd(tc.v)
		if math.Abs(m-tc.mean) > 1e-15 || math.Abs(s-tc.std) > 1e-15 {
			t.Errorf("meanStd(%v) = %v, %v; want %v, %v", tc.v, m, s, tc.mean, tc.std)
		}
	}
}
