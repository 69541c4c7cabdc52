package store

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"pipeline/internal/testutil"
)

var update = flag.Bool("update", false, "write testdata/db/v<SchemaVersion>.sqlite from the current schema")

// savedDir holds one database per released schema version, written by
// `go test ./store -run TestOpen_SavedDatabases -update` when the version
// was current, and never rewritten afterwards.
const savedDir = "../testdata/db"

func savedName(v int) string { return filepath.Join(savedDir, fmt.Sprintf("v%d.sqlite", v)) }

// TestOpen_SavedDatabases opens a copy of every saved database with this
// binary: it must migrate to the current version and keep its contents.
func TestOpen_SavedDatabases(t *testing.T) {
	if *update {
		writeSaved(t, savedName(SchemaVersion))
	}
	files, err := filepath.Glob(filepath.Join(savedDir, "v*.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, savedName(SchemaVersion)) {
		t.Errorf("no saved database of the current schema version %d: run go test ./store -run TestOpen_SavedDatabases -update and commit %s",
			SchemaVersion, savedName(SchemaVersion))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "features.db")
			testutil.CopyFile(t, file, path)
			var saved int
			if err := rawDB(t, path).QueryRow(`PRAGMA user_version`).Scan(&saved); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("open saved version %d: %v", saved, err)
			}
			defer db.Close()
			if v, err := db.Version(ctx); err != nil || v != SchemaVersion {
				t.Fatalf("version after open = %d, %v; want %d", v, err, SchemaVersion)
			}
			rep, err := db.Check(ctx)
			if err != nil || !rep.Healthy() {
				t.Fatalf("Check = %+v, %v", rep, err)
			}
			verifySavedV1(t, db)
			if saved >= 2 {
				verifySavedV2(t, db)
			}
			wantPath := ""
			if saved >= 6 {
				wantPath = savedModelPath
			}
			if sets, err := db.FeatureSets(ctx); err != nil || len(sets) != 1 || sets[0].ModelPath != wantPath {
				t.Errorf("model path of the saved set: %+v, %v; want %q", sets, err, wantPath)
			}
			// Migrated: now the current version's writes work on it.
			if _, err := db.AssignSplit(ctx, 0.5); err != nil {
				t.Errorf("AssignSplit on the migrated database: %v", err)
			}
		})
	}
}

// The saved fixture: what writeSaved stores and verifySaved* expect.
var savedImages = []struct {
	content string
	paths   []string
}{
	{"a", []string{"/data/cat/a.jpg"}},
	{"b", []string{"/data/cat/b.jpg", "/data/dog/b-copy.jpg"}},
	{"c", []string{"/data/dog/c.jpg"}},
	{"d", []string{"/data/dog/d.jpg"}},
}

// savedModelPath is the model path of the saved set (schema 6 on; older
// saved databases have none).
const savedModelPath = "/models/vgg16.onnx"

func savedSet() FeatureSet {
	return FeatureSet{ModelSHA256: shaOf("vgg16.onnx"), ModelName: "vgg16", Layer: "fc7", Alias: "fc2",
		Pooling: PoolNone, Preprocess: `{"mean":[103.939,116.779,123.68],"size":224}`, Shape: "8", Dim: 8, ModelPath: savedModelPath}
}

func writeSaved(t *testing.T, dst string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "features.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release, err := db.Lock(ctx, 0, Holder{Command: "pipeline extract"})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := db.EnsureFeatureSet(ctx, savedSet())
	if err != nil {
		t.Fatal(err)
	}
	run, err := db.StartRun(ctx, "extract", []string{"--images", "/data"})
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	for _, im := range savedImages {
		b.Items = append(b.Items, item(im.content, im.paths, fs))
	}
	b.Failures = []Failure{{Path: "/data/cat/broken.jpg", Stage: "decode", Message: "not an image"}}
	b.Counts = Counts{Seen: 6, Extracted: 4, Duplicates: 1, Failed: 1}
	if err := db.WriteBatch(ctx, run, b); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishRun(ctx, run, RunPartial, 0, b.Counts, ""); err != nil {
		t.Fatal(err)
	}
	// Version 2: a split, a classifier, a prediction.
	if _, err := db.AssignSplit(ctx, 0.5); err != nil {
		t.Fatal(err)
	}
	cid, err := db.SaveClassifier(ctx, testClassifier(fs, "svm"), false)
	if err != nil {
		t.Fatal(err)
	}
	a := mustImage(t, db, "a")
	if err := db.WritePredictions(ctx, 0, []Prediction{{ImageID: a.ID, ClassifierID: cid, Path: a.Path, Label: "cat"}}); err != nil {
		t.Fatal(err)
	}
	release()
	db.Close()
	// A self-contained file: rollback journal, no -wal to go with it.
	raw := rawDB(t, path)
	mustExec(t, raw, `PRAGMA journal_mode = DELETE`)
	mustExec(t, raw, `PRAGMA page_size = 1024`) // small file: most tables hold a row or two
	mustExec(t, raw, `VACUUM`)
	raw.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.CopyFile(t, path, dst)
	t.Logf("wrote %s", dst)
}

func verifySavedV1(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	sets, err := db.FindFeatureSets(ctx, "fc2", "vgg16")
	if err != nil || len(sets) != 1 || sets[0].Dim != 8 || sets[0].Vectors != 4 || sets[0].Preprocess != savedSet().Preprocess {
		t.Fatalf("feature sets = %+v, %v", sets, err)
	}
	fs := sets[0]
	if fs.Engine != EngineOpenCV { // sets made before 0003 are OpenCV's
		t.Errorf("engine of a saved set = %q, want opencv", fs.Engine)
	}
	n := 0
	err = db.Vectors(ctx, fs.ID, func(r VectorRow) error {
		im := savedImages[n]
		n++
		if r.SHA256 != shaOf(im.content) || r.Path != im.paths[0] || !slices.Equal(r.Vector, vecOf(seedOf(im.content), fs.ID, fs.Dim)) {
			t.Errorf("vector row %d = %+v, want content %q", n, r, im.content)
		}
		return nil
	})
	if err != nil || n != len(savedImages) {
		t.Errorf("Vectors: %d rows, %v", n, err)
	}
	if info, ok, err := db.LookupPath(ctx, "/data/dog/b-copy.jpg"); err != nil || !ok || info.SHA256 != shaOf("b") || info.Label != "dog" {
		t.Errorf("LookupPath(copy) = %+v, %v, %v", info, ok, err)
	}
	runs, err := db.Runs(ctx, 0)
	if err != nil || len(runs) != 1 || runs[0].Status != RunPartial || runs[0].Counts != (Counts{Seen: 6, Extracted: 4, Duplicates: 1, Failed: 1}) {
		t.Errorf("runs = %+v, %v", runs, err)
	}
}

func verifySavedV2(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	split, err := db.Split(ctx)
	if err != nil || len(split) != 4 {
		t.Errorf("split = %v, %v; want 4 images", split, err)
	}
	c, err := db.Classifier(ctx, "svm")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Labels, []string{"cat", "dog"}) || string(c.Model) != "\x01\x02\x03\x04\x05" {
		t.Errorf("classifier = %+v", c)
	}
	var params map[string]float64
	if err := json.Unmarshal(c.Params, &params); err != nil || params["c"] != 1 {
		t.Errorf("params = %s, %v", c.Params, err)
	}
	a := mustImage(t, db, "a")
	if ok, err := db.HasPrediction(ctx, c.ID, a.ID); err != nil || !ok {
		t.Errorf("HasPrediction = %v, %v", ok, err)
	}
}
