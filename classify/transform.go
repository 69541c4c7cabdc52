package classify

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Scaling modes for TransformSpec.Scale.
const (
	ScaleNone     = "none"
	ScaleStandard = "standard"
	ScaleMinMax   = "minmax"
)

// TransformSpec selects the feature transforms. They are applied in a fixed
// order: L2 row normalisation, then per-feature scaling, then PCA; each is
// fitted on the training data only (on the output of the previous step).
type TransformSpec struct {
	// L2 divides each vector by its Euclidean norm (zero vectors stay zero),
	// as sklearn's Normalizer.
	L2 bool `json:"l2"`
	// Scale is ScaleNone (or ""), ScaleStandard or ScaleMinMax.
	//
	// standard: (x-mean)/std with the population std (ddof=0), as sklearn's
	// StandardScaler. minmax: (x-min)/(max-min), as MinMaxScaler (no
	// clipping). A feature that is constant on the training data (sklearn's
	// rule: var <= n*eps*var + (n*mean*eps)^2, or max == min) maps to 0 for
	// every input, where sklearn would give x-mean: a unit that never fired
	// in training carries no information and its raw value would otherwise
	// dominate distances.
	Scale string `json:"scale"`
	// PCA > 0 projects onto that many principal components (sklearn's PCA,
	// no whitening). Component signs: the entry with the largest magnitude
	// of each component is positive (sklearn >= 1.5's convention).
	PCA int `json:"pca"`
}

func (s TransformSpec) validate() error {
	switch s.Scale {
	case "", ScaleNone, ScaleStandard, ScaleMinMax:
	default:
		return fmt.Errorf("scale %q (want standard, minmax or none): %w", s.Scale, ErrBadParam)
	}
	if s.PCA < 0 {
		return fmt.Errorf("pca %d must be >= 0: %w", s.PCA, ErrBadParam)
	}
	return nil
}

// Transform is a fitted TransformSpec. Its fields are exported for reports
// and tests; treat them as read-only.
type Transform struct {
	Spec  TransformSpec
	InDim int
	// Offset and Scale: out = (x-Offset)/Scale per feature; Scale 0 marks a
	// constant feature (output 0). Nil without scaling.
	Offset, Scale []float64
	// PCA: out_k = sum_j (x_j-Mean_j)*Components[k][j].
	Mean       []float64
	Components [][]float64
	// ExplainedVariance (ddof=1) and its ratio to the total, per component.
	ExplainedVariance, ExplainedVarianceRatio []float64
}

// OutDim is the length of transformed vectors.
func (t *Transform) OutDim() int {
	if t.Spec.PCA > 0 {
		return t.Spec.PCA
	}
	return t.InDim
}

// FitTransform fits spec on X (the training vectors only).
func FitTransform(spec TransformSpec, X [][]float32) (*Transform, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if len(X) == 0 || len(X[0]) == 0 {
		return nil, fmt.Errorf("fit transform on empty data: %w", ErrBadData)
	}
	t := &Transform{Spec: spec, InDim: len(X[0])}
	Z := make([][]float64, len(X))
	for i, x := range X {
		if len(x) != t.InDim {
			return nil, fmt.Errorf("vector %d has length %d, want %d: %w", i, len(x), t.InDim, ErrDimMismatch)
		}
		Z[i] = make([]float64, t.InDim)
		t.l2(x, Z[i])
	}
	switch spec.Scale {
	case ScaleStandard:
		t.fitStandard(Z)
	case ScaleMinMax:
		t.fitMinMax(Z)
	}
	if t.Scale != nil {
		for _, z := range Z {
			t.scale(z)
		}
	}
	if spec.PCA > 0 {
		if err := t.fitPCA(Z); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Apply transforms one vector.
func (t *Transform) Apply(x []float32) ([]float64, error) {
	if len(x) != t.InDim {
		return nil, fmt.Errorf("got %d features, model expects %d: %w", len(x), t.InDim, ErrDimMismatch)
	}
	z := make([]float64, t.InDim)
	t.l2(x, z)
	if t.Scale != nil {
		t.scale(z)
	}
	if t.Spec.PCA > 0 {
		z = t.project(z)
	}
	return z, nil
}

// ApplyAll transforms every vector of X.
func (t *Transform) ApplyAll(X [][]float32) ([][]float64, error) {
	out := make([][]float64, len(X))
	for i, x := range X {
		z, err := t.Apply(x)
		if err != nil {
			return nil, fmt.Errorf("vector %d: %w", i, err)
		}
		out[i] = z
	}
	return out, nil
}

// l2 writes x, L2-normalised if the spec asks for it, into z.
func (t *Transform) l2(x []float32, z []float64) {
	var ss float64
	for j, v := range x {
		z[j] = float64(v)
		ss += z[j] * z[j]
	}
	if !t.Spec.L2 || ss == 0 {
		return
	}
	n := math.Sqrt(ss)
	for j := range z {
		z[j] /= n
	}
}

func (t *Transform) scale(z []float64) {
	for j, s := range t.Scale {
		if s == 0 {
			z[j] = 0
		} else {
			z[j] = (z[j] - t.Offset[j]) / s
		}
	}
}

func (t *Transform) fitStandard(Z [][]float64) {
	d, n := t.InDim, float64(len(Z))
	t.Offset = make([]float64, d)
	t.Scale = make([]float64, d)
	for _, z := range Z {
		for j, v := range z {
			t.Offset[j] += v
		}
	}
	for j := range t.Offset {
		t.Offset[j] /= n
	}
	for _, z := range Z {
		for j, v := range z {
			dv := v - t.Offset[j]
			t.Scale[j] += dv * dv
		}
	}
	const eps = 0x1p-52
	for j := range t.Scale {
		v := t.Scale[j] / n
		m := t.Offset[j]
		// sklearn's _is_constant_feature: variance within rounding of 0.
		if v <= n*eps*v+(n*m*eps)*(n*m*eps) {
			t.Scale[j] = 0
		} else {
			t.Scale[j] = math.Sqrt(v)
		}
	}
}

func (t *Transform) fitMinMax(Z [][]float64) {
	d := t.InDim
	lo := append([]float64(nil), Z[0]...)
	hi := append([]float64(nil), Z[0]...)
	for _, z := range Z[1:] {
		for j, v := range z {
			lo[j] = math.Min(lo[j], v)
			hi[j] = math.Max(hi[j], v)
		}
	}
	t.Offset = lo
	t.Scale = make([]float64, d)
	for j := range hi {
		t.Scale[j] = hi[j] - lo[j]
	}
}

func (t *Transform) fitPCA(Z [][]float64) error {
	n, d, k := len(Z), t.InDim, t.Spec.PCA
	if k > n || k > d {
		return fmt.Errorf("pca %d exceeds min(samples %d, features %d): %w", k, n, d, ErrBadParam)
	}
	if n < 2 {
		return fmt.Errorf("pca needs at least 2 samples, have %d: %w", n, ErrBadData)
	}
	t.Mean = make([]float64, d)
	for _, z := range Z {
		for j, v := range z {
			t.Mean[j] += v
		}
	}
	for j := range t.Mean {
		t.Mean[j] /= float64(n)
	}
	A := mat.NewDense(n, d, nil)
	for i, z := range Z {
		row := A.RawRowView(i)
		for j, v := range z {
			row[j] = v - t.Mean[j]
		}
	}
	var svd mat.SVD
	if !svd.Factorize(A, mat.SVDThinV) {
		return fmt.Errorf("pca: SVD did not converge: %w", ErrBadData)
	}
	s := svd.Values(nil)
	var V mat.Dense
	svd.VTo(&V)
	var total float64
	for _, v := range s {
		total += v * v
	}
	t.Components = make([][]float64, k)
	t.ExplainedVariance = make([]float64, k)
	t.ExplainedVarianceRatio = make([]float64, k)
	for c := 0; c < k; c++ {
		comp := make([]float64, d)
		mat.Col(comp, c, &V)
		// Deterministic sign: largest |entry| positive (first on ties).
		big := 0
		for j, v := range comp {
			if math.Abs(v) > math.Abs(comp[big]) {
				big = j
			}
		}
		if comp[big] < 0 {
			for j := range comp {
				comp[j] = -comp[j]
			}
		}
		t.Components[c] = comp
		t.ExplainedVariance[c] = s[c] * s[c] / float64(n-1)
		if total > 0 {
			t.ExplainedVarianceRatio[c] = s[c] * s[c] / total
		}
	}
	return nil
}

func (t *Transform) project(z []float64) []float64 {
	c := make([]float64, len(z))
	for j, v := range z {
		c[j] = v - t.Mean[j]
	}
	out := make([]float64, len(t.Components))
	for k, comp := range t.Components {
		var s float64
		for j, v := range comp {
			s += c[j] * v
		}
		out[k] = s
	}
	return out
}
