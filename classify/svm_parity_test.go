package classify

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
)

// svmCase is one libsvm configuration compared against C svm-train.
type svmCase struct {
	name     string
	kernel   string
	C        float64
	degree   int
	coef0    float64
	prob     bool // -b 1
	weighted bool // -wi: balanced weights on a class-imbalanced training set
}

var svmCases = []svmCase{
	{name: "linear", kernel: "linear", C: 1},
	{name: "rbf", kernel: "rbf", C: 4},
	{name: "poly", kernel: "poly", C: 1, degree: 3, coef0: 1},
	{name: "sigmoid", kernel: "sigmoid", C: 1, coef0: -1},
	{name: "rbf_weights", kernel: "rbf", C: 4, weighted: true},
	{name: "linear_weights", kernel: "linear", C: 0.5, weighted: true},
	{name: "rbf_prob", kernel: "rbf", C: 4, prob: true},
	{name: "poly_prob_weights", kernel: "poly", C: 1, degree: 2, coef0: 1, prob: true, weighted: true},
}

// imbalance drops two thirds of class 0 from the training part.
func imbalance(s refSet) refSet {
	out := s
	out.trainX, out.trainY = nil, nil
	n0 := 0
	for i, y := range s.trainY {
		if y == 0 {
			n0++
			if n0%3 != 0 {
				continue
			}
		}
		out.trainX = append(out.trainX, s.trainX[i])
		out.trainY = append(out.trainY, y)
	}
	return out
}

func TestSVMClassifier_ParityLibsvm(t *testing.T) {
	needTool(t, "svm-train", "svm-predict")
	sets := append([]refSet{synthRefSet(512, 7)}, fileRefSets(t)...)
	for _, set := range sets {
		for _, tc := range svmCases {
			t.Run(set.name+"/"+tc.name, func(t *testing.T) {
				svmParity(t, set, tc)
			})
		}
	}
	// One full-size case: 4096-d codes, the product's typical input.
	t.Run("synth4096/rbf", func(t *testing.T) {
		if testing.Short() {
			t.Skip("4096-d parity takes ~20 s")
		}
		svmParity(t, synthRefSet(4096, 8), svmCase{name: "rbf", kernel: "rbf", C: 4})
	})
}

func svmParity(t *testing.T, set refSet, tc svmCase) {
	if tc.weighted {
		set = imbalance(set)
	}
	dir := t.TempDir()
	d := len(set.trainX[0])
	p := DefaultParams(SVM)
	p.Kernel, p.C, p.Degree, p.Coef0 = tc.kernel, tc.C, tc.degree, tc.coef0
	p.Probability, p.Balanced = tc.prob, tc.weighted
	gamma := p.Gamma.resolve(set.trainX)
	p.Gamma = Gamma{Value: gamma}

	// Go: libsvm-go through SVMClassifier.
	var got SVMClassifier
	if err := got.Fit(set.trainX, set.trainY, set.classes, p); err != nil {
		t.Fatal(err)
	}

	// C: svm-train/svm-predict on the same data, written exactly.
	train := writeLibsvmFile(t, dir, "train", set.trainX, set.trainY)
	test := writeLibsvmFile(t, dir, "test", set.testX, set.testY)
	model, out := filepath.Join(dir, "model"), filepath.Join(dir, "out")
	args := []string{"-q", "-s", "0", "-t", fmt.Sprint(p.kernelIndex()), "-c", g17(tc.C), "-g", g17(gamma),
		"-d", fmt.Sprint(max(tc.degree, 1)), "-r", g17(tc.coef0)}
	if tc.prob {
		args = append(args, "-b", "1")
	}
	if w := classWeights(set.trainY, set.classes, tc.weighted); w != nil {
		for c, f := range w {
			args = append(args, fmt.Sprintf("-w%d", c), g17(f))
		}
	}
	run(t, "svm-train", append(args, train, model)...)
	run(t, "svm-predict", "-b", "0", test, model, out)
	cLabels, _ := readPredictions(t, out, set.classes)
	ref := readLibsvmModelFile(t, model, set.classes, d)

	// Our decision function on C's model must give svm-predict's labels:
	// this checks the predictor independently of libsvm-go's training.
	for i, x := range set.testX {
		if l := ref.DecisionLabel(x); l != cLabels[i] {
			dec, _ := ref.Decision(x)
			t.Errorf("C model, our predictor: sample %d label %d, svm-predict %d (decision %v)", i, l, cLabels[i], dec)
		}
	}

	// libsvm-go's model against C's: same labels except on near-ties.
	disagree, maxDiff, maxDec, correct := 0, 0.0, 0.0, 0
	for i, x := range set.testX {
		if cLabels[i] == set.testY[i] {
			correct++
		}
		dGo, _ := got.Decision(x)
		dC, _ := ref.Decision(x)
		for k := range dGo {
			maxDiff = math.Max(maxDiff, math.Abs(dGo[k]-dC[k]))
			maxDec = math.Max(maxDec, math.Abs(dC[k]))
		}
		if l := got.DecisionLabel(x); l != cLabels[i] {
			disagree++
			if m := flippedMargin(dGo, dC); m > 0.05 {
				t.Errorf("sample %d: libsvm-go %d, C %d, not a near-tie: flipped pair margin %.3g (go %v, C %v)", i, l, cLabels[i], m, dGo, dC)
			}
		}
	}
	t.Logf("%d test vectors (C accuracy %.3f): %d label disagreements; nSV go %d C %d; max |decision diff| %.3g (max |decision| %.3g)",
		len(set.testX), float64(correct)/float64(len(set.testX)), disagree, len(got.SV), len(ref.SV), maxDiff, maxDec)
	if limit := max(2, len(set.testX)/100); disagree > limit {
		t.Errorf("%d disagreements with C libsvm, want <= %d", disagree, limit)
	}

	if !tc.prob {
		if got.HasProbabilities() {
			t.Error("probabilities without Probability")
		}
		return
	}
	// Probabilities: C's Platt CV shuffles with rand(), ours with a seeded
	// PCG, so the sigmoids differ a little; compare loosely.
	run(t, "svm-predict", "-b", "1", test, model, out)
	cbLabels, cProbs := readPredictions(t, out, set.classes)
	var sumDiff, maxPDiff float64
	argDisagree := 0
	for i, x := range set.testX {
		// With C's own model (its sigmoids), our label must be
		// svm-predict -b 1's: the most probable class.
		if l, _ := ref.Predict(x); l != cbLabels[i] {
			t.Errorf("C model with -b 1, our predictor: sample %d label %d, svm-predict -b 1 %d", i, l, cbLabels[i])
		}
		label, pr := got.Predict(x)
		best := 0
		for c := range pr {
			sumDiff += math.Abs(pr[c] - cProbs[i][c])
			maxPDiff = math.Max(maxPDiff, math.Abs(pr[c]-cProbs[i][c]))
			if pr[c] > pr[best] {
				best = c
			}
		}
		if label != best {
			t.Errorf("sample %d: label %d is not the most probable class %d (%v)", i, label, best, pr)
		}
		if best != cbLabels[i] {
			argDisagree++
		}
	}
	meanDiff := sumDiff / float64(len(set.testX)*set.classes)
	t.Logf("probabilities: mean |diff| %.4f, max |diff| %.4f, argmax disagreements %d", meanDiff, maxPDiff, argDisagree)
	if meanDiff > 0.02 || maxPDiff > 0.25 {
		t.Errorf("probabilities differ from C libsvm: mean |diff| %.4f (want <= 0.02), max %.4f (want <= 0.25)", meanDiff, maxPDiff)
	}
	if limit := max(3, len(set.testX)/50); argDisagree > limit {
		t.Errorf("%d most-probable-class disagreements with C libsvm -b 1, want <= %d", argDisagree, limit)
	}
}
