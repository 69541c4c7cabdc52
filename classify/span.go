package classify

import (
	"math"

	"gonum.org/v1/gonum/mat"

	libSvm "github.com/ewalker544/libsvm-go"
)

// spanCoordinates rewrites n training vectors of dimension d as n vectors
// of dimension r <= n with the same dot products: Z Zᵀ = X Xᵀ. Every libsvm
// kernel (linear, poly, rbf, sigmoid) between training vectors is a
// function of their dot products, so training on Z is training on X, with
// the same dual solution, support vectors (by index) and rho, while each
// kernel evaluation costs r multiply-adds on dense rows instead of a sparse
// dot product over d dimensions. With CNN codes (d = 2048 or 4096, about
// half non-zero) and a few hundred training vectors that is where
// libsvm-go spends 90% of its time (it computes kernel rows eagerly and
// without shrinking), so this is the part of its cost we can remove without
// touching it.
//
// Z is V √Λ from the eigendecomposition of the Gram matrix X Xᵀ = V Λ Vᵀ;
// eigenvalues below 1e-13 of the largest are dropped (they change a dot
// product by less than that, relative). The model keeps the original
// vectors: SVMClassifier.setFit takes the support vectors from X by
// index, so prediction never sees Z.
//
// It returns X itself (ok false) when it would not help: n comparable to d.
func spanCoordinates(X [][]float64) (Z [][]float64, ok bool) {
	n := len(X)
	if n == 0 {
		return X, false
	}
	d := len(X[0])
	if 2*n > d {
		return X, false
	}
	xm := mat.NewDense(n, d, nil)
	for i, row := range X {
		xm.SetRow(i, row)
	}
	var g mat.SymDense
	g.SymOuterK(1, xm)
	var es mat.EigenSym
	if !es.Factorize(&g, true) {
		return X, false
	}
	vals := es.Values(nil)
	var vecs mat.Dense
	es.VectorsTo(&vecs)
	maxv := 0.0
	for _, v := range vals {
		maxv = math.Max(maxv, v)
	}
	var keep []int
	for k, v := range vals {
		if v > 1e-13*maxv {
			keep = append(keep, k)
		}
	}
	Z = make([][]float64, n)
	for i := range Z {
		Z[i] = make([]float64, len(keep))
		for c, k := range keep {
			Z[i][c] = vecs.At(i, k) * math.Sqrt(vals[k])
		}
	}
	return Z, true
}

// newSpanProblem is newLibsvmProblem on span coordinates (see above).
func newSpanProblem(X [][]float64, y []float64) (*libSvm.Problem, error) {
	Z, _ := spanCoordinates(X)
	return newLibsvmProblem(Z, y)
}
