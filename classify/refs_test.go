package classify

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// refSet is a train/test split shared by the parity tests.
type refSet struct {
	name          string
	classes       int
	trainX, testX [][]float64
	trainY, testY []int
}

// synthRefSet: 600 synthetic CNN-code vectors, 3/5 train, 2/5 test.
func synthRefSet(d int, seed uint64) refSet {
	ds := synthCodes(600, d, 4, seed)
	X := float64s(ds.X)
	s := refSet{name: fmt.Sprintf("synth%d", d), classes: 4}
	for i := range X {
		if i%5 < 3 {
			s.trainX, s.trainY = append(s.trainX, X[i]), append(s.trainY, ds.Y[i])
		} else {
			s.testX, s.testY = append(s.testX, X[i]), append(s.testY, ds.Y[i])
		}
	}
	return s
}

// fileRefSets loads testdata/parity/*.libsvm (see the README there).
func fileRefSets(t *testing.T) []refSet {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join("testdata", "parity", "*.libsvm"))
	var sets []refSet
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		X, yf, err := ReadLibsvm(f, 0)
		f.Close()
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		// Labels to 0..k-1 in sorted order.
		uniq := slices.Clone(yf)
		slices.Sort(uniq)
		uniq = slices.Compact(uniq)
		s := refSet{name: strings.TrimSuffix(filepath.Base(p), ".libsvm"), classes: len(uniq)}
		for i, x := range X {
			c, _ := slices.BinarySearch(uniq, yf[i])
			if i%3 == 2 {
				s.testX, s.testY = append(s.testX, x), append(s.testY, c)
			} else {
				s.trainX, s.trainY = append(s.trainX, x), append(s.trainY, c)
			}
		}
		sets = append(sets, s)
	}
	return sets
}

// run executes a reference tool and fails the test with its output.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// readPredictions reads svm-predict/liblinear-predict output: one label
// per line, or with -b 1 a "labels l1 l2 ..." header and "label p1 p2 ..."
// lines. Probabilities come back indexed by label.
func readPredictions(t *testing.T, path string, classes int) ([]int, [][]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var labels []int
	var probs [][]float64
	var order []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "labels" {
			for _, s := range fields[1:] {
				l, _ := strconv.Atoi(s)
				order = append(order, l)
			}
			continue
		}
		l, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		labels = append(labels, int(l))
		if order != nil {
			p := make([]float64, classes)
			for k, s := range fields[1:] {
				p[order[k]], _ = strconv.ParseFloat(s, 64)
			}
			probs = append(probs, p)
		}
	}
	return labels, probs
}

// readLibsvmModelFile parses a C libsvm model file (C-SVC) into our
// predictor, so that C's model can be evaluated with our decision function.
func readLibsvmModelFile(t *testing.T, path string, classes, d int) *SVMClassifier {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &SVMClassifier{NClasses: classes}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	floats := func(s []string) []float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i], err = strconv.ParseFloat(s[i], 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return v
	}
	ints := func(s []string) []int {
		v := make([]int, len(s))
		for i := range s {
			v[i], err = strconv.Atoi(s[i])
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return v
	}
	dim := d
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch fields[0] {
		case "kernel_type":
			m.KernelName = map[string]string{"linear": "linear", "polynomial": "poly", "rbf": "rbf", "sigmoid": "sigmoid"}[fields[1]]
			m.Kernel = slices.Index(Kernels, m.KernelName)
		case "degree":
			m.Degree = ints(fields[1:])[0]
		case "gamma":
			m.Gamma = floats(fields[1:])[0]
		case "coef0":
			m.Coef0 = floats(fields[1:])[0]
		case "rho":
			m.Rho = floats(fields[1:])
		case "label":
			m.Labels = ints(fields[1:])
		case "probA":
			m.ProbA = floats(fields[1:])
		case "probB":
			m.ProbB = floats(fields[1:])
		case "nr_sv":
			m.NSV = ints(fields[1:])
		case "SV":
			m.Coef = make([][]float64, len(m.Labels)-1)
			type node struct {
				j int
				v float64
			}
			var rows [][]node
			for sc.Scan() {
				fs := strings.Fields(sc.Text())
				if len(fs) == 0 {
					continue
				}
				for k := range m.Coef {
					m.Coef[k] = append(m.Coef[k], floats(fs[k : k+1])[0])
				}
				var row []node
				for _, tok := range fs[len(m.Coef):] {
					is, vs, _ := strings.Cut(tok, ":")
					j, _ := strconv.Atoi(is)
					v, _ := strconv.ParseFloat(vs, 64)
					row = append(row, node{j, v})
					dim = max(dim, j)
				}
				rows = append(rows, row)
			}
			for _, row := range rows {
				sv := make([]float64, dim)
				for _, n := range row {
					sv[n.j-1] = n.v
				}
				m.SV = append(m.SV, sv)
			}
		}
	}
	if len(m.SV) == 0 || m.Kernel < 0 {
		t.Fatalf("%s: no support vectors or unknown kernel", path)
	}
	m.derive()
	return m
}

// g17 formats a float for a command line without losing bits.
func g17(v float64) string { return strconv.FormatFloat(v, 'g', 17, 64) }

// nearTie reports the smallest |decision value| among the pairs where a
// and b disagree in sign.
func flippedMargin(a, b []float64) float64 {
	m := math.Inf(1)
	for i := range a {
		if (a[i] > 0) != (b[i] > 0) {
			m = math.Min(m, math.Max(math.Abs(a[i]), math.Abs(b[i])))
		}
	}
	return m
}
