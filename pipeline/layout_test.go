package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/internal/testutil"
	"pipeline/store"
)

// walkLabels walks root and returns "label split relpath" per file ("-"
// for none), and the layout.
func walkLabels(t *testing.T, root string) ([]string, Layout) {
	t.Helper()
	var got []string
	st, err := WalkImages(root, func(in Input) error {
		lab, split := "-", "-"
		if in.Labeled {
			lab = in.Label
		}
		if in.Split != "" {
			split = in.Split
		}
		got = append(got, lab+" "+split+" "+in.RelPath)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, st.Layout
}

func TestWalkImages_Layouts(t *testing.T) {
	tree := func(t *testing.T, files ...string) string {
		root := t.TempDir()
		for _, f := range files {
			touch(t, filepath.Join(root, f))
		}
		return root
	}
	t.Run("Classes", func(t *testing.T) {
		got, lay := walkLabels(t, tree(t, "cats/a.jpg", "dogs/b.jpg", "top.jpg"))
		want := []string{"cats - cats/a.jpg", "dogs - dogs/b.jpg", "- - top.jpg"}
		if !reflect.DeepEqual(got, want) || lay.Splits || lay.Note != "" {
			t.Errorf("got %q %+v, want %q, class layout without a note", got, lay, want)
		}
	})
	t.Run("Splits", func(t *testing.T) {
		// Keras / torchvision: DIR/{train,val,test}/<class>/; a class named
		// like a split inside a split folder is a class.
		got, lay := walkLabels(t, tree(t, "train/cats/a.jpg", "train/cats/sub/deep.jpg", "train/dogs/b.jpg", "train/loose.jpg",
			"train/train/t.jpg", "val/cats/c.jpg", "test/dogs/d.jpg", "top.jpg", ".cache/x.jpg"))
		want := []string{
			"dogs test test/dogs/d.jpg",
			"- - top.jpg",
			"cats train train/cats/a.jpg", "cats train train/cats/sub/deep.jpg", "dogs train train/dogs/b.jpg",
			"- - train/loose.jpg", // above the class folders: unlabeled, so not in the split
			"train train train/train/t.jpg",
			"cats test val/cats/c.jpg",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
		if !lay.Splits || !strings.Contains(lay.Note, "split layout") || !strings.Contains(lay.Note, "val → held out") {
			t.Errorf("layout %+v", lay)
		}
	})
	t.Run("KerasNamesAnyCase", func(t *testing.T) {
		got, _ := walkLabels(t, tree(t, "Train/a/1.png", "Validation/a/2.png"))
		want := []string{"a train Train/a/1.png", "a test Validation/a/2.png"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("ClashClassNamedTrain", func(t *testing.T) {
		// A class named train next to other classes: the class layout,
		// although train/ holds a sub-folder.
		got, lay := walkLabels(t, tree(t, "train/x/1.jpg", "cats/2.jpg", "val/3.jpg"))
		want := []string{"cats - cats/2.jpg", "train - train/x/1.jpg", "val - val/3.jpg"}
		if !reflect.DeepEqual(got, want) || lay.Splits {
			t.Errorf("got %q %+v, want %q", got, lay, want)
		}
		if !strings.Contains(lay.Note, "folders train, val are named like split folders, but cats is not: every first-level folder is a class") {
			t.Errorf("note %q", lay.Note)
		}
	})
	t.Run("ClashSplitNamesWithoutClasses", func(t *testing.T) {
		// train/ and test/ holding images directly are two classes.
		got, lay := walkLabels(t, tree(t, "train/1.jpg", "test/2.jpg"))
		want := []string{"test - test/2.jpg", "train - train/1.jpg"}
		if !reflect.DeepEqual(got, want) || lay.Splits || !strings.Contains(lay.Note, "hold no class folders: they are read as classes") {
			t.Errorf("got %q %+v, want %q", got, lay, want)
		}
	})
}

// splitRows returns "relpath part source" for every image in the split.
func splitRows(t *testing.T, dbPath, root string) []string {
	t.Helper()
	var out []string
	for _, r := range query(t, dbPath, `SELECT i.path, s.part, s.source FROM splits s JOIN images i ON i.id = s.image_id ORDER BY i.path`, nil) {
		rel, _ := filepath.Rel(root, r[0].(string))
		out = append(out, fmt.Sprintf("%s %s %s", filepath.ToSlash(rel), r[1], r[2]))
	}
	return out
}

func TestExtract_Splits(t *testing.T) {
	ctx := context.Background()
	m := tinyModel(t, tinyVGG, "caffe")
	extract := func(t *testing.T, db string, o ExtractOptions) ExtractSummary {
		t.Helper()
		o.DB, o.Model, o.Layers = db, m, []string{"fc2"}
		sum, err := Extract(ctx, o)
		if err != nil {
			t.Fatalf("extract %+v: %v", o, err)
		}
		return sum
	}
	fit := func(t *testing.T, db string, frac float64, reset bool) (FitResult, error) {
		t.Helper()
		return Fit(ctx, FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "lr", Replace: true,
			Params: classify.DefaultParams(classify.LogReg), TestFrac: frac, ResetSplit: reset})
	}

	t.Run("FolderLayout", func(t *testing.T) {
		dir := t.TempDir()
		db, root := filepath.Join(dir, "f.db"), filepath.Join(dir, "data")
		var want []string
		seed := uint64(0)
		for _, part := range []string{"train", "val"} {
			for _, class := range []string{"ants", "bees"} {
				n := map[string]int{"train": 5, "val": 2}[part]
				for i := range n {
					rel := fmt.Sprintf("%s/%s/%d.png", part, class, i)
					seed++
					writePicture(t, filepath.Join(root, rel), seed, 40, 36)
					want = append(want, rel+" "+map[string]string{"train": "train", "val": "test"}[part]+" user")
				}
			}
		}
		sum := extract(t, db, ExtractOptions{Images: root})
		if !strings.Contains(strings.Join(sum.Notes, "\n"), "split layout") {
			t.Errorf("notes %q do not say the layout", sum.Notes)
		}
		if got := splitRows(t, db, root); !reflect.DeepEqual(got, want) {
			t.Fatalf("splits\ngot  %q\nwant %q", got, want)
		}
		labels := query(t, db, `SELECT label, count(*) FROM images GROUP BY label ORDER BY label`, nil)
		if fmt.Sprint(labels) != "[[ants 7] [bees 7]]" {
			t.Errorf("labels %v, want ants 7, bees 7 (not train/val)", labels)
		}
		// fit keeps the folders' split: nothing to assign, val/ is held out.
		res, err := fit(t, db, 0.2, false)
		if err != nil || res.NewlySplit != 0 || res.Train != 10 || res.Test != 4 {
			t.Fatalf("fit: %+v, %v; want 10 train, 4 held out, 0 newly split", res, err)
		}
		// Rerun, then a later fit with a new automatic fraction: the
		// user's split stays as it is.
		if s := extract(t, db, ExtractOptions{Images: root}); s.Counts.Present != 14 {
			t.Errorf("rerun: %+v", s.Counts)
		}
		if _, err := fit(t, db, 0.5, true); err != nil {
			t.Fatal(err)
		}
		if got := splitRows(t, db, root); !reflect.DeepEqual(got, want) {
			t.Errorf("after rerun and fit --reset-split\ngot  %q\nwant %q", got, want)
		}
		// Images without a split (class layout) get the automatic one,
		// stratified among themselves.
		more := filepath.Join(dir, "more")
		for c, class := range []string{"ants", "bees"} {
			for i := range 4 {
				writePicture(t, filepath.Join(more, class, fmt.Sprintf("%d.png", i)), uint64(100+10*c+i), 40, 36)
			}
		}
		extract(t, db, ExtractOptions{Images: more})
		res, err = fit(t, db, 0.5, false)
		if err != nil || res.NewlySplit != 8 || res.Train != 14 || res.Test != 8 {
			t.Fatalf("fit after more images: %+v, %v; want 8 newly split (2 test per class), 14 train, 8 test", res, err)
		}
		auto := query(t, db, `SELECT i.label, s.part, count(*) FROM splits s JOIN images i ON i.id = s.image_id
			WHERE s.source = 'auto' GROUP BY 1, 2 ORDER BY 1, 2`, nil)
		if fmt.Sprint(auto) != "[[ants test 2] [ants train 2] [bees test 2] [bees train 2]]" {
			t.Errorf("automatic split %v", auto)
		}
		if got := splitRows(t, db, root); len(got) != 22 || !reflect.DeepEqual(got[:14], want) {
			t.Errorf("user rows moved: %q", got)
		}
	})

	t.Run("SplitFlag", func(t *testing.T) {
		dir := t.TempDir()
		db, root := filepath.Join(dir, "f.db"), filepath.Join(dir, "held")
		for i := range 3 {
			writePicture(t, filepath.Join(root, "a", fmt.Sprintf("%d.png", i)), uint64(200+i), 40, 36)
		}
		writePicture(t, filepath.Join(root, "loose.png"), 299, 40, 36) // unlabeled: no split
		extract(t, db, ExtractOptions{Images: root, Split: "test"})
		want := []string{"a/0.png test user", "a/1.png test user", "a/2.png test user"}
		if got := splitRows(t, db, root); !reflect.DeepEqual(got, want) {
			t.Errorf("--split test: %q, want %q", got, want)
		}
		// The user's later word moves them, although the files are known.
		extract(t, db, ExtractOptions{Images: root, Split: "train"})
		want = []string{"a/0.png train user", "a/1.png train user", "a/2.png train user"}
		if got := splitRows(t, db, root); !reflect.DeepEqual(got, want) {
			t.Errorf("--split train on a rerun: %q, want %q", got, want)
		}
		// A rerun without --split leaves the user's split alone.
		extract(t, db, ExtractOptions{Images: root})
		if got := splitRows(t, db, root); !reflect.DeepEqual(got, want) {
			t.Errorf("rerun without --split: %q, want %q", got, want)
		}
	})

	t.Run("ClashClassNamedTrain", func(t *testing.T) {
		// train/ next to a class folder: train is a class, nothing is split
		// by the user, and the note says why.
		dir := t.TempDir()
		db, root := filepath.Join(dir, "f.db"), filepath.Join(dir, "data")
		writePicture(t, filepath.Join(root, "train", "x", "1.png"), 501, 40, 36)
		writePicture(t, filepath.Join(root, "train", "2.png"), 502, 40, 36)
		writePicture(t, filepath.Join(root, "cats", "3.png"), 503, 40, 36)
		sum := extract(t, db, ExtractOptions{Images: root})
		if !strings.Contains(strings.Join(sum.Notes, "\n"), "every first-level folder is a class") {
			t.Errorf("notes %q", sum.Notes)
		}
		labels := query(t, db, `SELECT label, count(*) FROM images GROUP BY label ORDER BY label`, nil)
		if fmt.Sprint(labels) != "[[cats 1] [train 2]]" {
			t.Errorf("labels %v, want cats 1, train 2", labels)
		}
		if got := splitRows(t, db, root); len(got) != 0 {
			t.Errorf("split rows %q, want none", got)
		}
	})

	t.Run("ErrSplitWithSplitFolders", func(t *testing.T) {
		dir := t.TempDir()
		touch(t, filepath.Join(dir, "train", "a", "1.png"))
		_, err := Extract(ctx, ExtractOptions{DB: filepath.Join(dir, "f.db"), Model: m, Layers: []string{"fc2"}, Images: dir, Split: "test"})
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "has split folders (train)") {
			t.Errorf("err = %v", err)
		}
		_, err = Extract(ctx, ExtractOptions{DB: filepath.Join(dir, "f.db"), Model: m, Layers: []string{"fc2"}, Images: dir, Split: "val"})
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), `split "val": want train or test`) {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("ErrTestFracNamesTheCommand", func(t *testing.T) {
		dir := t.TempDir()
		db, root := filepath.Join(dir, "f.db"), filepath.Join(dir, "img")
		for c, class := range []string{"a", "b"} {
			for i := range 5 {
				writePicture(t, filepath.Join(root, class, fmt.Sprintf("%d.png", i)), uint64(300+10*c+i), 40, 36)
			}
		}
		extract(t, db, ExtractOptions{Images: root})
		if _, err := fit(t, db, 0.2, false); err != nil {
			t.Fatal(err)
		}
		_, err := fit(t, db, 0.4, false)
		if !errors.Is(err, store.ErrSplitFrac) || !strings.Contains(err.Error(), "a new automatic split with fraction 0.4 must be asked for") ||
			strings.Contains(err.Error(), "ResetSplit") {
			t.Fatalf("err = %v", err)
		}
		res, err := fit(t, db, 0.4, true)
		if err != nil || res.NewlySplit != 10 || res.Test != 4 {
			t.Errorf("fit --reset-split --test-frac 0.4: %+v, %v; want 10 newly split, 4 held out", res, err)
		}
	})
}

func TestExtract_RelabelReported(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "f.db")
	m := tinyModel(t, tinyVGG, "caffe")
	const n = maxRelabelNotes + 3
	list := func(label string) string {
		var b strings.Builder
		b.WriteString("path,label\n")
		for i := range n {
			fmt.Fprintf(&b, "%02d.png,%s\n", i, label)
		}
		p := filepath.Join(dir, label+".csv")
		testutil.WriteFile(t, p, []byte(b.String()))
		return p
	}
	for i := range n {
		writePicture(t, filepath.Join(dir, fmt.Sprintf("%02d.png", i)), uint64(400+i), 40, 36)
	}
	run := func(label string) ExtractSummary {
		sum, err := Extract(ctx, ExtractOptions{DB: db, Model: m, Layers: []string{"fc2"}, List: list(label)})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	if sum := run("cats"); sum.Relabeled != 0 {
		t.Errorf("first labels counted as relabels: %d", sum.Relabeled)
	}
	if sum := run("cats"); sum.Relabeled != 0 {
		t.Errorf("same labels: %d relabeled", sum.Relabeled)
	}
	sum := run("dogs")
	if sum.Relabeled != n {
		t.Errorf("relabeled = %d, want %d", sum.Relabeled, n)
	}
	var lines []string
	for _, note := range sum.Notes {
		if strings.HasPrefix(note, "relabeled ") {
			lines = append(lines, note)
		}
	}
	if len(lines) != maxRelabelNotes || lines[0] != fmt.Sprintf(`relabeled %s: "cats" → "dogs"`, filepath.Join(dir, "00.png")) {
		t.Errorf("%d relabel lines, first %q", len(lines), lines)
	}
	if last := sum.Notes[len(sum.Notes)-1]; !strings.Contains(last, fmt.Sprintf("more than %d images relabeled", maxRelabelNotes)) {
		t.Errorf("last note %q", last)
	}
	if got := query(t, db, `SELECT count(*) FROM images WHERE label = 'dogs'`, nil); asInt(got[0][0]) != n {
		t.Errorf("labels not changed: %v", got)
	}
}

// TestExtract_IssueScenario replays issue 12's report: an ants/bees set in
// train/ and val/ folders was labelled train/val by the folder, then fit
// split it automatically. Extracting it again with the split layout fixes
// the labels (reported as relabels) and makes val/ the held-out set.
func TestExtract_IssueScenario(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, root := filepath.Join(dir, "f.db"), filepath.Join(dir, "hymenoptera")
	var csv strings.Builder
	csv.WriteString("path,label\n")
	seed := uint64(600)
	for _, part := range []string{"train", "val"} {
		for _, class := range []string{"ants", "bees"} {
			for i := range 4 {
				rel := fmt.Sprintf("%s/%s/%d.png", part, class, i)
				seed++
				writePicture(t, filepath.Join(root, rel), seed, 40, 36)
				fmt.Fprintf(&csv, "%s,%s\n", rel, part) // what the old walk did
			}
		}
	}
	list := filepath.Join(root, "old.csv")
	testutil.WriteFile(t, list, []byte(csv.String()))
	m := tinyModel(t, tinyVGG, "caffe")
	if _, err := Extract(ctx, ExtractOptions{DB: db, Model: m, Layers: []string{"fc2"}, List: list}); err != nil {
		t.Fatal(err)
	}
	if _, err := Fit(ctx, FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "old", Params: classify.DefaultParams(classify.LogReg), TestFrac: 0.25}); err != nil {
		t.Fatal(err)
	}
	sum, err := Extract(ctx, ExtractOptions{DB: db, Model: m, Layers: []string{"fc2"}, Images: root})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Relabeled != 16 || sum.Counts.Extracted != 0 {
		t.Errorf("relabeled %d (want 16), counts %+v", sum.Relabeled, sum.Counts)
	}
	labels := query(t, db, `SELECT label, s.part, s.source, count(*) FROM images i JOIN splits s ON s.image_id = i.id GROUP BY 1, 2, 3 ORDER BY 1, 2`, nil)
	if fmt.Sprint(labels) != "[[ants test user 4] [ants train user 4] [bees test user 4] [bees train user 4]]" {
		t.Errorf("labels and splits %v", labels)
	}
	res, err := Fit(ctx, FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "new", Params: classify.DefaultParams(classify.LogReg), TestFrac: 0.25})
	if err != nil || fmt.Sprint(res.Classes) != "[ants bees]" || res.Train != 8 || res.Test != 8 {
		t.Errorf("fit: %+v, %v", res, err)
	}
}
