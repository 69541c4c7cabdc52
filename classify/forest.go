package classify

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// ForestClassifier is a random forest of CART trees (Gini impurity,
// bootstrap samples, MaxFeatures features tried per split, grown until
// pure), as sklearn's RandomForestClassifier; probabilities are the mean of
// the trees' leaf class frequencies, the label their argmax (smallest class
// on ties).
//
// It is ours rather than golearn's ensemble.RandomForest, which cannot be
// seeded: it draws from the global math/rand (whose Seed is a no-op since
// Go 1.24) from one goroutine per tree, picks features per tree rather
// than per split, and breaks vote ties by map order. Tree t draws from its
// own PCG stream (Seed, t), so a forest is the same for a given seed
// whatever the number of cores.
type ForestClassifier struct {
	NClasses int
	Dim      int
	Trees    []Tree
}

// Tree is one fitted tree in flat form. Node 0 is the root; a node with
// Feature -1 is a leaf with class frequencies Value[node].
type Tree struct {
	Feature   []int32
	Threshold []float64 // go left when x[Feature] <= Threshold
	Left      []int32
	Right     []int32
	Value     [][]float32
}

// Kind implements Classifier.
func (m *ForestClassifier) Kind() string { return Forest }

// HasProbabilities implements Classifier.
func (m *ForestClassifier) HasProbabilities() bool { return true }

// Fit implements Classifier.
func (m *ForestClassifier) Fit(X [][]float64, y []int, nClasses int, p Params) error {
	p.Classifier = Forest
	if err := p.Validate(); err != nil {
		return err
	}
	d := len(X[0])
	mtry := p.MaxFeatures
	if mtry == 0 {
		mtry = max(1, int(math.Sqrt(float64(d))))
	}
	if mtry > d {
		return fmt.Errorf("max features %d exceeds the %d features: %w", mtry, d, ErrBadParam)
	}
	trees := make([]Tree, p.Trees)
	err := parallelFor(p.Trees, 0, func(t int) error {
		rng := rand.New(rand.NewPCG(uint64(p.Seed), uint64(t)))
		b := &treeBuilder{X: X, y: y, nClasses: nClasses, mtry: mtry, rng: rng}
		idx := make([]int, len(X))
		for i := range idx {
			idx[i] = rng.IntN(len(X))
		}
		b.grow(idx)
		trees[t] = b.tree
		return nil
	})
	if err != nil {
		return err
	}
	*m = ForestClassifier{NClasses: nClasses, Dim: d, Trees: trees}
	return nil
}

type treeBuilder struct {
	X        [][]float64
	y        []int
	nClasses int
	mtry     int
	rng      *rand.Rand
	tree     Tree
	feats    []int
	buf      []valueClass
}

type valueClass struct {
	v float64
	c int
	i int
}

func (b *treeBuilder) newNode() int {
	t := &b.tree
	t.Feature = append(t.Feature, -1)
	t.Threshold = append(t.Threshold, 0)
	t.Left = append(t.Left, -1)
	t.Right = append(t.Right, -1)
	t.Value = append(t.Value, nil)
	return len(t.Feature) - 1
}

func gini(counts []int, n int) float64 {
	if n == 0 {
		return 0
	}
	s := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		s += p * p
	}
	return 1 - s
}

// grow builds the subtree for samples idx (bootstrap rows, with repeats)
// and returns its node number. Recursion depth is bounded by the number of
// samples, a few hundred here.
func (b *treeBuilder) grow(idx []int) int {
	node := b.newNode()
	counts := make([]int, b.nClasses)
	for _, i := range idx {
		counts[b.y[i]]++
	}
	leaf := func() int {
		v := make([]float32, b.nClasses)
		for c, n := range counts {
			v[c] = float32(float64(n) / float64(len(idx)))
		}
		b.tree.Value[node] = v
		return node
	}
	parent := gini(counts, len(idx))
	if parent == 0 || len(idx) < 2 {
		return leaf()
	}
	d := len(b.X[0])
	if b.feats == nil {
		b.feats = make([]int, d)
		for j := range b.feats {
			b.feats[j] = j
		}
	}
	bestFeat, bestThr, bestGain := -1, 0.0, 0.0
	left := make([]int, b.nClasses)
	// Draw features without replacement until mtry non-constant ones were
	// tried (sklearn keeps drawing past constant features).
	tried := 0
	for k := 0; k < d && tried < b.mtry; k++ {
		r := k + b.rng.IntN(d-k)
		b.feats[k], b.feats[r] = b.feats[r], b.feats[k]
		f := b.feats[k]
		vc := b.buf[:0]
		for _, i := range idx {
			vc = append(vc, valueClass{b.X[i][f], b.y[i], i})
		}
		b.buf = vc
		slices.SortFunc(vc, func(a, c valueClass) int { return cmp.Compare(a.v, c.v) })
		if vc[0].v == vc[len(vc)-1].v {
			continue
		}
		tried++
		clear(left)
		n := len(vc)
		for s := 0; s < n-1; s++ {
			left[vc[s].c]++
			if vc[s].v == vc[s+1].v {
				continue
			}
			nl := s + 1
			var gl, gr float64
			{
				var sl, sr float64
				for c := range left {
					pl := float64(left[c]) / float64(nl)
					pr := float64(counts[c]-left[c]) / float64(n-nl)
					sl += pl * pl
					sr += pr * pr
				}
				gl, gr = 1-sl, 1-sr
			}
			gain := parent - (float64(nl)*gl+float64(n-nl)*gr)/float64(n)
			if gain > bestGain+1e-12 {
				bestGain, bestFeat = gain, f
				bestThr = vc[s].v + (vc[s+1].v-vc[s].v)/2
				if bestThr >= vc[s+1].v { // rounding; keep the split valid
					bestThr = vc[s].v
				}
			}
		}
	}
	if bestFeat < 0 {
		return leaf()
	}
	var li, ri []int
	for _, i := range idx {
		if b.X[i][bestFeat] <= bestThr {
			li = append(li, i)
		} else {
			ri = append(ri, i)
		}
	}
	b.tree.Feature[node] = int32(bestFeat)
	b.tree.Threshold[node] = bestThr
	l := b.grow(li)
	r := b.grow(ri)
	b.tree.Left[node] = int32(l)
	b.tree.Right[node] = int32(r)
	return node
}

// Predict implements Classifier.
func (m *ForestClassifier) Predict(x []float64) (int, []float64) {
	probs := make([]float64, m.NClasses)
	for _, t := range m.Trees {
		n := 0
		for t.Feature[n] >= 0 {
			if x[t.Feature[n]] <= t.Threshold[n] {
				n = int(t.Left[n])
			} else {
				n = int(t.Right[n])
			}
		}
		for c, v := range t.Value[n] {
			probs[c] += float64(v)
		}
	}
	best := 0
	for c := range probs {
		probs[c] /= float64(len(m.Trees))
		if probs[c] > probs[best] {
			best = c
		}
	}
	return best, probs
}

// forestClassifierState has the fields but not the methods (gob would call
// MarshalBinary recursively).
type forestClassifierState ForestClassifier

// MarshalBinary implements Classifier.
func (m *ForestClassifier) MarshalBinary() ([]byte, error) {
	return gobBytes((*forestClassifierState)(m))
}

// UnmarshalBinary implements Classifier.
func (m *ForestClassifier) UnmarshalBinary(b []byte) error {
	var s ForestClassifier
	if err := ungob(b, (*forestClassifierState)(&s)); err != nil {
		return err
	}
	if len(s.Trees) == 0 || s.NClasses < 2 {
		return fmt.Errorf("forest state inconsistent: %w", ErrBadModel)
	}
	for ti, t := range s.Trees {
		n := len(t.Feature)
		if n == 0 || len(t.Threshold) != n || len(t.Left) != n || len(t.Right) != n || len(t.Value) != n {
			return fmt.Errorf("forest tree %d inconsistent: %w", ti, ErrBadModel)
		}
		for i := 0; i < n; i++ {
			if int(t.Feature[i]) >= s.Dim {
				return fmt.Errorf("forest tree %d node %d: feature %d of %d: %w", ti, i, t.Feature[i], s.Dim, ErrBadModel)
			}
			if t.Feature[i] < 0 {
				if len(t.Value[i]) != s.NClasses {
					return fmt.Errorf("forest tree %d leaf %d: %w", ti, i, ErrBadModel)
				}
			} else if t.Left[i] <= int32(i) || t.Right[i] <= int32(i) || int(t.Left[i]) >= n || int(t.Right[i]) >= n {
				// children are created after their parent, so this also rules out cycles
				return fmt.Errorf("forest tree %d node %d: bad children: %w", ti, i, ErrBadModel)
			}
		}
	}
	*m = s
	return nil
}

func (m *ForestClassifier) shape() (int, int) { return m.Dim, m.NClasses }
