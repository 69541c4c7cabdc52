package classify

import (
	"pipeline/internal/testenv"

	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// synthCodes makes n vectors of dimension d in k classes that look like
// ReLU CNN codes: non-negative, about half zeros, classes separated in a
// low-dimensional latent space with overlap (accuracies around 90%), so
// that classifiers have borderline points to disagree on.
func synthCodes(n, d, k int, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 42))
	const latent = 12
	means := make([][]float64, k)
	for c := range means {
		means[c] = make([]float64, latent)
		for l := range means[c] {
			means[c][l] = 0.9 * rng.NormFloat64()
		}
	}
	A := make([][]float64, d)
	bias := make([]float64, d)
	for j := range A {
		A[j] = make([]float64, latent)
		for l := range A[j] {
			A[j][l] = rng.NormFloat64() / math.Sqrt(latent)
		}
		bias[j] = -0.2 + 0.4*rng.NormFloat64()
	}
	ds := &Dataset{X: make([][]float32, n), Y: make([]int, n)}
	for c := 0; c < k; c++ {
		ds.Classes = append(ds.Classes, "class"+strconv.Itoa(c))
	}
	z := make([]float64, latent)
	for i := 0; i < n; i++ {
		c := i % k
		for l := range z {
			z[l] = means[c][l] + rng.NormFloat64()
		}
		x := make([]float32, d)
		for j := range x {
			v := bias[j] + 0.5*rng.NormFloat64()
			for l, a := range A[j] {
				v += a * z[l]
			}
			if v > 0 {
				x[j] = float32(2 * v)
			}
		}
		ds.X[i] = x
		ds.Y[i] = c
	}
	return ds
}

// float64s widens a dataset's vectors (exactly).
func float64s(X [][]float32) [][]float64 {
	out := make([][]float64, len(X))
	for i, x := range X {
		out[i] = make([]float64, len(x))
		for j, v := range x {
			out[i][j] = float64(v)
		}
	}
	return out
}

// writeLibsvmFile writes X, y to dir/name in libsvm format.
func writeLibsvmFile(t *testing.T, dir, name string, X [][]float64, y []int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteLibsvm(f, X, labelsFloat(y)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// needTool skips the test when a reference command-line tool is missing.
func needTool(t *testing.T, names ...string) {
	t.Helper()
	testenv.NeedTools(t, "Debian: apt-get install libsvm-tools liblinear-tools", names...)
}

func formatG(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
