package classify

// Bridge to liblinear through github.com/sjwhitworth/golearn/linear_models
// (pinned at v0.0.0-20221228163002-74ae077eafb2, which vendors liblinear
// 1.94). golearn's LinearSVC and LogisticRegression cannot be used as they
// are:
//
//   - Train passes Go memory that holds Go pointers to C, which panics
//     under the default cgocheck since Go 1.6 ("cgo argument has Go pointer
//     to unpinned Go pointer", golearn issues #158, #271, #296). We pin
//     that memory with runtime.Pinner for the duration of the call.
//   - Predict's conversion keeps only features > 0, so any negative
//     feature (e.g. after standard scaling) is dropped. We never call it:
//     the weights are read back (Export writes liblinear's model file,
//     "%.16g") and we predict with liblinear's own decision function.
//   - There is no predict_probability, no class weights for logistic
//     regression, and NewProblem's bias argument produces a malformed
//     problem. We set weights in the parameter struct through reflect,
//     and add the bias ourselves as a last constant feature 1, which is
//     exactly what liblinear-train -B 1 does (the bias is regularised).
//   - Trained C models are never freed (no binding for free_model): about
//     8*(d+2)*classes bytes per fit, ~130 KB for 4096-d, 4 classes.
//   - liblinear logs through golearn's base.Logger (stdout by default);
//     we point it at io.Discard once.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/sjwhitworth/golearn/base"
	ll "github.com/sjwhitworth/golearn/linear_models"
)

var silenceGolearn sync.Once

// liblinearFit is a trained liblinear model read back from its model file.
type liblinearFit struct {
	labels []int       // liblinear's class order
	w      [][]float64 // nr_w x n (nr_w = 1 for two classes; n = nr_feature, +1 with a bias)
	bias   float64     // liblinear's bias feature value, < 0 for none
}

// trainLiblinear trains liblinear solver on rows X (the caller appends the
// bias feature) with labels y. weightLabels/weights scale C per class.
func trainLiblinear(X [][]float64, y []float64, solver int, C, eps float64, weightLabels []int, weights []float64) (*liblinearFit, error) {
	silenceGolearn.Do(func() { base.SetLoggerOut(io.Discard) })

	prob := ll.NewProblem(X, y, 0)
	param := ll.NewParameter(solver, C, eps)

	var pin runtime.Pinner
	defer pin.Unpin()
	pv := reflect.ValueOf(prob).Elem().FieldByName("c_prob")
	if !pv.IsValid() {
		return nil, fmt.Errorf("golearn linear_models.Problem has no c_prob field")
	}
	xs := pv.FieldByName("x")
	pin.Pin(unsafe.Pointer(xs.Pointer()))        // the row pointer array
	pin.Pin(unsafe.Pointer(xs.Elem().Pointer())) // the feature nodes (one allocation)
	pin.Pin(unsafe.Pointer(pv.FieldByName("y").Pointer()))

	if len(weightLabels) > 0 {
		cp := reflect.ValueOf(param).Elem().FieldByName("c_param")
		wl := make([]int32, len(weightLabels))
		for i, l := range weightLabels {
			wl[i] = int32(l)
		}
		wf := append([]float64(nil), weights...)
		pin.Pin(&wl[0])
		pin.Pin(&wf[0])
		set := func(name string, v reflect.Value) {
			f := cp.FieldByName(name)
			reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(v.Convert(f.Type()))
		}
		set("nr_weight", reflect.ValueOf(int32(len(wl))))
		set("weight_label", reflect.NewAt(cp.FieldByName("weight_label").Type().Elem(), unsafe.Pointer(&wl[0])))
		set("weight", reflect.NewAt(cp.FieldByName("weight").Type().Elem(), unsafe.Pointer(&wf[0])))
	}

	model := ll.Train(prob, param)
	runtime.KeepAlive(prob)
	runtime.KeepAlive(param)

	f, err := os.CreateTemp("", "classify-*.liblinear")
	if err != nil {
		return nil, fmt.Errorf("liblinear model file: %w", err)
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	if err := ll.Export(model, name); err != nil {
		return nil, fmt.Errorf("export liblinear model: %w", err)
	}
	fit, err := readLiblinearModel(name)
	if err != nil {
		return nil, err
	}
	if fit.bias >= 0 {
		return nil, fmt.Errorf("liblinear model %s has bias %v, golearn trains without", name, fit.bias)
	}
	if want := len(X[0]) + 1; len(fit.w[0]) != want {
		// golearn's NewProblem declares one feature more than the rows have.
		return nil, fmt.Errorf("liblinear model %s has %d features, want %d", name, len(fit.w[0]), want)
	}
	return fit, nil
}

// readLiblinearModel parses a liblinear model file.
func readLiblinearModel(path string) (*liblinearFit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read liblinear model: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	fit := &liblinearFit{}
	nrClass, nrFeature := 0, 0
	bias := -1.0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nr_class":
			nrClass, err = strconv.Atoi(fields[1])
		case "nr_feature":
			nrFeature, err = strconv.Atoi(fields[1])
		case "bias":
			bias, err = strconv.ParseFloat(fields[1], 64)
		case "label":
			for _, s := range fields[1:] {
				l, e := strconv.Atoi(s)
				if e != nil {
					err = e
				}
				fit.labels = append(fit.labels, l)
			}
		case "w":
			if nrClass < 2 || nrFeature < 1 || len(fit.labels) != nrClass {
				return nil, fmt.Errorf("liblinear model %s: bad header (classes %d, features %d, labels %v, bias %v)", path, nrClass, nrFeature, fit.labels, bias)
			}
			nrW := nrClass
			if nrClass == 2 {
				nrW = 1
			}
			n := nrFeature
			if bias >= 0 {
				n++
			}
			fit.bias = bias
			fit.w = make([][]float64, nrW)
			for i := range fit.w {
				fit.w[i] = make([]float64, n)
			}
			for j := 0; j < n; j++ {
				if !sc.Scan() {
					return nil, fmt.Errorf("liblinear model %s: %d of %d weight rows", path, j, n)
				}
				vals := strings.Fields(sc.Text())
				if len(vals) != nrW {
					return nil, fmt.Errorf("liblinear model %s: weight row %d has %d values, want %d", path, j, len(vals), nrW)
				}
				for i, s := range vals {
					if fit.w[i][j], err = strconv.ParseFloat(s, 64); err != nil {
						return nil, fmt.Errorf("liblinear model %s: weight row %d: %w", path, j, err)
					}
				}
			}
			return fit, nil
		}
		if err != nil {
			return nil, fmt.Errorf("liblinear model %s: %s: %w", path, fields[0], err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read liblinear model %s: %w", path, err)
	}
	return nil, fmt.Errorf("liblinear model %s: no weights", path)
}
