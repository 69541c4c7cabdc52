package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"
)

// simData is a feature set of vectors we know, stored through WriteBatch.
type simData struct {
	db   *DB
	set  FeatureSet
	ids  []int64     // image id of vecs[i]
	vecs [][]float32 // the stored vectors
	path map[int64]string
}

// sparseVec is a random non-negative vector with about density non-zeros,
// like a ReLU layer's output.
func sparseVec(r *rand.Rand, dim int, density float64) []float32 {
	v := make([]float32, dim)
	for i := range v {
		if r.Float64() < density {
			v[i] = float32(r.ExpFloat64())
		}
	}
	return v
}

// newSimData stores n vectors of dim values in a fresh database. Two of them
// are all zeros and three are copies of others (exact ties). A second set
// with another dim has vectors for the same images, which must never mix in.
func newSimData(t *testing.T, n, dim int) *simData {
	t.Helper()
	ctx := context.Background()
	db := newDB(t)
	set := testSet(t, db, "fc2", dim)
	other := testSet(t, db, "fc1", dim+1)
	r := rand.New(rand.NewPCG(uint64(n), uint64(dim)))
	d := &simData{db: db, set: set, path: map[int64]string{}}
	var b Batch
	for i := range n {
		v := sparseVec(r, dim, 0.3)
		switch i {
		case 5, n - 1:
			v = make([]float32, dim)
		case 7, 8:
			v = slices.Clone(d.vecs[3])
		case 20:
			v = slices.Clone(d.vecs[10])
		}
		d.vecs = append(d.vecs, v)
		p := fmt.Sprintf("/data/class%d/img%03d.jpg", i%3, i)
		it := item(fmt.Sprint("image-", i), []string{p})
		it.Vectors = []Vector{{FeatureSetID: set.ID, Data: v}, {FeatureSetID: other.ID, Data: sparseVec(r, dim+1, 0.9)}}
		b.Items = append(b.Items, it)
	}
	if err := db.WriteBatch(ctx, 0, b); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		im, ok, err := db.ImageBySHA(ctx, shaOf(fmt.Sprint("image-", i)))
		if err != nil || !ok {
			t.Fatalf("image %d: %v %v", i, ok, err)
		}
		d.ids = append(d.ids, im.ID)
		d.path[im.ID] = im.Path
	}
	return d
}

// refDistance is the reference: float64, straight from the definitions.
func refDistance(m Metric, a, b []float32) float64 {
	var dot, na, nb, l2 float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
		l2 += (x - y) * (x - y)
	}
	if m == L2 {
		return math.Sqrt(l2)
	}
	if nb == 0 {
		return 1
	}
	return 1 - dot/(math.Sqrt(na)*math.Sqrt(nb))
}

// reference ranks every stored vector against q (ties by image id) and
// returns the k best, without exclude.
func (d *simData) reference(m Metric, q []float32, k int, exclude int64) []scored {
	var all []scored
	for i, v := range d.vecs {
		if d.ids[i] != exclude {
			all = append(all, scored{d.ids[i], refDistance(m, q, v)})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].less(all[j]) })
	return all[:min(k, len(all))]
}

func (d *simData) refByID(m Metric, q []float32) map[int64]float64 {
	out := map[int64]float64{}
	for i, v := range d.vecs {
		out[d.ids[i]] = refDistance(m, q, v)
	}
	return out
}

func TestDB_Nearest(t *testing.T) {
	ctx := context.Background()
	// 67 is not a multiple of any SIMD width: the scalar tails run too.
	d := newSimData(t, 300, 67)
	r := rand.New(rand.NewPCG(9, 9))
	queries := map[string]struct {
		v       []float32
		exclude int64
	}{
		"Stored":          {d.vecs[3], d.ids[3]}, // has two exact copies (images 7 and 8)
		"StoredIncluded":  {d.vecs[10], 0},       // itself at distance 0, and its copy
		"New":             {sparseVec(r, 67, 0.3), 0},
		"NewDense":        {sparseVec(r, 67, 1), d.ids[0]},
		"NegativeEntries": {func() []float32 { v := sparseVec(r, 67, 0.5); v[3] = -2; return v }(), 0},
	}
	type method struct {
		name    string
		opts    NearestOptions
		tol     float64
		exactly bool // same ranking as the reference, ties included
	}
	methods := []method{
		{"C", NearestOptions{Method: SearchC}, 1e-12, true},
		{"C1Thread", NearestOptions{Method: SearchC, Threads: 1}, 1e-12, true},
		{"C7Threads", NearestOptions{Method: SearchC, Threads: 7}, 1e-12, true},
		{"C500Threads", NearestOptions{Method: SearchC, Threads: 500}, 1e-12, true}, // more threads than rows: empty ranges
		{"Auto", NearestOptions{}, 1e-12, true},
		{"Go", NearestOptions{Method: SearchGo}, 1e-12, true},
		// sqlite-vec accumulates in float32.
		{"SQL", NearestOptions{Method: SearchSQL}, 1e-5, false},
	}
	for _, metric := range []Metric{Cosine, L2} {
		for qname, q := range queries {
			for _, k := range []int{1, 10, 400} {
				want := d.reference(metric, q.v, k, q.exclude)
				byID := d.refByID(metric, q.v)
				for _, m := range methods {
					t.Run(fmt.Sprintf("%s/%s/k%d/%s", metric, qname, k, m.name), func(t *testing.T) {
						o := m.opts
						o.K, o.Metric, o.Exclude = k, metric, q.exclude
						got, err := d.db.Nearest(ctx, d.set.ID, q.v, o)
						if err != nil {
							t.Fatal(err)
						}
						if len(got) != len(want) {
							t.Fatalf("got %d neighbours, want %d", len(got), len(want))
						}
						for i, g := range got {
							w := want[i]
							if m.exactly && g.ImageID != w.id {
								t.Fatalf("rank %d: image %d (%.15f), want %d (%.15f)", i+1, g.ImageID, g.Distance, w.id, w.dist)
							}
							if diff := math.Abs(g.Distance - w.dist); diff > m.tol {
								t.Errorf("rank %d: distance %.15f, want %.15f (diff %.3g > %g)", i+1, g.Distance, w.dist, diff, m.tol)
							}
							// A different image at this rank is only
							// allowed as a near-tie: its true distance
							// must be that of the rank.
							if diff := math.Abs(byID[g.ImageID] - w.dist); diff > m.tol {
								t.Errorf("rank %d: image %d is at %.15f, the rank's distance is %.15f", i+1, g.ImageID, byID[g.ImageID], w.dist)
							}
							if g.ImageID == q.exclude {
								t.Errorf("rank %d: the excluded image %d", i+1, g.ImageID)
							}
							if g.Path != d.path[g.ImageID] || g.SHA256 == "" || g.Label != filepath.Base(filepath.Dir(g.Path)) {
								t.Errorf("rank %d: image %d described as %+v, want path %s", i+1, g.ImageID, g, d.path[g.ImageID])
							}
						}
					})
				}
			}
		}
	}

	t.Run("TiesByImageID", func(t *testing.T) {
		got, err := d.db.Nearest(ctx, d.set.ID, d.vecs[3], NearestOptions{K: 3})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, g := range got {
			ids = append(ids, g.ImageID)
			if g.Distance != 0 {
				t.Errorf("image %d: distance %g, want 0 (identical vector)", g.ImageID, g.Distance)
			}
		}
		if want := []int64{d.ids[3], d.ids[7], d.ids[8]}; !slices.Equal(ids, want) {
			t.Errorf("got %v, want %v", ids, want)
		}
	})
	t.Run("ZeroVectorsAtCosineOne", func(t *testing.T) {
		for _, m := range []SearchMethod{SearchC, SearchGo, SearchSQL} {
			got, err := d.db.Nearest(ctx, d.set.ID, d.vecs[0], NearestOptions{K: 300, Method: m})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range got {
				if g.ImageID == d.ids[5] || g.ImageID == d.ids[299] {
					if math.Abs(g.Distance-1) > 1e-7 {
						t.Errorf("%s: zero vector of image %d at %g, want 1", m, g.ImageID, g.Distance)
					}
				}
			}
		}
	})
	t.Run("BaselineKernels", func(t *testing.T) {
		useAVX2 = false
		defer func() { useAVX2 = true }()
		for _, metric := range []Metric{Cosine, L2} {
			q := queries["New"].v
			want := d.reference(metric, q, 20, 0)
			got, err := d.db.Nearest(ctx, d.set.ID, q, NearestOptions{K: 20, Metric: metric, Method: SearchC})
			if err != nil {
				t.Fatal(err)
			}
			for i, g := range got {
				if g.ImageID != want[i].id || math.Abs(g.Distance-want[i].dist) > 1e-12 {
					t.Errorf("%s rank %d: image %d at %.15f, want %d at %.15f", metric, i+1, g.ImageID, g.Distance, want[i].id, want[i].dist)
				}
			}
		}
	})
}

func TestDB_NearestErrors(t *testing.T) {
	ctx := context.Background()
	d := newSimData(t, 40, 16)
	ok := d.vecs[0]
	for _, tc := range []struct {
		name  string
		set   int64
		q     []float32
		o     NearestOptions
		is    error
		parts []string
	}{
		{"ErrDimMismatch", d.set.ID, make([]float32, 15), NearestOptions{K: 3}, ErrDimMismatch, []string{"query has 15 values", "dim 16"}},
		{"ErrZeroVector", d.set.ID, make([]float32, 16), NearestOptions{K: 3}, ErrZeroVector, []string{"cosine", "l2"}},
		{"ErrNonFinite", d.set.ID, append(slices.Clone(ok[:15]), float32(math.NaN())), NearestOptions{K: 3, Metric: L2}, ErrNonFinite, []string{"element 15"}},
		{"ErrUnknownFeatureSet", 99, ok, NearestOptions{K: 3}, ErrUnknownFeatureSet, []string{"99"}},
		{"ErrBadMetric", d.set.ID, ok, NearestOptions{K: 3, Metric: "manhattan"}, ErrBadMetric, []string{`"manhattan"`, "cosine or l2"}},
		{"BadK", d.set.ID, ok, NearestOptions{K: 0}, nil, []string{"k = 0"}},
		{"BadMethod", d.set.ID, ok, NearestOptions{K: 1, Method: "faiss"}, nil, []string{`"faiss"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.db.Nearest(ctx, tc.set, tc.q, tc.o)
			wantErr(t, err, tc.parts...)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
	t.Run("L2ZeroQueryOK", func(t *testing.T) {
		got, err := d.db.Nearest(ctx, d.set.ID, make([]float32, 16), NearestOptions{K: 2, Metric: L2})
		if err != nil {
			t.Fatal(err)
		}
		// Image 5 is all zeros: at distance 0 from a zero query.
		if len(got) != 2 || got[0].ImageID != d.ids[5] || got[0].Distance != 0 {
			t.Errorf("got %+v, want image %d at 0 first", got, d.ids[5])
		}
	})
	t.Run("ErrDimMismatchStored", func(t *testing.T) {
		raw := rawDB(t, d.db.Path())
		mustExec(t, raw, `UPDATE features SET vector = x'0000803f' WHERE image_id = ? AND feature_set_id = ?`, d.ids[11], d.set.ID)
		for _, m := range []SearchMethod{SearchC, SearchGo} {
			_, err := d.db.Nearest(ctx, d.set.ID, ok, NearestOptions{K: 3, Method: m})
			wantErr(t, err, fmt.Sprintf("image %d", d.ids[11]), "4 bytes, want 64", "pipeline check")
			if !errors.Is(err, ErrDimMismatch) {
				t.Errorf("%s: error %v is not ErrDimMismatch", m, err)
			}
		}
	})
	t.Run("EmptySet", func(t *testing.T) {
		empty := testSet(t, d.db, "fc3", 16)
		for _, m := range []SearchMethod{SearchC, SearchGo, SearchSQL} {
			got, err := d.db.Nearest(ctx, empty.ID, ok, NearestOptions{K: 3, Method: m})
			if err != nil || len(got) != 0 {
				t.Errorf("%s: got %v, %v; want no neighbours", m, got, err)
			}
		}
	})
}

func TestDB_NearestCancel(t *testing.T) {
	d := newSimData(t, 50, 8)
	ctx, cancel := context.WithCancel(context.Background())
	testHookScan = func() {
		cancel()
		time.Sleep(20 * time.Millisecond) // the watcher raises the stop flag
	}
	defer func() { testHookScan = nil }()
	got, err := d.db.Nearest(ctx, d.set.ID, d.vecs[1], NearestOptions{K: 5, Method: SearchC, Threads: 2})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, %v; want context.Canceled", got, err)
	}
}

func TestDB_NearestReadOnly(t *testing.T) {
	ctx := context.Background()
	d := newSimData(t, 50, 8)
	ro, err := Open(d.db.Path(), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	want := d.reference(L2, d.vecs[1], 5, d.ids[1])
	got, err := ro.Nearest(ctx, d.set.ID, d.vecs[1], NearestOptions{K: 5, Metric: L2, Exclude: d.ids[1]})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i].ImageID != want[i].id {
			t.Errorf("rank %d: image %d, want %d", i+1, got[i].ImageID, want[i].id)
		}
	}
}

func TestDB_PathsByRelPath(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	a, b := item("a", []string{"/data/cat/1.jpg", "/data/cat/1-copy.jpg"}), item("b", []string{"/other/cat/1.jpg"})
	b.Paths[0].RelPath = "cat/1.jpg" // another root, same relative path
	if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{a, b}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.PathsByRelPath(ctx, "cat/1.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != "/data/cat/1.jpg" || got[0].SHA256 != shaOf("a") ||
		got[1].Path != "/other/cat/1.jpg" || got[1].SHA256 != shaOf("b") || got[0].ImageID == got[1].ImageID {
		t.Errorf("got %+v", got)
	}
	if got, err := db.PathsByRelPath(ctx, "dog/1.jpg"); err != nil || len(got) != 0 {
		t.Errorf("unknown relpath: %v, %v", got, err)
	}
}

func TestParseMetric(t *testing.T) {
	for in, want := range map[string]Metric{"": Cosine, "cosine": Cosine, "COS": Cosine, "l2": L2, "Euclidean": L2} {
		if got, err := ParseMetric(in); err != nil || got != want {
			t.Errorf("ParseMetric(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseMetric("dot"); !errors.Is(err, ErrBadMetric) {
		t.Errorf("ParseMetric(dot): %v", err)
	}
	for in, want := range map[string]SearchMethod{"": SearchAuto, "auto": SearchAuto, "C": SearchC, "go": SearchGo, "sql": SearchSQL} {
		if got, err := ParseSearchMethod(in); err != nil || got != want {
			t.Errorf("ParseSearchMethod(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseSearchMethod("vec0"); err == nil {
		t.Error("ParseSearchMethod(vec0): no error")
	}
}

// BenchmarkDB_Nearest times one k=10 cosine query over 2,000 stored
// 4096-d vectors (VGG-16 fc2) with each method. bench/similar measures 10k
// and 100k (docs/SIMILAR.md).
func BenchmarkDB_Nearest(b *testing.B) {
	ctx := context.Background()
	db, err := Open(filepath.Join(b.TempDir(), "features.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	set, err := db.EnsureFeatureSet(ctx, FeatureSet{ModelSHA256: shaOf("m"), ModelName: "vgg16", Layer: "fc7",
		Pooling: PoolNone, Preprocess: "{}", Shape: "4096", Dim: 4096})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	for i := 0; i < n; i += 200 {
		var bt Batch
		for j := i; j < i+200; j++ {
			it := item(fmt.Sprint("img", j), []string{fmt.Sprintf("/data/c/%d.jpg", j)})
			it.Vectors = []Vector{{FeatureSetID: set.ID, Data: sparseVec(r, 4096, 0.3)}}
			bt.Items = append(bt.Items, it)
		}
		if err := db.WriteBatch(ctx, 0, bt); err != nil {
			b.Fatal(err)
		}
	}
	q := sparseVec(r, 4096, 0.3)
	for _, bc := range []struct {
		name string
		o    NearestOptions
		base bool
	}{
		{"C", NearestOptions{Method: SearchC}, false},
		{"C1Thread", NearestOptions{Method: SearchC, Threads: 1}, false},
		{"C1ThreadBaselineKernel", NearestOptions{Method: SearchC, Threads: 1}, true},
		{"Go", NearestOptions{Method: SearchGo}, false},
		{"SQL", NearestOptions{Method: SearchSQL}, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			useAVX2 = !bc.base
			defer func() { useAVX2 = true }()
			o := bc.o
			o.K = 10
			b.SetBytes(n * 4096 * 4)
			for b.Loop() {
				if _, err := db.Nearest(ctx, set.ID, q, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
