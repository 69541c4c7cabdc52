package classify

import (
	"errors"
	"math"
	"testing"
)

func TestKNNClassifier_Predict(t *testing.T) {
	// Reference: scikit-learn 1.2.1,
	//   rng = np.random.RandomState(0)
	//   X = rng.randint(0,16,size=(12,3))/4.0; y = [0,1,2,0,1,2,0,1,2,0,1,1]
	//   Q = rng.randint(0,16,size=(6,3))/4.0
	//   m = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute").fit(X, y)
	//   m.predict(Q), m.predict_proba(Q)
	// Several queries tie 1-1 or 1-1-1: sklearn and we pick the smallest class.
	X := [][]float64{{3.0, 3.75, 1.25}, {0.0, 0.75, 2.75}, {0.75, 1.75, 2.25}, {0.75, 1.25, 0.5}, {1.0, 1.75, 1.5}, {2.0, 2.0, 3.0}, {2.5, 0.25, 1.5}, {1.75, 1.75, 3.5}, {2.0, 0.25, 1.25}, {2.25, 3.25, 2.0}, {2.25, 1.0, 0.75}, {0.0, 0.75, 1.25}}
	y := []int{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 1}
	Q := [][]float64{{3.5, 3.75, 3.75}, {0.0, 0.5, 0.75}, {2.0, 0.25, 0.75}, {3.25, 0.75, 0.75}, {3.5, 1.75, 0.0}, {0.25, 2.25, 2.25}}
	const third, half = 1.0 / 3, 0.5
	cases := []struct {
		metric string
		k      int
		labels []int
		probs  [][]float64
	}{
		{"euclidean", 3, []int{0, 1, 0, 0, 0, 1}, [][]float64{{2 * third, 0, third}, {third, 2 * third, 0}, {third, third, third}, {third, third, third}, {2 * third, third, 0}, {0, 2 * third, third}}},
		{"euclidean", 2, []int{0, 0, 1, 0, 0, 1}, [][]float64{{half, 0, half}, {half, half, 0}, {0, half, half}, {half, half, 0}, {half, half, 0}, {0, half, half}}},
		{"cosine", 3, []int{0, 1, 0, 0, 0, 1}, [][]float64{{third, third, third}, {0, 2 * third, third}, {third, third, third}, {third, third, third}, {2 * third, third, 0}, {0, 2 * third, third}}},
		{"cosine", 2, []int{1, 1, 0, 0, 0, 1}, [][]float64{{0, half, half}, {0, half, half}, {half, 0, half}, {half, half, 0}, {half, half, 0}, {0, half, half}}},
	}
	for _, tc := range cases {
		t.Run(tc.metric+"/k"+string(rune('0'+tc.k)), func(t *testing.T) {
			p := DefaultParams(KNN)
			p.K, p.Metric = tc.k, tc.metric
			var m KNNClassifier
			if err := m.Fit(X, y, 3, p); err != nil {
				t.Fatal(err)
			}
			for i, q := range Q {
				l, pr := m.Predict(q)
				if l != tc.labels[i] {
					t.Errorf("query %d: label %d, sklearn %d", i, l, tc.labels[i])
				}
				for c := range pr {
					if math.Abs(pr[c]-tc.probs[i][c]) > 1e-15 {
						t.Errorf("query %d: probabilities %v, sklearn %v", i, pr, tc.probs[i])
						break
					}
				}
			}
		})
	}
	t.Run("ErrBadParam", func(t *testing.T) {
		p := DefaultParams(KNN)
		p.K = 13
		var m KNNClassifier
		if err := m.Fit(X, y, 3, p); !errors.Is(err, ErrBadParam) {
			t.Errorf("k > samples: err = %v, want ErrBadParam", err)
		}
	})
}
