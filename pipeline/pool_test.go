package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/store"
)

// TestResolveFeatureSet_Pool stores block2_pool of the tiny VGG twice (avg
// and max) and fc2 once, then picks sets with --pool.
func TestResolveFeatureSet_Pool(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "f.db")
	root := filepath.Join(dir, "images")
	for c, class := range []string{"a", "b"} {
		for i := range 6 {
			writePicture(t, filepath.Join(root, class, fmt.Sprintf("%d.png", i)), uint64(10*c+i), 40, 36)
		}
	}
	m := tinyModel(t, tinyVGG, "caffe")
	for _, pool := range []string{"avg", "max"} {
		if _, err := Extract(ctx, ExtractOptions{DB: dbPath, Model: m, Layers: []string{"block2_pool", "fc2"}, Pool: pool, Images: root}); err != nil {
			t.Fatalf("extract --pool %s: %v", pool, err)
		}
	}
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sets, err := db.FeatureSets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byPool := map[string]store.FeatureSet{}
	for _, s := range sets {
		byPool[s.Alias+"/"+s.Pooling] = s
	}
	avg, max, fc2 := byPool["block2_pool/avg"], byPool["block2_pool/max"], byPool["fc2/none"]
	if len(sets) != 3 || avg.ID == 0 || max.ID == 0 || fc2.ID == 0 {
		t.Fatalf("sets %v: want block2_pool avg and max, fc2 none", sets)
	}

	t.Run("OK", func(t *testing.T) {
		for _, c := range []struct {
			q    SetQuery
			want int64
		}{
			{SetQuery{Layer: "block2_pool", Pool: "avg"}, avg.ID},
			{SetQuery{Layer: "block2_pool", Pool: "max"}, max.ID},
			{SetQuery{Layer: "block2_pool", Pool: "max", Model: "vgg-zoo-tiny.onnx"}, max.ID},
			// fc2 is a vector: pooling does not apply, any --pool names it.
			{SetQuery{Layer: "fc2", Pool: "avg"}, fc2.ID},
			{SetQuery{Layer: "fc2", Pool: "max"}, fc2.ID},
			{SetQuery{Layer: "fc2"}, fc2.ID},
		} {
			got, err := ResolveFeatureSet(ctx, db, c.q)
			if err != nil || got.ID != c.want {
				t.Errorf("%s: set %d, %v; want %d", c.q.describe(), got.ID, err, c.want)
			}
		}
	})

	t.Run("ErrAmbiguous", func(t *testing.T) {
		_, err := ResolveFeatureSet(ctx, db, SetQuery{Layer: "block2_pool"})
		if !errors.Is(err, ErrAmbiguous) {
			t.Fatalf("err = %v, want ErrAmbiguous", err)
		}
		msg := err.Error()
		for _, s := range []store.FeatureSet{avg, max} {
			want := fmt.Sprintf("set %d: model vgg-zoo-tiny.onnx, layer block2_pool (%s), pooling %s, precision fp32, %d-d, 12 vectors",
				s.ID, s.Layer, s.Pooling, s.Dim)
			if !strings.Contains(msg, want) {
				t.Errorf("error %q\ndoes not list %q", msg, want)
			}
		}
		if !strings.Contains(msg, "they differ in pooling, id") {
			t.Errorf("error %q does not say how to choose", msg)
		}
	})

	t.Run("ErrNoFeatures", func(t *testing.T) {
		_, err := ResolveFeatureSet(ctx, db, SetQuery{Layer: "block2_pool", Pool: "none"})
		if !errors.Is(err, ErrNoFeatures) || !strings.Contains(err.Error(), "layer block2_pool, pooling none") {
			t.Errorf("err = %v, want ErrNoFeatures naming the query", err)
		}
	})

	t.Run("ErrUsage", func(t *testing.T) {
		_, err := ResolveFeatureSet(ctx, db, SetQuery{Layer: "block2_pool", Pool: "mean"})
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), `pool "mean": want avg, max or none`) {
			t.Errorf("err = %v, want a usage error", err)
		}
	})

	t.Run("Commands", func(t *testing.T) {
		res, err := Fit(ctx, FitOptions{DB: dbPath, Set: SetQuery{Layer: "block2_pool", Pool: "max"}, Name: "m",
			Params: classify.DefaultParams(classify.LogReg), TestFrac: 0.25})
		if err != nil || res.FeatureSet.ID != max.ID {
			t.Errorf("fit --pool max: set %d, %v; want %d", res.FeatureSet.ID, err, max.ID)
		}
		var b strings.Builder
		sum, err := Export(ctx, ExportOptions{DB: dbPath, Set: SetQuery{Layer: "block2_pool", Pool: "avg"}, Format: "csv", Out: &b})
		if err != nil || sum.Set.ID != avg.ID || sum.Rows != 12 {
			t.Errorf("export --pool avg: set %d, %d rows, %v; want %d, 12", sum.Set.ID, sum.Rows, err, avg.ID)
		}
		sim, err := Similar(ctx, SimilarOptions{DB: dbPath, Query: filepath.Join(root, "a", "0.png"), Set: SetQuery{Layer: "block2_pool", Pool: "max"}, K: 3})
		if err != nil || sim.FeatureSet.ID != max.ID {
			t.Errorf("similar --pool max: set %d, %v; want %d", sim.FeatureSet.ID, err, max.ID)
		}
		if _, err := Fit(ctx, FitOptions{DB: dbPath, Set: SetQuery{Layer: "block2_pool"}, Name: "n",
			Params: classify.DefaultParams(classify.LogReg), TestFrac: 0.25}); !errors.Is(err, ErrAmbiguous) {
			t.Errorf("fit without --pool: %v, want ErrAmbiguous", err)
		}
	})
}
