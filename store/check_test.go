package store

import (
	"context"
	"math"
	"strings"
	"testing"
)

func TestDB_Check(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	fs := testSet(t, db, "fc2", 4)
	var items []Item
	for _, c := range []string{"a", "b", "c", "d"} {
		items = append(items, item(c, []string{"/data/cat/" + c + ".jpg"}, fs))
	}
	if err := db.WriteBatch(ctx, 0, Batch{Items: items}); err != nil {
		t.Fatal(err)
	}

	t.Run("Healthy", func(t *testing.T) {
		rep, err := db.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Healthy() || rep.Images != 4 || rep.Vectors != 4 || rep.Pathless != 0 {
			t.Errorf("Check = %+v, want healthy with 4 images and 4 vectors", rep)
		}
	})

	t.Run("Planted", func(t *testing.T) {
		raw := rawDB(t, db.Path())
		b, c, d := mustImage(t, db, "b"), mustImage(t, db, "c"), mustImage(t, db, "d")
		// A vector one float short, a NaN, a +Inf, and a vector of a
		// feature set that does not exist (foreign keys off here).
		mustExec(t, raw, `UPDATE features SET vector = substr(vector, 1, 12) WHERE image_id = ?`, b.ID)
		mustExec(t, raw, `UPDATE features SET vector = ? WHERE image_id = ?`,
			EncodeVector([]float32{1, 2, float32(math.NaN()), 4}), c.ID)
		mustExec(t, raw, `INSERT INTO features (image_id, feature_set_id, vector) VALUES (?, 77, ?)`,
			d.ID, EncodeVector([]float32{1}))
		mustExec(t, raw, `UPDATE features SET vector = ? WHERE image_id = ? AND feature_set_id = ?`,
			EncodeVector([]float32{0, 0, 0, float32(math.Inf(1))}), d.ID, fs.ID)

		rep, err := db.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Healthy() {
			t.Fatal("Check found nothing")
		}
		type key struct {
			kind  string
			image int64
		}
		found := map[key]Problem{}
		for _, p := range rep.Problems {
			found[key{p.Kind, p.ImageID}] = p
		}
		for _, want := range []struct {
			kind  string
			image int64
			parts []string
		}{
			{ProblemVectorLength, b.ID, []string{"12 bytes", "want a blob of 16", "dim 4"}},
			{ProblemNonFinite, c.ID, []string{"NaN", "index 2"}},
			{ProblemNonFinite, d.ID, []string{"+Inf", "index 3"}},
			{ProblemForeignKey, 0, []string{"features row", "missing feature_sets row"}},
		} {
			p, ok := found[key{want.kind, want.image}]
			if !ok {
				t.Errorf("no %s problem for image %d in %v", want.kind, want.image, rep.Problems)
				continue
			}
			if want.image != 0 && p.FeatureSetID != fs.ID {
				t.Errorf("%s: feature set %d, want %d", want.kind, p.FeatureSetID, fs.ID)
			}
			for _, part := range want.parts {
				if !strings.Contains(p.Message, part) {
					t.Errorf("%s message %q lacks %q", want.kind, p.Message, part)
				}
			}
		}
		if len(rep.Problems) != 4 {
			t.Errorf("%d problems, want 4: %v", len(rep.Problems), rep.Problems)
		}
	})
}
