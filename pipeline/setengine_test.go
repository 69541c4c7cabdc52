package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/extract"
)

// reencode writes every PNG of src to dst with another compression: the
// same pixels (so the same codes), other bytes (so the codes are computed,
// not read from the database).
func reencode(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".png") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(q), 0o755); err != nil {
			return err
		}
		w, err := os.Create(q)
		if err != nil {
			return err
		}
		defer w.Close()
		return (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(w, img)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPredictSimilar_EngineAndPrecision: predict and similar compute new
// images' codes with the feature set's engine by default and with either
// engine when asked; the labels and neighbours are those of the stored
// codes (probabilities and distances within 1e-4). A precision other than
// the set's is refused, and so is storing codes of another engine in the
// set.
func TestPredictSimilar_EngineAndPrecision(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	db := filepath.Join(dir, "f.db")
	classDataset(t, imgs, db, []string{"blue", "red"}, 8) // auto: oneDNN on the tiny ONNX VGG
	if got := query(t, db, `SELECT engine, precision FROM feature_sets`, nil); len(got) != 1 || got[0][0] != "onednn" || got[0][1] != "fp32" {
		t.Fatalf("feature sets %v, want one onednn fp32", got)
	}
	if _, err := Fit(ctx, FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "lr",
		Params: classify.DefaultParams(classify.LogReg), TestFrac: 0.25}); err != nil {
		t.Fatal(err)
	}
	reencode(t, imgs, filepath.Join(dir, "copies"))
	predict := func(c extract.Compute, dir string, storeIt bool) (map[string]PredictRow, error) {
		rows := map[string]PredictRow{}
		_, err := Predict(ctx, PredictOptions{DB: db, Name: "lr", Paths: []string{dir}, ModelPath: tinyVGG, Compute: c, Store: storeIt,
			Emit: func(r PredictRow) error {
				rel, _ := filepath.Rel(dir, r.Path)
				rows[rel] = r
				return nil
			}})
		return rows, err
	}
	stored, err := predict(extract.Compute{}, imgs, false) // every vector read from the database
	if err != nil || len(stored) != 16 {
		t.Fatalf("stored: %d rows, %v", len(stored), err)
	}
	for _, eng := range []string{"", "auto", "onednn", "opencv"} {
		t.Run("predict-"+eng, func(t *testing.T) {
			got, err := predict(extract.Compute{Engine: eng}, filepath.Join(dir, "copies"), false)
			if err != nil || len(got) != 16 {
				t.Fatalf("%d rows, %v", len(got), err)
			}
			for rel, want := range stored {
				g := got[rel]
				if g.Error != "" || g.Label != want.Label || g.Probability == nil || math.Abs(*g.Probability-*want.Probability) > 1e-4 {
					t.Errorf("%s: computed %+v, stored codes say %s (%v)", rel, g, want.Label, *want.Probability)
				}
			}
		})
	}

	// The query, computed by each engine, finds its stored original first
	// (distance ~0) and the same neighbours as the stored original's code.
	orig := filepath.Join(imgs, "red", "003.png")
	copyOf := filepath.Join(dir, "copies", "red", "003.png")
	base, err := Similar(ctx, SimilarOptions{DB: db, Query: orig, Set: SetQuery{Layer: "fc2"}, K: 5, IncludeSelf: true})
	if err != nil || base.Query.Source != "stored" {
		t.Fatalf("stored query: %+v, %v", base.Query, err)
	}
	for _, eng := range []string{"", "onednn", "opencv"} {
		t.Run("similar-"+eng, func(t *testing.T) {
			var notes []string
			res, err := Similar(ctx, SimilarOptions{DB: db, Query: copyOf, Set: SetQuery{Layer: "fc2"}, K: 5, ModelPath: tinyVGG,
				Compute: extract.Compute{Engine: eng}, Log: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }})
			if err != nil || res.Query.Source != "computed" {
				t.Fatalf("%+v, %v", res.Query, err)
			}
			for i, n := range res.Neighbors {
				b := base.Neighbors[i]
				if n.SHA256 != b.SHA256 || math.Abs(n.Distance-b.Distance) > 1e-4 {
					t.Errorf("neighbour %d: %s at %g, stored code's: %s at %g", i, n.Path, n.Distance, b.Path, b.Distance)
				}
			}
			note := strings.Join(notes, "\n")
			if other := eng == "opencv"; other != strings.Contains(note, "engine opencv computes the codes of") {
				t.Errorf("engine %q: notes %q", eng, note)
			}
		})
	}

	// Refusals: another precision than the set's, codes of another engine
	// stored in the set. Nothing is written.
	_, err = predict(extract.Compute{Arith: "bf16"}, filepath.Join(dir, "copies"), false)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "precision bf16 asked for") || !strings.Contains(err.Error(), "holds fp32 codes") {
		t.Errorf("predict bf16 on an fp32 set: %v", err)
	}
	_, err = Similar(ctx, SimilarOptions{DB: db, Query: copyOf, Set: SetQuery{Layer: "fc2"}, ModelPath: tinyVGG, Compute: extract.Compute{Arith: "bf16"}})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "holds fp32 codes") {
		t.Errorf("similar bf16 on an fp32 set: %v", err)
	}
	_, err = predict(extract.Compute{Engine: "opencv"}, filepath.Join(dir, "copies"), true)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "would mix engines in one set") {
		t.Errorf("predict --store with another engine: %v", err)
	}
	if n := asInt(query(t, db, `SELECT count(*) FROM images`, nil)[0][0]); n != 16 {
		t.Errorf("%d images stored after the refusals, want 16", n)
	}
}

// TestSimilar_BF16SetDefaultsToBF16: a bf16 set's query is computed in
// bf16 by default (its stored original is found at distance ~0), and fp32
// is refused.
func TestSimilar_BF16SetDefaultsToBF16(t *testing.T) {
	if ok, why := extract.BF16Available(); !ok {
		t.Skipf("no bf16 on this CPU: %s", why)
	}
	ctx := context.Background()
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	db := filepath.Join(dir, "f.db")
	if err := os.MkdirAll(filepath.Join(imgs, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		classPicture(t, filepath.Join(imgs, "c", fmt.Sprintf("%d.png", i)), i%3, i)
	}
	if _, err := Extract(ctx, ExtractOptions{DB: db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"}, Images: imgs,
		Compute: extract.Compute{Arith: "bf16"}}); err != nil {
		t.Fatal(err)
	}
	reencode(t, imgs, filepath.Join(dir, "copies"))
	copyOf := filepath.Join(dir, "copies", "c", "2.png")
	res, err := Similar(ctx, SimilarOptions{DB: db, Query: copyOf, Set: SetQuery{Layer: "fc2"}, K: 1, ModelPath: tinyVGG})
	if err != nil || res.Query.Source != "computed" || res.FeatureSet.Precision != "bf16" {
		t.Fatalf("%+v, %v", res, err)
	}
	if n := res.Neighbors[0]; filepath.Base(n.Path) != "2.png" || n.Distance > 1e-6 {
		t.Errorf("nearest %s at %g, want its original at ~0", n.Path, n.Distance)
	}
	_, err = Similar(ctx, SimilarOptions{DB: db, Query: copyOf, Set: SetQuery{Layer: "fc2"}, ModelPath: tinyVGG, Compute: extract.Compute{Arith: "fp32"}})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "holds bf16 codes") {
		t.Errorf("fp32 query on a bf16 set: %v", err)
	}
}
