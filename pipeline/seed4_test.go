package pipeline

import (
	"pipeline/internal/testenv"
	"pipeline/internal/testutil"

	"context"
	"os"
	"path/filepath"
	"testing"

	"pipeline/extract"
	"pipeline/extract/onnx"
)

// seed4 is the original tutorial's photo set (808 JPEGs in 4 classes, 38
// duplicate pairs), beside the repository where it exists.
const seed4 = "../../shared/datasets/seed4"

func seed4Dir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: seed4 integration")
	}
	if _, err := os.Stat(seed4); err != nil {
		testenv.Missing(t, "no %s: %v", seed4, err)
	}
	abs, err := filepath.Abs(seed4)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestExtract_Seed4 runs the generated VGG-16 architecture (fc2) over the
// 808 real photos: every photo decodes, duplicates are found, every vector
// has 4096 finite values, and one of them matches the float64 reference of
// the full network.
func TestExtract_Seed4(t *testing.T) {
	imgs := seed4Dir(t)
	cache, err := extract.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	model, err := extract.ResolveModel(extract.ModelSpec{Model: "vgg16-arch", CacheDir: cache, NeedPreprocess: true})
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "seed4.db")
	sum, err := Extract(context.Background(), ExtractOptions{DB: db, Model: model, Layers: []string{"fc2"}, Batch: 8, Images: imgs})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed4, vgg16-arch fc2: %+v in %.1fs, %.2f images/s (batch %d, %d threads); forward %.1fs, write %.2fs, waiting for decode %.2fs",
		sum.Counts, sum.WallSeconds, sum.ImagesPerSec, sum.Batch, sum.Threads, sum.Timing.Forward, sum.Timing.Write, sum.Timing.Wait)
	c := sum.Counts
	if c.Seen != 808 || c.Extracted != 770 || c.Duplicates != 38 || c.Failed != 0 {
		t.Errorf("counts %+v, want 808 seen, 770 extracted, 38 duplicates, 0 failed", c)
	}
	r := query(t, db, `SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM image_paths),
		(SELECT count(DISTINCT label) FROM images), (SELECT count(*) FROM features WHERE length(vector) = 4*4096)`, nil)[0]
	if asInt(r[0]) != 770 || asInt(r[1]) != 808 || asInt(r[2]) != 4 || asInt(r[3]) != 770 {
		t.Errorf("images, paths, labels, 4096-d vectors = %v, want 770, 808, 4, 770", r)
	}
	// One photo through the float64 reference of the whole network (~7 s).
	row := query(t, db, `SELECT path, vector FROM feature_vectors ORDER BY path LIMIT 1`, nil)[0]
	om, err := onnx.ReadModel(model.Path)
	if err != nil {
		t.Fatal(err)
	}
	want := reference(t, om, model, row[0].(string), "vgg0_dense1_relu_fwd")
	got := decodeVector(t, row[1].([]byte))
	e := testutil.RelErr(got, want)
	t.Logf("%s: fc2 max rel err %.2e vs the float64 reference", filepath.Base(row[0].(string)), e)
	if e > 1e-5 {
		t.Errorf("fc2 of %s: max rel err %.3g > 1e-5", row[0], e)
	}
	// A rerun computes nothing.
	sum, err = Extract(context.Background(), ExtractOptions{DB: db, Model: model, Layers: []string{"fc2"}, Images: imgs})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Extracted != 0 || sum.Counts.Present != 808 {
		t.Errorf("rerun %+v, want 808 present and nothing extracted", sum.Counts)
	}
}
