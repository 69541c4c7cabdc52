package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"pipeline/errclass"
	"pipeline/extract"
	"pipeline/store"
)

// Errors of Similar.
var (
	// ErrUnknownImage: the query names no file and no stored image.
	ErrUnknownImage = errclass.New(errclass.NotFound, "unknown image")
	// ErrNoVector: the query image is stored, but not in the feature set,
	// and its file is not there to compute the vector from.
	ErrNoVector = errclass.New(errclass.Data, "image has no vector in the feature set")
)

// SimilarOptions configure `pipeline similar`.
type SimilarOptions struct {
	DB string
	// More are further databases searched with DB (opened read-only): the
	// feature set must exist in each with the same identity; the same
	// content in several counts once.
	More []string
	// Query is the image: a file (stored or not), a stored path whose file
	// may be gone (absolute, or relative to the working directory), a
	// relative path as stored in image_paths.relpath, or a sha256.
	Query string
	// Set names the feature set. Set.Model may be a model file's path: it
	// selects the sets extracted from a file of that name and is the file
	// to compute a new image's vector with (unless ModelPath is given).
	Set         SetQuery
	K           int    // neighbours (default 10)
	Metric      string // cosine (default) or l2
	IncludeSelf bool   // keep the query image (and its copies at other paths) in the results
	Method      store.SearchMethod
	// ModelPath is the CNN file for a query whose vector is not stored,
	// when the set's model cannot be found by the name it was extracted with.
	ModelPath string
	// Compute's Engine and Arith (precision) default to the feature set's
	// (see setCompute): "" = the set's.
	Compute   extract.Compute
	MaxPixels int64
	Log       func(format string, args ...any) // notes (OpenCL setup, ...); may be nil
}

// SimilarResult is the outcome of a query (the --json contract).
type SimilarResult struct {
	Query         SimilarQuery      `json:"query"`
	FeatureSet    store.FeatureSet  `json:"feature_set"`
	Metric        store.Metric      `json:"metric"`
	K             int               `json:"k"`
	Neighbors     []SimilarNeighbor `json:"neighbors"`
	SearchSeconds float64           `json:"search_seconds"` // the nearest-neighbour search alone
}

// SimilarQuery describes the query image.
type SimilarQuery struct {
	Input   string `json:"input"`              // as given
	Path    string `json:"path,omitempty"`     // the file read, or the stored path that matched
	SHA256  string `json:"sha256,omitempty"`   // of the content
	ImageID int64  `json:"image_id,omitempty"` // 0 = the content is not stored
	// Source is "stored" when the vector was read from the database and
	// "computed" when it was extracted now with the set's model.
	Source string `json:"source"`
}

// SimilarNeighbor is one result row.
type SimilarNeighbor struct {
	Rank     int     `json:"rank"`
	Distance float64 `json:"distance"`
	Path     string  `json:"path"`               // canonical path of the image
	PathB64  string  `json:"path_b64,omitempty"` // its bytes, when they are not valid UTF-8
	Label    string  `json:"label"`              // "" = unlabeled
	SHA256   string  `json:"sha256"`
	ImageID  int64   `json:"image_id"`
	DB       string  `json:"db,omitempty"` // the database it was found in, when several were searched
}

// Similar finds the stored images nearest to a query image in one feature
// set. A query whose content is stored with a vector in the set is looked
// up; any other image file is run through the set's model, layer, pooling
// and preprocessing (read-only: nothing is written).
func Similar(ctx context.Context, o SimilarOptions) (SimilarResult, error) {
	var res SimilarResult
	if o.Query == "" {
		return res, usagef("give a query image: a file, a stored path or a sha256")
	}
	if o.K == 0 {
		o.K = 10
	}
	if o.K < 0 {
		return res, usagef("k %d: want a positive number of neighbours", o.K)
	}
	metric, err := store.ParseMetric(o.Metric)
	if err != nil {
		return res, usagef("metric %s: want cosine or l2", o.Metric)
	}
	res.Metric, res.K = metric, o.K
	if o.ModelPath == "" && extract.LooksLikePath(o.Set.Model) {
		if fi, err := os.Stat(o.Set.Model); err == nil && fi.Mode().IsRegular() {
			// Path models are stored under their file name.
			o.ModelPath, o.Set.Model = o.Set.Model, filepath.Base(o.Set.Model)
		}
	}
	db, err := store.Open(o.DB, store.Options{ReadOnly: true})
	if err != nil {
		return res, err
	}
	defer db.Close()
	bg := context.WithoutCancel(ctx)
	fs, err := ResolveFeatureSet(bg, db, o.Set)
	if err != nil {
		return res, err
	}
	res.FeatureSet = fs
	for _, path := range o.More {
		other, _, err := openSameSet(bg, path, db, fs)
		if err != nil {
			return res, err
		}
		other.Close()
	}
	q, vec, err := similarQuery(ctx, db, fs, o)
	if err != nil && len(o.More) > 0 && (errors.Is(err, ErrUnknownImage) || errors.Is(err, ErrNoVector)) {
		// A stored image of one of the other databases.
		for _, path := range o.More {
			q2, vec2, ok, err2 := similarQueryIn(ctx, path, db, fs, o)
			if err2 != nil {
				return res, err2
			}
			if ok {
				q, vec, err = q2, vec2, nil
				break
			}
		}
	}
	if err != nil {
		return res, err
	}
	res.Query = q
	var exclude int64
	if !o.IncludeSelf {
		exclude = q.ImageID
		if len(o.More) > 0 {
			// The query may come from another database: its id here is
			// found by content.
			exclude = 0
			if im, ok, err := db.ImageBySHA(bg, q.SHA256); err != nil {
				return res, err
			} else if ok {
				exclude = im.ID
			}
		}
	}
	t0 := time.Now()
	hits, err := db.Nearest(bg, fs.ID, vec, store.NearestOptions{K: o.K, Metric: metric, Exclude: exclude, Method: o.Method})
	res.SearchSeconds = time.Since(t0).Seconds()
	if err != nil {
		if errors.Is(err, store.ErrZeroVector) {
			return res, fmt.Errorf("%s: %w", o.Query, err)
		}
		return res, err
	}
	res.Neighbors = make([]SimilarNeighbor, len(hits))
	for i, h := range hits {
		res.Neighbors[i] = SimilarNeighbor{Rank: i + 1, Distance: h.Distance, Path: h.Path, PathB64: PathB64(h.Path), Label: h.Label, SHA256: h.SHA256, ImageID: h.ImageID}
	}
	if len(o.More) > 0 {
		if err := similarMore(ctx, db, fs, q, vec, metric, o, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// openSameSet opens another database read-only and finds its feature set
// with fs's identity; none is an error (its vectors cannot be compared).
func openSameSet(ctx context.Context, path string, first *store.DB, fs store.FeatureSet) (*store.DB, store.FeatureSet, error) {
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return nil, store.FeatureSet{}, err
	}
	set, ok, err := db.SameFeatureSet(ctx, first, fs.ID)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s has no feature set identical to %s of %s (same model file, layer, pooling, preprocessing, precision): its vectors cannot be compared with those",
			store.ErrUnknownFeatureSet, db.Path(), fs, first.Path())
	}
	if err != nil {
		db.Close()
		return nil, store.FeatureSet{}, err
	}
	return db, set, nil
}

// similarQueryIn looks the query up in another database (ok false when it
// does not know it either).
func similarQueryIn(ctx context.Context, path string, first *store.DB, fs store.FeatureSet, o SimilarOptions) (SimilarQuery, []float32, bool, error) {
	db, set, err := openSameSet(context.WithoutCancel(ctx), path, first, fs)
	if err != nil {
		return SimilarQuery{}, nil, false, err
	}
	defer db.Close()
	q, vec, err := similarQuery(ctx, db, set, o)
	if errors.Is(err, ErrUnknownImage) || errors.Is(err, ErrNoVector) {
		return q, nil, false, nil
	}
	return q, vec, err == nil, err
}

// similarMore searches the further databases with the same query vector
// and keeps the k nearest contents over all of them. Each database is
// scanned on its own (exactly, by the same C scan), so the k nearest of the
// union are among the k nearest of each.
func similarMore(ctx context.Context, first *store.DB, fs store.FeatureSet, q SimilarQuery, vec []float32, metric store.Metric, o SimilarOptions, res *SimilarResult) error {
	bg := context.WithoutCancel(ctx)
	for i := range res.Neighbors {
		res.Neighbors[i].DB = first.Path()
	}
	all := res.Neighbors
	t0 := time.Now()
	for _, path := range o.More {
		db, set, err := openSameSet(bg, path, first, fs)
		if err != nil {
			return err
		}
		err = func() error {
			defer db.Close()
			res.FeatureSet.Vectors += set.Vectors
			var exclude int64
			if !o.IncludeSelf && q.SHA256 != "" {
				if im, ok, err := db.ImageBySHA(bg, q.SHA256); err != nil {
					return err
				} else if ok {
					exclude = im.ID
				}
			}
			hits, err := db.Nearest(bg, set.ID, vec, store.NearestOptions{K: o.K, Metric: metric, Exclude: exclude, Method: o.Method})
			if err != nil {
				return err
			}
			for _, h := range hits {
				all = append(all, SimilarNeighbor{Distance: h.Distance, Path: h.Path, Label: h.Label, SHA256: h.SHA256, ImageID: h.ImageID, DB: db.Path()})
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	res.SearchSeconds += time.Since(t0).Seconds()
	sort.SliceStable(all, func(i, j int) bool { return all[i].Distance < all[j].Distance })
	seen := map[string]bool{}
	res.Neighbors = res.Neighbors[:0]
	for _, n := range all {
		if seen[n.SHA256] || len(res.Neighbors) == o.K {
			continue
		}
		seen[n.SHA256] = true
		n.Rank = len(res.Neighbors) + 1
		res.Neighbors = append(res.Neighbors, n)
	}
	return nil
}

// similarQuery finds the query's vector: stored if its content is, else
// computed from its file.
func similarQuery(ctx context.Context, db *store.DB, fs store.FeatureSet, o SimilarOptions) (SimilarQuery, []float32, error) {
	bg := context.WithoutCancel(ctx)
	q := SimilarQuery{Input: o.Query}
	abs, err := filepath.Abs(o.Query)
	if err != nil {
		return q, nil, err
	}
	abs = filepath.Clean(abs)
	fi, statErr := os.Stat(abs)
	switch {
	case statErr == nil && fi.IsDir():
		return q, nil, usagef("%s is a directory: give one image file (or a stored path or sha256)", o.Query)
	case statErr == nil:
		// A file: known by path (unchanged size and mtime) or by content.
		q.Path = abs
		if pi, ok, err := db.LookupPath(bg, abs); err != nil {
			return q, nil, err
		} else if ok && pi.Size == fi.Size() && pi.MtimeNS == fi.ModTime().UnixNano() {
			q.SHA256, q.ImageID = pi.SHA256, pi.ImageID
		} else {
			if q.SHA256, err = hashFile(abs); err != nil {
				return q, nil, err
			}
			if im, ok, err := db.ImageBySHA(bg, q.SHA256); err != nil {
				return q, nil, err
			} else if ok {
				q.ImageID = im.ID
			}
		}
		if q.ImageID != 0 {
			v, ok, err := db.Vector(bg, q.ImageID, fs.ID)
			if err != nil {
				return q, nil, err
			}
			if ok {
				q.Source = "stored"
				return q, v, nil
			}
		}
		return computeQuery(ctx, fs, o, q)
	}
	// Not a file: a stored image named by its path, relative path or hash.
	matches, err := storedMatches(bg, db, o.Query, abs)
	if err != nil {
		return q, nil, err
	}
	switch {
	case len(matches) == 0:
		why := ""
		if !errors.Is(statErr, os.ErrNotExist) {
			why = fmt.Sprintf(" (%v)", statErr)
		}
		return q, nil, fmt.Errorf("%w: %s is not a readable file%s and no stored image has that path, relative path or sha256: extract it first, or give the path of an image file to compute its vector with the set's model",
			ErrUnknownImage, o.Query, why)
	case len(matches) > 1:
		var names []string
		for _, m := range matches {
			names = append(names, fmt.Sprintf("%s (sha256 %s)", m.Path, m.SHA256[:12]))
		}
		return q, nil, usagef("%s matches %d stored images: %s; give the absolute path or the sha256", o.Query, len(matches), strings.Join(names, ", "))
	}
	m := matches[0]
	q.Path, q.SHA256, q.ImageID = m.Path, m.SHA256, m.ImageID
	v, ok, err := db.Vector(bg, m.ImageID, fs.ID)
	if err != nil {
		return q, nil, err
	}
	if !ok {
		return q, nil, fmt.Errorf("%w: %s (image %d, sha256 %s) has no vector in %s, and %s is not there to compute it from: extract it with that model and layer first",
			ErrNoVector, o.Query, m.ImageID, m.SHA256, fs, m.Path)
	}
	q.Source = "stored"
	return q, v, nil
}

// storedMatches finds the stored images a name that is not a file means:
// a stored path, a relative path as stored, or a sha256. Several paths of
// one image are one match.
func storedMatches(ctx context.Context, db *store.DB, name, abs string) ([]store.PathMatch, error) {
	if pi, ok, err := db.LookupPath(ctx, abs); err != nil {
		return nil, err
	} else if ok {
		return []store.PathMatch{{Path: abs, RelPath: pi.RelPath, ImageID: pi.ImageID, SHA256: pi.SHA256}}, nil
	}
	paths, err := db.PathsByRelPath(ctx, filepath.Clean(name))
	if err != nil {
		return nil, err
	}
	var out []store.PathMatch
	seen := map[int64]bool{}
	for _, p := range paths {
		if !seen[p.ImageID] {
			seen[p.ImageID] = true
			out = append(out, p)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if sha := strings.ToLower(name); isSHA256(sha) {
		im, ok, err := db.ImageBySHA(ctx, sha)
		if err != nil || !ok {
			return nil, err
		}
		return []store.PathMatch{{Path: im.Path, ImageID: im.ID, SHA256: im.SHA256}}, nil
	}
	return nil, nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, unwrapPathErr(err))
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// computeQuery computes the query file's vector with exactly the feature
// set's model, layer, pooling, preprocessing and engine: one extractor, one
// forward pass, nothing written.
func computeQuery(ctx context.Context, fs store.FeatureSet, o SimilarOptions, q SimilarQuery) (SimilarQuery, []float32, error) {
	model, err := featureSetModel(fs, o.ModelPath)
	if err != nil {
		return q, nil, err
	}
	compute, err := setCompute(fs, o.Compute)
	if err != nil {
		return q, nil, err
	}
	data, stage, err := readImageFile(q.Path, 0)
	if err != nil {
		return q, nil, fmt.Errorf("%s: %s: %v", o.Query, stage, err)
	}
	ex, err := openExtractor(ctx, extract.ExtractorConfig{Model: model, Layers: []string{fs.Layer}, Pool: fs.Pooling, Compute: compute, Batch: 1})
	if err != nil {
		return q, nil, err
	}
	defer ex.Close()
	if err := reproduces(ex, model.Name, fs, true); err != nil {
		return q, nil, err
	}
	for _, n := range append(ex.Notes, engineNote(fs, ex.Engine())) {
		if o.Log != nil && n != "" {
			o.Log("%s", n)
		}
	}
	vec, stage, err := queryVector(ex, data, o.MaxPixels)
	if err != nil {
		return q, nil, fmt.Errorf("%s: %s: %v", o.Query, stage, err)
	}
	sum := sha256.Sum256(data)
	q.SHA256, q.Source = hex.EncodeToString(sum[:]), "computed"
	return q, vec, nil
}

// queryVector decodes one image and runs it through the network: its
// vector of the first output, or the failing stage and why.
func queryVector(ex *extract.Extractor, data []byte, maxPixels int64) ([]float32, string, error) {
	p := ex.Preprocess()
	blob := make([]float32, ex.InputLen())
	if _, err := p.DecodeInto(data, extract.DecodeOptions{MaxPixels: maxPixels, MinWidth: p.Width, MinHeight: p.Height}, blob); err != nil {
		if errors.Is(err, extract.ErrTooLarge) {
			return nil, "size", err
		}
		return nil, "decode", err
	}
	vecs, err := ex.Forward(blob, 1)
	if err != nil {
		return nil, "forward", err
	}
	v := vecs[0][0]
	if k := extract.BadValue(v); k >= 0 {
		return nil, "vector", fmt.Errorf("layer %s: value %d of %d is %v", ex.Outputs()[0].Layer.Name, k, len(v), v[k])
	}
	return v, "", nil
}

// featureSetModel finds the CNN a feature set's codes came from and checks
// that it is the same file (by SHA-256), with the set's preprocessing. flag
// is the option that overrides the model, for the hint. Without an
// override, the model is looked up by the set's model name, then at the
// absolute path extract recorded (feature_sets.model_path), so that a
// model given by path works from any directory.
//
// It is predict's classifierModel with wording that fits any feature set.
func featureSetModel(fs store.FeatureSet, override string) (extract.Model, error) {
	var m extract.Model
	var err error
	if override != "" {
		if m, err = extract.ResolveModel(extract.ModelSpec{Model: override}); err != nil {
			return m, err
		}
	} else if m, err = recordedModel(fs); err != nil {
		return m, err
	}
	if m.SHA256 != fs.ModelSHA256 {
		return m, usageKindf(ErrSetModel, "the vectors of %s come from model %s with sha256 %s, but %s has sha256 %s: the vectors would not be comparable",
			fs, fs.ModelName, fs.ModelSHA256, m.Path, m.SHA256)
	}
	var p extract.Preprocess
	if err := json.Unmarshal([]byte(fs.Preprocess), &p); err != nil {
		return m, fmt.Errorf("feature set %s: preprocessing %q: %w", fs, fs.Preprocess, err)
	}
	m.Preprocess, m.HasPreprocess = p, true
	return m, nil
}

// recordedModel resolves a set's model without an override: by name, else
// at the recorded path. A file at the recorded path whose content changed
// since extract is refused, naming the path.
func recordedModel(fs store.FeatureSet) (extract.Model, error) {
	m, err := extract.ResolveModel(extract.ModelSpec{Model: fs.ModelName})
	if err == nil && (m.SHA256 == fs.ModelSHA256 || fs.ModelPath == "") {
		return m, nil // a wrong file by that name is refused by the caller
	}
	if fs.ModelPath == "" {
		return m, usageKindf(ErrSetModel, "the vectors of %s come from model %s (sha256 %s), which cannot be found by that name (%v)",
			fs, fs.ModelName, fs.ModelSHA256, err)
	}
	byName := err
	m, err = extract.ResolveModel(extract.ModelSpec{Model: fs.ModelPath})
	switch {
	case err != nil:
		return m, usageKindf(ErrSetModel, "the vectors of %s come from model %s (sha256 %s), which cannot be found by that name (%v) nor at %s, where extract read it (%v)",
			fs, fs.ModelName, fs.ModelSHA256, byName, fs.ModelPath, err)
	case m.SHA256 != fs.ModelSHA256:
		return m, usageKindf(ErrSetModel, "the vectors of %s come from model %s with sha256 %s, but %s, where extract read it, now has sha256 %s: the file changed since, and its vectors would not be comparable",
			fs, fs.ModelName, fs.ModelSHA256, fs.ModelPath, m.SHA256)
	}
	return m, nil
}
