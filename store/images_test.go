package store

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

// pathsOf returns path -> image id of every image_paths row.
func pathsOf(t *testing.T, db *DB) map[string]int64 {
	t.Helper()
	rows, err := db.reader().Query(`SELECT path, image_id FROM image_paths`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var p string
		var id int64
		if err := rows.Scan(&p, &id); err != nil {
			t.Fatal(err)
		}
		out[p] = id
	}
	return out
}

func mustImage(t *testing.T, db *DB, content string) Image {
	t.Helper()
	im, ok, err := db.ImageBySHA(context.Background(), shaOf(content))
	if err != nil || !ok {
		t.Fatalf("ImageBySHA(%q) = %v, %v", content, ok, err)
	}
	return im
}

func TestDB_WriteBatch(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		db := newDB(t)
		a, b := testSet(t, db, "fc1", 8), testSet(t, db, "fc2", 3)
		release, _ := db.Lock(ctx, 0, Holder{})
		defer release()
		run, err := db.StartRun(ctx, "extract", nil)
		if err != nil {
			t.Fatal(err)
		}
		batch := Batch{
			Items:    []Item{item("a", []string{"/data/cat/a.jpg"}, a, b)},
			Failures: []Failure{{Path: "/data/cat/broken.jpg", Stage: "decode", Message: "truncated"}},
			Counts:   Counts{Seen: 2, Extracted: 2, Failed: 1},
		}
		if err := db.WriteBatch(ctx, run, batch); err != nil {
			t.Fatal(err)
		}
		im := mustImage(t, db, "a")
		if im.Label != "cat" || im.Path != "/data/cat/a.jpg" || im.Width != 640 || im.Height != 480 || im.Format != "jpeg" {
			t.Errorf("image = %+v", im)
		}
		info, ok, err := db.LookupPath(ctx, "/data/cat/a.jpg")
		if err != nil || !ok {
			t.Fatalf("LookupPath = %v, %v", ok, err)
		}
		if info.ImageID != im.ID || info.SHA256 != shaOf("a") || info.Size != 1 || info.MtimeNS != 1 || info.Label != "cat" || info.RelPath != "cat/a.jpg" {
			t.Errorf("LookupPath = %+v", info)
		}
		if _, ok, _ := db.LookupPath(ctx, "/data/cat/nope.jpg"); ok {
			t.Error("LookupPath found a path never written")
		}
		for _, fs := range []FeatureSet{a, b} {
			var got []float32
			err := db.Vectors(ctx, fs.ID, func(r VectorRow) error {
				got = r.Vector
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := vecOf(seedOf("a"), fs.ID, fs.Dim); !slices.Equal(got, want) {
				t.Errorf("set %d: vector %v, want %v", fs.ID, got, want)
			}
		}
		r, err := db.Run(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Counts{Seen: 2, Extracted: 2, Failed: 1}); r.Counts != want {
			t.Errorf("run counts = %+v, want %+v", r.Counts, want)
		}
		if n := queryInt(t, db, `SELECT count(*) FROM failures WHERE run_id = ? AND path = '/data/cat/broken.jpg' AND stage = 'decode'`, run); n != 1 {
			t.Errorf("%d failure rows, want 1", n)
		}
		// Counts add up over batches.
		if err := db.WriteBatch(ctx, run, Batch{Counts: Counts{Seen: 3, Present: 3}}); err != nil {
			t.Fatal(err)
		}
		r, _ = db.Run(ctx, run)
		if want := (Counts{Seen: 5, Extracted: 2, Present: 3, Failed: 1}); r.Counts != want {
			t.Errorf("run counts after two batches = %+v, want %+v", r.Counts, want)
		}
	})

	t.Run("SameContentOneItem", func(t *testing.T) {
		db := newDB(t)
		fs := testSet(t, db, "fc2", 4)
		if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("x", []string{"/data/cat/x.jpg", "/data/dog/x-copy.jpg"}, fs)}}); err != nil {
			t.Fatal(err)
		}
		im := mustImage(t, db, "x")
		if im.Path != "/data/cat/x.jpg" || im.Label != "cat" {
			t.Errorf("image path %s label %s; want the first path and its label", im.Path, im.Label)
		}
		paths := pathsOf(t, db)
		if len(paths) != 2 || paths["/data/cat/x.jpg"] != im.ID || paths["/data/dog/x-copy.jpg"] != im.ID {
			t.Errorf("paths = %v, want both on image %d", paths, im.ID)
		}
		if n := queryInt(t, db, `SELECT count(*) FROM images`); n != 1 {
			t.Errorf("%d images, want 1", n)
		}
		conflicts, err := db.LabelConflicts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(conflicts) != 1 || conflicts[0].ImageID != im.ID || conflicts[0].Label != "cat" || len(conflicts[0].Paths) != 2 {
			t.Errorf("LabelConflicts = %+v, want image %d with 2 paths", conflicts, im.ID)
		}
	})

	t.Run("SameContentTwoItems", func(t *testing.T) {
		db := newDB(t)
		fs := testSet(t, db, "fc2", 4)
		batch := Batch{Items: []Item{
			item("x", []string{"/data/cat/x.jpg"}, fs),
			item("x", []string{"/data/cat/x2.jpg"}, fs),
		}}
		if err := db.WriteBatch(ctx, 0, batch); err != nil {
			t.Fatal(err)
		}
		if n := queryInt(t, db, `SELECT count(*) FROM images`); n != 1 {
			t.Errorf("%d images, want 1", n)
		}
		if n := queryInt(t, db, `SELECT count(*) FROM features`); n != 1 {
			t.Errorf("%d vectors, want 1", n)
		}
		if n := len(pathsOf(t, db)); n != 2 {
			t.Errorf("%d paths, want 2", n)
		}
	})

	t.Run("SameContentLaterBatch", func(t *testing.T) {
		db := newDB(t)
		fs := testSet(t, db, "fc2", 4)
		if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("x", []string{"/data/cat/x.jpg"}, fs)}}); err != nil {
			t.Fatal(err)
		}
		// A copy in another folder, no vectors computed: the engine saw
		// the content was present.
		if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("x", []string{"/data/dog/x.jpg"})}}); err != nil {
			t.Fatal(err)
		}
		im := mustImage(t, db, "x")
		if im.Label != "cat" || im.Path != "/data/cat/x.jpg" {
			t.Errorf("image = %s %s, want the first path and label kept", im.Path, im.Label)
		}
		if got := pathsOf(t, db)["/data/dog/x.jpg"]; got != im.ID {
			t.Errorf("copy points at image %d, want %d", got, im.ID)
		}
		missing, err := db.MissingSets(ctx, im.ID, []int64{fs.ID, fs.ID + 100})
		if err != nil || !slices.Equal(missing, []int64{fs.ID + 100}) {
			t.Errorf("MissingSets = %v, %v; want [%d]", missing, err, fs.ID+100)
		}
	})

	t.Run("PathBytesChanged", func(t *testing.T) {
		db := newDB(t)
		fs := testSet(t, db, "fc2", 4)
		must := func(b Batch) {
			t.Helper()
			if err := db.WriteBatch(ctx, 0, b); err != nil {
				t.Fatal(err)
			}
		}
		must(Batch{Items: []Item{item("old", []string{"/data/cat/1.jpg", "/data/dog/1.jpg"}, fs)}})
		must(Batch{Items: []Item{item("lone", []string{"/data/cat/2.jpg"}, fs)}})
		// Both files are overwritten with new pictures.
		must(Batch{Items: []Item{
			item("new", []string{"/data/cat/1.jpg"}, fs),
			item("new2", []string{"/data/cat/2.jpg"}, fs),
		}})
		paths := pathsOf(t, db)
		old, nw, lone := mustImage(t, db, "old"), mustImage(t, db, "new"), mustImage(t, db, "lone")
		if paths["/data/cat/1.jpg"] != nw.ID {
			t.Errorf("/data/cat/1.jpg points at %d, want the new image %d", paths["/data/cat/1.jpg"], nw.ID)
		}
		// The old content's remaining path becomes canonical, with its label.
		if old.Path != "/data/dog/1.jpg" || old.Label != "dog" {
			t.Errorf("old image: path %s label %s; want /data/dog/1.jpg dog", old.Path, old.Label)
		}
		// Content found nowhere any more keeps its last path and vectors.
		if lone.Path != "/data/cat/2.jpg" {
			t.Errorf("pathless image path = %s", lone.Path)
		}
		rep, err := db.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Healthy() || rep.Pathless != 1 || rep.Images != 4 || rep.Vectors != 4 {
			t.Errorf("Check = %+v; want healthy, 4 images, 4 vectors, 1 pathless", rep)
		}
	})

	t.Run("LabelChanged", func(t *testing.T) {
		db := newDB(t)
		must := func(b Batch) {
			t.Helper()
			if err := db.WriteBatch(ctx, 0, b); err != nil {
				t.Fatal(err)
			}
		}
		it := item("x", []string{"/data/cat/x.jpg", "/data/cat/y.jpg"})
		must(Batch{Items: []Item{it}})
		// A label CSV now says the second path is a dog: not the canonical
		// path, so the image keeps its label and the conflict is listed.
		it.Paths = it.Paths[1:]
		it.Paths[0].Label = "dog"
		must(Batch{Items: []Item{it}})
		if im := mustImage(t, db, "x"); im.Label != "cat" {
			t.Errorf("label after a non-canonical path changed: %s, want cat", im.Label)
		}
		if c, _ := db.LabelConflicts(ctx); len(c) != 1 {
			t.Errorf("LabelConflicts = %+v, want one", c)
		}
		// Then the canonical path's label changes: the image follows.
		it = item("x", []string{"/data/cat/x.jpg"})
		it.Paths[0].Label = "dog"
		must(Batch{Items: []Item{it}})
		if im := mustImage(t, db, "x"); im.Label != "dog" {
			t.Errorf("label after the canonical path changed: %s, want dog", im.Label)
		}
		if c, _ := db.LabelConflicts(ctx); len(c) != 0 {
			t.Errorf("LabelConflicts = %+v, want none", c)
		}
		// And to unlabeled.
		it.Paths[0].Label = ""
		must(Batch{Items: []Item{it}})
		if im := mustImage(t, db, "x"); im.Label != "" {
			t.Errorf("label = %q, want unlabeled", im.Label)
		}
	})

	t.Run("ErrDimMismatch", func(t *testing.T) {
		db := newDB(t)
		fs := testSet(t, db, "fc2", 4)
		bad := item("b", []string{"/data/cat/b.jpg"}, fs)
		bad.Vectors[0].Data = bad.Vectors[0].Data[:3]
		err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("a", []string{"/data/cat/a.jpg"}, fs), bad}})
		if !errors.Is(err, ErrDimMismatch) {
			t.Fatalf("got %v, want ErrDimMismatch", err)
		}
		wantErr(t, err, "/data/cat/b.jpg", "3 values", "dim 4")
		assertEmpty(t, db)
	})

	t.Run("ErrVectorConflict", func(t *testing.T) {
		db := newDB(t)
		fs := testSet(t, db, "fc2", 4)
		first := item("a", []string{"/data/cat/a.jpg"}, fs)
		if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{first}}); err != nil {
			t.Fatal(err)
		}
		// The identical vector again: accepted, still one row.
		if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{first}}); err != nil {
			t.Fatalf("identical vector: %v", err)
		}
		if n := queryInt(t, db, `SELECT count(*) FROM features`); n != 1 {
			t.Errorf("%d vectors, want 1", n)
		}
		// A different one, with a new image in the same batch: refused,
		// and the new image is not stored either.
		changed := item("a", []string{"/data/cat/a.jpg"}, fs)
		changed.Vectors[0].Data[2] += 1e-6
		err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("new", []string{"/data/cat/new.jpg"}, fs), changed}})
		if !errors.Is(err, ErrVectorConflict) {
			t.Fatalf("got %v, want ErrVectorConflict", err)
		}
		wantErr(t, err, "/data/cat/a.jpg", shaOf("a"), "feature set")
		if _, ok, _ := db.ImageBySHA(ctx, shaOf("new")); ok {
			t.Error("the failed batch's other image was stored")
		}
		var got []float32
		db.Vectors(ctx, fs.ID, func(r VectorRow) error { got = r.Vector; return nil })
		if !slices.Equal(got, first.Vectors[0].Data) {
			t.Errorf("stored vector changed to %v", got)
		}
	})

	t.Run("ErrNonFinite", func(t *testing.T) {
		db := newDB(t)
		fs := testSet(t, db, "fc2", 4)
		for _, x := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
			bad := item("b", []string{"/data/cat/b.jpg"}, fs)
			bad.Vectors[0].Data[1] = x
			err := db.WriteBatch(ctx, 0, Batch{Items: []Item{bad}})
			if !errors.Is(err, ErrNonFinite) {
				t.Fatalf("%v: got %v, want ErrNonFinite", x, err)
			}
			wantErr(t, err, "/data/cat/b.jpg", "element 1")
		}
		assertEmpty(t, db)
	})

	t.Run("ErrUnknownFeatureSet", func(t *testing.T) {
		db := newDB(t)
		it := item("a", []string{"/data/cat/a.jpg"})
		it.Vectors = []Vector{{FeatureSetID: 42, Data: []float32{1}}}
		err := db.WriteBatch(ctx, 0, Batch{Items: []Item{it}})
		if !errors.Is(err, ErrUnknownFeatureSet) {
			t.Fatalf("got %v, want ErrUnknownFeatureSet", err)
		}
		assertEmpty(t, db)
	})

	t.Run("BadInput", func(t *testing.T) {
		db := newDB(t)
		it := item("a", []string{"/data/cat/a.jpg"})
		it.Image.SHA256 = "ABC"
		wantErr(t, db.WriteBatch(ctx, 0, Batch{Items: []Item{it}}), "sha256", "ABC")
		it = item("a", nil)
		wantErr(t, db.WriteBatch(ctx, 0, Batch{Items: []Item{it}}), "no path")
		wantErr(t, db.WriteBatch(ctx, 0, Batch{Failures: []Failure{{Path: "x"}}}), "need a run")
		wantErr(t, db.WriteBatch(ctx, 999, Batch{Counts: Counts{Seen: 1}}), "run 999", "unknown run")
		assertEmpty(t, db)
	})
}

func assertEmpty(t *testing.T, db *DB) {
	t.Helper()
	for _, table := range []string{"images", "image_paths", "features", "failures"} {
		if n := queryInt(t, db, `SELECT count(*) FROM `+table); n != 0 {
			t.Errorf("%s has %d rows after a failed batch, want 0", table, n)
		}
	}
}

func TestDB_Vectors(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	fs, other := testSet(t, db, "fc2", 5), testSet(t, db, "fc1", 2)
	contents := []string{"c", "a", "b", "u"}
	var items []Item
	for _, c := range contents {
		p := "/data/cat/" + c + ".jpg"
		if c == "u" {
			p = "/data/u.jpg"
		}
		items = append(items, item(c, []string{p}, fs, other))
	}
	items[3].Paths[0].Label = ""
	if err := db.WriteBatch(ctx, 0, Batch{Items: items}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AssignSplit(ctx, 0.5); err != nil {
		t.Fatal(err)
	}
	split, err := db.Split(ctx)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		var rows []VectorRow
		if err := db.Vectors(ctx, fs.ID, func(r VectorRow) error { rows = append(rows, r); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(contents) {
			t.Fatalf("%d rows, want %d", len(rows), len(contents))
		}
		for i, r := range rows {
			c := contents[i] // inserted in this order: image ids ascend
			if i > 0 && r.ImageID <= rows[i-1].ImageID {
				t.Errorf("row %d: image id %d not ascending", i, r.ImageID)
			}
			if r.SHA256 != shaOf(c) || !slices.Equal(r.Vector, vecOf(seedOf(c), fs.ID, fs.Dim)) {
				t.Errorf("row %d: sha %s vector %v; want content %q", i, r.SHA256, r.Vector, c)
			}
			wantLabel := "cat"
			if c == "u" {
				wantLabel = ""
			}
			if r.Label != wantLabel || r.Part != split[r.ImageID] || r.Path != items[i].Paths[0].Path {
				t.Errorf("row %d: label %q part %q path %s; want %q %q %s", i, r.Label, r.Part, r.Path,
					wantLabel, split[r.ImageID], items[i].Paths[0].Path)
			}
		}
		if rows[3].Part != "" {
			t.Errorf("unlabeled image is in part %q", rows[3].Part)
		}
	})

	t.Run("StopOnError", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := db.Vectors(ctx, fs.ID, func(VectorRow) error { n++; return stop })
		if err != stop || n != 1 {
			t.Errorf("got %v after %d rows, want the callback's error after 1", err, n)
		}
	})

	t.Run("ErrUnknownFeatureSet", func(t *testing.T) {
		err := db.Vectors(ctx, 99, func(VectorRow) error { return nil })
		if !errors.Is(err, ErrUnknownFeatureSet) {
			t.Errorf("got %v, want ErrUnknownFeatureSet", err)
		}
	})
}
