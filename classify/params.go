package classify

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Classifier names accepted by Params.Classifier.
const (
	SVM    = "svm"    // kernel SVM, C-SVC (libsvm-go)
	Linear = "linear" // linear SVM, L2-regularised L2-loss (liblinear via golearn)
	LogReg = "logreg" // L2-regularised logistic regression (liblinear via golearn), one-vs-rest for > 2 classes
	// Softmax is multinomial logistic regression (cross-entropy over all
	// classes, L-BFGS), scikit-learn's LogisticRegression(multi_class=
	// "multinomial"): the tutorial's softmax head.
	Softmax = "softmax"
	MLP     = "mlp"    // dense ReLU layers with dropout and a softmax output, Adam, early stopping
	KNN     = "knn"    // k nearest neighbours
	Forest  = "forest" // random forest
)

// Classifiers lists the accepted classifier names.
var Classifiers = []string{SVM, Linear, LogReg, Softmax, MLP, KNN, Forest}

// Kernels lists the accepted SVM kernel names, indexed by libsvm's kernel_type.
var Kernels = []string{"linear", "poly", "rbf", "sigmoid"}

// Gamma is the SVM kernel coefficient: a rule resolved on the transformed
// training data, or a fixed value.
type Gamma struct {
	// Rule is "scale" (sklearn's default: 1/(n_features * X.var())),
	// "auto" (1/n_features) or "" for Value.
	Rule  string  `json:"rule"`
	Value float64 `json:"value"`
}

// String gives the form ParseGamma reads.
func (g Gamma) String() string {
	if g.Rule != "" {
		return g.Rule
	}
	return strconv.FormatFloat(g.Value, 'g', -1, 64)
}

// ParseGamma reads "scale", "auto" or a positive number.
func ParseGamma(s string) (Gamma, error) {
	switch s {
	case "", "scale":
		return Gamma{Rule: "scale"}, nil
	case "auto":
		return Gamma{Rule: "auto"}, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return Gamma{}, fmt.Errorf("gamma %q: want scale, auto or a positive number: %w", s, ErrBadParam)
	}
	return Gamma{Value: v}, nil
}

// resolve returns the numeric gamma for transformed training data X.
func (g Gamma) resolve(X [][]float64) float64 {
	d := len(X[0])
	switch g.Rule {
	case "auto":
		return 1 / float64(d)
	case "scale":
		// Population variance of all entries, as numpy's X.var()
		// (Welford, so that large means do not cancel).
		var n, mean, m2 float64
		for _, row := range X {
			for _, v := range row {
				n++
				delta := v - mean
				mean += delta / n
				m2 += delta * (v - mean)
			}
		}
		if m2 == 0 {
			return 1 // sklearn's fallback for constant data
		}
		return 1 / (float64(d) * (m2 / n))
	}
	return g.Value
}

// Params configures Fit. The zero value is not valid; start from
// DefaultParams and override.
type Params struct {
	Classifier string        `json:"classifier"` // one of Classifiers
	Transform  TransformSpec `json:"transform"`  // fitted on training data only

	// SVM (Kernel, Gamma, Degree, Coef0) and C for svm, linear, logreg,
	// softmax.
	Kernel string  `json:"kernel"` // linear, rbf, poly, sigmoid
	C      float64 `json:"c"`      // > 0
	Gamma  Gamma   `json:"gamma"`
	Degree int     `json:"degree"` // poly only, >= 1
	Coef0  float64 `json:"coef0"`  // poly, sigmoid
	// Probability enables per-class probabilities for svm (Platt scaling
	// with libsvm's internal 5-fold CV; costs ~5 extra fits). logreg,
	// knn and forest always give probabilities; linear never does.
	Probability bool `json:"probability"`
	// Balanced weights each class's C (each sample's loss for softmax and
	// mlp) by n_samples/(n_classes*n_c), as sklearn's
	// class_weight="balanced" (svm, linear, logreg, softmax, mlp).
	Balanced bool `json:"balanced"`
	// Tol is the solver stopping tolerance; 0 means the solver's default
	// (libsvm 1e-3; liblinear primal solvers 1e-4, tighter than
	// liblinear-train's 0.01 so that results depend less on it).
	Tol float64 `json:"tol"`
	// CacheMB is libsvm's kernel cache in MiB (default 100).
	CacheMB int `json:"cache_mb"`

	// knn
	K      int    `json:"k"`      // neighbours, >= 1
	Metric string `json:"metric"` // euclidean or cosine

	// forest
	Trees       int `json:"trees"`        // >= 1
	MaxFeatures int `json:"max_features"` // features tried per split; 0 means floor(sqrt(d))

	// mlp (see MLPClassifier)
	Hidden       []int   `json:"hidden"`        // hidden layer widths, e.g. {256, 128}
	Dropout      float64 `json:"dropout"`       // drop probability after each hidden layer, [0, 1)
	Epochs       int     `json:"epochs"`        // maximum passes over the training part
	Patience     int     `json:"patience"`      // stop after this many epochs without a better validation loss
	BatchSize    int     `json:"batch_size"`    // mini-batch size
	LearningRate float64 `json:"learning_rate"` // Adam step size
	Alpha        float64 `json:"alpha"`         // L2 penalty on the weights (sklearn MLPClassifier's alpha)
	ValFrac      float64 `json:"val_frac"`      // fraction of each class held out for early stopping

	// Seed drives every random choice (CV folds, Platt CV, forest, mlp
	// initialisation, dropout, batches and validation fold).
	Seed int64 `json:"seed"`
}

// DefaultParams returns the defaults for a classifier (sklearn's where
// they exist).
func DefaultParams(classifier string) Params {
	return Params{
		Classifier: classifier,
		Transform:  TransformSpec{Scale: ScaleNone},
		Kernel:     "rbf",
		C:          1,
		Gamma:      Gamma{Rule: "scale"},
		Degree:     3,
		K:          5,
		Metric:     "euclidean",
		Trees:      100,
		Seed:       1,

		Hidden:       []int{256, 128},
		Dropout:      0.5,
		Epochs:       200,
		Patience:     10,
		BatchSize:    32,
		LearningRate: 1e-3,
		Alpha:        1e-4,
		ValFrac:      0.1,
	}
}

func (p Params) kernelIndex() int {
	for i, k := range Kernels {
		if k == p.Kernel {
			return i
		}
	}
	return -1
}

// Validate checks the fields that matter for p.Classifier.
func (p Params) Validate() error {
	switch p.Classifier {
	case SVM, Linear, LogReg, Softmax, MLP, KNN, Forest:
	default:
		return fmt.Errorf("classifier %q (want one of %s): %w", p.Classifier, strings.Join(Classifiers, ", "), ErrUnknownClassifier)
	}
	if err := p.Transform.validate(); err != nil {
		return err
	}
	if p.Tol < 0 || math.IsNaN(p.Tol) {
		return fmt.Errorf("tol %v must be >= 0: %w", p.Tol, ErrBadParam)
	}
	switch p.Classifier {
	case SVM, Linear, LogReg, Softmax:
		if !(p.C > 0) || math.IsInf(p.C, 0) {
			return fmt.Errorf("C %v must be a positive number: %w", p.C, ErrBadParam)
		}
	}
	switch p.Classifier {
	case SVM:
		if p.kernelIndex() < 0 {
			return fmt.Errorf("kernel %q (want one of %s): %w", p.Kernel, strings.Join(Kernels, ", "), ErrUnknownKernel)
		}
		switch p.Gamma.Rule {
		case "scale", "auto":
		case "":
			if !(p.Gamma.Value > 0) || math.IsInf(p.Gamma.Value, 0) {
				return fmt.Errorf("gamma %v must be positive: %w", p.Gamma.Value, ErrBadParam)
			}
		default:
			return fmt.Errorf("gamma rule %q (want scale or auto): %w", p.Gamma.Rule, ErrBadParam)
		}
		if p.Kernel == "poly" && p.Degree < 1 {
			return fmt.Errorf("degree %d must be >= 1: %w", p.Degree, ErrBadParam)
		}
		if p.CacheMB < 0 {
			return fmt.Errorf("cache %d MiB must be >= 0: %w", p.CacheMB, ErrBadParam)
		}
	case KNN:
		if p.K < 1 {
			return fmt.Errorf("k %d must be >= 1: %w", p.K, ErrBadParam)
		}
		if p.Metric != "euclidean" && p.Metric != "cosine" {
			return fmt.Errorf("metric %q (want euclidean or cosine): %w", p.Metric, ErrBadParam)
		}
	case MLP:
		if err := p.validateMLP(); err != nil {
			return err
		}
	case Forest:
		if p.Trees < 1 {
			return fmt.Errorf("trees %d must be >= 1: %w", p.Trees, ErrBadParam)
		}
		if p.MaxFeatures < 0 {
			return fmt.Errorf("max features %d must be >= 0: %w", p.MaxFeatures, ErrBadParam)
		}
	}
	return nil
}

// classWeights returns sklearn's "balanced" weights n/(k*n_c) per class
// index (0 for absent classes), or nil when not balanced.
func classWeights(y []int, nClasses int, balanced bool) []float64 {
	if !balanced {
		return nil
	}
	counts := make([]int, nClasses)
	for _, c := range y {
		counts[c]++
	}
	present := 0
	for _, c := range counts {
		if c > 0 {
			present++
		}
	}
	w := make([]float64, nClasses)
	for c, n := range counts {
		if n > 0 {
			w[c] = float64(len(y)) / (float64(present) * float64(n))
		}
	}
	return w
}

func (p Params) validateMLP() error {
	if len(p.Hidden) > 8 {
		return fmt.Errorf("hidden: %d layers, at most 8: %w", len(p.Hidden), ErrBadParam)
	}
	for _, h := range p.Hidden {
		if h < 1 || h > 1<<16 {
			return fmt.Errorf("hidden layer width %d must be in 1..65536: %w", h, ErrBadParam)
		}
	}
	switch {
	case !(p.Dropout >= 0 && p.Dropout < 1):
		return fmt.Errorf("dropout %v must be in [0, 1): %w", p.Dropout, ErrBadParam)
	case p.Epochs < 1:
		return fmt.Errorf("epochs %d must be >= 1: %w", p.Epochs, ErrBadParam)
	case p.Patience < 1:
		return fmt.Errorf("patience %d must be >= 1: %w", p.Patience, ErrBadParam)
	case p.BatchSize < 1:
		return fmt.Errorf("batch size %d must be >= 1: %w", p.BatchSize, ErrBadParam)
	case !(p.LearningRate > 0) || math.IsInf(p.LearningRate, 0):
		return fmt.Errorf("learning rate %v must be a positive number: %w", p.LearningRate, ErrBadParam)
	case !(p.Alpha >= 0) || math.IsInf(p.Alpha, 0):
		return fmt.Errorf("alpha %v must be >= 0: %w", p.Alpha, ErrBadParam)
	case !(p.ValFrac > 0 && p.ValFrac < 0.5):
		return fmt.Errorf("validation fraction %v must be in (0, 0.5): %w", p.ValFrac, ErrBadParam)
	}
	return nil
}
