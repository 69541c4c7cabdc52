package classify

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// StratifiedFolds splits sample indices into k folds (the test part of
// each CV round), deterministically for a seed. Each class's samples are
// shuffled and dealt round-robin, starting where the previous class
// stopped, so every fold holds floor or ceil of n_c/k samples of class c
// and fold sizes differ by at most one. Indices within a fold are sorted.
func StratifiedFolds(y []int, classes []string, k int, seed int64) ([][]int, error) {
	if k < 2 {
		return nil, fmt.Errorf("folds %d must be >= 2: %w", k, ErrBadParam)
	}
	byClass := make([][]int, len(classes))
	for i, c := range y {
		if c < 0 || c >= len(classes) {
			return nil, fmt.Errorf("label %d of sample %d is outside [0,%d): %w", c, i, len(classes), ErrBadData)
		}
		byClass[c] = append(byClass[c], i)
	}
	present := 0
	for c, idx := range byClass {
		if len(idx) == 0 {
			continue
		}
		present++
		if len(idx) < k {
			return nil, fmt.Errorf("class %q has %d samples, fewer than the %d folds (%d or fewer folds would do): %w",
				classes[c], len(idx), k, len(idx), ErrTooFewSamples)
		}
	}
	if present < 2 {
		return nil, fmt.Errorf("%d class(es) with samples: %w", present, ErrTooFewClasses)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	folds := make([][]int, k)
	next := 0
	for _, idx := range byClass {
		idx = slices.Clone(idx)
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx {
			folds[next] = append(folds[next], i)
			next = (next + 1) % k
		}
	}
	for _, f := range folds {
		slices.Sort(f)
	}
	return folds, nil
}

// trainIndices returns the samples not in fold f.
func trainIndices(n int, test []int) []int {
	in := make([]bool, n)
	for _, i := range test {
		in[i] = true
	}
	tr := make([]int, 0, n-len(test))
	for i := 0; i < n; i++ {
		if !in[i] {
			tr = append(tr, i)
		}
	}
	return tr
}

// FoldScore is the score of one CV round.
type FoldScore struct {
	Fold     int
	NTrain   int
	NTest    int
	Accuracy float64
	MacroF1  float64
	// FitSeconds is the wall time of the fold's fit (transform and
	// classifier, on its training part).
	FitSeconds float64
}

// CVResult is a cross-validation run. Means and standard deviations are
// over folds; the standard deviation is the population one (numpy's
// std, as sklearn's GridSearchCV reports).
type CVResult struct {
	Folds        []FoldScore
	MeanAccuracy float64
	StdAccuracy  float64
	MeanMacroF1  float64
	StdMacroF1   float64
	// OutOfFold holds each sample's prediction by the model that did not
	// see it; Pooled scores them together.
	OutOfFold []int
	Pooled    *Metrics
}

// CrossValidate runs stratified k-fold CV of p on ds. Every fold fits the
// transform and the classifier on its own training part only. Folds run
// in parallel.
func CrossValidate(ds *Dataset, p Params, k int) (*CVResult, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := ds.validateTrain(); err != nil {
		return nil, err
	}
	folds, err := StratifiedFolds(ds.Y, ds.Classes, k, p.Seed)
	if err != nil {
		return nil, err
	}
	res := &CVResult{Folds: make([]FoldScore, k), OutOfFold: make([]int, len(ds.Y))}
	err = parallelFor(k, 0, func(f int) error {
		test := folds[f]
		train := trainIndices(len(ds.Y), test)
		t0 := time.Now()
		m, err := Fit(ds.subset(train), p)
		if err != nil {
			return fmt.Errorf("fold %d: %w", f+1, err)
		}
		fitSeconds := time.Since(t0).Seconds()
		te := ds.subset(test)
		met, preds, err := m.Evaluate(te)
		if err != nil {
			return fmt.Errorf("fold %d: %w", f+1, err)
		}
		for j, i := range test {
			res.OutOfFold[i] = preds[j].Label
		}
		res.Folds[f] = FoldScore{Fold: f + 1, NTrain: len(train), NTest: len(test), Accuracy: met.Accuracy, MacroF1: met.MacroF1, FitSeconds: fitSeconds}
		return nil
	})
	if err != nil {
		return nil, err
	}
	acc := make([]float64, k)
	f1 := make([]float64, k)
	for i, f := range res.Folds {
		acc[i], f1[i] = f.Accuracy, f.MacroF1
	}
	res.MeanAccuracy, res.StdAccuracy = meanStd(acc)
	res.MeanMacroF1, res.StdMacroF1 = meanStd(f1)
	if res.Pooled, err = Score(ds.Y, res.OutOfFold, ds.Classes); err != nil {
		return nil, err
	}
	return res, nil
}

// meanStd returns the mean and population standard deviation.
func meanStd(v []float64) (float64, float64) {
	var s float64
	for _, x := range v {
		s += x
	}
	mean := s / float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)))
}
