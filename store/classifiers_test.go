package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func testClassifier(fs FeatureSet, name string) Classifier {
	return Classifier{
		Name: name, Kind: "linear-svm", Params: json.RawMessage(`{"c":1}`),
		Transform: json.RawMessage(`{"l2":true}`), Labels: []string{"cat", "dog"},
		FeatureSetID: fs.ID, Dim: fs.Dim, Command: "pipeline fit --name " + name,
		Model: []byte{1, 2, 3, 4, 5},
	}
}

func TestDB_SaveClassifier(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	fs := testSet(t, db, "fc2", 4)
	if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("a", []string{"/data/cat/a.jpg"}, fs)}}); err != nil {
		t.Fatal(err)
	}
	img := mustImage(t, db, "a")

	t.Run("OK", func(t *testing.T) {
		c := testClassifier(fs, "svm")
		id, err := db.SaveClassifier(ctx, c, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Classifier(ctx, "svm")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != id || got.Kind != c.Kind || string(got.Params) != `{"c":1}` || string(got.Transform) != `{"l2":true}` ||
			!slices.Equal(got.Labels, c.Labels) || got.Dim != 4 || got.Metrics != nil || !bytes.Equal(got.Model, c.Model) ||
			got.ModelSize != 5 || got.CreatedAt.IsZero() || got.Command != c.Command {
			t.Errorf("Classifier = %+v", got)
		}
	})

	t.Run("ErrClassifierExists", func(t *testing.T) {
		_, err := db.SaveClassifier(ctx, testClassifier(fs, "svm"), false)
		if !errors.Is(err, ErrClassifierExists) {
			t.Fatalf("got %v, want ErrClassifierExists", err)
		}
		wantErr(t, err, `"svm"`)
	})

	t.Run("Replace", func(t *testing.T) {
		old, _ := db.Classifier(ctx, "svm")
		p := 0.75
		if err := db.WritePredictions(ctx, 0, []Prediction{{ImageID: img.ID, ClassifierID: old.ID, Label: "cat", Probability: &p}}); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.HasPrediction(ctx, old.ID, img.ID); err != nil || !ok {
			t.Fatalf("HasPrediction = %v, %v; want true", ok, err)
		}
		c := testClassifier(fs, "svm")
		c.Model = []byte{9}
		c.Metrics = json.RawMessage(`{"accuracy":0.9}`)
		id, err := db.SaveClassifier(ctx, c, true)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := db.Classifier(ctx, "svm")
		if got.ID != id || !bytes.Equal(got.Model, []byte{9}) || string(got.Metrics) != `{"accuracy":0.9}` {
			t.Errorf("after replace: %+v", got)
		}
		if n := queryInt(t, db, `SELECT count(*) FROM predictions`); n != 0 {
			t.Errorf("%d predictions of the replaced classifier remain", n)
		}
	})

	t.Run("ErrUnknownClassifier", func(t *testing.T) {
		if _, err := db.SaveClassifier(ctx, testClassifier(fs, "logreg"), false); err != nil {
			t.Fatal(err)
		}
		_, err := db.Classifier(ctx, "knn")
		if !errors.Is(err, ErrUnknownClassifier) {
			t.Fatalf("got %v, want ErrUnknownClassifier", err)
		}
		wantErr(t, err, `"knn"`, "logreg, svm")
		list, err := db.Classifiers(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "logreg" || list[0].Model != nil || list[0].ModelSize != 5 {
			t.Errorf("Classifiers = %+v, %v", list, err)
		}
	})

	t.Run("ErrDimMismatch", func(t *testing.T) {
		c := testClassifier(fs, "wrong")
		c.Dim = 5
		_, err := db.SaveClassifier(ctx, c, false)
		if !errors.Is(err, ErrDimMismatch) {
			t.Fatalf("got %v, want ErrDimMismatch", err)
		}
	})

	t.Run("BadJSON", func(t *testing.T) {
		c := testClassifier(fs, "bad")
		c.Params = json.RawMessage(`{C:1}`)
		wantErr(t, func() error { _, err := db.SaveClassifier(ctx, c, false); return err }(), "params", "JSON")
	})
}

func TestDB_WritePredictions(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	fs := testSet(t, db, "fc2", 4)
	if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{
		item("a", []string{"/data/cat/a.jpg"}, fs), item("b", []string{"/data/cat/b.jpg"}, fs),
	}}); err != nil {
		t.Fatal(err)
	}
	a, b := mustImage(t, db, "a"), mustImage(t, db, "b")
	cid, err := db.SaveClassifier(ctx, testClassifier(fs, "svm"), false)
	if err != nil {
		t.Fatal(err)
	}
	p := 0.5
	if err := db.WritePredictions(ctx, 0, []Prediction{
		{ImageID: a.ID, ClassifierID: cid, Path: a.Path, Label: "dog", Probability: &p},
		{ImageID: a.ID, ClassifierID: cid, Label: "cat"},
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		got, err := db.PredictedImages(ctx, cid)
		if err != nil || len(got) != 1 || !got[a.ID] {
			t.Errorf("PredictedImages = %v, %v; want {%d}", got, err, a.ID)
		}
		if ok, _ := db.HasPrediction(ctx, cid, b.ID); ok {
			t.Error("HasPrediction true for an image never predicted")
		}
		if n := queryInt(t, db, `SELECT count(*) FROM predictions WHERE probability IS NULL AND path IS NULL`); n != 1 {
			t.Errorf("%d predictions without probability and path, want 1", n)
		}
	})
	t.Run("Atomic", func(t *testing.T) {
		err := db.WritePredictions(ctx, 0, []Prediction{
			{ImageID: b.ID, ClassifierID: cid, Label: "cat"},
			{ImageID: 999, ClassifierID: cid, Label: "cat"},
		})
		wantErr(t, err, "image 999")
		if ok, _ := db.HasPrediction(ctx, cid, b.ID); ok {
			t.Error("the failed call's first prediction was stored")
		}
	})
}
