package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
	"pipeline/store"
)

// events records what a run reports.
type events struct {
	mu       sync.Mutex
	failed   []store.Failure
	notes    []string
	progress func(c store.Counts)
}

func (e *events) Started(StartInfo) {}
func (e *events) Progress(c store.Counts, total int64, walking bool) {
	if e.progress != nil {
		e.progress(c)
	}
}
func (e *events) Failed(f store.Failure) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failed = append(e.failed, f)
}
func (e *events) Note(msg string) { e.notes = append(e.notes, msg) }

func TestExtract_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	a := writePicture(t, filepath.Join(imgs, "cats", "a.jpg"), 1, 64, 48)
	writePicture(t, filepath.Join(imgs, "cats", "b.png"), 2, 40, 40)
	writePicture(t, filepath.Join(imgs, "dogs", "c.jpg"), 3, 100, 30)
	testutil.WriteFile(t, filepath.Join(imgs, "dogs", "same as a.jpg"), a) // same bytes, other label
	writePicture(t, filepath.Join(imgs, "top.jpg"), 4, 20, 50)             // unlabeled
	testutil.WriteFile(t, filepath.Join(imgs, "notes.txt"), []byte("not an image"))
	db := filepath.Join(dir, "features.db")
	model := tinyModel(t, tinyVGG, "caffe")
	om, err := onnx.ReadModel(tinyVGG)
	if err != nil {
		t.Fatal(err)
	}
	extractRun := func(layers ...string) ExtractSummary {
		t.Helper()
		sum, err := Extract(context.Background(), ExtractOptions{DB: db, Model: model, Layers: layers, Batch: 2, Images: imgs, Args: []string{"test"}})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	counts := func(c store.Counts) string {
		return strings.Join([]string{itoa(c.Seen), itoa(c.Extracted), itoa(c.Present), itoa(c.Duplicates), itoa(c.Failed)}, " ")
	}

	sum := extractRun("fc2", "block2_pool")
	if got, want := counts(sum.Counts), "5 4 0 1 0"; got != want {
		t.Errorf("first run seen/extracted/present/dup/failed = %s, want %s", got, want)
	}
	if sum.Skipped != 1 || sum.Status != "ok" || len(sum.FeatureSets) != 2 {
		t.Errorf("summary %+v", sum)
	}

	t.Run("Rows", func(t *testing.T) {
		rows := query(t, db, `SELECT i.label, p.relpath, p.label FROM image_paths p JOIN images i ON i.id = p.image_id ORDER BY p.relpath`, nil)
		want := [][]any{
			{"cats", "cats/a.jpg", "cats"}, {"cats", "cats/b.png", "cats"}, {"dogs", "dogs/c.jpg", "dogs"},
			{"cats", "dogs/same as a.jpg", "dogs"}, // one image, the first path's label, each path its own
			{nil, "top.jpg", nil},
		}
		if len(rows) != len(want) {
			t.Fatalf("rows %v, want %v", rows, want)
		}
		for i := range want {
			for j := range want[i] {
				if rows[i][j] != want[i][j] {
					t.Errorf("row %d = %v, want %v", i, rows[i], want[i])
					break
				}
			}
		}
		n := query(t, db, `SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM features),
			(SELECT count(*) FROM feature_sets), (SELECT group_concat(dim) FROM feature_sets ORDER BY id)`, nil)[0]
		if asInt(n[0]) != 4 || asInt(n[1]) != 8 || asInt(n[2]) != 2 || n[3] != "32,8" {
			t.Errorf("images, features, sets, dims = %v, want 4, 8, 2, 32,8", n)
		}
	})

	t.Run("VectorsMatchReference", func(t *testing.T) {
		rows := query(t, db, `SELECT path, layer, vector, vec_length(vector) FROM feature_vectors ORDER BY path, layer`, nil)
		if len(rows) != 8 {
			t.Fatalf("%d rows in feature_vectors, want 8", len(rows))
		}
		for _, r := range rows {
			path, layer := r[0].(string), r[1].(string)
			got, err := store.DecodeVector(r[2].([]byte))
			if err != nil {
				t.Fatal(err)
			}
			var want []float64
			switch layer {
			case "fc2":
				want = reference(t, om, model, path, "vgg0_dense1_relu_fwd")
			case "block2_pool":
				full := reference(t, om, model, path, "vgg0_pool1_fwd") // 8 x 8 x 8
				for c := 0; c < 8; c++ {
					var s float64
					for _, v := range full[c*64 : (c+1)*64] {
						s += v
					}
					want = append(want, s/64)
				}
			}
			if asInt(r[3]) != int64(len(want)) {
				t.Errorf("%s %s: vec_length %v, want %d", path, layer, r[3], len(want))
			}
			if e := testutil.RelErr(got, want); e > 1e-5 {
				t.Errorf("%s %s: max rel err %.3g vs the float64 reference", path, layer, e)
			}
		}
	})

	t.Run("Incremental", func(t *testing.T) {
		if got := counts(extractRun("fc2", "block2_pool").Counts); got != "5 0 5 0 0" {
			t.Errorf("rerun = %s, want 5 0 5 0 0 (nothing computed)", got)
		}
		writePicture(t, filepath.Join(imgs, "dogs", "new.jpg"), 5, 30, 30)
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(filepath.Join(imgs, "cats", "b.png"), later, later); err != nil { // touched, same bytes
			t.Fatal(err)
		}
		writePicture(t, filepath.Join(imgs, "cats", "a.jpg"), 6, 64, 48) // new bytes at a known path
		if got := counts(extractRun("fc2", "block2_pool").Counts); got != "6 2 4 0 0" {
			t.Errorf("after adding one, touching one, rewriting one = %s, want 6 2 4 0 0", got)
		}
		// The old content of a.jpg is still known at "same as a.jpg", which
		// is now its canonical path.
		r := query(t, db, `SELECT i.path FROM images i JOIN image_paths p ON p.image_id = i.id WHERE p.relpath = 'dogs/same as a.jpg'`, nil)
		if len(r) != 1 || !strings.HasSuffix(r[0][0].(string), "same as a.jpg") {
			t.Errorf("canonical path of the old a.jpg content = %v", r)
		}
		// A new layer computes every image (6 distinct contents now) once
		// more, for that set only.
		if got := counts(extractRun("fc1").Counts); got != "6 6 0 0 0" {
			t.Errorf("new layer = %s, want 6 6 0 0 0", got)
		}
		n := query(t, db, `SELECT count(*), count(DISTINCT image_id || '/' || feature_set_id) FROM features`, nil)[0]
		if asInt(n[0]) != 6*3 || n[0] != n[1] {
			t.Errorf("features rows %v distinct %v, want %d and no duplicates", n[0], n[1], 6*3)
		}
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestExtract_Interrupt(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	for i := 0; i < 60; i++ {
		writePicture(t, filepath.Join(imgs, "c", "img"+itoa(int64(i))+".png"), uint64(i), 40, 40)
	}
	db := filepath.Join(dir, "f.db")
	model := tinyModel(t, tinyVGG, "caffe")
	ctx, cancel := context.WithCancel(context.Background())
	ev := &events{progress: func(c store.Counts) {
		if c.Seen == 20 {
			cancel() // Ctrl-C
		}
	}}
	sum, err := Extract(ctx, ExtractOptions{DB: db, Model: model, Layers: []string{"fc2"}, Batch: 8, Images: imgs, Events: ev})
	if !errors.Is(err, ErrInterrupted) || sum.Status != "interrupted" {
		t.Fatalf("err %v, status %s; want interrupted", err, sum.Status)
	}
	if !strings.Contains(err.Error(), "rerun the same command to finish") {
		t.Errorf("message %q does not say how to finish", err)
	}
	stored := asInt(query(t, db, `SELECT count(*) FROM features`, nil)[0][0])
	if stored == 0 || stored >= 60 {
		t.Errorf("%d vectors stored after the interrupt, want some but not all", stored)
	}
	if r := query(t, db, `SELECT status, exit_code FROM runs`, nil); r[0][0] != "interrupted" || asInt(r[0][1]) != 130 {
		t.Errorf("run row %v, want interrupted 130", r[0])
	}
	sum, err = Extract(context.Background(), ExtractOptions{DB: db, Model: model, Layers: []string{"fc2"}, Batch: 8, Images: imgs})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Extracted != 60-stored || sum.Counts.Present != stored {
		t.Errorf("rerun extracted %d present %d, want %d and %d", sum.Counts.Extracted, sum.Counts.Present, 60-stored, stored)
	}
}

// TestExtract_Nets: several networks side by side give the same vectors,
// byte for byte, as one, and the same rows.
func TestExtract_Nets(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	for i := 0; i < 50; i++ {
		writePicture(t, filepath.Join(imgs, strconv.Itoa(i%2), fmt.Sprintf("%02d.png", i)), uint64(i), 30+i%7, 28)
	}
	// Duplicates across batches and within one.
	dup, err := os.ReadFile(filepath.Join(imgs, "0", "00.png"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(imgs, "1", "zz-dup.png"), dup)
	testutil.WriteFile(t, filepath.Join(imgs, "0", "01-dup.png"), dup)
	model := tinyModel(t, tinyVGG, "caffe")
	var snaps []snapshot
	for _, nets := range []int{1, 2, 3} {
		db := filepath.Join(dir, fmt.Sprintf("n%d.db", nets))
		sum, err := Extract(context.Background(), ExtractOptions{DB: db, Model: model, Layers: []string{"fc2", "block3_pool"}, Batch: 3, Nets: nets, Images: imgs})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Nets != nets || sum.Counts.Extracted != 50 || sum.Counts.Duplicates != 2 {
			t.Errorf("nets %d: summary %+v", nets, sum)
		}
		snaps = append(snaps, takeSnapshot(t, db))
		integrityOK(t, db)
	}
	for i := 1; i < len(snaps); i++ {
		if len(snaps[i].vectors) != len(snaps[0].vectors) {
			t.Fatalf("nets %d: %d vectors, nets 1: %d", i+1, len(snaps[i].vectors), len(snaps[0].vectors))
		}
		for k, v := range snaps[0].vectors {
			if snaps[i].vectors[k] != v {
				t.Errorf("nets %d: vector %s differs from nets 1", i+1, k)
				break
			}
		}
		for p, sha := range snaps[0].paths {
			if snaps[i].paths[p] != sha {
				t.Errorf("nets %d: path %s → %s, nets 1: %s", i+1, p, snaps[i].paths[p], sha)
			}
		}
	}
}
