package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
	"pipeline/store"
)

// lastRun is the newest runs row: seen, extracted, present, duplicates,
// failed, status.
func lastRun(t *testing.T, db string) []any {
	t.Helper()
	return query(t, db, `SELECT seen, extracted, present, duplicates, failed, status FROM runs ORDER BY id DESC LIMIT 1`, nil)[0]
}

// addsUp checks that every file seen is in exactly one category.
func addsUp(t *testing.T, r []any) {
	t.Helper()
	if asInt(r[0]) != asInt(r[1])+asInt(r[2])+asInt(r[3])+asInt(r[4]) {
		t.Errorf("runs row seen %v != extracted %v + present %v + duplicates %v + failed %v", r[0], r[1], r[2], r[3], r[4])
	}
}

// TestExtract_CountsAfterInterrupt: the images dropped on Ctrl-C (gathered
// for the next batch, with duplicates attached to them) are not counted.
func TestExtract_CountsAfterInterrupt(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	for i := 0; i < 60; i++ {
		b := writePicture(t, filepath.Join(imgs, "c", fmt.Sprintf("img%02d.png", i)), uint64(i), 40, 40)
		if i%5 == 0 {
			testutil.WriteFile(t, filepath.Join(imgs, "c", fmt.Sprintf("img%02dd.png", i)), b)
		}
	}
	db := filepath.Join(dir, "f.db")
	ctx, cancel := context.WithCancel(context.Background())
	ev := &events{progress: func(c store.Counts) {
		if c.Seen == 22 {
			cancel()
		}
	}}
	_, err := Extract(ctx, ExtractOptions{DB: db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"}, Batch: 8, Images: imgs, Events: ev})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err %v, want interrupted", err)
	}
	r := lastRun(t, db)
	addsUp(t, r)
	if paths := asInt(query(t, db, `SELECT count(*) FROM image_paths`, nil)[0][0]); asInt(r[0]) != paths {
		t.Errorf("run says %v files seen, the database has %d paths", r[0], paths)
	}
}

// TestExtract_InterruptAfterLastResult: a Ctrl-C that arrives when no more
// results come (a --list - producer killed by the same signal) still makes
// the run interrupted, not ok.
func TestExtract_InterruptAfterLastResult(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, fmt.Sprintf("%d.png", i))
		writePicture(t, p, uint64(i), 40, 40)
		files = append(files, p)
	}
	db := filepath.Join(dir, "f.db")
	ctx, cancel := context.WithCancel(context.Background())
	o := ExtractOptions{DB: db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"}, Batch: 8}
	calls := 0
	src := func(emit func(Input) error, _ func(WalkStats)) error {
		calls++
		for _, f := range files {
			if err := emit(Input{Path: f, RelPath: filepath.Base(f)}); err != nil {
				return err
			}
		}
		if calls == 2 { // the real walk, not the counting pass
			time.Sleep(200 * time.Millisecond)
			cancel()
		}
		return nil
	}
	sum, err := extractFrom(ctx, o, src)
	if !errors.Is(err, ErrInterrupted) || sum.Status != store.RunInterrupted {
		t.Errorf("err %v, status %s; want interrupted", err, sum.Status)
	}
}

// TestExtract_CountsMatchRowsWhileRunning: whenever the runs row is read
// during a run (or after a kill), its counters describe exactly the rows
// committed, with two networks finishing batches out of order.
func TestExtract_CountsMatchRowsWhileRunning(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	for i := 0; i < 40; i++ {
		b := writePicture(t, filepath.Join(imgs, "c", fmt.Sprintf("%02d.png", i)), uint64(i), 40, 40)
		testutil.WriteFile(t, filepath.Join(imgs, "c", fmt.Sprintf("%02dd.png", i)), b)
	}
	db := filepath.Join(dir, "f.db")
	checks, bad := 0, 0
	ev := &events{progress: func(store.Counts) {
		n, ok := tryCount(db, `SELECT count(*) FROM image_paths`)
		if !ok {
			return
		}
		seen, ok := tryCount(db, `SELECT seen FROM runs ORDER BY id DESC LIMIT 1`)
		if !ok {
			return
		}
		checks++
		if seen != n {
			bad++
		}
	}}
	if _, err := Extract(context.Background(), ExtractOptions{DB: db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"},
		Batch: 4, Nets: 2, Images: imgs, Events: ev}); err != nil {
		t.Fatal(err)
	}
	if checks < 10 || bad > 0 {
		t.Errorf("%d of %d reads saw committed counters that did not match the committed paths", bad, checks)
	}
	addsUp(t, lastRun(t, db))
}

// TestExtract_PartialNaN: a file whose second layer has Inf is one failure
// (with one row per bad layer), stores nothing, and takes its duplicate
// with it.
func TestExtract_PartialNaN(t *testing.T) {
	dir := t.TempDir()
	b := onnx.NewBuilder("halfnan")
	x := b.Input("data", onnx.Dim{Param: "N"}, onnx.Dim{Value: 3}, onnx.Dim{Value: 8}, onnx.Dim{Value: 8})
	w := make([]float32, 2*3*3*3)
	for i := range w {
		w[i] = 0.1
	}
	good := b.Conv("good", x, "good_out", onnx.NewFloat32("w1", []int{2, 3, 3, 3}, w), onnx.NewFloat32("b1", []int{2}, []float32{0.1, 0.2}), onnx.ConvAttrs{Pads: []int{1, 1, 1, 1}})
	g1 := b.GlobalAveragePool("gap_good", good, "gap_good_out")
	w2 := append([]float32(nil), w...)
	w2[0] = float32(math.Inf(1))
	bad := b.Conv("bad", x, "bad_out", onnx.NewFloat32("w2", []int{2, 3, 3, 3}, w2), onnx.NewFloat32("b2", []int{2}, []float32{0.1, 0.2}), onnx.ConvAttrs{Pads: []int{1, 1, 1, 1}})
	g2 := b.GlobalAveragePool("gap_bad", bad, "gap_bad_out")
	b.Output(g1)
	b.Output(g2)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "halfnan.onnx")
	if err := onnx.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	imgs := filepath.Join(dir, "images")
	data := writePicture(t, filepath.Join(imgs, "a.png"), 1, 8, 8)
	testutil.WriteFile(t, filepath.Join(imgs, "b-copy.png"), data)
	db := filepath.Join(dir, "f.db")
	sum, err := Extract(context.Background(), ExtractOptions{DB: db, Model: tinyModel(t, path, "caffe"), Layers: []string{"gap_good", "gap_bad"}, Images: imgs})
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("err %v", err)
	}
	if c := sum.Counts; c.Seen != 2 || c.Failed != 2 || c.Extracted != 0 || c.Duplicates != 0 {
		t.Errorf("counts %+v, want 2 seen, 2 failed", c)
	}
	r := lastRun(t, db)
	addsUp(t, r)
	rows := query(t, db, `SELECT path, stage, message FROM failures ORDER BY path`, nil)
	if len(rows) != 2 || !strings.HasSuffix(rows[0][0].(string), "a.png") || !strings.Contains(rows[0][2].(string), "layer onnx_node!gap_bad") ||
		!strings.Contains(rows[1][2].(string), "same content as") {
		t.Errorf("failures %v", rows)
	}
	if n := asInt(query(t, db, `SELECT count(*) FROM features`, nil)[0][0]); n != 0 {
		t.Errorf("%d vectors stored for a file that failed", n)
	}
}

// TestExtract_PathUpdatesCommittedWhileWaiting: path-only changes (a CSV
// relabelling 1500 known files) are committed regularly even while a new
// image waits for its (never full) batch.
func TestExtract_PathUpdatesCommittedWhileWaiting(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	const n = 1500
	var list strings.Builder
	list.WriteString("path,label\n")
	fresh := filepath.Join(dir, "fresh.png")
	writePicture(t, fresh, 99999, 8, 8)
	fmt.Fprintf(&list, "%s,x\n", fresh) // first: it waits for a batch of 8 all run long
	for i := 0; i < n; i++ {
		p := filepath.Join(imgs, "c", fmt.Sprintf("%04d.png", i))
		writePicture(t, p, uint64(i), 8, 8)
		fmt.Fprintf(&list, "%s,relabelled\n", p)
	}
	db := filepath.Join(dir, "f.db")
	model := tinyModel(t, tinyVGG, "caffe")
	if _, err := Extract(context.Background(), ExtractOptions{DB: db, Model: model, Layers: []string{"fc2"}, Batch: 8, Images: imgs}); err != nil {
		t.Fatal(err)
	}
	lf := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(lf, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var committed []int64
	ev := &events{progress: func(store.Counts) {
		if s, ok := tryCount(db, `SELECT seen FROM runs ORDER BY id DESC LIMIT 1`); ok && (len(committed) == 0 || committed[len(committed)-1] != s) {
			committed = append(committed, s)
		}
	}}
	if _, err := Extract(context.Background(), ExtractOptions{DB: db, Model: model, Layers: []string{"fc2"}, Batch: 8, List: lf, Events: ev}); err != nil {
		t.Fatal(err)
	}
	if len(committed) < 3 {
		t.Errorf("committed 'seen' during the run went %v: path updates waited for the end", committed)
	}
	if r := query(t, db, `SELECT count(*) FROM image_paths WHERE label = 'relabelled'`, nil); asInt(r[0][0]) != n {
		t.Errorf("%v paths relabelled, want %d", r[0][0], n)
	}
}

// TestExtract_UnreadableDirectory: a class folder that cannot be listed is a
// failure row and exit code 3, not a silent gap.
func TestExtract_UnreadableDirectory(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	writePicture(t, filepath.Join(imgs, "a", "1.png"), 1, 20, 20)
	writePicture(t, filepath.Join(imgs, "locked", "2.png"), 2, 20, 20)
	for _, d := range []string{dir, imgs, filepath.Join(imgs, "a")} {
		os.Chmod(d, 0o777)
	}
	if err := os.Chmod(filepath.Join(imgs, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Join(imgs, "locked"), 0o755)
	db := filepath.Join(dir, "f.db")
	extractUnprivileged(t, dir, imgs, db, "some files failed: 1 of 2 files")
	r := query(t, db, `SELECT path, stage, message FROM failures`, nil)
	if len(r) != 1 || !strings.HasSuffix(r[0][0].(string), "locked") || !strings.Contains(r[0][2].(string), "cannot list this directory: permission denied") {
		t.Errorf("failures %v", r)
	}
}
