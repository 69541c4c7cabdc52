package classify

import (
	"math"
	"reflect"
	"runtime"
	"testing"
)

func TestForestClassifier_Fit(t *testing.T) {
	t.Run("Threshold", func(t *testing.T) {
		// One feature, two separated groups: every tree that sees both
		// classes splits halfway between the largest class-0 value and the
		// smallest class-1 value of its bootstrap sample (sklearn's
		// midpoint rule).
		X := [][]float64{{1}, {2}, {3}, {10}, {11}, {12}}
		y := []int{0, 0, 0, 1, 1, 1}
		p := DefaultParams(Forest)
		p.Trees = 50
		var m ForestClassifier
		if err := m.Fit(X, y, 2, p); err != nil {
			t.Fatal(err)
		}
		mid := map[float64]bool{}
		for _, a := range []float64{1, 2, 3} {
			for _, b := range []float64{10, 11, 12} {
				mid[(a+b)/2] = true
			}
		}
		for _, tr := range m.Trees {
			if tr.Feature[0] == 0 && !mid[tr.Threshold[0]] {
				t.Errorf("root threshold %v, want (a+b)/2 for a in 1..3, b in 10..12", tr.Threshold[0])
			}
		}
		for _, tc := range []struct {
			x    float64
			want int
		}{{0, 0}, {6, 0}, {7, 1}, {20, 1}} {
			if l, pr := m.Predict([]float64{tc.x}); l != tc.want || pr[tc.want] < 0.8 {
				t.Errorf("x=%v: label %d (probabilities %v), want %d", tc.x, l, pr, tc.want)
			}
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		// Same seed: same forest, whatever the number of cores; other seed:
		// other forest.
		ds := synthCodes(150, 32, 3, 2)
		X := float64s(ds.X)
		p := DefaultParams(Forest)
		p.Trees = 16
		var a, b, c ForestClassifier
		if err := a.Fit(X, ds.Y, 3, p); err != nil {
			t.Fatal(err)
		}
		old := runtime.GOMAXPROCS(1)
		b.Fit(X, ds.Y, 3, p)
		runtime.GOMAXPROCS(old)
		p.Seed = 2
		c.Fit(X, ds.Y, 3, p)
		if !reflect.DeepEqual(a, b) {
			t.Error("same seed, different forests")
		}
		if reflect.DeepEqual(a, c) {
			t.Error("seeds 1 and 2 give the same forest")
		}
		// Probabilities are averaged leaf frequencies.
		for _, x := range X[:20] {
			_, pr := a.Predict(x)
			var sum float64
			for _, v := range pr {
				sum += v
			}
			if math.Abs(sum-1) > 1e-6 {
				t.Fatalf("probabilities %v sum to %v", pr, sum)
			}
		}
	})
	t.Run("Accuracy", func(t *testing.T) {
		// Held-out accuracy on the synthetic codes: a forest should beat
		// chance (1/4) by far; sklearn's RandomForestClassifier(100) gets
		// about the same as ours on such data (0.8-0.9).
		set := synthRefSet(256, 6)
		var m ForestClassifier
		if err := m.Fit(set.trainX, set.trainY, 4, DefaultParams(Forest)); err != nil {
			t.Fatal(err)
		}
		correct := 0
		for i, x := range set.testX {
			if l, _ := m.Predict(x); l == set.testY[i] {
				correct++
			}
		}
		if acc := float64(correct) / float64(len(set.testX)); acc < 0.7 {
			t.Errorf("held-out accuracy %.3f, want >= 0.7", acc)
		} else {
			t.Logf("held-out accuracy %.3f", acc)
		}
	})
}
