package classify

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/optimize"
)

// SoftmaxClassifier is multinomial logistic regression: one weight row and
// one intercept per class, probabilities softmax(W x + b), trained by
// minimising
//
//	sum_i s_i * (-log p_{i,y_i}) + ||W||^2 / (2C)
//
// (s_i = 1, or the balanced class weight of y_i) with L-BFGS from gonum's
// optimize, starting from zero. This is scikit-learn's
// LogisticRegression(multi_class="multinomial", penalty="l2", C=C,
// solver="lbfgs"): the intercepts are not penalised. Their sum stays 0
// (every gradient's intercept part sums to 0 over classes and L-BFGS starts
// at 0), which is what scikit-learn's lbfgs run gives too, so the
// intercepts are comparable although the loss only fixes their
// differences. With two classes both rows are kept (at the optimum
// W_0 = -W_1): scikit-learn's coef_ is W_1.
type SoftmaxClassifier struct {
	NClasses int
	W        [][]float64 // NClasses x d
	B        []float64   // NClasses
	// Iterations and GradNorm describe the fit: L-BFGS major iterations
	// and the final gradient's max-norm (of the objective divided by
	// sum s_i).
	Iterations int
	GradNorm   float64
}

// softmaxTol is the default stopping tolerance: the max-norm of the
// gradient of the objective divided by the total sample weight (scikit-
// learn 1.2 applies its tol, 1e-4, to the gradient of the summed loss,
// i.e. n times ours, and also stops on a relative decrease below 2.2e-9).
// On 616 x 4096 raw CNN-like codes 1e-6 takes ~160 iterations and leaves
// weights within ~1% of the optimum; 1e-8 takes ~2400. Params.Tol
// overrides it (the scikit-learn parity test uses 1e-10).
const (
	softmaxTol     = 1e-6
	softmaxMaxIter = 2000
)

// Kind implements Classifier.
func (m *SoftmaxClassifier) Kind() string { return Softmax }

// HasProbabilities implements Classifier.
func (m *SoftmaxClassifier) HasProbabilities() bool { return true }

// Fit implements Classifier.
func (m *SoftmaxClassifier) Fit(X [][]float64, y []int, nClasses int, p Params) error {
	p.Classifier = Softmax
	if err := p.Validate(); err != nil {
		return err
	}
	n, d, k := len(X), len(X[0]), nClasses
	s := make([]float64, n)
	cw := classWeights(y, k, p.Balanced)
	var sum float64
	for i, c := range y {
		s[i] = 1
		if cw != nil {
			s[i] = cw[c]
		}
		sum += s[i]
	}
	obj := &softmaxObjective{X: X, y: y, s: s, S: sum, k: k, d: d, lambda: 1 / (p.C * sum),
		Z: make([]float64, n*k), G: make([]float64, n*k)}
	tol := softmaxTol
	if p.Tol > 0 {
		tol = p.Tol
	}
	prob := optimize.Problem{
		Func: func(x []float64) float64 { return obj.eval(x, nil) },
		Grad: func(g, x []float64) { obj.eval(x, g) },
	}
	settings := &optimize.Settings{
		GradientThreshold: tol,
		MajorIterations:   softmaxMaxIter,
		Converger:         optimize.NeverTerminate{},
	}
	x0 := make([]float64, k*d+k)
	res, err := optimize.Minimize(prob, x0, settings, &optimize.LBFGS{Store: 10})
	if res == nil {
		return fmt.Errorf("softmax: %w", err)
	}
	g := make([]float64, len(x0))
	obj.eval(res.X, g)
	gn := floats.Norm(g, math.Inf(1))
	if err != nil && !(gn < 1e-4) {
		// A line search that can no longer improve the objective close
		// to the optimum is convergence for our purpose; NaN or a
		// gradient still large is a failure.
		return fmt.Errorf("softmax: L-BFGS stopped with gradient max-norm %.3g: %v: %w", gn, err, ErrBadData)
	}
	*m = SoftmaxClassifier{NClasses: k, W: make([][]float64, k), B: append([]float64(nil), res.X[k*d:]...),
		Iterations: res.Stats.MajorIterations, GradNorm: gn}
	for c := range m.W {
		m.W[c] = append([]float64(nil), res.X[c*d:(c+1)*d]...)
	}
	return nil
}

// softmaxObjective is the loss divided by the total sample weight S (the
// same minimiser, gradients of order 1 whatever n): mean weighted
// cross-entropy + lambda/2 ||W||^2 with lambda = 1/(C*S).
type softmaxObjective struct {
	X      [][]float64 // n x d
	y      []int
	s      []float64
	S      float64
	k, d   int
	lambda float64
	Z, G   []float64 // n x k scratch: logits, d loss / d logits
}

func (o *softmaxObjective) eval(x, grad []float64) float64 {
	k, d := o.k, o.d
	W := x[:k*d]
	b := x[k*d:]
	n := len(o.X)
	var loss float64
	for i, xi := range o.X {
		// Plain dot products and axpys (gonum's assembly kernels), one
		// row at a time in a fixed order: with k = 4 outputs a blocked
		// GEMM does not pay, and the sums are reproducible.
		z := o.Z[i*k : (i+1)*k]
		g := o.G[i*k : (i+1)*k]
		mx := math.Inf(-1)
		for c := range z {
			z[c] = floats.Dot(W[c*d:(c+1)*d], xi) + b[c]
			mx = math.Max(mx, z[c])
		}
		var se float64
		for c := range z {
			g[c] = math.Exp(z[c] - mx)
			se += g[c]
		}
		lse := mx + math.Log(se)
		loss += o.s[i] * (lse - z[o.y[i]])
		w := o.s[i] / o.S
		for c := range g {
			g[c] *= w / se
		}
		g[o.y[i]] -= w
	}
	f := loss/o.S + 0.5*o.lambda*floats.Dot(W, W)
	if grad != nil {
		gw, gb := grad[:k*d], grad[k*d:]
		for c := range gw {
			gw[c] = o.lambda * W[c]
		}
		for c := range gb {
			gb[c] = 0
		}
		for i := 0; i < n; i++ {
			g := o.G[i*k : (i+1)*k]
			for c, v := range g {
				floats.AddScaled(gw[c*d:(c+1)*d], v, o.X[i])
				gb[c] += v
			}
		}
	}
	return f
}

// Decision returns the logits W x + b.
func (m *SoftmaxClassifier) Decision(x []float64) []float64 {
	z := make([]float64, m.NClasses)
	for c, w := range m.W {
		z[c] = floats.Dot(w, x) + m.B[c]
	}
	return z
}

// Predict implements Classifier: probabilities softmax(W x + b), label
// their argmax (the first on ties).
func (m *SoftmaxClassifier) Predict(x []float64) (int, []float64) {
	p := m.Decision(x)
	softmaxInPlace(p)
	return argmax(p), p
}

// softmaxInPlace turns logits into probabilities (max-shifted).
func softmaxInPlace(z []float64) {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = math.Max(mx, v)
	}
	var se float64
	for c, v := range z {
		z[c] = math.Exp(v - mx)
		se += z[c]
	}
	for c := range z {
		z[c] /= se
	}
}

// argmax returns the index of the largest value, the first one on ties.
func argmax(v []float64) int {
	best := 0
	for i := 1; i < len(v); i++ {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

type softmaxClassifierState SoftmaxClassifier

// MarshalBinary implements Classifier.
func (m *SoftmaxClassifier) MarshalBinary() ([]byte, error) {
	return gobBytes((*softmaxClassifierState)(m))
}

// UnmarshalBinary implements Classifier.
func (m *SoftmaxClassifier) UnmarshalBinary(b []byte) error {
	var s SoftmaxClassifier
	if err := ungob(b, (*softmaxClassifierState)(&s)); err != nil {
		return err
	}
	ok := s.NClasses >= 2 && len(s.W) == s.NClasses && len(s.B) == s.NClasses && len(s.W[0]) > 0
	ok = ok && sameRowLen(s.W)
	if !ok {
		return fmt.Errorf("softmax state inconsistent: %w", ErrBadModel)
	}
	*m = s
	return nil
}

func (m *SoftmaxClassifier) shape() (int, int) { return len(m.W[0]), m.NClasses }
