package classify

import (
	"math"
	"testing"
)

func TestSpanCoordinates(t *testing.T) {
	ds := synthCodes(120, 600, 3, 5) // n <= d/2: the compression applies
	X := float64s(ds.X)
	Z, ok := spanCoordinates(X)
	if !ok {
		t.Fatal("not applied to 120 x 600")
	}
	if len(Z[0]) > len(X) {
		t.Errorf("%d coordinates for %d vectors", len(Z[0]), len(X))
	}
	// Every dot product, hence every kernel value, is kept.
	worst := 0.0
	for i := range X {
		for j := range X {
			want := dotDense(X[i], X[j])
			got := dotDense(Z[i], Z[j])
			scale := math.Sqrt(dotDense(X[i], X[i]) * dotDense(X[j], X[j]))
			worst = math.Max(worst, math.Abs(got-want)/scale)
		}
	}
	if worst > 1e-11 {
		t.Errorf("dot products differ by up to %.3g (relative)", worst)
	}
	if _, ok := spanCoordinates(float64s(synthCodes(400, 600, 3, 7).X)); ok {
		t.Error("applied to 400 x 600, where it cannot help")
	}

	// The same SVM either way: same support vectors, same decisions.
	p := DefaultParams(SVM)
	var direct, span SVMClassifier
	probDirect, err := newLibsvmProblem(X, labelsFloat(ds.Y))
	if err != nil {
		t.Fatal(err)
	}
	if err := direct.fitProblem(probDirect, X, ds.Y, 3, p); err != nil {
		t.Fatal(err)
	}
	if err := span.Fit(X, ds.Y, 3, p); err != nil {
		t.Fatal(err)
	}
	if len(direct.SV) != len(span.SV) {
		t.Fatalf("%d support vectors trained on X, %d on span coordinates", len(direct.SV), len(span.SV))
	}
	test := float64s(synthCodes(60, 600, 3, 6).X)
	maxDiff := 0.0
	for _, x := range test {
		a, la := direct.Decision(x)
		b, lb := span.Decision(x)
		if la != lb {
			t.Errorf("labels differ: %d vs %d", la, lb)
		}
		for k := range a {
			maxDiff = math.Max(maxDiff, math.Abs(a[k]-b[k]))
		}
	}
	t.Logf("max decision difference %.2g", maxDiff)
	if maxDiff > 1e-6 {
		t.Errorf("decision values differ by %.3g", maxDiff)
	}
}
