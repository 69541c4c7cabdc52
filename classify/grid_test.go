package classify

import (
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestGridSearch(t *testing.T) {
	ds := synthCodes(90, 128, 3, 4)
	p := DefaultParams(SVM)
	p.Transform = TransformSpec{Scale: ScaleStandard}
	spec := GridSpec{Folds: 3, Log2C: [3]float64{-1, 5, 2}, Log2Gamma: [3]float64{-5, -11, -3}}

	t.Run("UsesAllWorkers", func(t *testing.T) {
		if runtime.GOMAXPROCS(0) < 2 {
			t.Skip("GOMAXPROCS < 2")
		}
		// Each fit waits (up to 2 s) for a second one to be running, so a
		// serial search shows up as max 1 instead of passing by luck.
		var mu sync.Mutex
		cond := sync.NewCond(&mu)
		running, peak := 0, 0
		gridJobHook = func(d int) {
			mu.Lock()
			defer mu.Unlock()
			running += d
			peak = max(peak, running)
			cond.Broadcast()
			if d > 0 {
				deadline := time.Now().Add(2 * time.Second)
				for running < 2 && peak < 2 && time.Now().Before(deadline) {
					mu.Unlock()
					time.Sleep(time.Millisecond)
					mu.Lock()
				}
			}
		}
		defer func() { gridJobHook = nil }()
		s := spec
		s.NoFine = true
		if _, err := GridSearch(ds, p, s); err != nil {
			t.Fatal(err)
		}
		if peak < 2 {
			t.Errorf("at most %d fits ran at once, want 2 (GOMAXPROCS %d)", peak, runtime.GOMAXPROCS(0))
		}
	})

	t.Run("Pick", func(t *testing.T) {
		res, err := GridSearch(ds, p, spec)
		if err != nil {
			t.Fatal(err)
		}
		var coarse, fine []GridPoint
		for _, pt := range res.Points {
			if pt.Stage == "coarse" {
				coarse = append(coarse, pt)
			} else {
				fine = append(fine, pt)
			}
		}
		if len(coarse) != 4*3 {
			t.Fatalf("%d coarse points, want 12 (log2c -1..5 step 2 x log2g -5..-11 step -3)", len(coarse))
		}
		// Documented rule, applied here by hand: best mean accuracy, then
		// smaller C, then smaller gamma.
		better := func(a, b GridPoint) bool {
			if a.MeanAccuracy != b.MeanAccuracy {
				return a.MeanAccuracy > b.MeanAccuracy
			}
			if a.C != b.C {
				return a.C < b.C
			}
			return a.Gamma < b.Gamma
		}
		bestOf := func(pts []GridPoint) GridPoint {
			b := pts[0]
			for _, pt := range pts[1:] {
				if better(pt, b) {
					b = pt
				}
			}
			return b
		}
		cb := bestOf(coarse)
		for _, pt := range fine {
			if math.Abs(pt.Log2C-cb.Log2C) > 1 || math.Abs(pt.Log2Gamma-cb.Log2Gamma) > 1 ||
				math.Mod(pt.Log2C-cb.Log2C, 0.5) != 0 || math.Mod(pt.Log2Gamma-cb.Log2Gamma, 0.5) != 0 {
				t.Errorf("fine point (%v, %v) is not on the 0.5 grid within 1 of the coarse best (%v, %v)", pt.Log2C, pt.Log2Gamma, cb.Log2C, cb.Log2Gamma)
			}
		}
		if len(fine) != 24 {
			t.Errorf("%d fine points, want 24 (5x5 minus the coarse best)", len(fine))
		}
		want := bestOf(res.Points)
		if res.Best.C != want.C || res.Best.Gamma != want.Gamma {
			t.Errorf("picked C=%v gamma=%v (acc %v), rule gives C=%v gamma=%v (acc %v)",
				res.Best.C, res.Best.Gamma, res.Best.MeanAccuracy, want.C, want.Gamma, want.MeanAccuracy)
		}
		if res.Params.C != want.C || res.Params.Gamma.Value != want.Gamma {
			t.Errorf("Params C=%v gamma=%v, want the pick", res.Params.C, res.Params.Gamma)
		}
		// The table's numbers are cross-validation scores: the best point
		// re-run through CrossValidate (its own folds, transforms and fits)
		// gives the same mean and std.
		q := p
		q.C, q.Gamma = res.Best.C, Gamma{Value: res.Best.Gamma}
		cv, err := CrossValidate(ds, q, spec.Folds)
		if err != nil {
			t.Fatal(err)
		}
		if cv.MeanAccuracy != res.Best.MeanAccuracy || cv.StdAccuracy != res.Best.StdAccuracy || cv.MeanMacroF1 != res.Best.MeanMacroF1 {
			t.Errorf("grid best %v±%v (F1 %v), CrossValidate %v±%v (F1 %v)",
				res.Best.MeanAccuracy, res.Best.StdAccuracy, res.Best.MeanMacroF1, cv.MeanAccuracy, cv.StdAccuracy, cv.MeanMacroF1)
		}
		t.Logf("best log2C=%v log2g=%v: accuracy %.3f±%.3f", res.Best.Log2C, res.Best.Log2Gamma, res.Best.MeanAccuracy, res.Best.StdAccuracy)
	})

	t.Run("COnly", func(t *testing.T) {
		q := DefaultParams(LogReg)
		res, err := GridSearch(ds, q, GridSpec{Folds: 3, Log2C: [3]float64{-3, 3, 3}})
		if err != nil {
			t.Fatal(err)
		}
		for _, pt := range res.Points {
			if !math.IsNaN(pt.Log2Gamma) || pt.Gamma != 0 {
				t.Errorf("logreg point has gamma %v/%v", pt.Log2Gamma, pt.Gamma)
			}
		}
		if n := len(res.Points); n != 3+4 {
			t.Errorf("%d points, want 3 coarse + 4 fine", n)
		}
	})

	t.Run("ErrBadParam", func(t *testing.T) {
		if _, err := GridSearch(ds, DefaultParams(KNN), GridSpec{}); !errors.Is(err, ErrBadParam) {
			t.Errorf("knn: err = %v, want ErrBadParam", err)
		}
		if _, err := GridSearch(ds, p, GridSpec{Log2C: [3]float64{1, 5, -1}}); !errors.Is(err, ErrBadParam) {
			t.Errorf("empty C range: err = %v, want ErrBadParam", err)
		}
	})
	t.Run("ErrTooFewSamples", func(t *testing.T) {
		if _, err := GridSearch(ds, p, GridSpec{Folds: 31}); !errors.Is(err, ErrTooFewSamples) {
			t.Errorf("31 folds for 30 samples per class: err = %v, want ErrTooFewSamples", err)
		}
	})
}

func TestPickBest(t *testing.T) {
	nan := math.NaN()
	pts := []GridPoint{
		{Log2C: 3, Log2Gamma: -5, MeanAccuracy: 0.9},
		{Log2C: 1, Log2Gamma: -3, MeanAccuracy: 0.9},
		{Log2C: 1, Log2Gamma: -7, MeanAccuracy: 0.9},
		{Log2C: 5, Log2Gamma: -9, MeanAccuracy: 0.85},
	}
	if got := pickBest(pts); got.Log2C != 1 || got.Log2Gamma != -7 {
		t.Errorf("pick (%v, %v), want (1, -7): equal accuracy goes to smaller C, then smaller gamma", got.Log2C, got.Log2Gamma)
	}
	cOnly := []GridPoint{{Log2C: 2, Log2Gamma: nan, MeanAccuracy: 0.8}, {Log2C: 0, Log2Gamma: nan, MeanAccuracy: 0.8}}
	if got := pickBest(cOnly); got.Log2C != 0 {
		t.Errorf("pick log2C %v, want 0", got.Log2C)
	}
}

// TestGridSearch_ProgressAndEdges: progress is reported once per point of
// each stage with a running best that ends at the pick; a best point at
// the end of the searched C range is reported as an edge.
func TestGridSearch_ProgressAndEdges(t *testing.T) {
	ds := synthCodes(90, 64, 3, 4)
	p := DefaultParams(LogReg)
	p.Transform = TransformSpec{Scale: ScaleStandard}
	// At tiny C liblinear's regularised model does not change its
	// predictions: accuracy ties over this range and the tie rule picks
	// the smallest C, the lower end of the range (-17 with the fine stage).
	spec := GridSpec{Folds: 3, Log2C: [3]float64{-16, -10, 3}}
	var got []GridProgress
	spec.Progress = func(g GridProgress) { got = append(got, g) }
	res, err := GridSearch(ds, p, spec)
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]int{}
	for _, pt := range res.Points {
		stages[pt.Stage]++
	}
	if len(got) != len(res.Points) {
		t.Fatalf("%d progress reports for %d points", len(got), len(res.Points))
	}
	for i, g := range got {
		want := i + 1
		if g.Stage == "fine" {
			want -= stages["coarse"]
		}
		if g.Done != want || g.Total != stages[g.Stage] {
			t.Errorf("report %d: %s %d/%d, want %d/%d", i, g.Stage, g.Done, g.Total, want, stages[g.Stage])
		}
	}
	if last := got[len(got)-1].Best; last.Log2C != res.Best.Log2C || last.MeanAccuracy != res.Best.MeanAccuracy {
		t.Errorf("last progress best %+v, pick %+v", last, res.Best)
	}
	t.Logf("best log2 C %v (accuracy %.3f), edges %+v", res.Best.Log2C, res.Best.MeanAccuracy, res.Edges)
	if len(res.Edges) != 1 || res.Edges[0] != (GridEdge{Param: "C", Side: "lower", Log2: -17, Min: -17, Max: -10}) {
		t.Errorf("edges %+v, want C on the lower edge at -17 of -17..-10", res.Edges)
	}
}

func TestGridPoint_JSON(t *testing.T) {
	for _, pt := range []GridPoint{{Stage: "coarse", Log2C: 1, Log2Gamma: math.NaN(), C: 2, MeanAccuracy: 0.5}, {Stage: "fine", Log2C: 1, Log2Gamma: -3, C: 2, Gamma: 0.125}} {
		b, err := json.Marshal(pt)
		if err != nil {
			t.Fatal(err)
		}
		var back GridPoint
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.Stage != pt.Stage || back.C != pt.C || back.Gamma != pt.Gamma ||
			!(back.Log2Gamma == pt.Log2Gamma || math.IsNaN(back.Log2Gamma) && math.IsNaN(pt.Log2Gamma)) {
			t.Errorf("%s -> %+v, want %+v", b, back, pt)
		}
	}
}

func TestParseGridRange(t *testing.T) {
	for in, want := range map[string][3]float64{"-5:15:2": {-5, 15, 2}, "3:-15:-2": {3, -15, -2}, " 0 : 1 : 0.25 ": {0, 1, 0.25}} {
		got, err := ParseGridRange(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1:2", "a:2:1", "1:5:-1", "1:5:0", "0:100000:1", "NaN:1:1"} {
		if _, err := ParseGridRange(in); !errors.Is(err, ErrBadParam) {
			t.Errorf("%q: %v, want ErrBadParam", in, err)
		}
	}
}
