package pipeline

import (
	"fmt"
	"strconv"
	"strings"

	"pipeline/store"
)

// checkPool validates --pool of a feature-set query.
func checkPool(pool string) error {
	switch pool {
	case "", store.PoolAvg, store.PoolMax, store.PoolNone:
		return nil
	}
	return usagef("pool %q: want avg, max or none", pool)
}

// poolMatches reports whether a set answers --pool. A layer whose output
// is already a vector (fc2, avg_pool: no spatial extent) is stored with
// pooling "none" whatever --pool extract had, since pooling changes nothing
// there: it answers any --pool, so that one command line (`--pool avg`)
// names every layer of a sweep.
func poolMatches(fs store.FeatureSet, pool string) bool {
	return pool == "" || fs.Pooling == pool || (fs.Pooling == store.PoolNone && !spatialShape(fs.Shape))
}

// spatialShape reports whether a stored shape ("512x7x7", "4096",
// "2048x1x1") has a spatial extent larger than 1x1.
func spatialShape(shape string) bool {
	parts := strings.Split(shape, "x")
	if len(parts) < 3 {
		return false
	}
	n := 1
	for _, p := range parts[1:] {
		v, err := strconv.Atoi(p)
		if err != nil {
			return true // unknown: treat as spatial (never matches by accident)
		}
		n *= v
	}
	return n > 1
}

// describe writes the query: "layer fc2, model vgg16, pooling avg".
func (q SetQuery) describe() string {
	s := "layer " + q.Layer
	if q.Model != "" {
		s += ", model " + q.Model
	}
	if q.Pool != "" {
		s += ", pooling " + q.Pool
	}
	return s
}

// ambiguous is the error for a query that several sets with vectors answer:
// it lists each candidate (id, model, layer, pooling, precision, dim,
// vectors) and what tells them apart.
func ambiguous(q SetQuery, sets []store.FeatureSet) error {
	var names []string
	models, pools := map[string]bool{}, map[string]bool{}
	for _, s := range sets {
		names = append(names, fmt.Sprintf("set %d: model %s, layer %s, pooling %s, precision %s, %d-d, %d vectors",
			s.ID, s.ModelName, layerName(s), s.Pooling, s.Precision, s.Dim, s.Vectors))
		models[s.ModelName] = true
		pools[s.Pooling] = true
	}
	var differ []string
	if len(pools) > 1 && q.Pool == "" {
		differ = append(differ, "pooling")
	}
	if len(models) > 1 && q.Model == "" {
		differ = append(differ, "model")
	}
	differ = append(differ, "id")
	return fmt.Errorf("%w: %s matches %d feature sets: %s; they differ in %s",
		ErrAmbiguous, q.describe(), len(sets), strings.Join(names, "; "), strings.Join(differ, ", "))
}

// layerName is the set's layer as users name it: "alias (OpenCV name)".
func layerName(s store.FeatureSet) string {
	if s.Alias != "" && s.Alias != s.Layer {
		return s.Alias + " (" + s.Layer + ")"
	}
	return s.Layer
}
