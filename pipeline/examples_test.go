package pipeline

import (
	"pipeline/internal/testenv"
	"pipeline/internal/testutil"

	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/store"
)

// exampleDB is the database the example queries are checked against:
// real CNN codes of generated pictures (the tiny VGG test model), and the
// situations the examples are for, planted on purpose.
type exampleDB struct {
	path  string
	root  string            // the labeled --images folder
	inbox string            // unlabeled new images, predicted
	files map[string][]byte // relative path under root -> bytes, labeled images
	runs  struct{ extract, inbox, fit, predict1, predict2, sql int64 }

	nearTwin [2]string // birds/03.png and its one-pixel edit in dogs/
	planted  []plantedPrediction
	emitted  map[int64][]PredictRow // what each predict run said
}

type plantedPrediction struct {
	run   int64
	path  string
	label string
	prob  *float64
}

var classColor = map[string]int{"birds": 2, "cats": 0, "dogs": 1}

// exPicture is a picture whose dominant colour channel depends on the
// class, so that the tiny model's codes of one class are alike.
func exPicture(t *testing.T, class string, seed uint64) []byte {
	c := classColor[class]
	r := rand.New(rand.NewPCG(uint64(c)+100, seed))
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			v := [3]int{r.IntN(60), r.IntN(60), r.IntN(60)}
			v[c] += 150 + x
			img.SetNRGBA(x, y, color.NRGBA{uint8(min(v[0], 255)), uint8(min(v[1], 255)), uint8(min(v[2], 255)), 255})
		}
	}
	return testutil.EncodePNG(t, img)
}

// onePixelOff returns the PNG with one pixel changed by one level.
func onePixelOff(t *testing.T, data []byte) []byte {
	t.Helper()
	src, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewNRGBA(src.Bounds())
	for y := src.Bounds().Min.Y; y < src.Bounds().Max.Y; y++ {
		for x := src.Bounds().Min.X; x < src.Bounds().Max.X; x++ {
			img.Set(x, y, src.At(x, y))
		}
	}
	p := img.NRGBAAt(5, 5)
	p.R ^= 1
	img.SetNRGBA(5, 5, p)
	return testutil.EncodePNG(t, img)
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// buildExampleDB extracts, fits and predicts as a user would:
//
//	run 1 extract fc2,block2_pool of images/ (3 classes, copies, a near twin under
//	      another label, a bird picture filed as a cat, an unlabeled file, a
//	      corrupt file)
//	run 2 extract fc2 of inbox/ (unlabeled, one corrupt file)
//	run 3 fit logreg on fc2
//	run 4 predict --store inbox/new0.png
//	run 5 predict --store inbox/ (the corrupt file fails again)
//	run 6 sql --write (a run that reads no files)
//
// and plants predictions with low and missing probabilities.
func buildExampleDB(t *testing.T) *exampleDB {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	x := &exampleDB{path: filepath.Join(dir, "features.db"), root: filepath.Join(dir, "images"),
		inbox: filepath.Join(dir, "inbox"), files: map[string][]byte{}, emitted: map[int64][]PredictRow{}}
	for _, class := range []string{"birds", "cats", "dogs"} {
		for i := range 6 {
			x.files[fmt.Sprintf("%s/%02d.png", class, i)] = exPicture(t, class, uint64(i))
		}
	}
	x.files["cats/copy_of_00.png"] = x.files["cats/00.png"] // same label
	x.files["dogs/cat_copy.png"] = x.files["cats/02.png"]   // exact copy, other label
	x.files["dogs/bird_twin.png"] = onePixelOff(t, x.files["birds/03.png"])
	x.nearTwin = [2]string{"birds/03.png", "dogs/bird_twin.png"}
	x.files["cats/odd.png"] = exPicture(t, "birds", 100) // a bird filed as a cat
	x.files["loose.png"] = exPicture(t, "dogs", 200)     // unlabeled: not in a class folder
	x.files["birds/new0.png"] = exPicture(t, "birds", 6) // named like an inbox file
	for rel, b := range x.files {
		testutil.WriteFile(t, filepath.Join(x.root, rel), b)
	}
	testutil.WriteFile(t, filepath.Join(x.root, "cats", "bad.png"), []byte("not a png"))
	for i := range 3 {
		testutil.WriteFile(t, filepath.Join(x.inbox, fmt.Sprintf("new%d.png", i)), exPicture(t, []string{"birds", "cats", "dogs"}[i], uint64(300+i)))
	}
	testutil.WriteFile(t, filepath.Join(x.inbox, "broken.jpg"), []byte("\xff\xd8 truncated"))

	m := tinyModel(t, tinyVGG, "caffe")
	sum, err := Extract(ctx, ExtractOptions{DB: x.path, Model: m, Layers: []string{"fc2", "block2_pool"}, Images: x.root, Args: []string{"extract"}})
	if !errors.Is(err, ErrPartial) || sum.Counts.Failed != 1 {
		t.Fatalf("extract images: %v, %+v", err, sum.Counts)
	}
	x.runs.extract = sum.RunID
	sum, err = Extract(ctx, ExtractOptions{DB: x.path, Model: m, Layers: []string{"fc2"}, Images: x.inbox, Args: []string{"extract"}})
	if !errors.Is(err, ErrPartial) || sum.Counts.Failed != 1 {
		t.Fatalf("extract inbox: %v, %+v", err, sum.Counts)
	}
	x.runs.inbox = sum.RunID
	fit, err := Fit(ctx, FitOptions{DB: x.path, Set: SetQuery{Layer: "fc2"}, Name: "lr", Params: classify.DefaultParams("logreg"), TestFrac: 0.2})
	if err != nil {
		t.Fatalf("fit: %v", err)
	}
	x.runs.fit = fit.RunID
	var emitted []PredictRow
	emit := func(r PredictRow) error { emitted = append(emitted, r); return nil }
	ps, err := Predict(ctx, PredictOptions{DB: x.path, Name: "lr", Paths: []string{filepath.Join(x.inbox, "new0.png")}, Store: true,
		ModelPath: tinyVGG, Emit: emit})
	if err != nil || ps.Predicted != 1 {
		t.Fatalf("predict 1: %v, %d predicted", err, ps.Predicted)
	}
	x.runs.predict1, x.emitted[ps.RunID], emitted = ps.RunID, emitted, nil
	ps, err = Predict(ctx, PredictOptions{DB: x.path, Name: "lr", Paths: []string{x.inbox}, Store: true, ModelPath: tinyVGG, Emit: emit})
	if !errors.Is(err, ErrPartial) || ps.Predicted != 3 {
		t.Fatalf("predict 2: %v, %d predicted", err, ps.Predicted)
	}
	x.runs.predict2, x.emitted[ps.RunID] = ps.RunID, emitted
	if _, err := SQL(ctx, SQLOptions{DB: x.path, Write: true, Text: `INSERT INTO settings (key, value) VALUES ('note', :v)`,
		Params: map[string]any{"v": "the last run is not extract or predict"}}); err != nil {
		t.Fatal(err)
	}

	// Planted predictions: a low one in each predict run, and one without
	// a probability.
	db, err := store.Open(x.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if last, err := db.Runs(ctx, 1); err != nil || len(last) != 1 || last[0].Command != "sql" || last[0].Status != store.RunOK {
		t.Fatalf("last run %+v, %v: want the sql run, ok", last, err)
	} else {
		x.runs.sql = last[0].ID
	}
	clf, err := db.Classifier(ctx, "lr")
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := 0.21, 0.34
	x.planted = []plantedPrediction{
		{x.runs.predict1, filepath.Join(x.inbox, "new1.png"), "dogs", &p1},
		{x.runs.predict2, filepath.Join(x.inbox, "new2.png"), "birds", &p2},
		{x.runs.predict2, filepath.Join(x.inbox, "new0.png"), "cats", nil},
	}
	for _, p := range x.planted {
		im, ok, err := db.ImageBySHA(ctx, sha(mustRead(t, p.path)))
		if err != nil || !ok {
			t.Fatalf("image of %s: %v %v", p.path, ok, err)
		}
		if err := db.WritePredictions(ctx, p.run, []store.Prediction{{ImageID: im.ID, ClassifierID: clf.ID, Path: p.path,
			Label: p.label, Probability: p.prob}}); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runExample runs an embedded example with params completed by its
// header's defaults, as `pipeline sql -f NAME` does.
func runExample(t *testing.T, dbPath, name string, params map[string]any) ([]string, [][]any) {
	t.Helper()
	text, _, err := ReadQuery(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	var rows [][]any
	_, err = SQL(context.Background(), SQLOptions{DB: dbPath, Text: text, Params: ParseQueryDoc(text).WithDefaults(params),
		Row: func(st *store.Statement, row []any) error {
			cols = st.Columns
			rows = append(rows, row)
			return nil
		}})
	if err != nil {
		t.Fatalf("%s %v: %v", name, params, err)
	}
	return cols, rows
}

func wantColumns(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) > 0 && strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("columns %v, want %v", got, want)
	}
}

// refVector is a stored vector read back through the store's Go API (not
// through SQL), in float64.
type refVector struct {
	id    int64
	path  string
	label string
	sha   string
	v     []float64
}

func refVectors(t *testing.T, dbPath, layer string) []refVector {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs, err := ResolveFeatureSet(ctx, db, SetQuery{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	var out []refVector
	err = db.Vectors(ctx, fs.ID, func(r store.VectorRow) error {
		v := make([]float64, len(r.Vector))
		for i, x := range r.Vector {
			v[i] = float64(x)
		}
		out = append(out, refVector{r.ImageID, r.Path, r.Label, r.SHA256, v})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// distTol is the agreement between sqlite-vec's float32 arithmetic and
// float64 on 32-d codes.
const distTol = 2e-5

// rankedRow is a row of a ranked result: a key and the distance it is
// ranked by.
type rankedRow struct {
	key  string
	dist float64
}

// sameRanking fails unless got and want list the same keys in the same
// order with distances within tol; neighbours whose reference distances are
// within tol of each other may come in either order.
func sameRanking(t *testing.T, what string, got, want []rankedRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d:\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i].key != want[i].key {
			j := slicesIndex(want, got[i].key)
			if j < 0 || math.Abs(want[j].dist-want[i].dist) > tol2(want[i].dist) {
				t.Errorf("%s: row %d is %s (%.7f), want %s (%.7f)", what, i+1, got[i].key, got[i].dist, want[i].key, want[i].dist)
				continue
			}
		}
		j := slicesIndex(want, got[i].key)
		if math.Abs(got[i].dist-want[j].dist) > distTol {
			t.Errorf("%s: %s distance %.8f, want %.8f (float64)", what, got[i].key, got[i].dist, want[j].dist)
		}
	}
}

func tol2(float64) float64 { return 2 * distTol }

func slicesIndex(rs []rankedRow, key string) int {
	for i, r := range rs {
		if r.key == key {
			return i
		}
	}
	return -1
}

func TestExamples(t *testing.T) {
	x := buildExampleDB(t)
	abs := func(r string) string { return filepath.Join(x.root, filepath.FromSlash(r)) }

	checks := map[string]func(t *testing.T){
		"nearest": func(t *testing.T) {
			ref := map[string][]refVector{"fc2": refVectors(t, x.path, "fc2"), "block2_pool": refVectors(t, x.path, "block2_pool")}
			// want computes the k nearest of the images whose canonical
			// paths are given, in float64.
			want := func(layer string, k int, of ...string) []rankedRow {
				var qs []refVector
				for _, r := range ref[layer] {
					for _, p := range of {
						if r.path == p {
							qs = append(qs, r)
						}
					}
				}
				if len(qs) != len(of) {
					t.Fatalf("reference: %v not all stored in %s", of, layer)
				}
				var out []rankedRow
				for _, r := range ref[layer] {
					if slicesIndexStr(of, r.path) >= 0 {
						continue
					}
					d := math.Inf(1)
					for _, q := range qs {
						d = math.Min(d, testutil.CosineDistance(q.v, r.v))
					}
					out = append(out, rankedRow{r.path, d})
				}
				sort.SliceStable(out, func(i, j int) bool { return out[i].dist < out[j].dist })
				return out[:min(k, len(out))]
			}
			got := func(params map[string]any) []rankedRow {
				cols, rows := runExample(t, x.path, "nearest", params)
				wantColumns(t, cols, "rank", "distance", "path", "label", "sha256")
				var out []rankedRow
				for i, r := range rows {
					if r[0] != int64(i+1) {
						t.Errorf("rank %v at row %d", r[0], i+1)
					}
					out = append(out, rankedRow{r[2].(string), r[1].(float64)})
				}
				return out
			}
			cat00 := abs("cats/00.png")
			t.Run("RelativePath", func(t *testing.T) {
				sameRanking(t, "cats/00.png fc2", got(map[string]any{"image": "cats/00.png", "layer": "fc2", "k": int64(5)}), want("fc2", 5, cat00))
			})
			t.Run("CopyIsTheSameImage", func(t *testing.T) {
				// Its byte-identical copy is the same image: neither is listed.
				g := got(map[string]any{"image": abs("cats/copy_of_00.png"), "layer": "fc2", "k": int64(100)})
				sameRanking(t, "copy_of_00.png fc2", g, want("fc2", 100, cat00))
				if slicesIndex(g, cat00) >= 0 || slicesIndex(g, abs("cats/copy_of_00.png")) >= 0 {
					t.Errorf("the image itself is listed: %v", g)
				}
			})
			t.Run("SHA256AndLayerCase", func(t *testing.T) {
				g := got(map[string]any{"image": strings.ToUpper(sha(x.files[x.nearTwin[0]])), "layer": "FC2", "k": int64(3)})
				sameRanking(t, "sha of birds/03.png", g, want("fc2", 3, abs(x.nearTwin[0])))
				if len(g) == 0 || g[0].key != abs(x.nearTwin[1]) || g[0].dist > 1e-3 {
					t.Errorf("nearest of %s is %v, want %s at < 0.001", x.nearTwin[0], g, x.nearTwin[1])
				}
			})
			t.Run("PathEndAndOtherLayer", func(t *testing.T) {
				end := filepath.Base(x.root) + "/dogs/04.png"
				sameRanking(t, end+" block2_pool", got(map[string]any{"image": end, "layer": "block2_pool", "k": int64(4)}),
					want("block2_pool", 4, abs("dogs/04.png")))
			})
			t.Run("AmbiguousPathEndMerges", func(t *testing.T) {
				// 01.png is in three class folders: all three are the query.
				of := []string{abs("birds/01.png"), abs("cats/01.png"), abs("dogs/01.png")}
				sameRanking(t, "01.png", got(map[string]any{"image": "01.png", "k": int64(6)}), want("fc2", 6, of...))
			})
			t.Run("RelativePathBeatsPathEnd", func(t *testing.T) {
				// inbox/new0.png has relative path new0.png (under the
				// inbox root); images/birds/new0.png only ends with it.
				sameRanking(t, "new0.png", got(map[string]any{"image": "new0.png", "k": int64(5)}), want("fc2", 5, filepath.Join(x.inbox, "new0.png")))
			})
			t.Run("DefaultLayerIsLargestSet", func(t *testing.T) {
				// fc2 also holds the inbox: it has the most vectors.
				sameRanking(t, "default layer", got(map[string]any{"image": "cats/03.png"}), want("fc2", 10, abs("cats/03.png")))
			})
			t.Run("Unknown", func(t *testing.T) {
				if g := got(map[string]any{"image": "cats/none.png"}); len(g) != 0 {
					t.Errorf("unknown image: %v", g)
				}
				if g := got(map[string]any{"image": "cats/00.png", "layer": "fc9"}); len(g) != 0 {
					t.Errorf("unknown layer: %v", g)
				}
			})
		},

		"centroid_outliers": func(t *testing.T) {
			for _, layer := range []string{"fc2", "block2_pool"} {
				ref := refVectors(t, x.path, layer)
				sums := map[string][]float64{}
				size := map[string]int{}
				for _, r := range ref {
					if r.label == "" {
						continue
					}
					if sums[r.label] == nil {
						sums[r.label] = make([]float64, len(r.v))
					}
					for i, v := range r.v {
						sums[r.label][i] += v
					}
					size[r.label]++
				}
				type row struct {
					path, label, nearest string
					dist, nearestDist    float64
				}
				var want []row
				for _, r := range ref {
					if r.label == "" || size[r.label] < 2 {
						continue
					}
					w := row{path: r.path, label: r.label, nearestDist: math.Inf(1)}
					for class, s := range sums {
						c := s
						if class == r.label {
							c = make([]float64, len(s)) // leave-one-out centroid
							for i := range s {
								c[i] = (s[i] - r.v[i]) / float64(size[class]-1)
							}
							w.dist = testutil.CosineDistance(r.v, c)
						}
						if d := testutil.CosineDistance(r.v, c); d < w.nearestDist {
							w.nearest, w.nearestDist = class, d
						}
					}
					want = append(want, w)
				}
				sort.SliceStable(want, func(i, j int) bool { return want[i].dist > want[j].dist })
				limit := 8
				cols, rows := runExample(t, x.path, "centroid_outliers", map[string]any{"layer": layer, "limit": int64(limit)})
				wantColumns(t, cols, "path", "label", "distance", "nearest_label", "nearest_distance", "class_size")
				var g, w []rankedRow
				byPath := map[string]row{}
				for i, r := range want {
					byPath[r.path] = r
					if i < limit {
						w = append(w, rankedRow{r.path, r.dist})
					}
				}
				for _, r := range rows {
					g = append(g, rankedRow{r[0].(string), r[2].(float64)})
					ref, ok := byPath[r[0].(string)]
					if !ok {
						t.Fatalf("%s: %v is not a labeled image", layer, r)
					}
					if r[1] != ref.label || r[3] != ref.nearest || math.Abs(r[4].(float64)-ref.nearestDist) > distTol || r[5] != int64(size[ref.label]) {
						t.Errorf("%s: row %v, want label %s nearest %s at %.7f, class size %d", layer, r, ref.label, ref.nearest, ref.nearestDist, size[ref.label])
					}
				}
				sameRanking(t, layer, g, w)
				if layer != "block2_pool" {
					continue
				}
				// What the query is for: the bird filed as a cat and the
				// near twin of a bird filed as a dog come first, closest
				// to the birds. (The tiny model's random weights keep
				// colour apart in its pooled convolutions, not in fc2.)
				for i, p := range []string{"cats/odd.png", "dogs/bird_twin.png"} {
					found := false
					for _, r := range rows[:2] {
						if r[0] == abs(p) {
							found = true
							if r[3] != "birds" {
								t.Errorf("%s: nearest class %v, want birds", p, r[3])
							}
						}
					}
					if !found {
						t.Errorf("%s is not among the first two outliers (%d): %v", p, i, rows[:2])
					}
				}
			}
		},

		"label_conflicts": func(t *testing.T) {
			for _, threshold := range []float64{1e-4, 0.005} {
				cols, rows := runExample(t, x.path, "label_conflicts", map[string]any{"layer": "fc2", "threshold": threshold})
				wantColumns(t, cols, "kind", "distance", "path_a", "label_a", "path_b", "label_b")
				// Exact: the copy of cats/02.png filed under dogs.
				if len(rows) == 0 || rows[0][0] != "exact" || rows[0][2] != abs("cats/02.png") || rows[0][3] != "cats" ||
					rows[0][4] != abs("dogs/cat_copy.png") || rows[0][5] != "dogs" || rows[0][1] != 0.0 {
					t.Fatalf("threshold %g: first row %v, want the exact conflict cats/02.png / dogs/cat_copy.png", threshold, rows)
				}
				// Near: every pair of differently labeled images closer
				// than the threshold, in float64.
				ref := refVectors(t, x.path, "fc2")
				var want []rankedRow
				for i, a := range ref {
					for _, b := range ref[i+1:] {
						if a.label == "" || b.label == "" || a.label == b.label {
							continue
						}
						if d := testutil.CosineDistance(a.v, b.v); d < threshold {
							want = append(want, rankedRow{pairKey(a.path, b.path), d})
						}
					}
				}
				sort.SliceStable(want, func(i, j int) bool { return want[i].dist < want[j].dist })
				var got []rankedRow
				for _, r := range rows[1:] {
					if r[0] != "near" || r[3] == r[5] {
						t.Errorf("row %v: want a near conflict between different labels", r)
					}
					got = append(got, rankedRow{pairKey(r[2].(string), r[4].(string)), r[1].(float64)})
				}
				sameRanking(t, "near conflicts", got, want)
				if slicesIndex(got, pairKey(abs(x.nearTwin[0]), abs(x.nearTwin[1]))) < 0 {
					t.Errorf("threshold %g: the near twin %v is not listed: %v", threshold, x.nearTwin, got)
				}
				if threshold == 1e-4 && len(got) != 1 {
					t.Errorf("threshold %g: %v, want only the near twin", threshold, got)
				}
			}
		},

		"exact_duplicates": func(t *testing.T) {
			cols, rows := runExample(t, x.path, "exact_duplicates", nil)
			wantColumns(t, cols, "sha256", "copies", "path", "label", "canonical")
			// From the files written: contents at two paths; the label a
			// path gives is its folder; the canonical path is the first
			// one walked (lexical order).
			byContent := map[string][]string{}
			for rel, b := range x.files {
				byContent[sha(b)] = append(byContent[sha(b)], rel)
			}
			var want [][]any
			for s, rels := range byContent {
				if len(rels) < 2 {
					continue
				}
				sort.Strings(rels)
				for i, r := range rels {
					want = append(want, []any{s, int64(len(rels)), abs(r), filepath.Dir(r), int64(boolInt(i == 0))})
				}
			}
			sort.Slice(want, func(i, j int) bool {
				return want[i][0].(string)+want[i][2].(string) < want[j][0].(string)+want[j][2].(string)
			})
			if len(want) != 4 {
				t.Fatalf("test setup: %d duplicate paths, want 4", len(want))
			}
			if !equalRows(rows, want) {
				t.Errorf("got\n%v\nwant\n%v", rows, want)
			}
		},

		"last_failures": func(t *testing.T) {
			for _, tc := range []struct {
				run   any
				want  string // the failed file
				runID int64
				cmd   string
			}{
				{"last", filepath.Join(x.inbox, "broken.jpg"), x.runs.predict2, "predict"},
				{int64(0), filepath.Join(x.inbox, "broken.jpg"), x.runs.predict2, "predict"},
				{x.runs.extract, abs("cats/bad.png"), x.runs.extract, "extract"},
				{x.runs.inbox, filepath.Join(x.inbox, "broken.jpg"), x.runs.inbox, "extract"},
				{x.runs.fit, "", 0, ""},
				{x.runs.sql, "", 0, ""},
				{int64(99), "", 0, ""},
			} {
				var params map[string]any
				if tc.run != "last" { // "last" is the default
					params = map[string]any{"run": tc.run}
				}
				cols, rows := runExample(t, x.path, "last_failures", params)
				wantColumns(t, cols, "run", "command", "status", "path", "stage", "message", "at")
				if tc.want == "" {
					if len(rows) != 0 {
						t.Errorf("run %v: %v, want no failures", tc.run, rows)
					}
					continue
				}
				if len(rows) != 1 {
					t.Fatalf("run %v: %d rows, want 1: %v", tc.run, len(rows), rows)
				}
				r := rows[0]
				if r[0] != tc.runID || r[1] != tc.cmd || r[2] != store.RunPartial || r[3] != tc.want || r[4] != "decode" || r[5] == "" {
					t.Errorf("run %v: %v, want run %d (%s, partial), %s, decode", tc.run, r, tc.runID, tc.cmd, tc.want)
				}
			}
		},

		"low_confidence": func(t *testing.T) {
			type pred struct {
				path, label string
				prob        float64
			}
			// The last predict run's predictions: what Predict emitted and
			// the planted ones, with a probability below the threshold.
			want := func(run int64, threshold float64) []pred {
				var out []pred
				for _, r := range x.emitted[run] {
					if r.Probability != nil && *r.Probability < threshold {
						out = append(out, pred{r.Path, r.Label, *r.Probability})
					}
				}
				for _, p := range x.planted {
					if p.run == run && p.prob != nil && *p.prob < threshold {
						out = append(out, pred{p.path, p.label, *p.prob})
					}
				}
				sort.SliceStable(out, func(i, j int) bool { return out[i].prob < out[j].prob })
				return out
			}
			for _, tc := range []struct {
				params    map[string]any
				run       int64
				threshold float64
			}{
				{nil, x.runs.predict2, 0.6},
				{map[string]any{"threshold": 1.01}, x.runs.predict2, 1.01},
				{map[string]any{"threshold": 0.3, "run": x.runs.predict1}, x.runs.predict1, 0.3},
				{map[string]any{"threshold": 0.2, "run": x.runs.predict1}, x.runs.predict1, 0.2},
			} {
				cols, rows := runExample(t, x.path, "low_confidence", tc.params)
				wantColumns(t, cols, "probability", "predicted", "label", "path", "classifier", "run")
				w := want(tc.run, tc.threshold)
				var got []pred
				for _, r := range rows {
					if r[4] != "lr" || r[5] != tc.run || r[2] != nil {
						t.Errorf("%v: row %v, want classifier lr, run %d, no label (inbox)", tc.params, r, tc.run)
					}
					got = append(got, pred{r[3].(string), r[1].(string), r[0].(float64)})
				}
				if len(got) != len(w) {
					t.Fatalf("%v: %d rows, want %d:\n%v\n%v", tc.params, len(got), len(w), got, w)
				}
				for i := range got {
					if got[i] != w[i] {
						t.Errorf("%v: row %d %v, want %v", tc.params, i, got[i], w[i])
					}
				}
			}
			// Threshold 1.01 lists every prediction with a probability:
			// the three Predict made and the planted 0.34 one.
			if _, rows := runExample(t, x.path, "low_confidence", map[string]any{"threshold": 1.01}); len(rows) != 4 {
				t.Errorf("threshold 1.01: %d rows, want 4", len(rows))
			}
		},

		"class_balance": func(t *testing.T) {
			cols, rows := runExample(t, x.path, "class_balance", nil)
			wantColumns(t, cols, "label", "images", "percent", "train", "test", "unsplit")
			// Reference: each distinct content's label is its lexically
			// first path's folder (the first one walked); inbox images and
			// loose.png are unlabeled; the split comes from the store's
			// Go API.
			first := map[string]string{}
			for rel, b := range x.files {
				if p, ok := first[sha(b)]; !ok || rel < p {
					first[sha(b)] = rel
				}
			}
			count := map[string]int64{"(none)": 3} // the inbox
			for _, rel := range first {
				label := filepath.Dir(rel)
				if label == "." {
					label = "(none)"
				}
				count[label]++
			}
			parts := map[string]map[string]int64{}
			for _, r := range refVectorsParts(t, x.path) {
				label := r.label
				if label == "" {
					label = "(none)"
				}
				if parts[label] == nil {
					parts[label] = map[string]int64{}
				}
				parts[label][r.part]++
			}
			var total int64
			for _, n := range count {
				total += n
			}
			if len(rows) != len(count) {
				t.Fatalf("%d rows, want %d: %v (want %v)", len(rows), len(count), rows, count)
			}
			prev := int64(math.MaxInt64)
			for _, r := range rows {
				label := r[0].(string)
				n := r[1].(int64)
				if n != count[label] || n > prev {
					t.Errorf("%s: %d images, want %d, in decreasing order", label, n, count[label])
				}
				prev = n
				if pct := math.Round(1000*float64(n)/float64(total)) / 10; math.Abs(r[2].(float64)-pct) > 1e-9 {
					t.Errorf("%s: percent %v, want %v", label, r[2], pct)
				}
				p := parts[label]
				if r[3] != p["train"] || r[4] != p["test"] || r[5] != p[""] {
					t.Errorf("%s: train/test/unsplit %v %v %v, want %v", label, r[3], r[4], r[5], p)
				}
			}
			if parts["cats"]["test"] == 0 || parts["(none)"]["train"] != 0 {
				t.Errorf("split: %v (want cats in test, unlabeled nowhere)", parts)
			}
		},
	}

	exs, err := Examples()
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range exs {
		check, ok := checks[ex.Name]
		if !ok {
			t.Errorf("example %s.sql has no test here: every example is checked", ex.Name)
			continue
		}
		delete(checks, ex.Name)
		t.Run(ex.Name, check)
	}
	for name := range checks {
		t.Errorf("a check for %s.sql, which is not an embedded example", name)
	}

	t.Run("SQLiteShell", func(t *testing.T) {
		// SCHEMA.md says the examples work in the sqlite3 shell with
		// sqlite-vec loaded: the same rows as pipeline sql.
		if testing.Short() {
			t.Skip("builds sqlite-vec as a loadable extension")
		}
		vec0 := buildVec0(t)
		for _, tc := range []struct {
			name   string
			params map[string]any
		}{
			{"nearest", map[string]any{"image": "cats/00.png", "layer": "", "k": int64(6)}},
			{"nearest", map[string]any{"image": "01.png", "layer": "block2_pool", "k": int64(4)}},
			{"centroid_outliers", map[string]any{"layer": "block2_pool", "limit": int64(5)}},
			{"label_conflicts", map[string]any{"layer": "fc2", "threshold": 0.005}},
			{"exact_duplicates", nil},
			{"last_failures", map[string]any{"run": "last"}},
			{"last_failures", map[string]any{"run": x.runs.extract}},
			{"low_confidence", map[string]any{"run": "last", "threshold": 1.01}},
			{"class_balance", nil},
		} {
			cols, want := runExample(t, x.path, tc.name, tc.params)
			got := sqliteShell(t, vec0, x.path, tc.name, tc.params)
			if len(got) != len(want) || len(want) == 0 {
				t.Errorf("%s %v: sqlite3 gives %d rows, pipeline sql %d (want some)", tc.name, tc.params, len(got), len(want))
				continue
			}
			for i := range want {
				for j, c := range cols {
					g, w := got[i][c], want[i][j]
					if !sameValue(g, w) {
						t.Errorf("%s %v: row %d %s: sqlite3 %v (%T), pipeline sql %v (%T)", tc.name, tc.params, i+1, c, g, g, w, w)
					}
				}
			}
		}
	})
}

// buildVec0 compiles sqlite-vec, the source the Go bindings embed, as a
// loadable extension for the sqlite3 shell.
func buildVec0(t *testing.T) string {
	t.Helper()
	testenv.NeedTools(t, "Debian: sqlite3, gcc; go from go.dev", "sqlite3", "gcc", "go")
	if _, err := os.Stat("/usr/include/sqlite3ext.h"); err != nil {
		testenv.Missing(t, "no sqlite3ext.h (Debian: libsqlite3-dev)")
	}
	out, err := exec.Command("sqlite3", ":memory:", "SELECT sqlite_version() >= '3.35'").Output()
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		testenv.Missing(t, "sqlite3 shell older than 3.35 (%s, %v)", out, err)
	}
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/asg017/sqlite-vec-go-bindings").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(dir)), "cgo")
	lib := filepath.Join(t.TempDir(), "vec0.so")
	if out, err := exec.Command("gcc", "-O2", "-shared", "-fPIC", "-I"+src, filepath.Join(src, "sqlite-vec.c"), "-o", lib, "-lm").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return strings.TrimSuffix(lib, ".so")
}

// sqliteShell runs an example file in the sqlite3 shell, read-only, with
// the parameters set as the docs say, and returns the rows (.mode json).
func sqliteShell(t *testing.T, vec0, dbPath, name string, params map[string]any) []map[string]any {
	t.Helper()
	var script strings.Builder
	script.WriteString(".load " + vec0 + "\n.mode json\n")
	text, _, err := ReadQuery(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ParseQueryDoc(text).WithDefaults(params) {
		switch x := v.(type) {
		case string:
			fmt.Fprintf(&script, ".param set :%s '%s'\n", k, strings.ReplaceAll(x, "'", "''"))
		default:
			fmt.Fprintf(&script, ".param set :%s %v\n", k, x)
		}
	}
	fmt.Fprintf(&script, ".read %s\n", filepath.Join("..", "sql", "examples", name+".sql"))
	cmd := exec.Command("sqlite3", "-bail", "-readonly", dbPath)
	cmd.Stdin = strings.NewReader(script.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("sqlite3 %s: %v\n%s\n%s", name, err, stderr.String(), script.String())
	}
	if strings.TrimSpace(string(out)) == "" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("sqlite3 %s: %v\n%s", name, err, out)
	}
	return rows
}

// sameValue compares a value of the shell's JSON output with the one
// pipeline sql returned: numbers to 15 significant digits (what the shell
// prints), the rest exactly.
func sameValue(shell, ours any) bool {
	n, isNum := shell.(json.Number)
	switch w := ours.(type) {
	case int64:
		return isNum && n.String() == fmt.Sprint(w)
	case float64:
		if !isNum {
			return false
		}
		f, err := n.Float64()
		return err == nil && math.Abs(f-w) <= 1e-14*math.Max(1, math.Abs(w))
	case nil:
		return shell == nil
	}
	return shell == ours
}

// TestExamples_Headers checks the header of every example: a summary,
// what it returns, and a line for each parameter the query uses (the store
// refuses unused and missing parameters, so running each query with its
// documented parameters and nothing else proves they agree).
func TestExamples_Headers(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "empty.db")
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	exs, err := Examples()
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range exs {
		t.Run(ex.Name, func(t *testing.T) {
			d := ex.Doc
			if d.Summary == "" || !strings.HasSuffix(d.Summary, ".") && !strings.HasSuffix(d.Summary, ")") {
				t.Errorf("summary %q: want one sentence", d.Summary)
			}
			if !strings.Contains(ex.Text, "-- Returns") || !strings.Contains(ex.Text, "-- Parameters") {
				t.Errorf("header lacks Parameters: or Returns")
			}
			params := map[string]any{}
			for _, p := range d.Params {
				if _, dup := params[p.Name]; dup {
					t.Errorf(":%s is described twice (a header line starting with :name is a parameter line)", p.Name)
				}
				if p.Doc == "" {
					t.Errorf(":%s has no description", p.Name)
				}
				params[p.Name] = "x"
				if p.HasDefault {
					params[p.Name] = p.DefaultValue()
				}
			}
			if _, err := SQL(context.Background(), SQLOptions{DB: dbPath, Text: ex.Text, Params: params}); err != nil {
				t.Errorf("with its documented parameters: %v", err)
			}
		})
	}
}

type partRow struct{ label, part string }

func refVectorsParts(t *testing.T, dbPath string) []partRow {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs, err := ResolveFeatureSet(ctx, db, SetQuery{Layer: "fc2"})
	if err != nil {
		t.Fatal(err)
	}
	var out []partRow
	if err := db.Vectors(ctx, fs.ID, func(r store.VectorRow) error {
		out = append(out, partRow{r.Label, r.Part})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func pairKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + " | " + b
}

func slicesIndexStr(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func equalRows(got, want [][]any) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return false
		}
		for j := range got[i] {
			if got[i][j] != want[i][j] {
				return false
			}
		}
	}
	return true
}
