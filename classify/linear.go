package classify

import (
	"fmt"
	"math"
)

// liblinear solver numbers (liblinear's solver_type).
const (
	solverL2RLR            = 0 // L2-regularised logistic regression, primal (trust-region Newton)
	solverL2RL2LossSVCDual = 1 // L2-regularised L2-loss SVM, dual coordinate descent
)

// LinearClassifier is a liblinear model, L2-regularised with a regularised
// bias feature of value 1 (liblinear -B 1, sklearn's intercept_scaling=1),
// one-vs-rest for more than two classes:
//
//   - linear: squared-hinge SVM by dual coordinate descent (liblinear -s 1,
//     sklearn LinearSVC's default), tolerance 1e-4 (sklearn's). The
//     primal Newton solver (-s 2) stalls short of the optimum on nearly
//     separable CNN codes, in liblinear 1.94 and 2.3 alike (objective 2%
//     above the dual's at -e 1e-8 on our test data). The dual solver
//     shuffles with C's rand(), which we seed with Params.Seed under a
//     lock, so fits are reproducible but not concurrent.
//   - logreg: logistic regression by the primal trust-region Newton
//     solver (liblinear -s 0, deterministic), tolerance 1e-6: tighter than
//     liblinear's 0.01 and sklearn's 1e-4 so that the result is the
//     optimum to ~8 digits rather than to the tolerance, at little cost.
type LinearClassifier struct {
	Loss     string // Linear or LogReg
	NClasses int
	Labels   []int       // class index of each row of W (liblinear order)
	W        [][]float64 // nr_w x d; nr_w = 1 for two classes
	Bias     []float64   // weight of the bias feature, per row of W
}

// Kind implements Classifier.
func (m *LinearClassifier) Kind() string { return m.Loss }

// HasProbabilities implements Classifier: logistic regression only.
func (m *LinearClassifier) HasProbabilities() bool { return m.Loss == LogReg }

// Fit implements Classifier.
func (m *LinearClassifier) Fit(X [][]float64, y []int, nClasses int, p Params) error {
	if m.Loss != Linear && m.Loss != LogReg {
		return fmt.Errorf("linear classifier loss %q: %w", m.Loss, ErrUnknownClassifier)
	}
	p.Classifier = m.Loss
	if err := p.Validate(); err != nil {
		return err
	}
	solver, eps := solverL2RL2LossSVCDual, 1e-4
	if m.Loss == LogReg {
		solver, eps = solverL2RLR, 1e-6
	}
	if p.Tol > 0 {
		eps = p.Tol
	}
	d := len(X[0])
	Xb := make([][]float64, len(X))
	for i, x := range X {
		Xb[i] = append(append(make([]float64, 0, d+1), x...), 1)
	}
	yf := make([]float64, len(y))
	for i, c := range y {
		yf[i] = float64(c)
	}
	var wl []int
	var wf []float64
	if w := classWeights(y, nClasses, p.Balanced); w != nil {
		for c, f := range w {
			if f > 0 {
				wl = append(wl, c)
				wf = append(wf, f)
			}
		}
	}
	var fit *liblinearFit
	var err error
	train := func() { fit, err = trainLiblinear(Xb, yf, solver, p.C, eps, wl, wf) }
	if solver == solverL2RL2LossSVCDual {
		withCRand(uint32(p.Seed), train) // the dual solver shuffles with rand()
	} else {
		train()
	}
	if err != nil {
		return err
	}
	*m = LinearClassifier{Loss: m.Loss, NClasses: nClasses, Labels: fit.labels}
	for _, w := range fit.w {
		// fit.w has d+2 entries: the features, our bias feature, and one
		// that golearn declares but no row has (always 0).
		m.W = append(m.W, w[:d])
		m.Bias = append(m.Bias, w[d])
	}
	return nil
}

// Decision returns liblinear's decision values, one per row of W, summed
// in liblinear's order (non-zero features by index, then the bias).
func (m *LinearClassifier) Decision(x []float64) []float64 {
	dec := make([]float64, len(m.W))
	for i, w := range m.W {
		var s float64
		for j, v := range x {
			if v != 0 {
				s += w[j] * v
			}
		}
		dec[i] = s + m.Bias[i]
	}
	return dec
}

// Predict implements Classifier with liblinear's predict_values and
// predict_probability (logistic regression: sigmoid per class, normalised
// over classes for one-vs-rest).
func (m *LinearClassifier) Predict(x []float64) (int, []float64) {
	dec := m.Decision(x)
	var best int
	if len(m.Labels) == 2 {
		if dec[0] <= 0 {
			best = 1
		}
	} else {
		for i := 1; i < len(dec); i++ {
			if dec[i] > dec[best] {
				best = i
			}
		}
	}
	if m.Loss != LogReg {
		return m.Labels[best], nil
	}
	probs := make([]float64, m.NClasses)
	if len(m.Labels) == 2 {
		p0 := 1 / (1 + math.Exp(-dec[0]))
		probs[m.Labels[0]] = p0
		probs[m.Labels[1]] = 1 - p0
	} else {
		var sum float64
		ps := make([]float64, len(dec))
		for i, d := range dec {
			ps[i] = 1 / (1 + math.Exp(-d))
			sum += ps[i]
		}
		for i, c := range m.Labels {
			probs[c] = ps[i] / sum
		}
	}
	return m.Labels[best], probs
}

// linearClassifierState has the fields but not the methods (gob would call
// MarshalBinary recursively).
type linearClassifierState LinearClassifier

// MarshalBinary implements Classifier.
func (m *LinearClassifier) MarshalBinary() ([]byte, error) {
	return gobBytes((*linearClassifierState)(m))
}

// UnmarshalBinary implements Classifier.
func (m *LinearClassifier) UnmarshalBinary(b []byte) error {
	var s LinearClassifier
	if err := ungob(b, (*linearClassifierState)(&s)); err != nil {
		return err
	}
	ok := (s.Loss == Linear || s.Loss == LogReg) && len(s.Labels) >= 2 && len(s.W) == len(s.Bias) &&
		(len(s.W) == 1 && len(s.Labels) == 2 || len(s.W) == len(s.Labels) && len(s.Labels) > 2)
	ok = ok && sameRowLen(s.W) && labelsBelow(s.Labels, s.NClasses)
	if !ok {
		return fmt.Errorf("linear state inconsistent: %w", ErrBadModel)
	}
	*m = s
	return nil
}

func (m *LinearClassifier) shape() (int, int) { return len(m.W[0]), m.NClasses }
