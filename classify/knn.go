package classify

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// KNNClassifier is k-nearest-neighbours with uniform votes, as sklearn's
// KNeighborsClassifier(weights="uniform", algorithm="brute"). It is ours,
// not golearn's: golearn's KNN prints a progress line per query on stdout,
// breaks vote ties by Go map order (random), and its non-euclidean path
// builds a gonum matrix per training row (see DESIGN.md for timings).
//
// Neighbours are ordered by (distance, training index); the vote winner is
// the class with most votes, ties going to the smallest class index
// (sklearn's mode); probabilities are vote fractions.
type KNNClassifier struct {
	K        int
	Metric   string // euclidean or cosine
	NClasses int
	// Training vectors, stored as float32 to halve the model size; they
	// are transformed CNN codes, so float32 is their native precision.
	X [][]float32
	Y []int

	norms []float64 // |X_i|, derived, for cosine
}

// Kind implements Classifier.
func (m *KNNClassifier) Kind() string { return KNN }

// HasProbabilities implements Classifier.
func (m *KNNClassifier) HasProbabilities() bool { return true }

// Fit implements Classifier: it stores the training set.
func (m *KNNClassifier) Fit(X [][]float64, y []int, nClasses int, p Params) error {
	p.Classifier = KNN
	if err := p.Validate(); err != nil {
		return err
	}
	if p.K > len(X) {
		return fmt.Errorf("k %d exceeds the %d training samples: %w", p.K, len(X), ErrBadParam)
	}
	*m = KNNClassifier{K: p.K, Metric: p.Metric, NClasses: nClasses, Y: append([]int(nil), y...)}
	m.X = make([][]float32, len(X))
	for i, x := range X {
		m.X[i] = make([]float32, len(x))
		for j, v := range x {
			m.X[i][j] = float32(v)
		}
	}
	m.derive()
	return nil
}

func (m *KNNClassifier) derive() {
	m.norms = make([]float64, len(m.X))
	for i, x := range m.X {
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		m.norms[i] = math.Sqrt(s)
	}
}

type neighbour struct {
	dist float64
	i    int
}

// neighbours returns the k nearest training samples of x, nearest first.
func (m *KNNClassifier) neighbours(x []float64) []neighbour {
	if m.norms == nil {
		m.derive()
	}
	nb := make([]neighbour, len(m.X))
	var xn float64
	if m.Metric == "cosine" {
		for _, v := range x {
			xn += v * v
		}
		xn = math.Sqrt(xn)
	}
	for i, t := range m.X {
		var d float64
		if m.Metric == "cosine" {
			var dot float64
			for j, v := range t {
				dot += x[j] * float64(v)
			}
			// Zero vectors have similarity 0 with everything (sklearn).
			if xn > 0 && m.norms[i] > 0 {
				d = 1 - dot/(xn*m.norms[i])
			} else {
				d = 1
			}
		} else {
			for j, v := range t {
				diff := x[j] - float64(v)
				d += diff * diff
			}
		}
		nb[i] = neighbour{d, i}
	}
	slices.SortFunc(nb, func(a, b neighbour) int {
		if c := cmp.Compare(a.dist, b.dist); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	return nb[:m.K]
}

// Predict implements Classifier.
func (m *KNNClassifier) Predict(x []float64) (int, []float64) {
	votes := make([]int, m.NClasses)
	for _, n := range m.neighbours(x) {
		votes[m.Y[n.i]]++
	}
	best := 0
	probs := make([]float64, m.NClasses)
	for c, v := range votes {
		if v > votes[best] {
			best = c
		}
		probs[c] = float64(v) / float64(m.K)
	}
	return best, probs
}

// kNNClassifierState has the fields but not the methods (gob would call
// MarshalBinary recursively).
type kNNClassifierState KNNClassifier

// MarshalBinary implements Classifier.
func (m *KNNClassifier) MarshalBinary() ([]byte, error) { return gobBytes((*kNNClassifierState)(m)) }

// UnmarshalBinary implements Classifier.
func (m *KNNClassifier) UnmarshalBinary(b []byte) error {
	var s KNNClassifier
	if err := ungob(b, (*kNNClassifierState)(&s)); err != nil {
		return err
	}
	ok := s.K >= 1 && s.K <= len(s.X) && len(s.X) == len(s.Y) && (s.Metric == "euclidean" || s.Metric == "cosine")
	for i, x := range s.X {
		ok = ok && len(x) == len(s.X[0]) && s.Y[i] >= 0 && s.Y[i] < s.NClasses
	}
	if !ok {
		return fmt.Errorf("knn state inconsistent: %w", ErrBadModel)
	}
	*m = s
	m.derive()
	return nil
}

func (m *KNNClassifier) shape() (int, int) { return len(m.X[0]), m.NClasses }
