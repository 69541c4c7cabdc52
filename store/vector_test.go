package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"

	"pipeline/internal/testutil"
)

func TestEncodeVector(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// IEEE-754 binary32, little-endian: 1 = 0x3f800000,
		// -2.5 = 0xc0200000, smallest subnormal = 0x00000001.
		got := EncodeVector([]float32{1, -2.5, math.SmallestNonzeroFloat32})
		want := []byte{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0x01, 0x00, 0x00, 0x00}
		if !bytes.Equal(got, want) {
			t.Errorf("got % x, want % x", got, want)
		}
		back, err := DecodeVector(got)
		if err != nil || !slices.Equal(back, []float32{1, -2.5, math.SmallestNonzeroFloat32}) {
			t.Errorf("DecodeVector = %v, %v", back, err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if b := EncodeVector(nil); len(b) != 0 {
			t.Errorf("got % x", b)
		}
	})
	t.Run("ErrLength", func(t *testing.T) {
		_, err := DecodeVector(make([]byte, 7))
		wantErr(t, err, "7 bytes")
	})
}

func FuzzDecodeVector(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f})
	f.Add([]byte{0, 0, 0xc0, 0x7f, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeVector(b)
		if len(b)%4 != 0 {
			if err == nil {
				t.Fatalf("no error for %d bytes", len(b))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := EncodeVector(v); !bytes.Equal(got, b) {
			t.Fatalf("round trip: % x -> % x", b, got)
		}
		if k := nonFinite(b); k >= 0 != slices.ContainsFunc(v, func(x float32) bool {
			return math.IsNaN(float64(x)) || math.IsInf(float64(x), 0)
		}) {
			t.Fatalf("nonFinite = %d for %v", k, v)
		}
	})
}

// TestSQLiteVec checks that stored vectors are what sqlite-vec reads, against
// values computed here in float64.
func TestSQLiteVec(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	const dim = 5
	fs := testSet(t, db, "fc2", dim)
	// Multiples of 1/64 print exactly with vec_to_json's 6 decimals.
	vecs := map[string][]float32{
		"a": {0.5, -1.25, 3, 0.015625, 2},
		"b": {1, 1, 1, 1, 1},
		"c": {-0.5, 0.25, -3, 4, 0.125},
		"d": {10, 0, 0, 0, -0.75},
	}
	var items []Item
	for _, c := range []string{"a", "b", "c", "d"} {
		it := item(c, []string{"/data/cat/" + c + ".jpg"})
		it.Vectors = []Vector{{FeatureSetID: fs.ID, Data: vecs[c]}}
		items = append(items, it)
	}
	if err := db.WriteBatch(ctx, 0, Batch{Items: items}); err != nil {
		t.Fatal(err)
	}
	q := []float32{0.3, -0.2, 1.7, 0.9, -1.1}

	t.Run("Functions", func(t *testing.T) {
		cols, rows, err := db.Query(ctx, `SELECT sha256, vec_length(vector), vec_to_json(vector),
			vec_distance_cosine(vector, :q), vec_distance_L2(vector, :q), vec_f32(vec_to_json(vector)) = vector
			FROM feature_vectors WHERE feature_set_id = :set ORDER BY image_id`,
			map[string]any{"q": q, ":set": fs.ID}, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(cols) != 6 || len(rows) != 4 {
			t.Fatalf("got %d columns, %d rows", len(cols), len(rows))
		}
		for i, r := range rows {
			c := []string{"a", "b", "c", "d"}[i]
			v := vecs[c]
			if r[0] != shaOf(c) {
				t.Errorf("row %d: sha %v, want content %s", i, r[0], c)
			}
			if r[1] != int64(dim) {
				t.Errorf("%s: vec_length = %v, want %d", c, r[1], dim)
			}
			var fromJSON []float64
			if err := json.Unmarshal([]byte(r[2].(string)), &fromJSON); err != nil {
				t.Fatalf("%s: vec_to_json %v: %v", c, r[2], err)
			}
			for k := range v {
				if fromJSON[k] != float64(v[k]) {
					t.Errorf("%s: vec_to_json[%d] = %v, want %v", c, k, fromJSON[k], v[k])
				}
			}
			if got, want := r[3].(float64), testutil.CosineDistance(v, q); math.Abs(got-want) > 1e-6 {
				t.Errorf("%s: vec_distance_cosine = %.9f, want %.9f", c, got, want)
			}
			if got, want := r[4].(float64), l2(v, q); math.Abs(got-want) > 1e-6*want {
				t.Errorf("%s: vec_distance_L2 = %.9f, want %.9f", c, got, want)
			}
			if r[5] != int64(1) {
				t.Errorf("%s: vec_f32(vec_to_json(vector)) differs from the stored BLOB", c)
			}
		}
	})

	t.Run("Vec0KNN", func(t *testing.T) {
		_, rows, err := db.Query(ctx, fmt.Sprintf(`
			CREATE VIRTUAL TABLE temp.knn USING vec0(embedding float[%d]);
			INSERT INTO temp.knn (rowid, embedding) SELECT image_id, vector FROM features WHERE feature_set_id = :set;
			SELECT rowid, distance FROM temp.knn WHERE embedding MATCH :q AND k = 3 ORDER BY distance;`, dim),
			map[string]any{"q": q, "set": fs.ID}, true)
		if err != nil {
			t.Fatal(err)
		}
		type hit struct {
			id   int64
			dist float64
		}
		var want []hit
		for _, c := range []string{"a", "b", "c", "d"} {
			want = append(want, hit{mustImage(t, db, c).ID, l2(vecs[c], q)})
		}
		sort.Slice(want, func(i, j int) bool { return want[i].dist < want[j].dist })
		want = want[:3]
		if len(rows) != 3 {
			t.Fatalf("got %d rows, want 3", len(rows))
		}
		for i, r := range rows {
			if r[0] != want[i].id || math.Abs(r[1].(float64)-want[i].dist) > 1e-5 {
				t.Errorf("hit %d: %v, want %+v", i, r, want[i])
			}
		}
	})
}

func l2(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}
