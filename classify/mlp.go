package classify

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// MLPClassifier is a small dense network on frozen codes, the second model
// of the transfer-learning tutorial: Dense(h, relu) + Dropout(p) per hidden
// layer, then Dense(k, softmax), trained on the weighted cross-entropy
//
//	sum_b s_b * (-log p_{b,y_b}) / |batch| + alpha/2 * sum ||W||^2 / |batch|
//
// (Keras' class_weight and scikit-learn MLPClassifier's alpha scaling) with
// Adam (beta 0.9/0.999, eps 1e-8) on shuffled mini-batches. A stratified
// ValFrac of the training data is held out; after each epoch the
// validation loss (no dropout, same class weights) is measured, training
// stops after Patience epochs without improvement, and the weights of the
// best epoch are kept (Keras EarlyStopping(restore_best_weights=True)).
//
// Everything random (Glorot-uniform initialisation, validation fold, batch
// order, dropout masks) is drawn from one PCG stream seeded by Params.Seed,
// in a fixed order, and the arithmetic is sequential or gonum's Dgemm,
// whose parallel blocks each sum over the inner dimension in a fixed order:
// the same seed gives a bit-identical model on the same machine, whatever
// GOMAXPROCS.
type MLPClassifier struct {
	NClasses int
	Sizes    []int       // input, hidden..., classes
	W        [][]float64 // layer l: Sizes[l] x Sizes[l+1], row-major
	B        [][]float64 // layer l: Sizes[l+1]

	// Training record: losses per epoch (train: mean batch loss with
	// dropout; validation: without), the epoch whose weights were kept
	// (1-based) and whether early stopping ended the run.
	TrainLoss    []float64
	ValLoss      []float64
	BestEpoch    int
	StoppedEarly bool
}

// Kind implements Classifier.
func (m *MLPClassifier) Kind() string { return MLP }

// HasProbabilities implements Classifier.
func (m *MLPClassifier) HasProbabilities() bool { return true }

// mlpNet is the trainable form: weights as gonum matrices sharing the
// classifier's slices.
type mlpNet struct {
	W []*mat.Dense
	B [][]float64
}

func newMLPNet(sizes []int, w, b [][]float64) *mlpNet {
	n := &mlpNet{}
	for l := 0; l+1 < len(sizes); l++ {
		n.W = append(n.W, mat.NewDense(sizes[l], sizes[l+1], w[l]))
		n.B = append(n.B, b[l])
	}
	return n
}

// mlpBatch is one batch's activations: A[0] is the input, A[l] the output
// of layer l (after ReLU and dropout for hidden layers, the softmax
// probabilities for the last).
type mlpBatch struct {
	A     []*mat.Dense
	masks []*mat.Dense // per hidden layer, 0 or 1/(1-p); nil entries: no dropout
}

// lossGrad runs the batch forward, returns its loss (weighted
// cross-entropy sum / rows + alpha/2 ||W||^2 / rows) and, when g is not
// nil, writes the gradients into g (same shapes as n).
func (n *mlpNet) lossGrad(X *mat.Dense, y []int, s []float64, masks []*mat.Dense, alpha float64, g *mlpNet) float64 {
	rows, _ := X.Dims()
	L := len(n.W)
	A := make([]*mat.Dense, L+1)
	A[0] = X
	for l := 0; l < L; l++ {
		_, out := n.W[l].Dims()
		z := mat.NewDense(rows, out, nil)
		z.Mul(A[l], n.W[l])
		for i := 0; i < rows; i++ {
			r := z.RawRowView(i)
			floats.Add(r, n.B[l])
			if l < L-1 {
				var m []float64
				if masks != nil && masks[l] != nil {
					m = masks[l].RawRowView(i)
				}
				for j, v := range r {
					if v < 0 {
						r[j] = 0
					} else if m != nil {
						r[j] = v * m[j]
					}
				}
			} else {
				softmaxInPlace(r)
			}
		}
		A[l+1] = z
	}
	P := A[L]
	var loss, reg float64
	for i := 0; i < rows; i++ {
		loss += s[i] * -math.Log(math.Max(P.At(i, y[i]), 1e-300))
	}
	for _, w := range n.W {
		reg += floats.Dot(w.RawMatrix().Data, w.RawMatrix().Data)
	}
	fr := float64(rows)
	f := loss/fr + 0.5*alpha*reg/fr
	if g == nil {
		return f
	}
	// dZ of the output layer: s_i (p_i - onehot(y_i)) / rows.
	_, k := P.Dims()
	dZ := mat.NewDense(rows, k, nil)
	for i := 0; i < rows; i++ {
		d, p := dZ.RawRowView(i), P.RawRowView(i)
		for c := range d {
			d[c] = s[i] * p[c] / fr
		}
		d[y[i]] -= s[i] / fr
	}
	for l := L - 1; l >= 0; l-- {
		g.W[l].Mul(A[l].T(), dZ)
		gw, w := g.W[l].RawMatrix().Data, n.W[l].RawMatrix().Data
		floats.AddScaled(gw, alpha/fr, w)
		gb := g.B[l]
		for c := range gb {
			gb[c] = 0
		}
		for i := 0; i < rows; i++ {
			floats.Add(gb, dZ.RawRowView(i))
		}
		if l == 0 {
			break
		}
		in, _ := n.W[l].Dims()
		dA := mat.NewDense(rows, in, nil)
		dA.Mul(dZ, n.W[l].T())
		// Through dropout and ReLU: A = relu(Z) * mask, so dZ = dA * mask
		// where A > 0. (Z > 0 with a zero mask gives A = 0 and no
		// gradient, as it should.)
		for i := 0; i < rows; i++ {
			d, a := dA.RawRowView(i), A[l].RawRowView(i)
			var m []float64
			if masks != nil && masks[l-1] != nil {
				m = masks[l-1].RawRowView(i)
			}
			for j := range d {
				switch {
				case a[j] <= 0:
					d[j] = 0
				case m != nil:
					d[j] *= m[j]
				}
			}
		}
		dZ = dA
	}
	return f
}

// Fit implements Classifier.
func (m *MLPClassifier) Fit(X [][]float64, y []int, nClasses int, p Params) error {
	p.Classifier = MLP
	if err := p.Validate(); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(p.Seed), 0x6d6c70))
	tr, va := mlpValidationSplit(y, nClasses, p.ValFrac, rng)
	if len(va) == 0 {
		return fmt.Errorf("mlp: no class has 2 or more samples to hold out for early stopping: %w", ErrTooFewSamples)
	}
	sizes := append(append([]int{len(X[0])}, p.Hidden...), nClasses)
	data := mlpData{X: X, y: y, cw: classWeights(y, nClasses, p.Balanced)}
	*m = MLPClassifier{NClasses: nClasses, Sizes: sizes}
	m.W, m.B = glorotInit(sizes, rng)
	net := newMLPNet(sizes, m.W, m.B)
	best := zeroMLPNet(sizes)
	copyNet(best, net)
	opt := newAdamState(sizes, p.LearningRate)

	xv, yv, sv := data.gather(va)
	var swv float64
	for _, v := range sv {
		swv += v
	}
	bestLoss := math.Inf(1)
	order := append([]int(nil), tr...)
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum float64
		for start := 0; start < len(order); start += p.BatchSize {
			xb, yb, sb := data.gather(order[start:min(start+p.BatchSize, len(order))])
			rows, _ := xb.Dims()
			masks := dropoutMasks(rows, p.Hidden, p.Dropout, rng)
			sum += net.lossGrad(xb, yb, sb, masks, p.Alpha, opt.grad) * float64(len(yb))
			opt.step(net)
		}
		m.TrainLoss = append(m.TrainLoss, sum/float64(len(order)))
		// Weighted mean cross-entropy, without the penalty.
		vl := net.lossGrad(xv, yv, sv, nil, 0, nil) * float64(len(yv)) / swv
		m.ValLoss = append(m.ValLoss, vl)
		if math.IsNaN(vl) || math.IsInf(vl, 0) {
			return fmt.Errorf("mlp: validation loss %v at epoch %d (a smaller learning rate or standard scaling may help): %w", vl, epoch, ErrDiverged)
		}
		if vl < bestLoss {
			bestLoss, m.BestEpoch = vl, epoch
			copyNet(best, net)
		} else if epoch-m.BestEpoch >= p.Patience {
			m.StoppedEarly = true
			break
		}
	}
	copyNet(net, best)
	return nil
}

// mlpData is the training set with its class weights (nil: all 1).
type mlpData struct {
	X  [][]float64
	y  []int
	cw []float64
}

// gather copies the rows idx into a matrix with their labels and weights.
func (d mlpData) gather(idx []int) (*mat.Dense, []int, []float64) {
	xb := mat.NewDense(len(idx), len(d.X[0]), nil)
	yb := make([]int, len(idx))
	sb := make([]float64, len(idx))
	for r, i := range idx {
		copy(xb.RawRowView(r), d.X[i])
		yb[r], sb[r] = d.y[i], 1
		if d.cw != nil {
			sb[r] = d.cw[d.y[i]]
		}
	}
	return xb, yb, sb
}

// glorotInit draws the weights of each layer uniformly in
// +-sqrt(6/(in+out)) (Glorot uniform); the biases start at zero.
func glorotInit(sizes []int, rng *rand.Rand) (W, B [][]float64) {
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		lim := math.Sqrt(6 / float64(in+out))
		w := make([]float64, in*out)
		for i := range w {
			w[i] = lim * (2*rng.Float64() - 1)
		}
		W = append(W, w)
		B = append(B, make([]float64, out))
	}
	return W, B
}

// zeroMLPNet is a network of the given sizes with all parameters zero.
func zeroMLPNet(sizes []int) *mlpNet {
	var w, b [][]float64
	for l := 0; l+1 < len(sizes); l++ {
		w = append(w, make([]float64, sizes[l]*sizes[l+1]))
		b = append(b, make([]float64, sizes[l+1]))
	}
	return newMLPNet(sizes, w, b)
}

// dropoutMasks draws one inverted-dropout mask per hidden layer for a
// batch of rows: kept units are scaled by 1/(1-dropout). None when
// dropout is 0.
func dropoutMasks(rows int, hidden []int, dropout float64, rng *rand.Rand) []*mat.Dense {
	if dropout <= 0 {
		return nil
	}
	var masks []*mat.Dense
	keep := 1 / (1 - dropout)
	for _, h := range hidden {
		mk := mat.NewDense(rows, h, nil)
		data := mk.RawMatrix().Data
		for i := range data {
			if rng.Float64() >= dropout {
				data[i] = keep
			}
		}
		masks = append(masks, mk)
	}
	return masks
}

// adamState is Adam's moments and step count; grad is where lossGrad
// writes the gradient the next step applies.
type adamState struct {
	grad, m1, m2 *mlpNet
	steps        int
	lr           float64
}

const adamBeta1, adamBeta2, adamEps = 0.9, 0.999, 1e-8

func newAdamState(sizes []int, lr float64) *adamState {
	return &adamState{grad: zeroMLPNet(sizes), m1: zeroMLPNet(sizes), m2: zeroMLPNet(sizes), lr: lr}
}

// step applies one Adam update of grad to net.
func (a *adamState) step(net *mlpNet) {
	a.steps++
	c1 := 1 - math.Pow(adamBeta1, float64(a.steps))
	c2 := 1 - math.Pow(adamBeta2, float64(a.steps))
	lr := a.lr * math.Sqrt(c2) / c1
	for l := range net.W {
		adam(net.W[l].RawMatrix().Data, a.grad.W[l].RawMatrix().Data, a.m1.W[l].RawMatrix().Data, a.m2.W[l].RawMatrix().Data, lr, adamBeta1, adamBeta2, adamEps)
		adam(net.B[l], a.grad.B[l], a.m1.B[l], a.m2.B[l], lr, adamBeta1, adamBeta2, adamEps)
	}
}

// adam applies one Adam step with the bias corrections folded into lr
// (Kingma & Ba, section 2, the "more efficient" ordering).
func adam(w, g, m, v []float64, lr, b1, b2, eps float64) {
	for i, gi := range g {
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		w[i] -= lr * m[i] / (math.Sqrt(v[i]) + eps)
	}
}

func copyNet(dst, src *mlpNet) {
	for l := range src.W {
		copy(dst.W[l].RawMatrix().Data, src.W[l].RawMatrix().Data)
		copy(dst.B[l], src.B[l])
	}
}

// mlpValidationSplit holds out round(frac*n_c) shuffled samples of each
// class with at least 2 (at least one, and never all of them).
func mlpValidationSplit(y []int, k int, frac float64, rng *rand.Rand) (train, val []int) {
	byClass := make([][]int, k)
	for i, c := range y {
		byClass[c] = append(byClass[c], i)
	}
	isVal := make([]bool, len(y))
	for _, idx := range byClass {
		if len(idx) < 2 {
			continue
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		nv := min(max(int(math.Round(frac*float64(len(idx)))), 1), len(idx)-1)
		for _, i := range idx[:nv] {
			isVal[i] = true
		}
	}
	for i, v := range isVal {
		if v {
			val = append(val, i)
		} else {
			train = append(train, i)
		}
	}
	return train, val
}

// Predict implements Classifier: the softmax output, label its argmax
// (the first on ties).
func (m *MLPClassifier) Predict(x []float64) (int, []float64) {
	a := x
	L := len(m.W)
	for l := 0; l < L; l++ {
		out := m.Sizes[l+1]
		z := append([]float64(nil), m.B[l]...)
		w := m.W[l]
		for i, v := range a {
			if v != 0 {
				floats.AddScaled(z, v, w[i*out:(i+1)*out])
			}
		}
		if l < L-1 {
			for j, v := range z {
				if v < 0 {
					z[j] = 0
				}
			}
		}
		a = z
	}
	softmaxInPlace(a)
	return argmax(a), a
}

type mlpClassifierState MLPClassifier

// MarshalBinary implements Classifier.
func (m *MLPClassifier) MarshalBinary() ([]byte, error) { return gobBytes((*mlpClassifierState)(m)) }

// UnmarshalBinary implements Classifier.
func (m *MLPClassifier) UnmarshalBinary(b []byte) error {
	var s MLPClassifier
	if err := ungob(b, (*mlpClassifierState)(&s)); err != nil {
		return err
	}
	ok := len(s.Sizes) >= 2 && s.NClasses >= 2 && s.Sizes[len(s.Sizes)-1] == s.NClasses &&
		len(s.W) == len(s.Sizes)-1 && len(s.B) == len(s.W)
	for l := 0; ok && l < len(s.W); l++ {
		ok = s.Sizes[l] > 0 && len(s.W[l]) == s.Sizes[l]*s.Sizes[l+1] && len(s.B[l]) == s.Sizes[l+1]
	}
	if !ok {
		return fmt.Errorf("mlp state inconsistent: %w", ErrBadModel)
	}
	*m = s
	return nil
}

func (m *MLPClassifier) shape() (int, int) { return m.Sizes[0], m.NClasses }
