package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/internal/testutil"
)

// bin is the pipeline binary the tests run as a separate process.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipeline-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "pipeline")
	// Same tags as the tests themselves (scripts/test.sh uses matprofile),
	// so that the cgo packages come from the build cache.
	out, err := exec.Command("go", "build", "-tags", "matprofile", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs the binary with its own empty cache (unless env overrides it).
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runStdin(t, env, "", args...)
}

func (r result) want(t *testing.T, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, c := range contains {
		if !strings.Contains(r.stdout+r.stderr, c) {
			t.Errorf("output does not contain %q\nstdout: %s\nstderr: %s", c, r.stdout, r.stderr)
		}
	}
}

const tiny = "../../testdata/models/vgg-zoo-tiny.onnx"

// images writes n pictures per class; the classes differ in colour.
func images(t *testing.T, dir string, classes []string, n int) {
	t.Helper()
	for c, name := range classes {
		for i := 0; i < n; i++ {
			r := rand.New(rand.NewPCG(uint64(c), uint64(i)))
			img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
			for y := 0; y < 30; y++ {
				for x := 0; x < 40; x++ {
					v := [3]int{r.IntN(160), r.IntN(160), r.IntN(160)}
					v[c%3] += 60 + x
					img.SetNRGBA(x, y, color.NRGBA{uint8(min(v[0], 255)), uint8(min(v[1], 255)), uint8(min(v[2], 255)), 255})
				}
			}
			testutil.WritePicture(t, filepath.Join(dir, name, fmt.Sprintf("%02d.png", i)), img)
		}
	}
}

func TestCLI_Workflow(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b", "c"}, 25)
	db := filepath.Join(dir, "f.db")
	dbEnv := []string{"PIPELINE_DB=" + db}

	r := run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2,block3_pool", "--images", imgs, "--json")
	r.want(t, 0)
	var sum struct {
		Status string
		Counts struct{ Seen, Extracted int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Status != "ok" || sum.Counts.Extracted != 75 {
		t.Fatalf("extract --json: %v %+v\n%s", err, sum, r.stdout)
	}

	run(t, dbEnv, "fit", "--layer", "fc2", "--clf", "logreg", "--name", "lr", "--cv", "3").want(t, 0, "3-fold CV: accuracy", "classifier lr: logreg")
	run(t, dbEnv, "fit", "--layer", "fc2", "--clf", "logreg", "--name", "lr").want(t, 2, `classifier "lr" exists`, "--replace")
	run(t, dbEnv, "fit", "--layer", "fc9", "--name", "x").want(t, 5, "no feature set with vectors matches layer fc9", "fc2", "block3_pool")
	run(t, dbEnv, "fit", "--layer", "fc2", "--name", "x", "--cv", "50").want(t, 5, "fewer than the 50 folds")
	run(t, dbEnv, "fit", "--layer", "fc2", "--name", "x", "--clf", "tree").want(t, 2, `classifier "tree"`)
	run(t, dbEnv, "eval", "nope").want(t, 2, `classifier "nope"`, "lr")
	run(t, dbEnv, "eval").want(t, 2, "want one classifier name", "stored classifiers: lr (logreg on fc2)")
	r = run(t, dbEnv, "classifiers", "--json")
	r.want(t, 0)
	var cls []struct {
		Name, Kind, Layer string
		Dim               int
		Train, Test       int
		CVAccuracy        *float64 `json:"cv_accuracy"`
		CVFolds           int      `json:"cv_folds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cls); err != nil || len(cls) != 1 || cls[0].Name != "lr" || cls[0].Kind != "logreg" ||
		cls[0].Layer != "fc2" || cls[0].Train != 60 || cls[0].Test != 15 || cls[0].CVAccuracy == nil || cls[0].CVFolds != 3 {
		t.Fatalf("classifiers --json: %v %+v\n%s", err, cls, r.stdout)
	}
	run(t, dbEnv, "classifiers").want(t, 0, "NAME", "lr", "logreg", "fc2", "60/15", fmt.Sprintf("%.3f ± ", *cls[0].CVAccuracy), "(3-fold)")

	// Eval in one process and predict in another agree on the held-out split.
	r = run(t, dbEnv, "eval", "lr", "--json")
	r.want(t, 0)
	var ev struct {
		Metrics struct {
			N        int
			Accuracy float64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.Metrics.N != 15 {
		t.Fatalf("eval --json: %v %+v", err, ev)
	}
	r = run(t, dbEnv, "export", "--layer", "fc2", "--format", "csv", "--split", "test")
	r.want(t, 0)
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(recs) != 16 {
		t.Fatalf("export csv: %v, %d records", err, len(recs))
	}
	truth := map[string]string{}
	args := []string{"predict", "lr", "--json", "--model", tiny}
	for _, rec := range recs[1:] {
		truth[rec[0]] = rec[2]
		args = append(args, rec[0])
	}
	predict := func() (string, int) {
		r := run(t, dbEnv, args...)
		r.want(t, 0)
		right := 0
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		for dec.More() {
			var row struct{ Path, Label string }
			if err := dec.Decode(&row); err != nil {
				t.Fatal(err)
			}
			if truth[row.Path] == row.Label {
				right++
			}
		}
		return r.stdout, right
	}
	out1, right := predict()
	if got := float64(right) / 15; got != ev.Metrics.Accuracy {
		t.Errorf("predict in a new process: %d/15 right = %.4f, eval says %.4f", right, got, ev.Metrics.Accuracy)
	}
	if out2, _ := predict(); out2 != out1 {
		t.Errorf("two predict processes differ:\n%s\n%s", out1, out2)
	}

	// Without --model the classifier's CNN is looked up by name, which a
	// bare file name cannot be, then at the path extract recorded, which a
	// set made before schema 6 has not: the message says what to do.
	run(t, dbEnv, "sql", "--write", "UPDATE feature_sets SET model_path = NULL").want(t, 0)
	run(t, dbEnv, "predict", "lr", recs[1][0]).want(t, 2, "pass --model PATH")

	// npy: header, then rows x 32 float32.
	npy := filepath.Join(dir, "fc2.npy")
	run(t, dbEnv, "export", "--layer", "fc2", "--format", "npy", "--out", npy, "--labels", filepath.Join(dir, "labels.csv")).want(t, 0)
	b, err := os.ReadFile(npy)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(b[8]) | int(b[9])<<8
	if !bytes.HasPrefix(b, []byte("\x93NUMPY\x01\x00")) || (10+hlen)%64 != 0 || !strings.Contains(string(b[10:10+hlen]), "'shape': (75, 32)") || len(b) != 10+hlen+75*32*4 {
		t.Errorf("npy: header %q, %d bytes", b[10:10+hlen], len(b))
	}
}

func TestCLI_Errors(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"only"}, 6)
	db := filepath.Join(dir, "f.db")
	dbEnv := []string{"PIPELINE_DB=" + db}
	run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 0)
	run(t, dbEnv, "fit", "--layer", "fc2", "--name", "x").want(t, 5, "need at least 2 classes")
	run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc9", "--images", imgs).want(t, 2,
		`unknown layer "fc9"`, "aliases: block1_pool, block2_pool, block3_pool, flatten, fc1, fc2, predictions")
	run(t, dbEnv, "extract", "--model", tiny, "--layer", "fc2", "--images", imgs).want(t, 2, "--preprocess caffe")
	run(t, dbEnv, "extract", "--model", "vgg16", "--layer", "fc2", "--images", imgs).want(t, 1, "model vgg16 is not in the cache", "pipeline models pull vgg16")
	run(t, dbEnv, "extract", "--model", "vgg17", "--layer", "fc2", "--images", imgs).want(t, 2, `unknown model "vgg17"`, "usable offline: resnet50-arch")
	run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs, "--backend", "cuda").want(t, 2,
		"backend cuda with target fp32 is not available in this OpenCV build")
	run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2").want(t, 2, "give --images DIR or --list FILE")
	run(t, nil, "frobnicate").want(t, 2, `unknown command "frobnicate"`)
	run(t, nil, "version").want(t, 0, "opencv     4.6.0", "backends   cpu/fp32")
	run(t, nil, "models").want(t, 0, "LAYER NAMES", "LAYER NAMES is the family of --layer aliases")
	run(t, nil, "layers", "--model", tiny, "--aliases").want(t, 0, "onnx_node!vgg0_dense1_relu_fwd", "fc2")

	// A corrupt file among good ones: the run finishes, exit code 3, one line naming it.
	if err := os.WriteFile(filepath.Join(imgs, "only", "bad.jpg"), []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 3,
		"bad.jpg: decode: not an image", "1 failed")
	// A database that is not one.
	if err := os.WriteFile(filepath.Join(dir, "text.db"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, []string{"PIPELINE_DB=" + filepath.Join(dir, "text.db")}, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 1, "text.db")
}
