package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"pipeline/internal/testutil"
)

// jsonKeysCase is one stored JSON value as the code before migration 0007
// wrote it (Go field names) and as the code writes it now (snake_case),
// both produced once by marshalling the same classify values with each
// version (testdata/json_keys_0007.json; the old side from commit c11f108,
// the last before the tags).
type jsonKeysCase struct {
	Name   string          `json:"name"`
	Column string          `json:"column"` // params, transform or metrics
	Old    json.RawMessage `json:"old"`
	New    json.RawMessage `json:"new"`
}

func readJSONKeysCases(t *testing.T) []jsonKeysCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "json_keys_0007.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []jsonKeysCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func sameJSON(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

// TestMigrate_JSONKeys: a version-5 database whose classifiers and sweeps
// hold the old keys opens as the current version with the new keys, values
// unchanged; rows already in the new form and other columns are untouched.
func TestMigrate_JSONKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "features.db")
	testutil.CopyFile(t, savedName(5), path)
	raw := rawDB(t, path)
	cases := readJSONKeysCases(t)
	for _, c := range cases {
		params, transform, metrics := `{}`, any(nil), any(nil)
		switch c.Column {
		case "params":
			params = string(c.Old)
		case "transform":
			transform = string(c.Old)
		case "metrics":
			metrics = string(c.Old)
		}
		mustExec(t, raw, `INSERT INTO classifiers (name, kind, params, transform, labels, feature_set_id, dim, metrics, command, created_at, model)
			VALUES (?, 'svm', ?, ?, '["cat","dog"]', 1, 8, ?, 'pipeline fit', '2026-01-01T00:00:00Z', x'01')`, c.Name, params, transform, metrics)
		if c.Column == "params" {
			mustExec(t, raw, `INSERT INTO sweeps (run_id, feature_set_id, layer, depth, classifier, params, folds, train, at)
				VALUES (1, 1, 'fc2', 3, ?, ?, 5, 40, '2026-01-01T00:00:00Z')`, c.Name, string(c.Old))
		}
	}
	// A row written in the new form already (a database migrated, then
	// written by this version) is left as it is.
	mustExec(t, raw, `INSERT INTO classifiers (name, kind, params, labels, feature_set_id, dim, command, created_at, model)
		VALUES ('new', 'knn', '{"classifier":"knn","k":3,"note":"Kept"}', '["cat","dog"]', 1, 8, 'pipeline fit', '2026-01-01T00:00:00Z', x'01')`)
	raw.Close()

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Version(ctx); err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v", v, err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			cl, err := db.Classifier(ctx, c.Name)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]byte{"params": cl.Params, "transform": cl.Transform, "metrics": cl.Metrics}[c.Column]
			if !sameJSON(t, got, c.New) {
				t.Errorf("classifiers.%s after migration:\ngot  %s\nwant %s", c.Column, got, c.New)
			}
			if c.Column != "params" {
				return
			}
			var sp string
			if err := db.reader().QueryRow(`SELECT params FROM sweeps WHERE classifier = ?`, c.Name).Scan(&sp); err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, []byte(sp), c.New) {
				t.Errorf("sweeps.params after migration:\ngot  %s\nwant %s", sp, c.New)
			}
		})
	}
	if cl, err := db.Classifier(ctx, "svm"); err != nil || string(cl.Params) != `{"c":1}` || string(cl.Transform) != `{"l2":true}` {
		t.Errorf("the saved database's classifier: params %s, transform %s (%v); want {\"c\":1}, {\"l2\":true}", cl.Params, cl.Transform, err)
	}
	if cl, err := db.Classifier(ctx, "new"); err != nil || string(cl.Params) != `{"classifier":"knn","k":3,"note":"Kept"}` {
		t.Errorf("a row in the new form became %s (%v)", cl.Params, err)
	}
	// No key of the old form is left anywhere.
	n := queryInt(t, db, `SELECT count(*) FROM (
		SELECT t.key FROM classifiers c, json_tree(c.params) t UNION ALL
		SELECT t.key FROM classifiers c, json_tree(coalesce(c.transform, '{}')) t UNION ALL
		SELECT t.key FROM classifiers c, json_tree(coalesce(c.metrics, '{}')) t UNION ALL
		SELECT t.key FROM sweeps s, json_tree(s.params) t) WHERE key GLOB '[A-Z]*'`)
	if n != 0 {
		t.Errorf("%d keys of the old form left", n)
	}
}

// TestFeatureSet_JSON: preprocess is an object in JSON, not a string
// holding JSON, and reads back as the column's text.
func TestFeatureSet_JSON(t *testing.T) {
	fs := savedSet()
	b, err := json.Marshal(fs)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if pre, ok := m["preprocess"].(map[string]any); !ok || pre["size"] != 224.0 {
		t.Errorf("preprocess in JSON = %#v, want an object", m["preprocess"])
	}
	var back FeatureSet
	if err := json.Unmarshal(b, &back); err != nil || back != fs {
		t.Errorf("round trip: %+v, %v; want %+v", back, err, fs)
	}
	fs.Preprocess = ""
	if b, err := json.Marshal(fs); err != nil || !json.Valid(b) || !strings.Contains(string(b), `"preprocess":null`) {
		t.Errorf("empty preprocess: %s, %v", b, err)
	}
}
