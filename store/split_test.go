package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"testing"
)

// addImages stores n images with label ("" = unlabeled), with contents
// prefix0..prefix{n-1}.
func addImages(t *testing.T, db *DB, label, prefix string, n int) {
	t.Helper()
	var items []Item
	for i := range n {
		it := item(prefix+fmt.Sprint(i), []string{fmt.Sprintf("/data/%s/%s%d.jpg", label, prefix, i)})
		it.Paths[0].Label = label
		items = append(items, it)
	}
	if err := db.WriteBatch(context.Background(), 0, Batch{Items: items}); err != nil {
		t.Fatal(err)
	}
}

// partCounts returns label -> [train, test] counts.
func partCounts(t *testing.T, db *DB) map[string][2]int {
	t.Helper()
	rows, err := db.reader().Query(`SELECT i.label, s.part FROM splits s JOIN images i ON i.id = s.image_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][2]int{}
	for rows.Next() {
		var label, part string
		if err := rows.Scan(&label, &part); err != nil {
			t.Fatal(err)
		}
		c := out[label]
		if part == PartTest {
			c[1]++
		} else {
			c[0]++
		}
		out[label] = c
	}
	return out
}

func TestDB_AssignSplit(t *testing.T) {
	ctx := context.Background()

	t.Run("Stratified", func(t *testing.T) {
		db := newDB(t)
		sizes := map[string]int{"cat": 50, "dog": 7, "fox": 1, "owl": 3}
		for label, n := range sizes {
			addImages(t, db, label, label, n)
		}
		addImages(t, db, "", "unlabeled", 5)
		added, err := db.AssignSplit(ctx, 0.2)
		if err != nil {
			t.Fatal(err)
		}
		if want := 61; added != want {
			t.Errorf("assigned %d, want %d (the labeled images)", added, want)
		}
		counts := partCounts(t, db)
		for label, n := range sizes {
			c := counts[label]
			if c[0]+c[1] != n {
				t.Errorf("%s: %d assigned, want %d", label, c[0]+c[1], n)
			}
			if math.Abs(float64(c[1])-0.2*float64(n)) > 1 {
				t.Errorf("%s: %d of %d in test, want within 1 of %.1f", label, c[1], n, 0.2*float64(n))
			}
		}
		if c := counts["cat"]; c[1] != 10 {
			t.Errorf("cat: %d of 50 in test, want 10", c[1])
		}
		if n := queryInt(t, db, `SELECT count(*) FROM splits s JOIN images i ON i.id = s.image_id WHERE i.label IS NULL`); n != 0 {
			t.Errorf("%d unlabeled images were assigned", n)
		}
		// Nothing new: nothing assigned.
		if added, err := db.AssignSplit(ctx, 0.2); err != nil || added != 0 {
			t.Errorf("second AssignSplit = %d, %v; want 0", added, err)
		}
	})

	t.Run("StableWhenImagesAdded", func(t *testing.T) {
		db := newDB(t)
		addImages(t, db, "cat", "a", 9)
		addImages(t, db, "dog", "b", 4)
		if _, err := db.AssignSplit(ctx, 0.25); err != nil {
			t.Fatal(err)
		}
		rowsOf := func() map[int64]string {
			out := map[int64]string{}
			rows, err := db.reader().Query(`SELECT image_id, part, assigned_at FROM splits`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				var part, at string
				rows.Scan(&id, &part, &at)
				out[id] = part + " " + at
			}
			return out
		}
		before := rowsOf()
		// Images arrive in small groups; after each the fractions hold
		// and no earlier assignment moved.
		for round := range 6 {
			addImages(t, db, "cat", fmt.Sprintf("r%dc", round), 1+round%3)
			addImages(t, db, "dog", fmt.Sprintf("r%dd", round), 2)
			if _, err := db.AssignSplit(ctx, 0.25); err != nil {
				t.Fatal(err)
			}
			after := rowsOf()
			for id, row := range before {
				if after[id] != row {
					t.Fatalf("round %d: image %d changed from %q to %q", round, id, row, after[id])
				}
			}
			for label, c := range partCounts(t, db) {
				n := c[0] + c[1]
				if math.Abs(float64(c[1])-0.25*float64(n)) > 1 {
					t.Errorf("round %d, %s: %d of %d in test, want within 1 of %.2f", round, label, c[1], n, 0.25*float64(n))
				}
			}
			before = after
		}
		if len(before) != 13+6*2+(1+2+3+1+2+3) {
			t.Errorf("%d images assigned in all", len(before))
		}
	})

	t.Run("Deterministic", func(t *testing.T) {
		// The same images, written in a different order and split in
		// different steps, get the same parts: by content, not by id.
		bySHA := func(db *DB) map[string]string {
			out := map[string]string{}
			rows, _ := db.reader().Query(`SELECT i.sha256, s.part FROM splits s JOIN images i ON i.id = s.image_id`)
			defer rows.Close()
			for rows.Next() {
				var sha, part string
				rows.Scan(&sha, &part)
				out[sha] = part
			}
			return out
		}
		one, two := newDB(t), newDB(t)
		addImages(t, one, "cat", "x", 20)
		if _, err := one.AssignSplit(ctx, 0.3); err != nil {
			t.Fatal(err)
		}
		for i := 19; i >= 0; i-- {
			if err := two.WriteBatch(ctx, 0, Batch{Items: []Item{item(fmt.Sprint("x", i), []string{fmt.Sprintf("/data/cat/x%d.jpg", i)})}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := two.AssignSplit(ctx, 0.3); err != nil {
			t.Fatal(err)
		}
		if a, b := bySHA(one), bySHA(two); !maps.Equal(a, b) || len(a) != 20 {
			t.Errorf("splits differ:\n%v\n%v", a, b)
		}
	})

	t.Run("ErrSplitFrac", func(t *testing.T) {
		db := newDB(t)
		addImages(t, db, "cat", "a", 3)
		if _, err := db.AssignSplit(ctx, 0.2); err != nil {
			t.Fatal(err)
		}
		_, err := db.AssignSplit(ctx, 0.3)
		if !errors.Is(err, ErrSplitFrac) {
			t.Fatalf("got %v, want ErrSplitFrac", err)
		}
		wantErr(t, err, "0.2", "0.3")
		if v, ok, _ := db.Setting(ctx, SettingTestFraction); !ok || v != "0.2" {
			t.Errorf("stored fraction = %q, %v; want 0.2", v, ok)
		}
		// ResetSplit starts over with the new fraction.
		if _, err := db.ResetSplit(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := db.AssignSplit(ctx, 0.3); err != nil || n != 3 {
			t.Errorf("AssignSplit after reset = %d, %v; want 3", n, err)
		}
	})

	t.Run("BadFraction", func(t *testing.T) {
		db := newDB(t)
		for _, f := range []float64{-0.1, 1, math.NaN()} {
			_, err := db.AssignSplit(ctx, f)
			wantErr(t, err, "test fraction")
		}
	})
}
