package classify

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// softmaxFixture is classify/testdata/softmax_sklearn.json, written by
// testdata/gen_softmax_fixture.py with scikit-learn's
// LogisticRegression(multi_class="multinomial").
type softmaxFixture struct {
	Sklearn string `json:"sklearn"`
	Cases   []struct {
		Name       string      `json:"name"`
		C          float64     `json:"C"`
		Balanced   bool        `json:"balanced"`
		Classes    int         `json:"classes"`
		X          [][]float64 `json:"X"`
		Y          []int       `json:"y"`
		XTest      [][]float64 `json:"X_test"`
		Coef       [][]float64 `json:"coef"`
		Intercept  []float64   `json:"intercept"`
		ProbaTrain [][]float64 `json:"proba_train"`
		ProbaTest  [][]float64 `json:"proba_test"`
	} `json:"cases"`
}

func maxAbsDiff(t *testing.T, what string, got, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var m float64
	for i := range got {
		m = math.Max(m, math.Abs(got[i]-want[i]))
	}
	return m
}

func TestSoftmaxClassifier_SklearnParity(t *testing.T) {
	b, err := os.ReadFile("testdata/softmax_sklearn.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx softmaxFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx.Cases) < 4 {
		t.Fatalf("fixture has %d cases", len(fx.Cases))
	}
	const tol = 1e-4
	for _, c := range fx.Cases {
		t.Run(c.Name, func(t *testing.T) {
			p := DefaultParams(Softmax)
			p.C, p.Balanced, p.Tol = c.C, c.Balanced, 1e-10
			m := &SoftmaxClassifier{}
			if err := m.Fit(c.X, c.Y, c.Classes, p); err != nil {
				t.Fatal(err)
			}
			var worstCoef, worstB, worstP float64
			rows := c.Coef
			if c.Classes == 2 {
				// sklearn keeps W_1 (and W_0 = -W_1); check the symmetry too.
				worstCoef = maxAbsDiff(t, "W0", m.W[0], neg(c.Coef[0]))
				worstB = math.Abs(m.B[0] + c.Intercept[0])
				rows = [][]float64{c.Coef[0]}
			}
			for r, want := range rows {
				row := r
				if c.Classes == 2 {
					row = 1
				}
				worstCoef = math.Max(worstCoef, maxAbsDiff(t, "coef", m.W[row], want))
				worstB = math.Max(worstB, math.Abs(m.B[row]-c.Intercept[r]))
			}
			for _, set := range []struct {
				X, P [][]float64
			}{{c.X, c.ProbaTrain}, {c.XTest, c.ProbaTest}} {
				for i, x := range set.X {
					label, probs := m.Predict(x)
					worstP = math.Max(worstP, maxAbsDiff(t, "proba", probs, set.P[i]))
					if label != argmax(set.P[i]) {
						t.Errorf("row %d: label %d, sklearn's argmax %d", i, label, argmax(set.P[i]))
					}
				}
			}
			t.Logf("max |Δ| vs sklearn %s: coef %.2g, intercept %.2g, proba %.2g (%d L-BFGS iterations, gradient %.2g)",
				fx.Sklearn, worstCoef, worstB, worstP, m.Iterations, m.GradNorm)
			if worstCoef > tol || worstB > tol || worstP > tol {
				t.Errorf("parity: coef %.3g, intercept %.3g, proba %.3g, want <= %g", worstCoef, worstB, worstP, tol)
			}
		})
	}
}

func neg(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = -x
	}
	return out
}

func TestSoftmaxClassifier_RoundTrip(t *testing.T) {
	ds := synthCodes(120, 40, 3, 7)
	p := DefaultParams(Softmax)
	m, err := Fit(ds, p)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Load(blob)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range ds.X {
		a, _ := m.Predict(x)
		b, _ := m2.Predict(x)
		if a.Label != b.Label || maxAbsDiff(t, "probs", a.Probs, b.Probs) != 0 {
			t.Fatalf("vector %d: %v vs %v after reload", i, a, b)
		}
	}
}
