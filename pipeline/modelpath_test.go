package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/internal/testutil"
	"pipeline/store"
)

// forgetModelPath makes db's feature sets look made before schema 6: no
// recorded model path.
func forgetModelPath(t *testing.T, path string) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.Query(context.Background(), `UPDATE feature_sets SET model_path = NULL`, nil, true); err != nil {
		t.Fatal(err)
	}
}

// TestPredictSimilar_RecordedModelPath: a feature set extracted with a
// model file records its absolute path, and predict and similar find the
// model there without being told, from another working directory; a file
// changed or gone at that path is refused with an error naming it.
func TestPredictSimilar_RecordedModelPath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	model := filepath.Join(dir, "models", "my-vgg.onnx")
	if err := os.MkdirAll(filepath.Dir(model), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.CopyFile(t, tinyVGG, model)
	imgs := filepath.Join(dir, "images")
	db := filepath.Join(dir, "f.db")
	for c, class := range []string{"blue", "red"} {
		if err := os.MkdirAll(filepath.Join(imgs, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 6; i++ {
			classPicture(t, filepath.Join(imgs, class, fmt.Sprintf("%d.png", i)), c, i)
		}
	}
	if _, err := Extract(ctx, ExtractOptions{DB: db, Model: tinyModel(t, model, "caffe"), Layers: []string{"fc2"}, Images: imgs}); err != nil {
		t.Fatal(err)
	}
	if got := query(t, db, `SELECT model_name, model_path FROM feature_sets`, nil); len(got) != 1 || got[0][0] != "my-vgg.onnx" || got[0][1] != model {
		t.Fatalf("feature sets %v, want my-vgg.onnx recorded at %s", got, model)
	}
	if _, err := Fit(ctx, FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "lr",
		Params: classify.DefaultParams(classify.LogReg), TestFrac: 0.25}); err != nil {
		t.Fatal(err)
	}
	photo := filepath.Join(dir, "new.png")
	classPicture(t, photo, 1, 99)

	otherModel, err := filepath.Abs("../testdata/models/vgg-torch-tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // "my-vgg.onnx" names no file here
	predict := func() (int, error) {
		sum, err := Predict(ctx, PredictOptions{DB: db, Name: "lr", Paths: []string{photo}})
		return sum.Predicted, err
	}
	similar := func() error {
		res, err := Similar(ctx, SimilarOptions{DB: db, Query: photo, Set: SetQuery{Layer: "fc2"}, K: 3})
		if err == nil && (res.Query.Source != "computed" || len(res.Neighbors) != 3) {
			t.Errorf("similar: %+v", res)
		}
		return err
	}
	if n, err := predict(); err != nil || n != 1 {
		t.Fatalf("predict without a model path: %d predicted, %v", n, err)
	}
	if err := similar(); err != nil {
		t.Fatalf("similar without a model path: %v", err)
	}

	// Another file at the recorded path: the SHA-256 check refuses it.
	testutil.CopyFile(t, otherModel, model)
	for name, err := range map[string]error{"predict": second(predict()), "similar": similar()} {
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), model) || !strings.Contains(err.Error(), "changed since") {
			t.Errorf("%s with a changed model file: %v", name, err)
		}
	}
	// Gone: the message says where it was looked for.
	if err := os.Remove(model); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{"predict": second(predict()), "similar": similar()} {
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "nor at "+model) {
			t.Errorf("%s with the model file gone: %v", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
