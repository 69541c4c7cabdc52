package pipeline

import (
	"pipeline/internal/testenv"
	"pipeline/internal/testutil"

	"bufio"
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/store"
)

// classPicture is a picture whose colours depend on its class, so that CNN
// codes of even a random network carry the class.
func classPicture(t *testing.T, path string, class, i int) {
	t.Helper()
	base := picture(uint64(1000*class+i), 36, 36)
	tint := [][3]int{{45, -22, -22}, {-22, 45, -22}, {-22, -22, 45}}[class%3]
	img := image.NewNRGBA(base.Rect)
	for y := 0; y < 36; y++ {
		for x := 0; x < 36; x++ {
			c := base.NRGBAAt(x, y)
			cl := func(v, d int) uint8 { return uint8(max(0, min(255, v+d))) }
			img.SetNRGBA(x, y, color.NRGBA{cl(int(c.R), tint[0]), cl(int(c.G), tint[1]), cl(int(c.B), tint[2]), 255})
		}
	}
	testutil.WritePicture(t, path, img)
}

// classDataset writes n images per class under dir/<class>/ and extracts
// fc2 of the tiny VGG into db.
func classDataset(t *testing.T, dir, db string, classes []string, n int) {
	t.Helper()
	for c, name := range classes {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			classPicture(t, filepath.Join(dir, name, fmt.Sprintf("%03d.png", i)), c, i)
		}
	}
	if _, err := Extract(context.Background(), ExtractOptions{DB: db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"}, Batch: 16, Images: dir}); err != nil {
		t.Fatal(err)
	}
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	testenv.NeedTools(t, "Debian: libsvm-tools, liblinear-tools", tools...)
}

// TestFit_ParityWithCTools trains on CNN codes of the test models with our
// classifiers and with C libsvm / liblinear on the same exported data and
// parameters, and compares the held-out predictions.
func TestFit_ParityWithCTools(t *testing.T) {
	needTools(t, "svm-train", "svm-predict", "liblinear-train", "liblinear-predict")
	dir := t.TempDir()
	db := filepath.Join(dir, "f.db")
	classes := []string{"blue", "green", "red"}
	classDataset(t, filepath.Join(dir, "images"), db, classes, 60)

	export := func(part string) (string, []string) {
		path := filepath.Join(dir, part+".libsvm")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sum, err := Export(context.Background(), ExportOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Format: "libsvm", Part: part, Out: f})
		if err != nil {
			t.Fatal(err)
		}
		return path, sum.Classes
	}
	fitRun := func(name string, p classify.Params) {
		if _, err := Fit(context.Background(), FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: name, Params: p, TestFrac: 0.25}); err != nil {
			t.Fatal(err)
		}
	}
	g17 := func(v float64) string { return strconv.FormatFloat(v, 'g', 17, 64) }
	cases := []struct {
		name  string
		p     func() classify.Params
		train []string // C tool and flags; the file names follow
		tool  string
	}{
		{"svm-rbf", func() classify.Params {
			p := classify.DefaultParams(classify.SVM)
			p.Kernel, p.C, p.Gamma, p.Probability = "rbf", 4, classify.Gamma{Value: 0.02}, false
			return p
		}, []string{"svm-train", "-q", "-s", "0", "-t", "2", "-c", g17(4), "-g", g17(0.02)}, "svm-predict"},
		{"svm-linear", func() classify.Params {
			p := classify.DefaultParams(classify.SVM)
			p.Kernel, p.C, p.Probability = "linear", 0.5, false
			return p
		}, []string{"svm-train", "-q", "-s", "0", "-t", "0", "-c", g17(0.5)}, "svm-predict"},
		{"linear", func() classify.Params {
			p := classify.DefaultParams(classify.Linear)
			p.C = 1
			return p
		}, []string{"liblinear-train", "-q", "-s", "1", "-c", "1", "-e", "0.0001", "-B", "1"}, "liblinear-predict"},
		{"logreg", func() classify.Params {
			p := classify.DefaultParams(classify.LogReg)
			p.C = 1
			return p
		}, []string{"liblinear-train", "-q", "-s", "0", "-c", "1", "-e", "0.000001", "-B", "1"}, "liblinear-predict"},
	}
	fitRun("first", classify.DefaultParams(classify.LogReg)) // makes the split
	trainFile, trainClasses := export("train")
	testFile, testClasses := export("test")
	if strings.Join(trainClasses, ",") != strings.Join(classes, ",") || strings.Join(testClasses, ",") != strings.Join(classes, ",") {
		t.Fatalf("exported classes %v / %v, want %v", trainClasses, testClasses, classes)
	}
	sdb, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fitRun(c.name, c.p())
			lc, err := LoadClassifier(context.Background(), sdb, c.name)
			if err != nil {
				t.Fatal(err)
			}
			// Ours, on the held-out vectors in the export's order (image id).
			var ours []int
			right := 0
			err = sdb.Vectors(context.Background(), lc.Set.ID, func(r store.VectorRow) error {
				if r.Part != store.PartTest || r.Label == "" {
					return nil
				}
				p, err := lc.Model.Predict(r.Vector)
				ours = append(ours, p.Label)
				if p.Class == r.Label {
					right++
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			model := filepath.Join(dir, c.name+".model")
			out := filepath.Join(dir, c.name+".out")
			if b, err := exec.Command(c.train[0], append(c.train[1:], trainFile, model)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", c.train[0], err, b)
			}
			if b, err := exec.Command(c.tool, testFile, model, out).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", c.tool, err, b)
			}
			theirs := readLabels(t, out)
			if len(theirs) != len(ours) {
				t.Fatalf("%d C predictions, %d ours", len(theirs), len(ours))
			}
			diff := 0
			for i := range ours {
				if ours[i] != theirs[i] {
					diff++
				}
			}
			t.Logf("%s: held-out accuracy %d/%d; %d predictions differ from %s", c.name, right, len(ours), diff, c.train[0])
			if right == len(ours) || right < len(ours)/3 {
				t.Errorf("held-out accuracy %d/%d: the data should be neither trivial nor hopeless for the comparison to mean something", right, len(ours))
			}
			if diff > 2 {
				t.Errorf("%d of %d held-out predictions differ from %s (allowed: 2, near ties)", diff, len(ours), c.train[0])
			}
		})
	}
}

func readLabels(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, err := strconv.ParseFloat(strings.Fields(sc.Text())[0], 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, int(v))
	}
	return out
}
