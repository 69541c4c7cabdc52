package classify

// Bridge to github.com/ewalker544/libsvm-go (pinned at
// v0.0.0-20140912030911-ec8445221ede). Its public API only reads problems
// from libsvm-format files, predicts from map[int]float64 and saves models
// with 6 significant digits for rho and 8 for support vectors, so:
//
//   - problems are built in memory by filling Problem's unexported fields
//     (reflect + unsafe, after checking at start-up that their names, types
//     and offsets are what this file expects); if the check fails (another
//     libsvm-go version) we fall back to writing a libsvm-format temp file
//     and calling libSvm.NewProblem, which is exact too, only slower;
//   - trained models are read out of Model's unexported fields with reflect
//     (read-only, no unsafe) at full precision; prediction and serialisation
//     are ours (svm.go), bit-for-bit equal to libsvm-go's PredictValues.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"unsafe"

	libSvm "github.com/ewalker544/libsvm-go"
)

// lsNode mirrors libsvm-go's unexported snode {index int; value float64}.
type lsNode struct {
	index int
	value float64
}

// problemLayoutErr is nil when libSvm.Problem has the fields we fill.
var problemLayoutErr = checkProblemLayout()

func checkProblemLayout() error {
	pt := reflect.TypeOf(libSvm.Problem{})
	want := []struct {
		name string
		typ  reflect.Type
	}{
		{"l", reflect.TypeOf(0)},
		{"y", reflect.TypeOf([]float64(nil))},
		{"x", reflect.TypeOf([]int(nil))},
	}
	for _, w := range want {
		f, ok := pt.FieldByName(w.name)
		if !ok || f.Type != w.typ {
			return fmt.Errorf("libsvm-go Problem.%s: not a %v", w.name, w.typ)
		}
	}
	f, ok := pt.FieldByName("xSpace")
	if !ok || f.Type.Kind() != reflect.Slice {
		return fmt.Errorf("libsvm-go Problem.xSpace: not a slice")
	}
	et, mt := f.Type.Elem(), reflect.TypeOf(lsNode{})
	if et.Kind() != reflect.Struct || et.Size() != mt.Size() || et.NumField() != 2 {
		return fmt.Errorf("libsvm-go snode: layout differs from {int; float64}")
	}
	for i := 0; i < 2; i++ {
		if et.Field(i).Type != mt.Field(i).Type || et.Field(i).Offset != mt.Field(i).Offset || et.Field(i).Name != mt.Field(i).Name {
			return fmt.Errorf("libsvm-go snode field %d: layout differs from lsNode", i)
		}
	}
	return nil
}

// setUnexported assigns val to the (unexported) field f of an addressable struct.
func setUnexported(f reflect.Value, val any) {
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(val))
}

// sparseNodes returns rows in libsvm's sparse form: 1-based indices of the
// non-zero entries, each row ended by index -1, and each row's start.
func sparseNodes(X [][]float64) ([]lsNode, []int) {
	nnz := 0
	for _, row := range X {
		for _, v := range row {
			if v != 0 {
				nnz++
			}
		}
	}
	nodes := make([]lsNode, 0, nnz+len(X))
	starts := make([]int, len(X))
	for i, row := range X {
		starts[i] = len(nodes)
		for j, v := range row {
			if v != 0 {
				nodes = append(nodes, lsNode{j + 1, v})
			}
		}
		nodes = append(nodes, lsNode{index: -1})
	}
	return nodes, starts
}

// newLibsvmProblem builds a libsvm-go problem from dense rows and labels.
// Zeros are left out, as in libsvm files; that does not change any kernel
// value.
func newLibsvmProblem(X [][]float64, y []float64) (*libSvm.Problem, error) {
	if problemLayoutErr != nil || forceProblemFile {
		return libsvmProblemViaFile(X, y)
	}
	nodes, starts := sparseNodes(X)
	p := new(libSvm.Problem)
	v := reflect.ValueOf(p).Elem()
	setUnexported(v.FieldByName("l"), len(X))
	setUnexported(v.FieldByName("y"), append([]float64(nil), y...))
	setUnexported(v.FieldByName("x"), starts)
	*(*[]lsNode)(unsafe.Pointer(v.FieldByName("xSpace").UnsafeAddr())) = nodes
	return p, nil
}

// forceProblemFile makes tests exercise the file fallback.
var forceProblemFile = false

func libsvmProblemViaFile(X [][]float64, y []float64) (*libSvm.Problem, error) {
	f, err := os.CreateTemp("", "classify-*.libsvm")
	if err != nil {
		return nil, fmt.Errorf("libsvm problem file: %w", err)
	}
	defer os.Remove(f.Name())
	err = WriteLibsvm(f, X, y)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	// A non-zero gamma keeps Problem.Read from writing its 1/max_index
	// default into the parameter; this one is thrown away.
	p, err := libSvm.NewProblem(f.Name(), &libSvm.Parameter{Gamma: 1})
	if err != nil {
		return nil, fmt.Errorf("read %s: %s", f.Name(), err)
	}
	return p, nil
}

// WriteLibsvm writes rows in libsvm's sparse text format ("label i:v ...",
// 1-based indices, zeros left out). Values use the shortest representation
// that reads back to the same float64.
func WriteLibsvm(out io.Writer, X [][]float64, y []float64) error {
	w := bufio.NewWriterSize(out, 1<<20)
	var buf []byte
	for i, row := range X {
		buf = strconv.AppendFloat(buf[:0], y[i], 'g', -1, 64)
		for j, v := range row {
			if v == 0 {
				continue
			}
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, int64(j+1), 10)
			buf = append(buf, ':')
			buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
		}
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return w.Flush()
}

// libsvmSpec is one C-SVC training run.
type libsvmSpec struct {
	kernel        int // index into Kernels == libsvm's kernel_type
	C, gamma, c0  float64
	degree        int
	eps           float64
	cacheMB       int
	weightLabels  []int
	weightFactors []float64
}

// libsvmFit is what we read back from a trained libsvm-go model.
type libsvmFit struct {
	labels    []int       // libsvm's class order (first occurrence)
	nSV       []int       // per class, in labels order
	svIndices []int       // 0-based rows of the problem, grouped by class
	coef      [][]float64 // (nr_class-1) x total SV
	rho       []float64   // one per pair (i<j)
}

// trainLibsvm runs libsvm-go's C-SVC on prob. libsvm-go calls
// runtime.GOMAXPROCS(NumCPU) in every solver (and GOMAXPROCS(NumCPU()) for
// NumCPU < 1): passing the current value makes that a no-op, so training
// never changes the process's parallelism under the grid search's feet.
func trainLibsvm(prob *libSvm.Problem, s libsvmSpec) (fit *libsvmFit, err error) {
	param := libSvm.NewParameter()
	param.SvmType = libSvm.C_SVC
	param.KernelType = s.kernel
	param.C = s.C
	param.Gamma = s.gamma
	param.Coef0 = s.c0
	param.Degree = s.degree
	param.Eps = s.eps
	param.CacheSize = s.cacheMB
	param.NrWeight = len(s.weightLabels)
	param.WeightLabel = s.weightLabels
	param.Weight = s.weightFactors
	param.Probability = false // its Platt CV is seeded from the clock; we do our own
	param.QuietMode = true    // otherwise it prints to stdout
	param.NumCPU = runtime.GOMAXPROCS(0)

	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("libsvm-go training panicked: %v", r)
		}
	}()
	model := libSvm.NewModel(param)
	if err := model.Train(prob); err != nil {
		return nil, fmt.Errorf("libsvm-go train: %w", err)
	}
	return readLibsvmModel(model)
}

// readLibsvmModel copies a trained model's unexported fields.
func readLibsvmModel(model *libSvm.Model) (*libsvmFit, error) {
	v := reflect.ValueOf(model).Elem()
	field := func(name string, kind reflect.Kind) (reflect.Value, error) {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != kind {
			return f, fmt.Errorf("libsvm-go Model.%s: missing or not a %v", name, kind)
		}
		return f, nil
	}
	ints := func(name string) ([]int, error) {
		f, err := field(name, reflect.Slice)
		if err != nil {
			return nil, err
		}
		out := make([]int, f.Len())
		for i := range out {
			out[i] = int(f.Index(i).Int())
		}
		return out, nil
	}
	floats := func(f reflect.Value) []float64 {
		out := make([]float64, f.Len())
		for i := range out {
			out[i] = f.Index(i).Float()
		}
		return out
	}
	fit := &libsvmFit{}
	var err error
	if fit.labels, err = ints("label"); err != nil {
		return nil, err
	}
	if fit.nSV, err = ints("nSV"); err != nil {
		return nil, err
	}
	if fit.svIndices, err = ints("svIndices"); err != nil {
		return nil, err
	}
	for i := range fit.svIndices {
		fit.svIndices[i]-- // libsvm-go stores them 1-based
	}
	rho, err := field("rho", reflect.Slice)
	if err != nil {
		return nil, err
	}
	fit.rho = floats(rho)
	coef, err := field("svCoef", reflect.Slice)
	if err != nil {
		return nil, err
	}
	fit.coef = make([][]float64, coef.Len())
	for i := range fit.coef {
		fit.coef[i] = floats(coef.Index(i))
	}
	k := len(fit.labels)
	total := 0
	for _, n := range fit.nSV {
		total += n
	}
	if k < 2 || len(fit.nSV) != k || len(fit.rho) != k*(k-1)/2 || len(fit.coef) != k-1 || len(fit.svIndices) != total {
		return nil, fmt.Errorf("libsvm-go model is inconsistent (classes %d, nSV %v, rho %d, coef %d, SVs %d)",
			k, fit.nSV, len(fit.rho), len(fit.coef), len(fit.svIndices))
	}
	for _, c := range fit.coef {
		if len(c) != total {
			return nil, fmt.Errorf("libsvm-go model: coef row has %d entries, want %d", len(c), total)
		}
	}
	return fit, nil
}

// libSvmProblem names the library type for code outside this file.
type libSvmProblem = libSvm.Problem
