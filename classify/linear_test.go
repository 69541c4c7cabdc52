package classify

import (
	"reflect"
	"sync"
	"testing"
)

func TestLinearClassifier_Fit(t *testing.T) {
	set := synthRefSet(64, 12)
	t.Run("Deterministic", func(t *testing.T) {
		// The dual solver shuffles with C's rand(): seeded under a lock,
		// concurrent fits with the same seed give identical weights.
		p := DefaultParams(Linear)
		models := make([]LinearClassifier, 4)
		var wg sync.WaitGroup
		for i := range models {
			models[i].Loss = Linear
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := models[i].Fit(set.trainX, set.trainY, set.classes, p); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for i := 1; i < len(models); i++ {
			if !reflect.DeepEqual(models[0], models[i]) {
				t.Errorf("fit %d differs from fit 0", i)
			}
		}
	})
	t.Run("Binary", func(t *testing.T) {
		// Two classes: one weight row; labels and probabilities follow
		// liblinear (dec > 0 -> Labels[0], P(Labels[0]) = sigmoid(dec)).
		var X [][]float64
		var y []int
		for i, c := range set.trainY {
			if c == 1 || c == 2 {
				X, y = append(X, set.trainX[i]), append(y, c)
			}
		}
		var m LinearClassifier
		m.Loss = LogReg
		if err := m.Fit(X, y, 4, DefaultParams(LogReg)); err != nil {
			t.Fatal(err)
		}
		if len(m.W) != 1 {
			t.Fatalf("%d weight rows, want 1", len(m.W))
		}
		for _, x := range set.testX[:20] {
			l, pr := m.Predict(x)
			d := m.Decision(x)[0]
			want := m.Labels[1]
			if d > 0 {
				want = m.Labels[0]
			}
			if l != want || pr[0] != 0 || pr[3] != 0 || pr[1]+pr[2] < 1-1e-12 || (pr[m.Labels[0]] > 0.5) != (d > 0) {
				t.Fatalf("decision %v: label %d, probabilities %v", d, l, pr)
			}
		}
	})
}
