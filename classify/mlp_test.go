package classify

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// blobs draws n points in k well-separated Gaussian classes in d
// dimensions (class means 6 apart on their own axes, unit noise).
func blobs(n, d, k int, rng *rand.Rand) ([][]float64, []int) {
	X := make([][]float64, n)
	y := make([]int, n)
	for i := range X {
		c := i % k
		X[i] = make([]float64, d)
		for j := range X[i] {
			X[i][j] = rng.NormFloat64()
		}
		X[i][c] += 6
		y[i] = c
	}
	return X, y
}

// TestMLPClassifier_GradientCheck compares the backward pass with central
// finite differences of the batch loss, in float64, with dropout masks,
// class weights and the L2 penalty all active.
func TestMLPClassifier_GradientCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{6, 5, 4, 3}
	rows := 7
	var w, b [][]float64
	for l := 0; l+1 < len(sizes); l++ {
		wl := make([]float64, sizes[l]*sizes[l+1])
		for i := range wl {
			wl[i] = rng.NormFloat64()
		}
		bl := make([]float64, sizes[l+1])
		for i := range bl {
			bl[i] = 0.1 * rng.NormFloat64()
		}
		w, b = append(w, wl), append(b, bl)
	}
	net := newMLPNet(sizes, w, b)
	X := mat.NewDense(rows, sizes[0], nil)
	for i := 0; i < rows; i++ {
		for j := 0; j < sizes[0]; j++ {
			X.Set(i, j, rng.NormFloat64())
		}
	}
	y := []int{0, 1, 2, 0, 1, 2, 2}
	s := []float64{1, 0.5, 2, 1, 0.5, 2, 2}
	var masks []*mat.Dense
	for _, h := range sizes[1 : len(sizes)-1] {
		m := mat.NewDense(rows, h, nil)
		for i := 0; i < rows; i++ {
			for j := 0; j < h; j++ {
				if rng.Float64() >= 0.3 {
					m.Set(i, j, 1/0.7)
				}
			}
		}
		masks = append(masks, m)
	}
	const alpha = 0.01
	g := newMLPNet(sizes, zerosLike(w), zerosLike(b))
	net.lossGrad(X, y, s, masks, alpha, g)
	var worst float64
	checked := 0
	check := func(what string, param, grad []float64) {
		const h = 1e-5
		for i := range param {
			old := param[i]
			param[i] = old + h
			fp := net.lossGrad(X, y, s, masks, alpha, nil)
			param[i] = old - h
			fm := net.lossGrad(X, y, s, masks, alpha, nil)
			param[i] = old
			num := (fp - fm) / (2 * h)
			err := math.Abs(num-grad[i]) / math.Max(1e-3, math.Abs(num)+math.Abs(grad[i]))
			worst = math.Max(worst, err)
			checked++
			if err > 1e-6 {
				t.Errorf("%s[%d]: backward %.9g, finite difference %.9g", what, i, grad[i], num)
			}
		}
	}
	for l := range net.W {
		check("W"+string(rune('1'+l)), net.W[l].RawMatrix().Data, g.W[l].RawMatrix().Data)
		check("b"+string(rune('1'+l)), net.B[l], g.B[l])
	}
	t.Logf("%d parameters, worst relative error %.2g", checked, worst)
}

func zerosLike(v [][]float64) [][]float64 {
	out := make([][]float64, len(v))
	for i := range v {
		out[i] = make([]float64, len(v[i]))
	}
	return out
}

func smallMLPParams() Params {
	p := DefaultParams(MLP)
	p.Hidden = []int{32, 16}
	p.Epochs = 60
	return p
}

// TestMLPClassifier_Deterministic: the same seed gives the same bytes,
// whatever GOMAXPROCS; another seed gives another model.
func TestMLPClassifier_Deterministic(t *testing.T) {
	ds := synthCodes(200, 300, 3, 5) // wide enough for gonum's parallel GEMM blocks
	X := float64s(ds.X)
	p := smallMLPParams()
	p.Hidden = []int{160, 80}
	p.Epochs = 8
	fit := func(seed int64, procs int) []byte {
		t.Helper()
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		q := p
		q.Seed = seed
		m := &MLPClassifier{}
		if err := m.Fit(X, ds.Y, 3, q); err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := fit(7, runtime.NumCPU())
	if b := fit(7, runtime.NumCPU()); !bytes.Equal(a, b) {
		t.Error("two fits with seed 7 differ")
	}
	if b := fit(7, 1); !bytes.Equal(a, b) {
		t.Error("seed 7 with GOMAXPROCS=1 differs from GOMAXPROCS=NumCPU")
	}
	if b := fit(8, runtime.NumCPU()); bytes.Equal(a, b) {
		t.Error("seeds 7 and 8 give the same model")
	}
}

// TestMLPClassifier_EarlyStopping: on labels that are noise the network
// memorises the training part, the validation loss rises, and training
// stops Patience epochs after its minimum with the best epoch's weights.
func TestMLPClassifier_EarlyStopping(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	X, _ := blobs(240, 40, 3, rng)
	y := make([]int, len(X))
	for i := range y {
		y[i] = rng.IntN(3)
	}
	p := smallMLPParams()
	p.Hidden = []int{128}
	p.Dropout = 0
	p.Epochs, p.Patience = 300, 5
	p.LearningRate = 3e-3
	m := &MLPClassifier{}
	if err := m.Fit(X, y, 3, p); err != nil {
		t.Fatal(err)
	}
	n := len(m.ValLoss)
	t.Logf("stopped after %d epochs, best %d: validation loss %.4f -> %.4f, training loss %.4f -> %.4f",
		n, m.BestEpoch, m.ValLoss[m.BestEpoch-1], m.ValLoss[n-1], m.TrainLoss[m.BestEpoch-1], m.TrainLoss[n-1])
	if !m.StoppedEarly || n >= p.Epochs {
		t.Fatalf("ran %d of %d epochs, stopped early %v", n, p.Epochs, m.StoppedEarly)
	}
	if n != m.BestEpoch+p.Patience {
		t.Errorf("stopped at epoch %d, want best %d + patience %d", n, m.BestEpoch, p.Patience)
	}
	if !(m.ValLoss[n-1] > m.ValLoss[m.BestEpoch-1]) {
		t.Errorf("validation loss did not rise: %v", m.ValLoss)
	}
	// The kept weights are the best epoch's: recompute its validation loss.
	_, va := mlpValidationSplit(y, 3, p.ValFrac, rand.New(rand.NewPCG(uint64(p.Seed), 0x6d6c70)))
	var loss float64
	for _, i := range va {
		_, probs := m.Predict(X[i])
		loss -= math.Log(probs[y[i]])
	}
	loss /= float64(len(va))
	if math.Abs(loss-m.ValLoss[m.BestEpoch-1]) > 1e-9 {
		t.Errorf("kept weights have validation loss %.12g, best epoch had %.12g", loss, m.ValLoss[m.BestEpoch-1])
	}
}

// TestMLPClassifier_Separable: a separable problem is learnt to high
// held-out accuracy, through Fit/Load like the CLI does.
func TestMLPClassifier_Separable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	X, y := blobs(400, 30, 4, rng)
	toDS := func(X [][]float64, y []int) *Dataset {
		ds := &Dataset{Classes: []string{"a", "b", "c", "d"}, Y: y}
		for _, x := range X {
			v := make([]float32, len(x))
			for j := range x {
				v[j] = float32(x[j])
			}
			ds.X = append(ds.X, v)
		}
		return ds
	}
	train, test := toDS(X[:200], y[:200]), toDS(X[200:], y[200:])
	for _, balanced := range []bool{false, true} {
		p := smallMLPParams()
		p.Balanced = balanced
		m, err := Fit(train, p)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if m, err = Load(blob); err != nil {
			t.Fatal(err)
		}
		met, _, err := m.Evaluate(test)
		if err != nil {
			t.Fatal(err)
		}
		if met.Accuracy < 0.98 {
			t.Errorf("balanced=%v: held-out accuracy %.3f, want >= 0.98", balanced, met.Accuracy)
		}
	}
}

func TestMLPClassifier_BadParams(t *testing.T) {
	for name, mod := range map[string]func(*Params){
		"hidden0":  func(p *Params) { p.Hidden = []int{0} },
		"dropout1": func(p *Params) { p.Dropout = 1 },
		"epochs0":  func(p *Params) { p.Epochs = 0 },
		"lr":       func(p *Params) { p.LearningRate = math.NaN() },
		"valfrac":  func(p *Params) { p.ValFrac = 0.6 },
	} {
		p := DefaultParams(MLP)
		mod(&p)
		if err := p.Validate(); err == nil || !errors.Is(err, ErrBadParam) {
			t.Errorf("%s: got %v, want ErrBadParam", name, err)
		}
	}
}

// TestMLPClassifier_Balanced: on imbalanced overlapping classes, balanced
// class weights raise the recall of the rare class (on its training
// points) and change the loss the validation fold is scored with.
func TestMLPClassifier_Balanced(t *testing.T) {
	full := synthCodes(600, 40, 3, 31)
	ds := &Dataset{Classes: full.Classes}
	seen := make([]int, 3)
	for i, c := range full.Y {
		if seen[c] < []int{200, 60, 20}[c] {
			seen[c]++
			ds.X, ds.Y = append(ds.X, full.X[i]), append(ds.Y, c)
		}
	}
	recall := func(balanced bool) float64 {
		p := smallMLPParams()
		p.Balanced = balanced
		m, err := Fit(ds, p)
		if err != nil {
			t.Fatal(err)
		}
		met, _, err := m.Evaluate(ds)
		if err != nil {
			t.Fatal(err)
		}
		return met.PerClass[2].Recall
	}
	plain, weighted := recall(false), recall(true)
	t.Logf("recall of the rare class: %.3f unweighted, %.3f balanced", plain, weighted)
	if !(weighted > plain) {
		t.Errorf("balanced recall %.3f not above unweighted %.3f", weighted, plain)
	}
}

// TestMLP_Diverges: inputs near float64's range and a huge step size send the
// loss to NaN or infinity; Fit says so with ErrDiverged (the CLI's hint
// names the flags), never a model of NaN weights.
func TestMLP_Diverges(t *testing.T) {
	var X [][]float64
	var y []int
	for i := 0; i < 60; i++ {
		c := i % 3
		X = append(X, []float64{1e300 * float64(c+1), -1e300 * float64(i%7), 1e300})
		y = append(y, c)
	}
	p := smallMLPParams()
	p.LearningRate = 1e100
	p.Epochs = 50
	m := &MLPClassifier{}
	err := m.Fit(X, y, 3, p)
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("Fit = %v, want ErrDiverged", err)
	}
	if strings.Contains(err.Error(), "--") {
		t.Errorf("classify names a CLI flag: %v", err)
	}
}
