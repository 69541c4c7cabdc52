package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"pipeline/internal/testutil"
)

type similarJSON struct {
	Query struct {
		Input, Path, SHA256, Source string
		ImageID                     int64 `json:"image_id"`
	}
	Metric    string
	K         int
	Neighbors []struct {
		Rank        int
		Distance    float64
		Path, Label string
		SHA256      string
		ImageID     int64 `json:"image_id"`
	}
}

// exportedVectors reads `pipeline export --format csv` into path -> vector.
func exportedVectors(t *testing.T, env []string) map[string][]float64 {
	t.Helper()
	r := run(t, env, "export", "--layer", "fc2", "--format", "csv")
	r.want(t, 0)
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, rec := range recs[1:] {
		var v []float64
		for _, s := range rec[4:] {
			// Exported as the shortest text that reads back as the float32.
			x, err := strconv.ParseFloat(s, 32)
			if err != nil {
				t.Fatal(err)
			}
			v = append(v, x)
		}
		out[rec[0]] = v
	}
	return out
}

func TestCLI_Similar(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b", "c"}, 10)
	db := filepath.Join(dir, "f.db")
	dbEnv := []string{"PIPELINE_DB=" + db}
	run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 0)
	vecs := exportedVectors(t, dbEnv)
	query := filepath.Join(imgs, "b", "03.png")

	// The reference: brute force in float64 over the exported vectors.
	type hit struct {
		path string
		d    float64
	}
	var want []hit
	for p, v := range vecs {
		if p != query {
			want = append(want, hit{p, testutil.CosineDistance(vecs[query], v)})
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].d < want[j].d })

	r := run(t, dbEnv, "similar", query, "--layer", "fc2", "--k", "5", "--json")
	r.want(t, 0, "stored vector")
	var res similarJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if res.Query.Source != "stored" || res.Metric != "cosine" || res.K != 5 || len(res.Neighbors) != 5 {
		t.Fatalf("json: %+v", res)
	}
	for i, n := range res.Neighbors {
		if n.Rank != i+1 || n.Path != want[i].path || math.Abs(n.Distance-want[i].d) > 1e-9 || n.Label != filepath.Base(filepath.Dir(n.Path)) {
			t.Errorf("rank %d: %+v, want %s at %.12f", i+1, n, want[i].path, want[i].d)
		}
	}

	t.Run("CSV", func(t *testing.T) {
		r := run(t, dbEnv, "similar", query, "--layer", "fc2", "--k", "5", "--csv")
		r.want(t, 0)
		recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 6 || strings.Join(recs[0], ",") != "rank,distance,path,label" {
			t.Fatalf("csv:\n%s", r.stdout)
		}
		for i, rec := range recs[1:] {
			d, err := strconv.ParseFloat(rec[1], 64)
			n := res.Neighbors[i]
			if err != nil || rec[0] != strconv.Itoa(i+1) || d != n.Distance || rec[2] != n.Path || rec[3] != n.Label {
				t.Errorf("csv row %v, json %+v", rec, n)
			}
		}
	})
	t.Run("Table", func(t *testing.T) {
		r := run(t, dbEnv, "similar", query, "--layer", "fc2", "--k", "2", "--metric", "l2")
		r.want(t, 0)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "RANK") || !strings.Contains(lines[1], "1 ") {
			t.Errorf("table:\n%s", r.stdout)
		}
	})
	t.Run("RelPathAndSHA", func(t *testing.T) {
		for _, name := range []string{"b/03.png", res.Query.SHA256} {
			r := run(t, dbEnv, "similar", name, "--layer", "fc2", "--k", "5", "--json")
			r.want(t, 0)
			var got similarJSON
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatal(err)
			}
			if got.Query.ImageID != res.Query.ImageID || len(got.Neighbors) != 5 || got.Neighbors[4].Path != res.Neighbors[4].Path {
				t.Errorf("%s: %+v", name, got)
			}
		}
	})
	t.Run("IncludeSelf", func(t *testing.T) {
		r := run(t, dbEnv, "similar", query, "--layer", "fc2", "--k", "1", "--include-self", "--json")
		r.want(t, 0)
		var got similarJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Neighbors) != 1 || got.Neighbors[0].Path != query || got.Neighbors[0].Distance != 0 {
			t.Errorf("got %+v, want the query itself at 0", got.Neighbors)
		}
	})
	t.Run("NewFile", func(t *testing.T) {
		// A copy of a stored file is found by content, a new one is
		// computed with the model given by path.
		b, err := os.ReadFile(query)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, "copy.png")
		if err := os.WriteFile(cp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, dbEnv, "similar", cp, "--layer", "fc2", "--k", "5", "--json")
		r.want(t, 0, "stored vector")
		var got similarJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatal(err)
		}
		if got.Query.ImageID != res.Query.ImageID || got.Neighbors[0].Path != res.Neighbors[0].Path {
			t.Errorf("copy: %+v", got)
		}
		// images() seeds by class index: the fourth class's picture is new.
		images(t, filepath.Join(dir, "new"), []string{"x", "y", "z", "w"}, 1)
		r = run(t, dbEnv, "similar", filepath.Join(dir, "new", "w", "00.png"), "--layer", "fc2", "--model", tiny, "--k", "3")
		r.want(t, 0, "computed now")
	})
	t.Run("Errors", func(t *testing.T) {
		run(t, dbEnv, "similar", "cats/cat.12.jpg", "--layer", "fc2").want(t, 2, "cats/cat.12.jpg", "extract it first", "give the path of an image file")
		run(t, dbEnv, "similar", query, "--layer", "fc9").want(t, 5, "no feature set with vectors matches layer fc9")
		run(t, dbEnv, "similar", query, "--layer", "fc2", "--metric", "dot").want(t, 2, "metric dot")
		run(t, dbEnv, "similar", query, "--layer", "fc2", "--method", "faiss").want(t, 2, `"faiss"`)
		run(t, dbEnv, "similar", "--layer", "fc2").want(t, 2, "want one image")
		// A set made before schema 6 records no model path: the model is
		// looked up by name only, which a bare file name cannot be.
		run(t, dbEnv, "sql", "--write", "UPDATE feature_sets SET model_path = NULL").want(t, 0)
		run(t, dbEnv, "similar", filepath.Join(dir, "new", "w", "00.png"), "--layer", "fc2").want(t, 2, "--model-file PATH")
		// A second fc2 set (torch preprocessing) makes --layer fc2 ambiguous;
		// an image stored only in the first set, its file gone, has no
		// vector in the second.
		run(t, dbEnv, "extract", "--model", tiny, "--preprocess", "torch", "--layer", "fc2", "--images", filepath.Join(imgs, "a")).want(t, 0)
		run(t, dbEnv, "similar", query, "--layer", "fc2").want(t, 2, "matches 2 feature sets", "--set ID")
		if err := os.Remove(query); err != nil {
			t.Fatal(err)
		}
		run(t, dbEnv, "similar", query, "--set", "2").want(t, 5, "has no vector in #2")
	})
}
