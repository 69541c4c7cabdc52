package store

import (
	"container/heap"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"pipeline/errclass"
)

// Similarity-search errors.
var (
	// ErrZeroVector: a cosine query with an all-zero vector, for which
	// the cosine distance to anything is undefined.
	ErrZeroVector = errclass.New(errclass.Data, "query vector is all zeros")
	// ErrBadMetric: a metric other than cosine or l2.
	ErrBadMetric = errclass.New(errclass.Usage, "unknown distance metric")
)

// Metric is a distance between two vectors of one feature set.
type Metric string

// Metrics.
const (
	// Cosine is 1 - a·b / (|a| |b|), in [0, 2]. A stored vector that is
	// all zeros is at distance 1 from every query (as in scikit-learn's
	// cosine_distances, which leaves zero rows unnormalized).
	Cosine Metric = "cosine"
	// L2 is the Euclidean distance |a - b| (not squared).
	L2 Metric = "l2"
)

// ParseMetric reads a metric name: cosine or l2 (euclidean), any case.
func ParseMetric(s string) (Metric, error) {
	switch strings.ToLower(s) {
	case "", "cosine", "cos":
		return Cosine, nil
	case "l2", "euclidean":
		return L2, nil
	}
	return "", fmt.Errorf("metric %q: %w: want cosine or l2", s, ErrBadMetric)
}

// SearchMethod says how Nearest computes. Every method is an exact search
// over all of the set's vectors; they differ in speed and in the precision
// of the distances (see docs/SIMILAR.md for measurements).
type SearchMethod string

// Search methods.
const (
	// SearchAuto is SearchC.
	SearchAuto SearchMethod = ""
	// SearchC scans the vectors in C on read-only connections of its own
	// that map the database file (mmap), one rowid range per thread, with
	// SIMD kernels (AVX2 when the CPU has it) that accumulate in float64.
	SearchC SearchMethod = "c"
	// SearchGo streams the vectors out of SQLite through database/sql and
	// computes in Go, in float64. The slowest; a cross-check for SearchC.
	SearchGo SearchMethod = "go"
	// SearchSQL lets SQLite do it: vec_distance_cosine / vec_distance_L2
	// over the features table, ORDER BY distance LIMIT k. sqlite-vec
	// computes in float32, so distances carry float32 rounding (about 1e-7
	// relative per term) and near-ties may come out in another order.
	SearchSQL SearchMethod = "sql"
)

// ParseSearchMethod reads a method name: auto (or ""), c, go or sql.
func ParseSearchMethod(s string) (SearchMethod, error) {
	switch m := SearchMethod(strings.ToLower(s)); m {
	case "auto":
		return SearchAuto, nil
	case SearchAuto, SearchC, SearchGo, SearchSQL:
		return m, nil
	}
	return "", fmt.Errorf("search method %q: want auto, c, go or sql", s)
}

// Neighbor is one image found by Nearest.
type Neighbor struct {
	ImageID  int64   `json:"image_id"`
	SHA256   string  `json:"sha256"`
	Path     string  `json:"path"`  // canonical path
	Label    string  `json:"label"` // "" = unlabeled
	Distance float64 `json:"distance"`
}

// NearestOptions configure Nearest.
type NearestOptions struct {
	K       int    // how many neighbours (required, > 0)
	Metric  Metric // "" = Cosine
	Exclude int64  // an image id left out of the results (the query image); 0 = none
	Method  SearchMethod
	Threads int // SearchC: scanning threads; 0 = one per CPU (at most 8) and per 4096 vectors
}

// Nearest returns the K images of feature set setID whose vectors are
// closest to query, nearest first; ties are broken by image id. Every
// method is an exact search over all of the set's vectors.
func (db *DB) Nearest(ctx context.Context, setID int64, query []float32, o NearestOptions) ([]Neighbor, error) {
	fs, err := db.FeatureSet(ctx, setID)
	if err != nil {
		return nil, err
	}
	if o.Metric, err = ParseMetric(string(o.Metric)); err != nil {
		return nil, err
	}
	if o.K <= 0 {
		return nil, fmt.Errorf("nearest in %s: k = %d must be positive", fs, o.K)
	}
	if len(query) != fs.Dim {
		return nil, fmt.Errorf("nearest in %s: %w: query has %d values, the set has dim %d", fs, ErrDimMismatch, len(query), fs.Dim)
	}
	if k := nonFiniteF32(query); k >= 0 {
		return nil, fmt.Errorf("nearest in %s: %w (query element %d is %v)", fs, ErrNonFinite, k, query[k])
	}
	if o.Metric == Cosine && norm2(query) == 0 {
		return nil, fmt.Errorf("nearest in %s: %w: cosine distance is undefined; use the l2 metric", fs, ErrZeroVector)
	}
	var hits []scored
	switch o.Method {
	case SearchAuto, SearchC:
		hits, err = db.cNearest(ctx, fs, query, o)
	case SearchGo:
		hits, err = db.goNearest(ctx, fs, query, o)
	case SearchSQL:
		hits, err = db.sqlNearest(ctx, fs, query, o)
	default:
		return nil, fmt.Errorf("nearest in %s: unknown search method %q", fs, o.Method)
	}
	if err != nil {
		return nil, err
	}
	if o.Metric == Cosine {
		// Rounding can put an identical vector a hair below 0; clamping
		// keeps the order (it is monotone).
		for i := range hits {
			hits[i].dist = min(max(hits[i].dist, 0), 2)
		}
	}
	return db.describe(ctx, hits)
}

// PathMatch is a stored path and the image it shows.
type PathMatch struct {
	Path    string // absolute
	RelPath string
	ImageID int64
	SHA256  string
}

// PathsByRelPath returns the stored paths whose relpath (relative to the
// --images root, or as listed) is rel, oldest first. Datasets extracted from
// different roots can share relative paths, so there may be several.
func (db *DB) PathsByRelPath(ctx context.Context, rel string) ([]PathMatch, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT p.path, p.relpath, p.image_id, i.sha256
		FROM image_paths p JOIN images i ON i.id = p.image_id WHERE p.relpath = ? ORDER BY p.rowid`, rel)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", rel, err)
	}
	defer rows.Close()
	var out []PathMatch
	for rows.Next() {
		var m PathMatch
		if err := rows.Scan(&m.Path, &m.RelPath, &m.ImageID, &m.SHA256); err != nil {
			return nil, fmt.Errorf("lookup %s: %w", rel, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lookup %s: %w", rel, err)
	}
	return out, nil
}

// scored is an image id and its distance to the query.
type scored struct {
	id   int64
	dist float64
}

// less orders by distance, then image id: the result order.
func (a scored) less(b scored) bool {
	return a.dist < b.dist || (a.dist == b.dist && a.id < b.id)
}

// topK keeps the k best scored items: a max-heap whose root is the worst.
type topK struct {
	k     int
	items []scored
}

func (h *topK) Len() int           { return len(h.items) }
func (h *topK) Less(i, j int) bool { return h.items[j].less(h.items[i]) }
func (h *topK) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *topK) Push(x any)         { h.items = append(h.items, x.(scored)) }
func (h *topK) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

// offer adds s if it is among the k best so far.
func (h *topK) offer(s scored) {
	if len(h.items) < h.k {
		heap.Push(h, s)
		return
	}
	if s.less(h.items[0]) {
		h.items[0] = s
		heap.Fix(h, 0)
	}
}

// sorted returns the kept items, best first.
func (h *topK) sorted() []scored {
	out := append([]scored(nil), h.items...)
	sort.Slice(out, func(i, j int) bool { return out[i].less(out[j]) })
	return out
}

// goNearest streams the set's vectors and computes distances in float64.
func (db *DB) goNearest(ctx context.Context, fs FeatureSet, query []float32, o NearestOptions) ([]scored, error) {
	q := make([]float64, len(query))
	for i, x := range query {
		q[i] = float64(x)
	}
	// The query's squared norm by the same arithmetic as the rows'.
	_, qq := dotNormBlob(q, EncodeVector(query))
	h := &topK{k: o.K}
	rows, err := db.reader().QueryContext(ctx, `SELECT image_id, vector FROM features WHERE feature_set_id = ?`, fs.ID)
	if err != nil {
		return nil, fmt.Errorf("nearest in %s: %w", fs, err)
	}
	defer rows.Close()
	want := 4 * fs.Dim
	for rows.Next() {
		var id int64
		var blob sql.RawBytes
		if err := rows.Scan(&id, &blob); err != nil {
			return nil, fmt.Errorf("nearest in %s: %w", fs, err)
		}
		if id == o.Exclude {
			continue
		}
		if len(blob) != want {
			return nil, fmt.Errorf("nearest in %s: image %d: %w: %d bytes, want %d (run `pipeline check`)",
				fs, id, ErrDimMismatch, len(blob), want)
		}
		var d float64
		if o.Metric == L2 {
			d = l2Blob(q, blob)
		} else {
			dot, ss := dotNormBlob(q, blob)
			d = cosineDist(dot, qq, ss)
		}
		h.offer(scored{id, d})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("nearest in %s: %w", fs, err)
	}
	return h.sorted(), nil
}

// sqlNearest asks SQLite (sqlite-vec's scalar distance functions).
func (db *DB) sqlNearest(ctx context.Context, fs FeatureSet, query []float32, o NearestOptions) ([]scored, error) {
	fn := "vec_distance_cosine"
	if o.Metric == L2 {
		fn = "vec_distance_L2"
	}
	// sqlite-vec's cosine of a zero vector is 0/0, which SQLite turns
	// into NULL (and NULL sorts first): 1 is the documented convention.
	rows, err := db.reader().QueryContext(ctx, `SELECT image_id, COALESCE(`+fn+`(vector, ?), 1.0) AS d
		FROM features WHERE feature_set_id = ? AND image_id IS NOT ?
		ORDER BY d, image_id LIMIT ?`, EncodeVector(query), fs.ID, o.Exclude, o.K)
	if err != nil {
		return nil, fmt.Errorf("nearest in %s: %w", fs, err)
	}
	defer rows.Close()
	var out []scored
	for rows.Next() {
		var s scored
		if err := rows.Scan(&s.id, &s.dist); err != nil {
			return nil, fmt.Errorf("nearest in %s: %w", fs, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("nearest in %s: %w", fs, err)
	}
	return out, nil
}

// describe adds the images' hashes, canonical paths and labels.
func (db *DB) describe(ctx context.Context, hits []scored) ([]Neighbor, error) {
	out := make([]Neighbor, len(hits))
	if len(hits) == 0 {
		return out, nil
	}
	idx := map[int64]int{}
	args := make([]any, len(hits))
	for i, h := range hits {
		out[i] = Neighbor{ImageID: h.id, Distance: h.dist}
		idx[h.id] = i
		args[i] = h.id
	}
	rows, err := db.reader().QueryContext(ctx, `SELECT id, sha256, path, COALESCE(label, '') FROM images
		WHERE id IN (?`+strings.Repeat(", ?", len(hits)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("nearest: images: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n Neighbor
		if err := rows.Scan(&id, &n.SHA256, &n.Path, &n.Label); err != nil {
			return nil, fmt.Errorf("nearest: images: %w", err)
		}
		i := idx[id]
		out[i].SHA256, out[i].Path, out[i].Label = n.SHA256, n.Path, n.Label
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("nearest: images: %w", err)
	}
	return out, nil
}

func norm2(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}

func nonFiniteF32(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// cosineDist turns a dot product and two squared norms into the cosine
// distance. sqrt(qq*ss) rather than sqrt(qq)*sqrt(ss): for an identical
// vector dot = qq = ss, and sqrt(x*x) is exactly x in IEEE arithmetic, so
// the distance is exactly 0.
func cosineDist(dot, qq, ss float64) float64 {
	if ss == 0 {
		return 1
	}
	return 1 - dot/math.Sqrt(qq*ss)
}

// dotNormBlob returns q·b and |b|² for an encoded vector b, in float64.
// Four accumulators per sum let the CPU overlap the additions.
func dotNormBlob(q []float64, b []byte) (dot, ss float64) {
	n := len(q)
	b = b[:4*n]
	var d0, d1, d2, d3, s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= n; i += 4 {
		x0 := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		x1 := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i+4:])))
		x2 := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i+8:])))
		x3 := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i+12:])))
		d0 += x0 * q[i]
		d1 += x1 * q[i+1]
		d2 += x2 * q[i+2]
		d3 += x3 * q[i+3]
		s0 += x0 * x0
		s1 += x1 * x1
		s2 += x2 * x2
		s3 += x3 * x3
	}
	for ; i < n; i++ {
		x := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		d0 += x * q[i]
		s0 += x * x
	}
	return (d0 + d1) + (d2 + d3), (s0 + s1) + (s2 + s3)
}

// l2Blob is the Euclidean distance between q and an encoded vector.
func l2Blob(q []float64, b []byte) float64 {
	n := len(q)
	b = b[:4*n]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= n; i += 4 {
		e0 := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))) - q[i]
		e1 := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i+4:]))) - q[i+1]
		e2 := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i+8:]))) - q[i+2]
		e3 := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i+12:]))) - q[i+3]
		s0 += e0 * e0
		s1 += e1 * e1
		s2 += e2 * e2
		s3 += e3 * e3
	}
	for ; i < n; i++ {
		e := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))) - q[i]
		s0 += e * e
	}
	return math.Sqrt((s0 + s1) + (s2 + s3))
}
