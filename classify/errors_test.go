package classify

import (
	"errors"
	"strings"
	"testing"
)

func TestFit_Errors(t *testing.T) {
	ds := synthCodes(40, 8, 2, 1)
	cases := []struct {
		name   string
		mutate func(*Dataset, *Params)
		want   error
		words  []string
	}{
		{"OneClass", func(d *Dataset, p *Params) {
			for i := range d.Y {
				d.Y[i] = 0
			}
		}, ErrTooFewClasses, []string{"1 class"}},
		{"UnknownClassifier", func(d *Dataset, p *Params) { p.Classifier = "xgboost" }, ErrUnknownClassifier, []string{"xgboost", "svm, linear"}},
		{"UnknownKernel", func(d *Dataset, p *Params) { p.Kernel = "laplace" }, ErrUnknownKernel, []string{"laplace"}},
		{"BadC", func(d *Dataset, p *Params) { p.C = 0 }, ErrBadParam, []string{"C 0"}},
		{"BadGamma", func(d *Dataset, p *Params) { p.Gamma = Gamma{Value: -1} }, ErrBadParam, []string{"gamma -1"}},
		{"BadDegree", func(d *Dataset, p *Params) { p.Kernel, p.Degree = "poly", 0 }, ErrBadParam, []string{"degree 0"}},
		{"BadPCA", func(d *Dataset, p *Params) { p.Transform.PCA = 9 }, ErrBadParam, []string{"pca 9", "features 8"}},
		{"RaggedRows", func(d *Dataset, p *Params) { d.X[3] = d.X[3][:5] }, ErrDimMismatch, []string{"vector 3", "length 5"}},
		{"LabelOutOfRange", func(d *Dataset, p *Params) { d.Y[7] = 2 }, ErrBadData, []string{"label 2", "vector 7"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Dataset{Classes: ds.Classes, Y: append([]int(nil), ds.Y...)}
			for _, x := range ds.X {
				d.X = append(d.X, append([]float32(nil), x...))
			}
			p := DefaultParams(SVM)
			tc.mutate(d, &p)
			_, err := Fit(d, p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestModel_Predict(t *testing.T) {
	ds := synthCodes(40, 8, 2, 1)
	m, err := Fit(ds, DefaultParams(LogReg))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ErrDimMismatch", func(t *testing.T) {
		_, err := m.Predict(make([]float32, 4096))
		if !errors.Is(err, ErrDimMismatch) || !strings.Contains(err.Error(), "got 4096 features, model expects 8") {
			t.Errorf("err = %v, want ErrDimMismatch with 'got 4096 features, model expects 8'", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		pr, err := m.Predict(ds.X[0])
		if err != nil {
			t.Fatal(err)
		}
		if pr.Class != ds.Classes[pr.Label] || len(pr.Probs) != 2 {
			t.Errorf("prediction %+v", pr)
		}
	})
}

func TestParseGamma(t *testing.T) {
	for in, want := range map[string]Gamma{"": {Rule: "scale"}, "scale": {Rule: "scale"}, "auto": {Rule: "auto"}, "0.5": {Value: 0.5}, "1e-3": {Value: 1e-3}} {
		got, err := ParseGamma(in)
		if err != nil || got != want {
			t.Errorf("ParseGamma(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "fast", "NaN", "Inf"} {
		if _, err := ParseGamma(in); !errors.Is(err, ErrBadParam) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseGamma(%q): err = %v, want ErrBadParam naming the input", in, err)
		}
	}
	// 'scale' is 1/(n_features * X.var()), X.var() over all entries
	// (numpy: np.array([[0,1],[2,3],[4,5]]).var() = 2.9166666666666665).
	X := [][]float64{{0, 1}, {2, 3}, {4, 5}}
	if got, want := (Gamma{Rule: "scale"}).resolve(X), 1/(2*2.9166666666666665); got != want {
		t.Errorf("scale gamma = %v, want %v", got, want)
	}
	if got := (Gamma{Rule: "auto"}).resolve(X); got != 0.5 {
		t.Errorf("auto gamma = %v, want 0.5", got)
	}
}
