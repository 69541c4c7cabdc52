package classify

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// Reference values: scikit-learn 1.2.1 on this data.
//
//	import numpy as np
//	from sklearn.preprocessing import StandardScaler, MinMaxScaler, Normalizer
//	from sklearn.decomposition import PCA
//	X = np.array([[1.5,0,2,3],[0.25,0,4,3],[2,1,0,3],[0,3.5,1,3],[1,2,2.5,3],[3,0.5,0.75,3]])
//	x = np.array([[2,1,1,7]])
//	s = StandardScaler().fit(X); s.mean_, s.scale_, s.transform(x)
//	MinMaxScaler().fit(X).transform(x)
//	Normalizer().transform(x)
//	Z = Normalizer().transform(X); s2 = StandardScaler().fit(Z); Z2 = s2.transform(Z)
//	p = PCA(n_components=2, svd_solver='full').fit(Z2)
//	C = p.components_.copy()   # then flip each row so its largest |entry| is positive
//	p.explained_variance_, p.explained_variance_ratio_
//	(s2.transform(Normalizer().transform(x)) - p.mean_) @ C.T
//
// Column 3 is constant: sklearn maps x to x-mean there (4.0), we map it to 0.
var (
	refX = [][]float32{{1.5, 0, 2, 3}, {0.25, 0, 4, 3}, {2, 1, 0, 3}, {0, 3.5, 1, 3}, {1, 2, 2.5, 3}, {3, 0.5, 0.75, 3}}
	refx = []float32{2, 1, 1, 7}
)

func closeTo(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			t.Errorf("%s[%d] = %.17g, want %.17g", name, i, got[i], want[i])
		}
	}
}

func TestFitTransform(t *testing.T) {
	t.Run("Standard", func(t *testing.T) {
		tr, err := FitTransform(TransformSpec{Scale: ScaleStandard}, refX)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "mean", tr.Offset, []float64{1.2916666666666667, 1.1666666666666667, 1.7083333333333333, 3.0}, 1e-15)
		// Scale 0 marks the constant feature (sklearn's scale_ is 1 there).
		closeTo(t, "scale", tr.Scale, []float64{1.0248644896874037, 1.247219128924647, 1.3103487661263657, 0}, 1e-15)
		z, err := tr.Apply(refx)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "x", z, []float64{0.6911482839544802, -0.13363062095621225, -0.5405685506365593, 0}, 1e-15)
	})
	t.Run("MinMax", func(t *testing.T) {
		tr, err := FitTransform(TransformSpec{Scale: ScaleMinMax}, refX)
		if err != nil {
			t.Fatal(err)
		}
		z, _ := tr.Apply(refx)
		closeTo(t, "x", z, []float64{0.6666666666666666, 0.2857142857142857, 0.25, 0}, 1e-15)
	})
	t.Run("L2", func(t *testing.T) {
		tr, err := FitTransform(TransformSpec{L2: true}, refX)
		if err != nil {
			t.Fatal(err)
		}
		z, _ := tr.Apply(refx)
		closeTo(t, "x", z, []float64{0.26967994498529685, 0.13483997249264842, 0.13483997249264842, 0.9438798074485389}, 1e-15)
		zero, _ := tr.Apply(make([]float32, 4))
		closeTo(t, "zero vector", zero, make([]float64, 4), 0)
	})
	t.Run("L2StandardPCA", func(t *testing.T) {
		tr, err := FitTransform(TransformSpec{L2: true, Scale: ScaleStandard, PCA: 2}, refX)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "component 0", tr.Components[0], []float64{0.6111400806624807, -0.17201071535041784, -0.4919245838705592, 0.5957602868572823}, 1e-12)
		closeTo(t, "component 1", tr.Components[1], []float64{-0.18244445505543105, 0.8179490705425055, -0.5449433151085827, -0.026648116943738562}, 1e-12)
		closeTo(t, "explained variance", tr.ExplainedVariance, []float64{2.7001659009253407, 1.6299675843981334}, 1e-12)
		closeTo(t, "explained variance ratio", tr.ExplainedVarianceRatio, []float64{0.5625345626927791, 0.33957658008294433}, 1e-12)
		z, err := tr.Apply(refx)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "x", z, []float64{2.5094362521764655, 0.032255393633105256}, 1e-12)
		if tr.OutDim() != 2 {
			t.Errorf("OutDim = %d, want 2", tr.OutDim())
		}
	})
	t.Run("FittedOnTrainingOnly", func(t *testing.T) {
		// CV folds fit the scaler on their own part: its mean must be that
		// part's mean, not the mean over all the data.
		tr, err := FitTransform(TransformSpec{Scale: ScaleStandard}, refX[:3])
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "mean of rows 0-2", tr.Offset, []float64{(1.5 + 0.25 + 2) / 3, 1.0 / 3, 2, 3}, 1e-15)
	})
	t.Run("ErrDimMismatch", func(t *testing.T) {
		tr, _ := FitTransform(TransformSpec{}, refX)
		_, err := tr.Apply([]float32{1, 2})
		if !errors.Is(err, ErrDimMismatch) || !strings.Contains(err.Error(), "got 2 features, model expects 4") {
			t.Errorf("err = %v, want ErrDimMismatch naming 2 and 4", err)
		}
	})
	t.Run("ErrBadParam", func(t *testing.T) {
		if _, err := FitTransform(TransformSpec{PCA: 7}, refX); !errors.Is(err, ErrBadParam) || !strings.Contains(err.Error(), "pca 7") {
			t.Errorf("pca > samples: err = %v, want ErrBadParam", err)
		}
		if _, err := FitTransform(TransformSpec{Scale: "robust"}, refX); !errors.Is(err, ErrBadParam) || !strings.Contains(err.Error(), "robust") {
			t.Errorf("unknown scale: err = %v, want ErrBadParam", err)
		}
	})
}
