// Command similar measures `pipeline similar` query times on a synthetic
// database: n random non-negative, sparse-ish float32 vectors (like ReLU
// CNN codes) of dim values, stored through the store API under fake
// sha256s, then timed queries with each search method.
//
//	go run ./bench/similar -n 10000 -db /tmp/sim10k.db
//	go run ./bench/similar -n 100000 -db /tmp/sim100k.db
//
// The database is generated on the first run and reused afterwards (same
// n, dim and seed give the same vectors). See docs/SIMILAR.md.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"pipeline/store"
)

func main() {
	dbPath := flag.String("db", "", "database (generated if missing)")
	n := flag.Int("n", 10000, "stored vectors")
	dim := flag.Int("dim", 4096, "vector length")
	density := flag.Float64("density", 0.3, "fraction of non-zero values")
	seed := flag.Uint64("seed", 1, "random seed")
	queries := flag.Int("queries", 10, "timed queries per method")
	k := flag.Int("k", 10, "neighbours per query")
	methods := flag.String("methods", "c,go,sql", "search methods to time, comma-separated: c, c/THREADS, go, sql, vec0 (builds sqlite-vec vec0 tables in the database first)")
	metrics := flag.String("metrics", "cosine,l2", "metrics to time, comma-separated")
	flag.Parse()
	if *dbPath == "" {
		fmt.Fprintln(os.Stderr, "similar: -db is required")
		os.Exit(2)
	}
	if err := run(*dbPath, *n, *dim, *density, *seed, *queries, *k, strings.Split(*methods, ","), strings.Split(*metrics, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "similar:", err)
		os.Exit(1)
	}
}

func run(path string, n, dim int, density float64, seed uint64, queries, k int, methods, metrics []string) error {
	ctx := context.Background()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := generate(ctx, path, n, dim, density, seed); err != nil {
			return err
		}
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	sets, err := db.FindFeatureSets(ctx, "fc2", "bench")
	if err != nil {
		return err
	}
	if len(sets) != 1 || sets[0].Vectors != int64(n) || sets[0].Dim != dim {
		return fmt.Errorf("%s: not a benchmark database of %d %d-d vectors (delete it to regenerate)", path, n, dim)
	}
	fs := sets[0]
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("database %s: %d vectors of dim %d, %.0f MB\n", path, n, dim, float64(fi.Size())/1e6)
	// Query vectors: stored ones (as `pipeline similar stored.jpg` does),
	// chosen deterministically.
	r := rand.New(rand.NewPCG(seed, 99))
	var ids []int64
	for range queries {
		ids = append(ids, int64(1+r.IntN(n)))
	}
	for _, metric := range metrics {
		m, err := store.ParseMetric(metric)
		if err != nil {
			return err
		}
		var ref [][]store.Neighbor
		for _, method := range methods {
			if method == "vec0" {
				if err := buildVec0(ctx, db, fs, m); err != nil {
					return err
				}
			}
			var times []time.Duration
			for qi, id := range ids {
				v, ok, err := db.Vector(ctx, id, fs.ID)
				if err != nil || !ok {
					return fmt.Errorf("vector of image %d: %v", id, err)
				}
				t0 := time.Now()
				var got []store.Neighbor
				if method == "vec0" {
					got, err = vec0Nearest(ctx, db, v, m, k, id)
				} else {
					name, threads, _ := strings.Cut(method, "/")
					o := store.NearestOptions{K: k, Metric: m, Exclude: id, Method: store.SearchMethod(name)}
					if threads != "" {
						if o.Threads, err = strconv.Atoi(threads); err != nil {
							return fmt.Errorf("method %s: %w", method, err)
						}
					}
					got, err = db.Nearest(ctx, fs.ID, v, o)
				}
				if err != nil {
					return fmt.Errorf("%s %s: %w", method, metric, err)
				}
				times = append(times, time.Since(t0))
				if ref == nil || len(ref) <= qi {
					ref = append(ref, got)
				} else if !sameIDs(ref[qi], got) {
					fmt.Printf("  note: %s and %s disagree on query %d\n", methods[0], method, qi)
				}
			}
			slices.Sort(times)
			fmt.Printf("%-7s %-6s n=%d: median %7.1f ms, min %7.1f ms, max %7.1f ms (%d queries, k=%d)\n", method, metric, n,
				ms(times[len(times)/2]), ms(times[0]), ms(times[len(times)-1]), len(times), k)
		}
	}
	return nil
}

// vec0Table names the benchmark's sqlite-vec index of a metric.
func vec0Table(m store.Metric) string { return "bench_vec0_" + string(m) }

// buildVec0 creates a vec0 virtual table holding the set's vectors (rowid =
// image id), unless it exists, through `pipeline sql`'s query API.
func buildVec0(ctx context.Context, db *store.DB, fs store.FeatureSet, m store.Metric) error {
	t0 := time.Now()
	_, rows, err := db.Query(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = :name`, map[string]any{"name": vec0Table(m)}, false)
	if err != nil {
		return err
	}
	if rows[0][0].(int64) > 0 {
		return nil
	}
	q := fmt.Sprintf(`CREATE VIRTUAL TABLE %s USING vec0(embedding float[%d] distance_metric=%s);
		INSERT INTO %s(rowid, embedding) SELECT image_id, vector FROM features WHERE feature_set_id = %d;`,
		vec0Table(m), fs.Dim, m, vec0Table(m), fs.ID)
	if _, _, err := db.Query(ctx, q, nil, true); err != nil {
		return fmt.Errorf("build vec0: %w", err)
	}
	fi, err := os.Stat(db.Path())
	if err != nil {
		return err
	}
	fmt.Printf("vec0 %s index of %d vectors built in %.1fs; database now %.0f MB\n", m, fs.Vectors, time.Since(t0).Seconds(), float64(fi.Size())/1e6)
	return nil
}

// vec0Nearest is a KNN query on the vec0 table: k+1 neighbours, the query
// image dropped, then the canonical paths joined in.
func vec0Nearest(ctx context.Context, db *store.DB, v []float32, m store.Metric, k int, exclude int64) ([]store.Neighbor, error) {
	_, rows, err := db.Query(ctx, `WITH knn AS MATERIALIZED (SELECT rowid AS id, distance FROM `+vec0Table(m)+`
			WHERE embedding MATCH :q AND k = :k)
		SELECT knn.id, knn.distance, i.path FROM knn JOIN images i ON i.id = knn.id
		WHERE knn.id <> :exclude ORDER BY knn.distance, knn.id`,
		map[string]any{"q": store.EncodeVector(v), "k": k + 1, "exclude": exclude}, false)
	if err != nil {
		return nil, err
	}
	var out []store.Neighbor
	for _, r := range rows[:min(k, len(rows))] {
		out = append(out, store.Neighbor{ImageID: r[0].(int64), Distance: r[1].(float64), Path: r[2].(string)})
	}
	return out, nil
}

func sameIDs(a, b []store.Neighbor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ImageID != b[i].ImageID {
			return false
		}
	}
	return true
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// generate writes n vectors in batches of 500 through WriteBatch.
func generate(ctx context.Context, path string, n, dim int, density float64, seed uint64) error {
	t0 := time.Now()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	fs, err := db.EnsureFeatureSet(ctx, store.FeatureSet{ModelSHA256: sha("bench-model"), ModelName: "bench", Layer: "fc2",
		Pooling: store.PoolNone, Preprocess: `{"bench":true}`, Shape: fmt.Sprint(dim), Dim: dim})
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 1))
	const batch = 500
	for i := 0; i < n; i += batch {
		var b store.Batch
		for j := i; j < min(i+batch, n); j++ {
			v := make([]float32, dim)
			for d := range v {
				if r.Float64() < density {
					v[d] = float32(r.ExpFloat64())
				}
			}
			p := fmt.Sprintf("/bench/class%d/img%06d.jpg", j%10, j)
			b.Items = append(b.Items, store.Item{
				Image:   store.ImageRecord{SHA256: sha(fmt.Sprint("bench-image-", j)), Width: 224, Height: 224, Bytes: 1000, Format: "jpeg"},
				Paths:   []store.PathRecord{{Path: p, RelPath: strings.TrimPrefix(p, "/bench/"), Label: fmt.Sprintf("class%d", j%10), Size: 1000, MtimeNS: 1}},
				Vectors: []store.Vector{{FeatureSetID: fs.ID, Data: v}},
			})
		}
		if err := db.WriteBatch(ctx, 0, b); err != nil {
			return err
		}
	}
	fmt.Printf("generated %d vectors in %.1fs\n", n, time.Since(t0).Seconds())
	return nil
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
