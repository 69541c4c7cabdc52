package classify

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuSeconds is the process's user + system CPU time: on a shared machine
// wall time says more about the neighbours than about the code.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// benchData is the product's typical training set: 650 4096-d codes, 4
// classes (built once; ~10 MB).
var benchData = sync.OnceValue(func() *Dataset { return synthCodes(650, 4096, 4, 11) })

// BenchmarkSVMClassifier_Fit times libsvm-go training through our bridge
// and, for comparison, C svm-train on the same data and parameters (its
// time includes parsing the 9 MB libsvm file, ~0.4 s of it). Run with
//
//	go test -run '^$' -bench SVMClassifier_Fit -benchtime 3x ./classify/
func BenchmarkSVMClassifier_Fit(b *testing.B) {
	ds := benchData()
	X := float64s(ds.X)
	dir := b.TempDir()
	path := filepath.Join(dir, "train")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := WriteLibsvm(f, X, labelsFloat(ds.Y)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	for _, kernel := range []string{"rbf", "linear"} {
		p := DefaultParams(SVM)
		p.Kernel = kernel
		gamma := p.Gamma.resolve(X)
		b.Run("go/"+kernel, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var m SVMClassifier
				if err := m.Fit(X, ds.Y, 4, p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("svm-train/"+kernel, func(b *testing.B) {
			if _, err := exec.LookPath("svm-train"); err != nil {
				b.Skip("svm-train not installed")
			}
			for i := 0; i < b.N; i++ {
				cmd := exec.Command("svm-train", "-q", "-t", map[string]string{"rbf": "2", "linear": "0"}[kernel],
					"-g", g17(gamma), path, filepath.Join(dir, "model"))
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}

// BenchmarkLinearClassifier_Fit times liblinear (through golearn) on the
// same data.
func BenchmarkLinearClassifier_Fit(b *testing.B) {
	ds := benchData()
	X := float64s(ds.X)
	for _, loss := range []string{Linear, LogReg} {
		b.Run(loss, func(b *testing.B) {
			p := DefaultParams(loss)
			for i := 0; i < b.N; i++ {
				m := &LinearClassifier{Loss: loss}
				if err := m.Fit(X, ds.Y, 4, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFitTransform_PCA times standard scaling + PCA to 256
// components of the typical training set (gonum thin SVD).
func BenchmarkFitTransform_PCA(b *testing.B) {
	ds := benchData()
	for i := 0; i < b.N; i++ {
		if _, err := FitTransform(TransformSpec{Scale: ScaleStandard, PCA: 256}, ds.X); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFit_PCA256 times the whole Fit with --scale standard --pca 256:
// the cheap way to an RBF SVM on 4096-d codes with libsvm-go (its kernel
// cost is proportional to the non-zeros per vector).
func BenchmarkFit_PCA256(b *testing.B) {
	ds := benchData()
	for _, kernel := range []string{"rbf", "linear"} {
		b.Run(kernel, func(b *testing.B) {
			p := DefaultParams(SVM)
			p.Kernel = kernel
			p.Transform = TransformSpec{Scale: ScaleStandard, PCA: 256}
			for i := 0; i < b.N; i++ {
				if _, err := Fit(ds, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeads_Fit times the tutorial's heads on seed4-sized codes
// (616 x 4096, 4 classes, the training split of seed4's fc2) with their
// defaults, and logs what the fit did. Run with
//
//	go test -run '^$' -bench Heads_Fit -benchtime 1x ./classify/
func BenchmarkHeads_Fit(b *testing.B) {
	ds := synthCodes(616, 4096, 4, 11)
	X := float64s(ds.X)
	for _, kind := range []string{Softmax, MLP} {
		b.Run(kind, func(b *testing.B) {
			p := DefaultParams(kind)
			for i := 0; i < b.N; i++ {
				clf, _ := NewClassifier(kind)
				t0, c0 := time.Now(), cpuSeconds()
				if err := clf.Fit(X, ds.Y, 4, p); err != nil {
					b.Fatal(err)
				}
				b.Logf("%s: wall %.2fs, CPU %.2fs (GOMAXPROCS %d)", kind, time.Since(t0).Seconds(), cpuSeconds()-c0, runtime.GOMAXPROCS(0))
				switch m := clf.(type) {
				case *SoftmaxClassifier:
					b.Logf("softmax: %.2fs, %d L-BFGS iterations, gradient %.2g", time.Since(t0).Seconds(), m.Iterations, m.GradNorm)
				case *MLPClassifier:
					b.Logf("mlp %v: %.2fs, %d epochs (best %d, stopped early %v), validation loss %.4f",
						p.Hidden, time.Since(t0).Seconds(), len(m.ValLoss), m.BestEpoch, m.StoppedEarly, m.ValLoss[m.BestEpoch-1])
				}
			}
		})
	}
}
