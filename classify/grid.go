package classify

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// GridSpec configures GridSearch. The zero value means libsvm grid.py's
// ranges, 5 folds, a fine stage and GOMAXPROCS workers.
type GridSpec struct {
	Folds int // default 5
	// Log2C and Log2Gamma are {begin, end, step} in log2 units, as
	// grid.py's -log2c and -log2g (defaults {-5,15,2} and {3,-15,-2}).
	// Gamma is searched only for svm with a non-linear kernel.
	Log2C     [3]float64
	Log2Gamma [3]float64
	// NoFine skips the second stage: steps of 0.5 within +-1 (log2) of
	// the best coarse point in each searched dimension.
	NoFine  bool
	Workers int // concurrent fits; default GOMAXPROCS
	// Progress, when set, is called after each point's last fold, from
	// the worker goroutines but never concurrently.
	Progress func(GridProgress)
}

// GridProgress is reported after each evaluated point.
type GridProgress struct {
	Stage string // coarse or fine
	Done  int    // points of this stage evaluated
	Total int    // points in this stage
	Best  GridPoint
}

// GridPoint is one evaluated parameter setting.
type GridPoint struct {
	Stage        string  `json:"stage"` // coarse or fine
	Log2C        float64 `json:"log2_c"`
	Log2Gamma    float64 `json:"log2_gamma"` // NaN when gamma is not searched
	C            float64 `json:"c"`
	Gamma        float64 `json:"gamma"` // 0 when gamma is not searched
	MeanAccuracy float64 `json:"mean_accuracy"`
	StdAccuracy  float64 `json:"std_accuracy"`
	MeanMacroF1  float64 `json:"mean_macro_f1"`
	StdMacroF1   float64 `json:"std_macro_f1"`
}

// MarshalJSON writes Log2Gamma as null when gamma is not searched (NaN
// has no JSON form; encoding/json fails on it).
func (p GridPoint) MarshalJSON() ([]byte, error) {
	type plain GridPoint
	v := struct {
		plain
		Log2Gamma *float64 `json:"log2_gamma"`
	}{plain: plain(p)}
	if !math.IsNaN(p.Log2Gamma) {
		v.Log2Gamma = &p.Log2Gamma
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes (null: NaN).
func (p *GridPoint) UnmarshalJSON(b []byte) error {
	type plain GridPoint
	var v struct {
		plain
		Log2Gamma *float64 `json:"log2_gamma"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = GridPoint(v.plain)
	p.Log2Gamma = math.NaN()
	if v.Log2Gamma != nil {
		p.Log2Gamma = *v.Log2Gamma
	}
	return nil
}

// GridEdge says that the best point lies on the edge of the searched
// range of one parameter: the optimum may lie beyond it.
type GridEdge struct {
	Param string  `json:"param"` // C or gamma
	Side  string  `json:"side"`  // lower or upper
	Log2  float64 `json:"log2"`  // the best point's log2 value
	Min   float64 `json:"min"`   // log2 range searched (both stages)
	Max   float64 `json:"max"`
}

// GridResult is the whole table, in evaluation order, and the pick.
type GridResult struct {
	Points []GridPoint `json:"points"`
	Best   GridPoint   `json:"best"`
	// Edges lists the parameters whose best value is the smallest or
	// largest value searched (empty when the best point is inside).
	Edges []GridEdge `json:"edges"`
	// Params are the input params with the best C (and gamma) set, ready
	// for the final Fit on all the training data.
	Params Params `json:"params"`
}

// gridJobHook, when set (tests), is called with +1 when a fit starts and
// -1 when it ends.
var gridJobHook func(delta int)

// GridSearch evaluates C (and gamma for kernel SVMs) by stratified k-fold
// CV on ds and picks the highest mean CV accuracy; ties (within 1e-12) go
// to the smaller C, then the smaller gamma, i.e. the smoother model. The
// transform is fitted once per fold on that fold's training part; the
// fits of all (point, fold) pairs are spread over the workers, each with
// its own libsvm-go or liblinear state (libsvm-go has no global state but
// GOMAXPROCS, which we keep unchanged; see libsvmgo.go). Probability
// estimates are not fitted during the search (points are scored on the
// predicted labels).
func GridSearch(ds *Dataset, p Params, g GridSpec) (*GridResult, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	switch p.Classifier {
	case SVM, Linear, LogReg, Softmax:
	default:
		return nil, fmt.Errorf("grid search tunes svm, linear, logreg and softmax, not %s: %w", p.Classifier, ErrBadParam)
	}
	if err := ds.validateTrain(); err != nil {
		return nil, err
	}
	g = g.withDefaults()
	withGamma := p.Classifier == SVM && p.Kernel != "linear"
	cs, err := gridRange("log2c", g.Log2C)
	if err != nil {
		return nil, err
	}
	gs := []float64{math.NaN()}
	if withGamma {
		if gs, err = gridRange("log2g", g.Log2Gamma); err != nil {
			return nil, err
		}
	}
	folds, err := StratifiedFolds(ds.Y, ds.Classes, g.Folds, p.Seed)
	if err != nil {
		return nil, err
	}
	fd, err := prepareFolds(ds, p, folds)
	if err != nil {
		return nil, err
	}
	s := &gridSearch{ds: ds, p: p, g: g, withGamma: withGamma, fd: fd, res: &GridResult{}, seen: map[[2]float64]bool{}}
	s.p.Probability = false
	if err := s.stage("coarse", cs, gs); err != nil {
		return nil, err
	}
	best := pickBest(s.res.Points)
	if !g.NoFine {
		fgs := gs
		if withGamma {
			fgs = fineRange(best.Log2Gamma)
		}
		if err := s.stage("fine", fineRange(best.Log2C), fgs); err != nil {
			return nil, err
		}
		best = pickBest(s.res.Points)
	}
	res := s.res
	res.Best = best
	res.Edges = gridEdges(res.Points, best, withGamma)
	res.Params = p
	res.Params.C = best.C
	if withGamma {
		res.Params.Gamma = Gamma{Value: best.Gamma}
	}
	return res, nil
}

// withDefaults fills the zero fields of g with grid.py's defaults.
func (g GridSpec) withDefaults() GridSpec {
	if g.Folds == 0 {
		g.Folds = 5
	}
	if g.Log2C == ([3]float64{}) {
		g.Log2C = [3]float64{-5, 15, 2}
	}
	if g.Log2Gamma == ([3]float64{}) {
		g.Log2Gamma = [3]float64{3, -15, -2}
	}
	return g
}

// fineRange is the fine stage's values: steps of 0.5 within +-1 of center.
func fineRange(center float64) []float64 {
	var v []float64
	for d := -1.0; d <= 1.0; d += 0.5 {
		v = append(v, center+d)
	}
	return v
}

// gridSearch is one GridSearch's state across its stages.
type gridSearch struct {
	ds        *Dataset
	p         Params // without probability estimates
	g         GridSpec
	withGamma bool
	fd        []*foldData
	res       *GridResult         // the points of the stages run so far
	seen      map[[2]float64]bool // (log2 C, log2 gamma or 0) already evaluated
}

// points lists the stage's points not evaluated by an earlier stage.
func (s *gridSearch) points(stage string, cs, gs []float64) []GridPoint {
	var pts []GridPoint
	for _, lc := range cs {
		for _, lg := range gs {
			key := [2]float64{lc, lg}
			if math.IsNaN(lg) {
				key[1] = 0
			}
			if s.seen[key] {
				continue
			}
			s.seen[key] = true
			pt := GridPoint{Stage: stage, Log2C: lc, Log2Gamma: lg, C: math.Exp2(lc)}
			if s.withGamma {
				pt.Gamma = math.Exp2(lg)
			}
			pts = append(pts, pt)
		}
	}
	return pts
}

// stage scores every new point of cs x gs on every fold, spreading the
// (point, fold) fits over the workers, and appends the points to res.
func (s *gridSearch) stage(stage string, cs, gs []float64) error {
	pts := s.points(stage, cs, gs)
	nf := len(s.fd)
	acc := make([]float64, len(pts)*nf)
	f1 := make([]float64, len(pts)*nf)
	var mu sync.Mutex
	foldsDone := make([]int, len(pts))
	pointsDone := 0
	best := GridPoint{MeanAccuracy: math.Inf(-1)}
	if len(s.res.Points) > 0 {
		best = pickBest(s.res.Points)
	}
	report := func(i int) {
		mu.Lock()
		defer mu.Unlock()
		if foldsDone[i]++; foldsDone[i] < nf {
			return
		}
		pointsDone++
		pt := pts[i]
		pt.MeanAccuracy, pt.StdAccuracy = meanStd(acc[i*nf : (i+1)*nf])
		pt.MeanMacroF1, pt.StdMacroF1 = meanStd(f1[i*nf : (i+1)*nf])
		best = pickBest([]GridPoint{best, pt})
		if s.g.Progress != nil {
			s.g.Progress(GridProgress{Stage: stage, Done: pointsDone, Total: len(pts), Best: best})
		}
	}
	err := parallelFor(len(pts)*nf, s.g.Workers, func(job int) error {
		a, m, err := s.score(pts[job/nf], job%nf)
		if err != nil {
			return err
		}
		mu.Lock()
		acc[job], f1[job] = a, m
		mu.Unlock()
		report(job / nf)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range pts {
		pts[i].MeanAccuracy, pts[i].StdAccuracy = meanStd(acc[i*nf : (i+1)*nf])
		pts[i].MeanMacroF1, pts[i].StdMacroF1 = meanStd(f1[i*nf : (i+1)*nf])
	}
	s.res.Points = append(s.res.Points, pts...)
	return nil
}

// score fits pt's parameters on fold's training part and returns the
// accuracy and macro-F1 on its held-out part.
func (s *gridSearch) score(pt GridPoint, fold int) (acc, macroF1 float64, err error) {
	if h := gridJobHook; h != nil {
		h(+1)
		defer h(-1)
	}
	q := s.p
	q.C = pt.C
	if s.withGamma {
		q.Gamma = Gamma{Value: pt.Gamma}
	}
	acc, macroF1, err = s.fd[fold].score(q, s.ds)
	if err != nil {
		return 0, 0, fmt.Errorf("C=%g gamma=%g fold %d: %w", pt.C, pt.Gamma, fold+1, err)
	}
	return acc, macroF1, nil
}

// gridEdges reports the parameters whose best value is at the end of the
// values searched.
func gridEdges(pts []GridPoint, best GridPoint, withGamma bool) []GridEdge {
	edges := []GridEdge{}
	check := func(param string, get func(GridPoint) float64) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range pts {
			lo, hi = math.Min(lo, get(p)), math.Max(hi, get(p))
		}
		if lo == hi {
			return
		}
		v := get(best)
		switch v {
		case lo:
			edges = append(edges, GridEdge{Param: param, Side: "lower", Log2: v, Min: lo, Max: hi})
		case hi:
			edges = append(edges, GridEdge{Param: param, Side: "upper", Log2: v, Min: lo, Max: hi})
		}
	}
	check("C", func(p GridPoint) float64 { return p.Log2C })
	if withGamma {
		check("gamma", func(p GridPoint) float64 { return p.Log2Gamma })
	}
	return edges
}

// ParseGridRange reads a log2 range "start:stop:step" (grid.py's
// -log2c/-log2g), e.g. "-5:15:2" or "3:-15:-2".
func ParseGridRange(s string) ([3]float64, error) {
	var r [3]float64
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return r, fmt.Errorf("range %q: want log2 start:stop:step, e.g. -5:15:2: %w", s, ErrBadParam)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return r, fmt.Errorf("range %q: %q is not a number: %w", s, p, ErrBadParam)
		}
		r[i] = v
	}
	if _, err := gridRange("log2", r); err != nil {
		return r, err
	}
	return r, nil
}

func gridRange(name string, r [3]float64) ([]float64, error) {
	begin, end, step := r[0], r[1], r[2]
	if step == 0 || math.IsNaN(step) || (end-begin)/step < 0 || (end-begin)/step > 1000 {
		return nil, fmt.Errorf("%s range %v,%v,%v is empty or too long: %w", name, begin, end, step, ErrBadParam)
	}
	var v []float64
	for i := 0; ; i++ {
		x := begin + float64(i)*step
		if (step > 0 && x > end+1e-9) || (step < 0 && x < end-1e-9) {
			break
		}
		v = append(v, x)
	}
	return v, nil
}

// pickBest: highest mean accuracy, then smaller C, then smaller gamma.
func pickBest(pts []GridPoint) GridPoint {
	s := slices.Clone(pts)
	slices.SortStableFunc(s, func(a, b GridPoint) int {
		if math.Abs(a.MeanAccuracy-b.MeanAccuracy) > 1e-12 {
			if a.MeanAccuracy > b.MeanAccuracy {
				return -1
			}
			return 1
		}
		if a.Log2C != b.Log2C {
			if a.Log2C < b.Log2C {
				return -1
			}
			return 1
		}
		if a.Log2Gamma < b.Log2Gamma {
			return -1
		}
		if a.Log2Gamma > b.Log2Gamma {
			return 1
		}
		return 0
	})
	return s[0]
}

// foldData is one CV round with its transform already fitted on the
// training part.
type foldData struct {
	trainY []int
	testY  []int
	trainZ [][]float64
	testZ  [][]float64
	prob   *libSvmProblem // svm only: built once, read by all points' fits
}

func prepareFolds(ds *Dataset, p Params, folds [][]int) ([]*foldData, error) {
	fd := make([]*foldData, len(folds))
	err := parallelFor(len(folds), 0, func(f int) error {
		test := folds[f]
		train := trainIndices(len(ds.Y), test)
		tr, te := ds.subset(train), ds.subset(test)
		t, err := FitTransform(p.Transform, tr.X)
		if err != nil {
			return fmt.Errorf("fold %d: %w", f+1, err)
		}
		d := &foldData{trainY: tr.Y, testY: te.Y}
		if d.trainZ, err = t.ApplyAll(tr.X); err != nil {
			return err
		}
		if d.testZ, err = t.ApplyAll(te.X); err != nil {
			return err
		}
		if p.Classifier == SVM {
			if d.prob, err = newSpanProblem(d.trainZ, labelsFloat(d.trainY)); err != nil {
				return err
			}
		}
		fd[f] = d
		return nil
	})
	return fd, err
}

// score fits q on the fold's training part and scores its test part.
func (f *foldData) score(q Params, ds *Dataset) (acc, macroF1 float64, err error) {
	var clf Classifier
	if q.Classifier == SVM {
		s := &SVMClassifier{}
		err = s.fitProblem(f.prob, f.trainZ, f.trainY, len(ds.Classes), q)
		clf = s
	} else {
		clf, _ = NewClassifier(q.Classifier)
		err = clf.Fit(f.trainZ, f.trainY, len(ds.Classes), q)
	}
	if err != nil {
		return 0, 0, err
	}
	pred := make([]int, len(f.testZ))
	for i, z := range f.testZ {
		pred[i], _ = clf.Predict(z)
	}
	met, err := Score(f.testY, pred, ds.Classes)
	if err != nil {
		return 0, 0, err
	}
	return met.Accuracy, met.MacroF1, nil
}
