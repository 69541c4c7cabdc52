package classify

import (
	"fmt"
	"math"
	"math/rand/v2"

	libSvm "github.com/ewalker544/libsvm-go"
)

// SVMClassifier is a C-SVC trained by libsvm-go (one-vs-one, as libsvm).
// Prediction is ours: the same arithmetic as libsvm-go's PredictValues, in
// the same order, so decision values are bit-for-bit libsvm-go's; the
// fields below are the model at full precision (libsvm-go's own model
// files keep 6 digits of rho).
type SVMClassifier struct {
	KernelName string
	Kernel     int // libsvm kernel_type: index into Kernels
	Gamma      float64
	Coef0      float64
	Degree     int
	NClasses   int
	Labels     []int       // class index of libsvm's class k (first-occurrence order)
	NSV        []int       // support vectors per libsvm class
	SV         [][]float64 // support vectors (transformed), grouped by class
	Coef       [][]float64 // (len(Labels)-1) x len(SV), libsvm's sv_coef
	Rho        []float64   // per pair (i<j) in libsvm order
	ProbA      []float64   // Platt sigmoid per pair; nil without probability
	ProbB      []float64

	svSq []float64 // |SV|^2 for rbf, derived
}

// Kind implements Classifier.
func (m *SVMClassifier) Kind() string { return SVM }

// HasProbabilities implements Classifier.
func (m *SVMClassifier) HasProbabilities() bool { return m.ProbA != nil }

// Fit implements Classifier.
func (m *SVMClassifier) Fit(X [][]float64, y []int, nClasses int, p Params) error {
	p.Classifier = SVM
	if err := p.Validate(); err != nil {
		return err
	}
	prob, err := newSpanProblem(X, labelsFloat(y))
	if err != nil {
		return err
	}
	return m.fitProblem(prob, X, y, nClasses, p)
}

func labelsFloat(y []int) []float64 {
	yf := make([]float64, len(y))
	for i, c := range y {
		yf[i] = float64(c)
	}
	return yf
}

// svmSpec turns validated params into a libsvm run on training data X.
func svmSpec(X [][]float64, y []int, nClasses int, p Params) libsvmSpec {
	spec := libsvmSpec{
		kernel:  p.kernelIndex(),
		C:       p.C,
		gamma:   p.Gamma.resolve(X),
		c0:      p.Coef0,
		degree:  p.Degree,
		eps:     p.Tol,
		cacheMB: p.CacheMB,
	}
	if spec.eps == 0 {
		spec.eps = 1e-3
	}
	if spec.cacheMB == 0 {
		spec.cacheMB = 100
	}
	if w := classWeights(y, nClasses, p.Balanced); w != nil {
		for c, f := range w {
			if f > 0 {
				spec.weightLabels = append(spec.weightLabels, c)
				spec.weightFactors = append(spec.weightFactors, f)
			}
		}
	}
	return spec
}

// fitProblem trains on prob, which must hold X and y (the grid search
// builds it once per fold and shares it: training only reads it).
func (m *SVMClassifier) fitProblem(prob *libSvm.Problem, X [][]float64, y []int, nClasses int, p Params) error {
	spec := svmSpec(X, y, nClasses, p)
	fit, err := trainLibsvm(prob, spec)
	if err != nil {
		return err
	}
	*m = SVMClassifier{
		KernelName: Kernels[spec.kernel],
		Kernel:     spec.kernel,
		Gamma:      spec.gamma,
		Coef0:      spec.c0,
		Degree:     spec.degree,
		NClasses:   nClasses,
	}
	m.setFit(fit, X)
	if p.Probability {
		if err := m.fitPlatt(X, y, spec, p.Seed); err != nil {
			return err
		}
	}
	return nil
}

func (m *SVMClassifier) setFit(fit *libsvmFit, X [][]float64) {
	m.Labels = fit.labels
	m.NSV = fit.nSV
	m.Coef = fit.coef
	m.Rho = fit.rho
	m.SV = make([][]float64, len(fit.svIndices))
	for i, r := range fit.svIndices {
		m.SV[i] = append([]float64(nil), X[r]...)
	}
	m.derive()
}

func (m *SVMClassifier) derive() {
	m.svSq = make([]float64, len(m.SV))
	for i, sv := range m.SV {
		m.svSq[i] = dotDense(sv, sv)
	}
}

// dotDense is libsvm's sparse dot in dense form. Products with a zero
// factor add +-0, which leaves the sum unchanged, so the result is
// bit-for-bit the sparse one.
func dotDense(a, b []float64) float64 {
	var sum float64
	for j, v := range a {
		sum = sum + v*b[j]
	}
	return sum
}

// kernels returns K(x, SV_i) for all support vectors, computed as
// libsvm-go's computeKernelValue does.
func (m *SVMClassifier) kernels(x []float64) []float64 {
	// Iterating over the non-zeros of x only skips +-0 terms (see dotDense).
	nz := make([]int, 0, len(x))
	for j, v := range x {
		if v != 0 {
			nz = append(nz, j)
		}
	}
	dotX := func(sv []float64) float64 {
		var sum float64
		for _, j := range nz {
			sum = sum + x[j]*sv[j]
		}
		return sum
	}
	k := make([]float64, len(m.SV))
	switch m.Kernel {
	case 0: // linear
		for i, sv := range m.SV {
			k[i] = dotX(sv)
		}
	case 1: // poly
		for i, sv := range m.SV {
			q := m.Gamma*dotX(sv) + m.Coef0
			k[i] = math.Pow(q, float64(m.Degree))
		}
	case 2: // rbf
		xx := dotX(x)
		for i, sv := range m.SV {
			q := xx + m.svSq[i] - 2*dotX(sv)
			k[i] = math.Exp(-m.Gamma * q)
		}
	case 3: // sigmoid
		for i, sv := range m.SV {
			q := m.Gamma*dotX(sv) + m.Coef0
			k[i] = math.Tanh(q)
		}
	}
	return k
}

// Decision returns libsvm's one-vs-one decision values (pairs (i,j), i<j,
// of libsvm classes, positive favours i) and the voted libsvm class.
func (m *SVMClassifier) Decision(x []float64) ([]float64, int) {
	if m.svSq == nil {
		m.derive()
	}
	kv := m.kernels(x)
	nc := len(m.Labels)
	start := make([]int, nc)
	for i := 1; i < nc; i++ {
		start[i] = start[i-1] + m.NSV[i-1]
	}
	vote := make([]int, nc)
	dec := make([]float64, 0, nc*(nc-1)/2)
	p := 0
	for i := 0; i < nc; i++ {
		for j := i + 1; j < nc; j++ {
			var sum float64
			si, sj := start[i], start[j]
			coef1, coef2 := m.Coef[j-1], m.Coef[i]
			for k := 0; k < m.NSV[i]; k++ {
				sum += coef1[si+k] * kv[si+k]
			}
			for k := 0; k < m.NSV[j]; k++ {
				sum += coef2[sj+k] * kv[sj+k]
			}
			sum -= m.Rho[p]
			dec = append(dec, sum)
			if sum > 0 {
				vote[i]++
			} else {
				vote[j]++
			}
			p++
		}
	}
	best := 0
	for i := 1; i < nc; i++ {
		if vote[i] > vote[best] {
			best = i
		}
	}
	return dec, best
}

// Predict implements Classifier. Without probabilities the label is
// libsvm's one-vs-one vote (svm-predict, sklearn's SVC.predict). With
// probabilities (Platt scaling, libsvm's pairwise coupling; svm-predict
// -b 1, sklearn's predict_proba) the label is the most probable class
// (the first on exact ties), which is also what svm-predict -b 1 prints:
// on borderline points the vote can name another class (sklearn's
// SVC.predict does), and a label that is not the top probability would
// contradict what predict, eval and --top report. DecisionLabel gives
// the vote.
func (m *SVMClassifier) Predict(x []float64) (int, []float64) {
	dec, best := m.Decision(x)
	label := m.Labels[best]
	if m.ProbA == nil {
		return label, nil
	}
	nc := len(m.Labels)
	const minProb = 1e-7
	r := make([][]float64, nc)
	for i := range r {
		r[i] = make([]float64, nc)
	}
	k := 0
	for i := 0; i < nc; i++ {
		for j := i + 1; j < nc; j++ {
			r[i][j] = math.Min(math.Max(sigmoidPredict(dec[k], m.ProbA[k], m.ProbB[k]), minProb), 1-minProb)
			r[j][i] = 1 - r[i][j]
			k++
		}
	}
	var pk []float64
	if nc == 2 { // libsvm >= 3.18's shortcut, exact where coupling iterates
		pk = []float64{r[0][1], r[1][0]}
	} else {
		pk = multiclassProbability(nc, r)
	}
	probs := make([]float64, m.NClasses)
	for i, c := range m.Labels {
		probs[c] = pk[i]
	}
	return argmax(probs), probs
}

// DecisionLabel returns the class index libsvm's one-vs-one vote picks
// (svm-predict without -b), with or without probabilities.
func (m *SVMClassifier) DecisionLabel(x []float64) int {
	_, best := m.Decision(x)
	return m.Labels[best]
}

// fitPlatt estimates each pair's sigmoid from 5-fold cross-validated
// decision values, as libsvm's svm_binary_svc_probability, except that the
// shuffle is seeded (libsvm-go seeds it from the clock, C libsvm from an
// unseeded rand()), so probabilities are reproducible.
func (m *SVMClassifier) fitPlatt(X [][]float64, y []int, spec libsvmSpec, seed int64) error {
	nc := len(m.Labels)
	weight := func(class int) float64 {
		for i, l := range spec.weightLabels {
			if l == class {
				return spec.C * spec.weightFactors[i]
			}
		}
		return spec.C
	}
	type pair struct{ i, j int }
	var pairs []pair
	for i := 0; i < nc; i++ {
		for j := i + 1; j < nc; j++ {
			pairs = append(pairs, pair{i, j})
		}
	}
	m.ProbA = make([]float64, len(pairs))
	m.ProbB = make([]float64, len(pairs))
	return parallelFor(len(pairs), 0, func(p int) error {
		ci, cj := m.Labels[pairs[p].i], m.Labels[pairs[p].j]
		var rows []int
		var sy []float64
		for r, c := range y {
			if c == ci {
				rows = append(rows, r)
				sy = append(sy, 1)
			}
		}
		for r, c := range y {
			if c == cj {
				rows = append(rows, r)
				sy = append(sy, -1)
			}
		}
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(p)))
		dec, err := plattDecisionValues(X, rows, sy, spec, weight(ci), weight(cj), rng)
		if err != nil {
			return fmt.Errorf("probability for classes %d/%d: %w", ci, cj, err)
		}
		m.ProbA[p], m.ProbB[p] = sigmoidTrain(dec, sy)
		return nil
	})
}

func plattDecisionValues(X [][]float64, rows []int, sy []float64, spec libsvmSpec, cp, cn float64, rng *rand.Rand) ([]float64, error) {
	const nrFold = 5
	l := len(rows)
	perm := make([]int, l)
	for i := range perm {
		perm[i] = i
	}
	for i := 0; i < l; i++ {
		j := i + rng.IntN(l-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	dec := make([]float64, l)
	for f := 0; f < nrFold; f++ {
		begin, end := f*l/nrFold, (f+1)*l/nrFold
		var tx [][]float64
		var ty []float64
		pos, neg := 0, 0
		for _, k := range append(append([]int(nil), perm[:begin]...), perm[end:]...) {
			tx = append(tx, X[rows[k]])
			ty = append(ty, sy[k])
			if sy[k] > 0 {
				pos++
			} else {
				neg++
			}
		}
		switch {
		case pos == 0 && neg == 0:
			for _, k := range perm[begin:end] {
				dec[k] = 0
			}
			continue
		case neg == 0:
			for _, k := range perm[begin:end] {
				dec[k] = 1
			}
			continue
		case pos == 0:
			for _, k := range perm[begin:end] {
				dec[k] = -1
			}
			continue
		}
		sub := spec
		sub.C = 1
		sub.weightLabels = []int{1, -1}
		sub.weightFactors = []float64{cp, cn}
		prob, err := newSpanProblem(tx, ty)
		if err != nil {
			return nil, err
		}
		fit, err := trainLibsvm(prob, sub)
		if err != nil {
			return nil, err
		}
		sm := &SVMClassifier{Kernel: spec.kernel, Gamma: spec.gamma, Coef0: spec.c0, Degree: spec.degree}
		sm.setFit(fit, tx)
		for _, k := range perm[begin:end] {
			d, _ := sm.Decision(X[rows[k]])
			dec[k] = d[0] * float64(sm.Labels[0])
		}
	}
	return dec, nil
}

func sigmoidPredict(dec, a, b float64) float64 {
	fApB := dec*a + b
	if fApB >= 0 {
		return math.Exp(-fApB) / (1 + math.Exp(-fApB))
	}
	return 1 / (1 + math.Exp(fApB))
}

// sigmoidTrain is libsvm's sigmoid_train (Platt 2000 with Lin, Lin and
// Weng's Newton method).
func sigmoidTrain(dec, labels []float64) (float64, float64) {
	var prior1, prior0 float64
	for _, y := range labels {
		if y > 0 {
			prior1++
		} else {
			prior0++
		}
	}
	const (
		maxIter = 100
		minStep = 1e-10
		sigma   = 1e-12
		eps     = 1e-5
	)
	hiTarget := (prior1 + 1) / (prior1 + 2)
	loTarget := 1 / (prior0 + 2)
	l := len(dec)
	t := make([]float64, l)
	a, b := 0.0, math.Log((prior0+1)/(prior1+1))
	var fval float64
	for i := 0; i < l; i++ {
		if labels[i] > 0 {
			t[i] = hiTarget
		} else {
			t[i] = loTarget
		}
		fApB := dec[i]*a + b
		if fApB >= 0 {
			fval += t[i]*fApB + math.Log(1+math.Exp(-fApB))
		} else {
			fval += (t[i]-1)*fApB + math.Log(1+math.Exp(fApB))
		}
	}
	for iter := 0; iter < maxIter; iter++ {
		h11, h22, h21, g1, g2 := sigma, sigma, 0.0, 0.0, 0.0
		for i := 0; i < l; i++ {
			fApB := dec[i]*a + b
			var p, q float64
			if fApB >= 0 {
				p = math.Exp(-fApB) / (1 + math.Exp(-fApB))
				q = 1 / (1 + math.Exp(-fApB))
			} else {
				p = 1 / (1 + math.Exp(fApB))
				q = math.Exp(fApB) / (1 + math.Exp(fApB))
			}
			d2 := p * q
			h11 += dec[i] * dec[i] * d2
			h22 += d2
			h21 += dec[i] * d2
			d1 := t[i] - p
			g1 += dec[i] * d1
			g2 += d1
		}
		if math.Abs(g1) < eps && math.Abs(g2) < eps {
			break
		}
		det := h11*h22 - h21*h21
		dA := -(h22*g1 - h21*g2) / det
		dB := -(-h21*g1 + h11*g2) / det
		gd := g1*dA + g2*dB
		step := 1.0
		for step >= minStep {
			newA, newB := a+step*dA, b+step*dB
			var newf float64
			for i := 0; i < l; i++ {
				fApB := dec[i]*newA + newB
				if fApB >= 0 {
					newf += t[i]*fApB + math.Log(1+math.Exp(-fApB))
				} else {
					newf += (t[i]-1)*fApB + math.Log(1+math.Exp(fApB))
				}
			}
			if newf < fval+0.0001*step*gd {
				a, b, fval = newA, newB, newf
				break
			}
			step /= 2
		}
		if step < minStep {
			break // line search failed; libsvm keeps the last iterate too
		}
	}
	return a, b
}

// multiclassProbability is libsvm's pairwise coupling (Wu, Lin and Weng
// 2004, method 2).
func multiclassProbability(k int, r [][]float64) []float64 {
	p := make([]float64, k)
	Q := make([][]float64, k)
	Qp := make([]float64, k)
	eps := 0.005 / float64(k)
	for t := 0; t < k; t++ {
		p[t] = 1 / float64(k)
		Q[t] = make([]float64, k)
	}
	for t := 0; t < k; t++ {
		for j := 0; j < t; j++ {
			Q[t][t] += r[j][t] * r[j][t]
			Q[t][j] = Q[j][t]
		}
		for j := t + 1; j < k; j++ {
			Q[t][t] += r[j][t] * r[j][t]
			Q[t][j] = -r[j][t] * r[t][j]
		}
	}
	maxIter := max(100, k)
	for iter := 0; iter < maxIter; iter++ {
		var pQp float64
		for t := 0; t < k; t++ {
			Qp[t] = 0
			for j := 0; j < k; j++ {
				Qp[t] += Q[t][j] * p[j]
			}
			pQp += p[t] * Qp[t]
		}
		var maxError float64
		for t := 0; t < k; t++ {
			maxError = math.Max(maxError, math.Abs(Qp[t]-pQp))
		}
		if maxError < eps {
			break
		}
		for t := 0; t < k; t++ {
			diff := (-Qp[t] + pQp) / Q[t][t]
			p[t] += diff
			pQp = (pQp + diff*(diff*Q[t][t]+2*Qp[t])) / (1 + diff) / (1 + diff)
			for j := 0; j < k; j++ {
				Qp[j] = (Qp[j] + diff*Q[t][j]) / (1 + diff)
				p[j] /= 1 + diff
			}
		}
	}
	return p
}

// sVMClassifierState has the fields but not the methods (gob would call
// MarshalBinary recursively).
type sVMClassifierState SVMClassifier

// MarshalBinary implements Classifier.
func (m *SVMClassifier) MarshalBinary() ([]byte, error) { return gobBytes((*sVMClassifierState)(m)) }

// UnmarshalBinary implements Classifier.
func (m *SVMClassifier) UnmarshalBinary(b []byte) error {
	var s SVMClassifier
	if err := ungob(b, (*sVMClassifierState)(&s)); err != nil {
		return err
	}
	total := 0
	for _, n := range s.NSV {
		total += n
	}
	ok := len(s.Labels) >= 2 && len(s.NSV) == len(s.Labels) && len(s.Coef) == len(s.Labels)-1 &&
		len(s.Rho) == len(s.Labels)*(len(s.Labels)-1)/2 && s.Kernel >= 0 && s.Kernel < len(Kernels) &&
		total == len(s.SV) && total > 0 && (s.ProbA == nil || (len(s.ProbA) == len(s.Rho) && len(s.ProbB) == len(s.Rho)))
	for _, c := range s.Coef {
		ok = ok && len(c) == total
	}
	ok = ok && sameRowLen(s.SV) && labelsBelow(s.Labels, s.NClasses)
	if !ok {
		return fmt.Errorf("svm state inconsistent: %w", ErrBadModel)
	}
	*m = s
	m.derive()
	return nil
}

func (m *SVMClassifier) shape() (int, int) { return len(m.SV[0]), m.NClasses }
