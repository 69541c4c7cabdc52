package pipeline

import (
	"context"
	"path/filepath"
	"testing"

	"pipeline/classify"
)

// TestPredict_StoreKeepsLabels: predict --store on files extract already
// labeled (the cron inbox with class folders) must not unlabel them, and
// --new-only skips what this classifier predicted before.
func TestPredict_StoreKeepsLabels(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	db := filepath.Join(dir, "f.db")
	classDataset(t, imgs, db, []string{"blue", "red"}, 12)
	if _, err := Fit(context.Background(), FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "lr",
		Params: classify.DefaultParams(classify.LogReg), TestFrac: 0.25}); err != nil {
		t.Fatal(err)
	}
	labels := func() string {
		r := query(t, db, `SELECT group_concat(coalesce(label, '-') || ':' || relpath, ' ') FROM (SELECT label, relpath FROM image_paths ORDER BY relpath)`, nil)
		l := query(t, db, `SELECT group_concat(coalesce(label, '-'), ' ') FROM (SELECT label FROM images ORDER BY id)`, nil)
		return r[0][0].(string) + " | " + l[0][0].(string)
	}
	before := labels()
	var rows []PredictRow
	sum, err := Predict(context.Background(), PredictOptions{DB: db, Name: "lr", Paths: []string{imgs}, Store: true, ModelPath: tinyVGG,
		Emit: func(r PredictRow) error { rows = append(rows, r); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Predicted != 24 || sum.Stored != 24 || len(rows) != 24 {
		t.Errorf("predicted %d, stored %d, rows %d; want 24", sum.Predicted, sum.Stored, len(rows))
	}
	if after := labels(); after != before {
		t.Errorf("predict --store changed labels:\nbefore %s\nafter  %s", before, after)
	}
	sum, err = Predict(context.Background(), PredictOptions{DB: db, Name: "lr", Paths: []string{imgs}, Store: true, NewOnly: true, ModelPath: tinyVGG})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Predicted != 0 || sum.Skipped != 24 {
		t.Errorf("--new-only: predicted %d, skipped %d; want 0 and 24", sum.Predicted, sum.Skipped)
	}
	if n := asInt(query(t, db, `SELECT count(*) FROM predictions`, nil)[0][0]); n != 24 {
		t.Errorf("%d predictions stored, want 24", n)
	}
}
