package classify

import (
	"math"
	"runtime"
	"slices"
	"testing"

	libSvm "github.com/ewalker544/libsvm-go"
)

func TestSVMClassifier_Decision(t *testing.T) {
	// Our decision function must be libsvm-go's, bit for bit: train a
	// model with libsvm-go's own API and compare with its PredictValues.
	set := synthRefSet(128, 3)
	for k, kernel := range Kernels {
		t.Run(kernel, func(t *testing.T) {
			param := libSvm.NewParameter()
			param.KernelType = k
			param.Gamma = 1.0 / 512
			param.Coef0 = 0.5
			param.Degree = 2
			param.QuietMode = true
			param.NumCPU = runtime.GOMAXPROCS(0)
			prob, err := newLibsvmProblem(set.trainX, labelsFloat(set.trainY))
			if err != nil {
				t.Fatal(err)
			}
			model := libSvm.NewModel(param)
			if err := model.Train(prob); err != nil {
				t.Fatal(err)
			}
			fit, err := readLibsvmModel(model)
			if err != nil {
				t.Fatal(err)
			}
			ours := &SVMClassifier{Kernel: k, Gamma: param.Gamma, Coef0: param.Coef0, Degree: param.Degree, NClasses: set.classes}
			ours.setFit(fit, set.trainX)
			for i, x := range set.testX {
				sparse := map[int]float64{}
				for j, v := range x {
					if v != 0 {
						sparse[j+1] = v
					}
				}
				wantLabel, want := model.PredictValues(sparse)
				got, best := ours.Decision(x)
				if len(got) != len(want) {
					t.Fatalf("sample %d: %d decision values, libsvm-go %d", i, len(got), len(want))
				}
				for p := range got {
					if math.Float64bits(got[p]) != math.Float64bits(want[p]) {
						t.Errorf("sample %d pair %d: decision %.17g, libsvm-go %.17g", i, p, got[p], want[p])
					}
				}
				if float64(ours.Labels[best]) != wantLabel {
					t.Errorf("sample %d: label %d, libsvm-go %v", i, ours.Labels[best], wantLabel)
				}
			}
		})
	}
}

func TestNewLibsvmProblem(t *testing.T) {
	// The in-memory problem and the file fallback must train the same model.
	if problemLayoutErr != nil {
		t.Fatalf("libsvm-go layout check failed, the fast path is off: %v", problemLayoutErr)
	}
	set := synthRefSet(64, 4)
	p := DefaultParams(SVM)
	p.C = 2
	var mem, file SVMClassifier
	if err := mem.Fit(set.trainX, set.trainY, set.classes, p); err != nil {
		t.Fatal(err)
	}
	forceProblemFile = true
	err := file.Fit(set.trainX, set.trainY, set.classes, p)
	forceProblemFile = false
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mem.Rho, file.Rho) || !slices.EqualFunc(mem.Coef, file.Coef, slices.Equal) ||
		!slices.EqualFunc(mem.SV, file.SV, slices.Equal) || !slices.Equal(mem.Labels, file.Labels) {
		t.Errorf("in-memory and file problems train different models: rho %v vs %v", mem.Rho, file.Rho)
	}
}

func TestSVMClassifier_Fit(t *testing.T) {
	set := synthRefSet(64, 5)
	t.Run("KeepsGOMAXPROCS", func(t *testing.T) {
		// libsvm-go sets GOMAXPROCS in every solver; we pass the current
		// value so that it stays as the caller set it.
		old := runtime.GOMAXPROCS(1)
		defer runtime.GOMAXPROCS(old)
		var m SVMClassifier
		if err := m.Fit(set.trainX, set.trainY, set.classes, DefaultParams(SVM)); err != nil {
			t.Fatal(err)
		}
		if got := runtime.GOMAXPROCS(0); got != 1 {
			t.Errorf("GOMAXPROCS = %d after training, want 1", got)
		}
	})
	t.Run("ProbabilitySeeded", func(t *testing.T) {
		p := DefaultParams(SVM)
		p.Probability = true
		var a, b, c SVMClassifier
		for _, m := range []*SVMClassifier{&a, &b} {
			if err := m.Fit(set.trainX, set.trainY, set.classes, p); err != nil {
				t.Fatal(err)
			}
		}
		p.Seed = 2
		if err := c.Fit(set.trainX, set.trainY, set.classes, p); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a.ProbA, b.ProbA) || !slices.Equal(a.ProbB, b.ProbB) {
			t.Errorf("same seed, different sigmoids: %v/%v vs %v/%v", a.ProbA, a.ProbB, b.ProbA, b.ProbB)
		}
		if slices.Equal(a.ProbA, c.ProbA) {
			t.Error("seeds 1 and 2 give identical sigmoids: the CV shuffle ignores the seed")
		}
		for _, x := range set.testX {
			_, pr := a.Predict(x)
			var sum float64
			for _, v := range pr {
				sum += v
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Fatalf("probabilities %v sum to %v", pr, sum)
			}
		}
	})
	t.Run("AbsentClass", func(t *testing.T) {
		// Class 3 of 4 has no training samples: never predicted, probability 0.
		var X [][]float64
		var y []int
		for i, c := range set.trainY {
			if c != 3 {
				X, y = append(X, set.trainX[i]), append(y, c)
			}
		}
		p := DefaultParams(SVM)
		p.Probability = true
		var m SVMClassifier
		if err := m.Fit(X, y, 4, p); err != nil {
			t.Fatal(err)
		}
		for _, x := range set.testX {
			l, pr := m.Predict(x)
			if l == 3 || len(pr) != 4 || pr[3] != 0 {
				t.Fatalf("label %d, probabilities %v", l, pr)
			}
		}
	})
}

func TestMulticlassProbability(t *testing.T) {
	// Consistent pairwise probabilities r_ij = p_i/(p_i+p_j) are coupled
	// back to p (Wu, Lin and Weng's method recovers them up to its
	// stopping tolerance 0.005/k).
	p := []float64{0.5, 0.3, 0.15, 0.05}
	k := len(p)
	r := make([][]float64, k)
	for i := range r {
		r[i] = make([]float64, k)
		for j := range r[i] {
			if i != j {
				r[i][j] = p[i] / (p[i] + p[j])
			}
		}
	}
	got := multiclassProbability(k, r)
	for i := range p {
		if math.Abs(got[i]-p[i]) > 0.005 {
			t.Errorf("p[%d] = %v, want %v", i, got[i], p[i])
		}
	}
}

// TestSVMClassifier_LabelIsMostProbable: with Platt probabilities the
// label is the most probable class, also on the points where libsvm's
// one-vs-one vote names another class (the data are chosen to have some).
func TestSVMClassifier_LabelIsMostProbable(t *testing.T) {
	ds := synthCodes(240, 64, 4, 21)
	p := DefaultParams(SVM)
	p.Probability = true
	m, err := Fit(ds, p)
	if err != nil {
		t.Fatal(err)
	}
	svm := m.Clf.(*SVMClassifier)
	test := synthCodes(240, 64, 4, 21) // same distribution and seed: the training points
	differ := 0
	for i, x := range test.X {
		pr, err := m.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		best := argmax(pr.Probs)
		if pr.Label != best || pr.Class != m.Classes[best] {
			t.Errorf("vector %d: label %d (%s), most probable %d %v", i, pr.Label, pr.Class, best, pr.Probs)
		}
		z, _ := m.Transform.Apply(x)
		if svm.DecisionLabel(z) != best {
			differ++
		}
	}
	t.Logf("%d of %d vectors: the vote differs from the most probable class", differ, len(test.X))
	if differ == 0 {
		t.Fatal("no vector where the vote and the probabilities disagree: the test checks nothing")
	}
}
