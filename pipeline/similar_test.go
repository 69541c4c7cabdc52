package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
	"pipeline/store"
)

// simFixture is a database of the tiny VGG's fc2 codes of generated
// pictures: 3 classes x 8, plus one file stored twice (same bytes, two
// paths: one image).
type simFixture struct {
	dir, imgs, db string
	set           store.FeatureSet
	vecs          map[int64][]float32 // stored vectors by image id
}

func newSimFixture(t *testing.T) *simFixture {
	t.Helper()
	f := &simFixture{dir: t.TempDir()}
	f.imgs = filepath.Join(f.dir, "images")
	f.db = filepath.Join(f.dir, "features.db")
	for c, class := range []string{"red", "green", "blue"} {
		for i := range 8 {
			writePicture(t, filepath.Join(f.imgs, class, fmt.Sprintf("%d.jpg", i)), uint64(100*c+i), 48+4*i, 40)
		}
	}
	dup, err := os.ReadFile(filepath.Join(f.imgs, "red", "3.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(f.imgs, "blue", "copy of red 3.jpg"), dup)
	sum, err := Extract(context.Background(), ExtractOptions{DB: f.db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"},
		Batch: 4, Images: f.imgs, Args: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Extracted != 24 || sum.Counts.Duplicates != 1 {
		t.Fatalf("extract: %+v", sum.Counts)
	}
	f.set = sum.FeatureSets[0]
	db, err := store.Open(f.db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f.vecs = map[int64][]float32{}
	if err := db.Vectors(context.Background(), f.set.ID, func(r store.VectorRow) error {
		f.vecs[r.ImageID] = r.Vector
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *simFixture) imageID(t *testing.T, path string) int64 {
	t.Helper()
	rows := query(t, f.db, `SELECT image_id FROM image_paths WHERE path = :p`, map[string]any{"p": path})
	if len(rows) != 1 {
		t.Fatalf("%s is not stored", path)
	}
	return asInt(rows[0][0])
}

type refHit struct {
	id   int64
	dist float64
}

// refDist is the reference distance in float64, from the definitions.
func refDist(metric string, q []float64, v []float32) float64 {
	var dot, qq, vv, l2 float64
	for i := range q {
		x := float64(v[i])
		dot += q[i] * x
		qq += q[i] * q[i]
		vv += x * x
		l2 += (q[i] - x) * (q[i] - x)
	}
	if metric == "l2" {
		return math.Sqrt(l2)
	}
	if vv == 0 {
		return 1
	}
	return 1 - dot/math.Sqrt(qq*vv)
}

// reference ranks the stored vectors against q by brute force in float64.
func (f *simFixture) reference(metric string, q []float64, exclude int64) []refHit {
	var out []refHit
	for id, v := range f.vecs {
		if id != exclude {
			out = append(out, refHit{id, refDist(metric, q, v)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].dist < out[j].dist || (out[i].dist == out[j].dist && out[i].id < out[j].id)
	})
	return out
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// checkAgainst compares results with the reference: same images in the
// same order (a swap is allowed only between near-ties when tol is loose)
// and distances within tol, relative to max(1, distance) (L2 distances of
// fc2 codes are in the hundreds).
func checkAgainst(t *testing.T, res SimilarResult, want []refHit, k int, tol float64) {
	t.Helper()
	if len(res.Neighbors) != min(k, len(want)) {
		t.Fatalf("%d neighbours, want %d", len(res.Neighbors), min(k, len(want)))
	}
	byID := map[int64]float64{}
	for _, w := range want {
		byID[w.id] = w.dist
	}
	for i, n := range res.Neighbors {
		w := want[i]
		if n.Rank != i+1 {
			t.Errorf("row %d has rank %d", i, n.Rank)
		}
		if math.Abs(n.Distance-w.dist) > tol*max(1, w.dist) {
			t.Errorf("rank %d: distance %.12f, want %.12f", i+1, n.Distance, w.dist)
		}
		if n.ImageID != w.id && math.Abs(byID[n.ImageID]-w.dist) > tol*max(1, w.dist) {
			t.Errorf("rank %d: image %d (%s) at %.12f, want image %d at %.12f", i+1, n.ImageID, n.Path, byID[n.ImageID], w.id, w.dist)
		}
		if n.Label != filepath.Base(filepath.Dir(n.Path)) || !strings.HasPrefix(n.Path, "/") || len(n.SHA256) != 64 {
			t.Errorf("rank %d: row %+v", i+1, n)
		}
	}
}

func TestSimilar_Stored(t *testing.T) {
	f := newSimFixture(t)
	ctx := context.Background()
	red3 := filepath.Join(f.imgs, "red", "3.jpg")
	id := f.imageID(t, red3)
	if got := f.imageID(t, filepath.Join(f.imgs, "blue", "copy of red 3.jpg")); got != id {
		t.Fatalf("the copy is image %d, the original %d", got, id)
	}
	sha := query(t, f.db, `SELECT sha256 FROM images WHERE id = :id`, map[string]any{"id": id})[0][0].(string)
	q := f64(f.vecs[id])

	// Every way of naming the image gives the same answer.
	for name, input := range map[string]string{
		"AbsolutePath": red3,
		"CopyPath":     filepath.Join(f.imgs, "blue", "copy of red 3.jpg"),
		"RelPath":      "red/3.jpg", // not a file from the test's directory: image_paths.relpath
		"SHA256":       sha,
		"SHA256Upper":  strings.ToUpper(sha),
	} {
		for _, metric := range []string{"cosine", "l2"} {
			t.Run(name+"/"+metric, func(t *testing.T) {
				if _, err := os.Stat(input); name == "RelPath" && err == nil {
					t.Fatalf("%s exists here: the test would not exercise relpath lookup", input)
				}
				res, err := Similar(ctx, SimilarOptions{DB: f.db, Query: input, Set: SetQuery{Layer: "fc2"}, K: 5, Metric: metric})
				if err != nil {
					t.Fatal(err)
				}
				if res.Query.ImageID != id || res.Query.SHA256 != sha || res.Query.Source != "stored" {
					t.Errorf("query %+v, want image %d, stored", res.Query, id)
				}
				// The image itself (at both its paths) is left out.
				checkAgainst(t, res, f.reference(metric, q, id), 5, 1e-9)
				for _, n := range res.Neighbors {
					if n.ImageID == id {
						t.Errorf("the query image is in the results: %+v", n)
					}
				}
			})
		}
	}

	t.Run("IncludeSelf", func(t *testing.T) {
		res, err := Similar(ctx, SimilarOptions{DB: f.db, Query: red3, Set: SetQuery{Layer: "fc2"}, K: 3, IncludeSelf: true})
		if err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, res, f.reference("cosine", q, 0), 3, 1e-9)
		// The canonical path is the first one extract walked.
		canonical := filepath.Join(f.imgs, "blue", "copy of red 3.jpg")
		if n := res.Neighbors[0]; n.ImageID != id || n.Distance != 0 || n.Path != canonical {
			t.Errorf("first neighbour %+v, want the image itself at %s, distance 0", n, canonical)
		}
	})
	t.Run("AllMethodsAgree", func(t *testing.T) {
		want := f.reference("l2", q, id)
		for _, m := range []store.SearchMethod{store.SearchC, store.SearchGo, store.SearchSQL} {
			res, err := Similar(ctx, SimilarOptions{DB: f.db, Query: red3, Set: SetQuery{Layer: "fc2"}, K: 30, Metric: "l2", Method: m})
			if err != nil {
				t.Fatal(err)
			}
			tol := 1e-9
			if m == store.SearchSQL {
				tol = 1e-5 // sqlite-vec computes in float32
			}
			checkAgainst(t, res, want, 30, tol) // k above the image count: all 23 others
		}
	})
	t.Run("MovedFile", func(t *testing.T) {
		// A stored path whose file is gone is still a name for the image.
		green := filepath.Join(f.imgs, "green", "5.jpg")
		gid := f.imageID(t, green)
		if err := os.Rename(green, green+".moved"); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(green+".moved", green)
		res, err := Similar(ctx, SimilarOptions{DB: f.db, Query: green, Set: SetQuery{Layer: "fc2"}, K: 4})
		if err != nil {
			t.Fatal(err)
		}
		if res.Query.ImageID != gid || res.Query.Source != "stored" {
			t.Errorf("query %+v, want image %d", res.Query, gid)
		}
		checkAgainst(t, res, f.reference("cosine", f64(f.vecs[gid]), gid), 4, 1e-9)
	})
}

func TestSimilar_NewFile(t *testing.T) {
	f := newSimFixture(t)
	ctx := context.Background()
	om, err := onnx.ReadModel(tinyVGG)
	if err != nil {
		t.Fatal(err)
	}
	model := tinyModel(t, tinyVGG, "caffe")
	other := filepath.Join(f.dir, "elsewhere")

	t.Run("Computed", func(t *testing.T) {
		photo := filepath.Join(other, "new-photo.png")
		writePicture(t, photo, 777, 56, 44)
		// The vector the query should get: the model in float64.
		q := reference(t, om, model, photo, "vgg0_dense1_relu_fwd")
		for _, metric := range []string{"cosine", "l2"} {
			// --model with the file's path selects the set (by file
			// name) and is the file to compute with.
			res, err := Similar(ctx, SimilarOptions{DB: f.db, Query: photo, Set: SetQuery{Layer: "fc2", Model: tinyVGG}, K: 6, Metric: metric})
			if err != nil {
				t.Fatal(err)
			}
			if res.Query.Source != "computed" || res.Query.ImageID != 0 || res.Query.Path != photo {
				t.Errorf("query %+v, want computed, not stored", res.Query)
			}
			// float32 forward pass vs float64 reference: 1e-5.
			checkAgainst(t, res, f.reference(metric, q, 0), 6, 1e-5)
		}
		// Read-only: nothing about the new file was stored.
		if rows := query(t, f.db, `SELECT count(*) FROM image_paths WHERE path = :p`, map[string]any{"p": photo}); asInt(rows[0][0]) != 0 {
			t.Error("the query file was stored")
		}
	})
	t.Run("CopyFoundByContent", func(t *testing.T) {
		// Same bytes as a stored image, at a path the database has never
		// seen: looked up, not recomputed (no model needed), and it is the
		// query image itself, so it is left out.
		b, err := os.ReadFile(filepath.Join(f.imgs, "blue", "6.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(other, "renamed.jpg")
		testutil.WriteFile(t, cp, b)
		id := f.imageID(t, filepath.Join(f.imgs, "blue", "6.jpg"))
		res, err := Similar(ctx, SimilarOptions{DB: f.db, Query: cp, Set: SetQuery{Layer: "fc2"}, K: 5, ModelPath: "/nonexistent/model.onnx"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Query.Source != "stored" || res.Query.ImageID != id || res.Query.Path != cp {
			t.Errorf("query %+v, want stored image %d", res.Query, id)
		}
		checkAgainst(t, res, f.reference("cosine", f64(f.vecs[id]), id), 5, 1e-9)
	})
	t.Run("ChangedStoredFile", func(t *testing.T) {
		// A stored path whose file now holds other bytes is queried by
		// what it holds now.
		p := filepath.Join(f.imgs, "green", "2.jpg")
		old := f.imageID(t, p)
		writePicture(t, p, 4242, 50, 50)
		q := reference(t, om, model, p, "vgg0_dense1_relu_fwd")
		res, err := Similar(ctx, SimilarOptions{DB: f.db, Query: p, Set: SetQuery{Layer: "fc2", Model: tinyVGG}, K: 3, IncludeSelf: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Query.Source != "computed" || res.Query.ImageID != 0 {
			t.Errorf("query %+v, want computed", res.Query)
		}
		checkAgainst(t, res, f.reference("cosine", q, 0), 3, 1e-5)
		if res.Neighbors[0].ImageID == old && res.Neighbors[0].Distance < 1e-9 {
			t.Error("the old content's vector was used")
		}
	})
}

func TestSimilar_Errors(t *testing.T) {
	f := newSimFixture(t)
	ctx := context.Background()
	photo := filepath.Join(f.dir, "new.jpg")
	writePicture(t, photo, 99, 40, 40)
	notImage := filepath.Join(f.dir, "notes.jpg")
	testutil.WriteFile(t, notImage, []byte("not an image"))
	fc2 := SetQuery{Layer: "fc2"}
	forgetModelPath(t, f.db) // a set made before schema 6: its model is found by name only

	for _, tc := range []struct {
		name  string
		o     SimilarOptions
		is    error
		parts []string
	}{
		{"ErrUnknownImage", SimilarOptions{Query: "cats/cat.12.jpg", Set: fc2}, ErrUnknownImage,
			[]string{"cats/cat.12.jpg", "extract it first", "give the path of an image file"}},
		{"ErrUnknownSHA", SimilarOptions{Query: strings.Repeat("ab", 32), Set: fc2}, ErrUnknownImage, []string{"extract it first"}},
		{"ErrUnknownLayer", SimilarOptions{Query: photo, Set: SetQuery{Layer: "fc9"}}, ErrNoFeatures, []string{"layer fc9", "fc2"}},
		{"NoLayer", SimilarOptions{Query: photo}, ErrNoSetQuery, []string{"no feature set named"}},
		{"Directory", SimilarOptions{Query: f.imgs, Set: fc2}, ErrUsage, []string{"is a directory"}},
		{"BadMetric", SimilarOptions{Query: photo, Set: fc2, Metric: "dot"}, ErrUsage, []string{"metric dot"}},
		{"BadK", SimilarOptions{Query: photo, Set: fc2, K: -1}, ErrUsage, []string{"k -1"}},
		// The set's model is recorded by file name, which is no path here.
		{"ModelNotFound", SimilarOptions{Query: photo, Set: fc2}, ErrSetModel, []string{"vgg-zoo-tiny.onnx", "cannot be found by that name"}},
		{"WrongModel", SimilarOptions{Query: photo, Set: fc2, ModelPath: "../testdata/models/vgg-torch-tiny.onnx"}, ErrSetModel,
			[]string{"sha256", "would not be comparable"}},
		{"NotAnImage", SimilarOptions{Query: notImage, Set: fc2, ModelPath: tinyVGG}, nil, []string{"notes.jpg", "decode"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.DB = f.db
			_, err := Similar(ctx, tc.o)
			if err == nil {
				t.Fatal("no error")
			}
			for _, p := range tc.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not contain %q", err, p)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}

	// A second feature set of fc2 (other preprocessing) makes --layer fc2
	// ambiguous, and holds only some images.
	sub := filepath.Join(f.dir, "sub")
	b, err := os.ReadFile(filepath.Join(f.imgs, "red", "0.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(sub, "red", "0.jpg"), b)
	sum, err := Extract(ctx, ExtractOptions{DB: f.db, Model: tinyModel(t, tinyVGG, "torch"), Layers: []string{"fc2"}, Images: sub, Args: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	torchSet := sum.FeatureSets[0]
	t.Run("ErrAmbiguous", func(t *testing.T) {
		_, err := Similar(ctx, SimilarOptions{DB: f.db, Query: photo, Set: fc2})
		if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "; they differ in ") {
			t.Errorf("got %v, want ErrAmbiguous with a hint", err)
		}
	})
	t.Run("ErrNoVector", func(t *testing.T) {
		// red/1.jpg is stored, but not in the torch set; with its file
		// gone, there is nothing to compute from.
		p := filepath.Join(f.imgs, "red", "1.jpg")
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		_, err := Similar(ctx, SimilarOptions{DB: f.db, Query: p, Set: SetQuery{ID: torchSet.ID}})
		if !errors.Is(err, ErrNoVector) {
			t.Fatalf("got %v, want ErrNoVector", err)
		}
		for _, part := range []string{p, "has no vector in #2", "extract it"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not contain %q", err, part)
			}
		}
	})
	t.Run("StoredWithoutVectorComputed", func(t *testing.T) {
		// red/2.jpg is stored (caffe set) but not in the torch set: its
		// file is there, so the torch vector is computed.
		res, err := Similar(ctx, SimilarOptions{DB: f.db, Query: filepath.Join(f.imgs, "red", "2.jpg"), Set: SetQuery{ID: torchSet.ID}, ModelPath: tinyVGG})
		if err != nil {
			t.Fatal(err)
		}
		if res.Query.Source != "computed" || len(res.Neighbors) != 1 || res.Neighbors[0].Path != filepath.Join(f.imgs, "red", "0.jpg") {
			t.Errorf("got %+v, want the torch set's only image", res)
		}
	})
}
