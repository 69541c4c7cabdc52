package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"time"

	"pipeline/classify"
	"pipeline/errclass"
	"pipeline/store"
)

// ErrAmbiguous: --layer matches several feature sets.
var ErrAmbiguous = errclass.New(errclass.Usage, "ambiguous feature set")

// ErrNoFeatures: no feature set matches, or it has no vectors.
var ErrNoFeatures = errclass.New(errclass.Data, "no such feature set")

// ErrNoHeldOut: eval of a classifier trained on every labelled image
// (fit --final): nothing was held out from it.
var ErrNoHeldOut = errclass.New(errclass.Data, "no held-out estimate")

// SetQuery names a feature set the way users do: --layer (alias or OpenCV
// name), optionally --model and --pool, or --set ID.
type SetQuery struct {
	Layer string
	Model string
	Pool  string // avg, max, none; "" = any (see poolMatches)
	ID    int64
}

// ResolveFeatureSet finds the one feature set a query means.
func ResolveFeatureSet(ctx context.Context, db *store.DB, q SetQuery) (store.FeatureSet, error) {
	if q.ID != 0 {
		fs, err := db.FeatureSet(ctx, q.ID)
		if err != nil {
			return fs, fmt.Errorf("%w: set %d: %v", ErrNoFeatures, q.ID, err)
		}
		return fs, nil
	}
	if q.Layer == "" {
		return store.FeatureSet{}, usageKindf(ErrNoSetQuery, "no feature set named; %s", listSets(ctx, db))
	}
	if err := checkPool(q.Pool); err != nil {
		return store.FeatureSet{}, err
	}
	sets, err := db.FindFeatureSets(ctx, q.Layer, q.Model)
	if err != nil {
		return store.FeatureSet{}, err
	}
	var withVectors []store.FeatureSet
	for _, s := range sets {
		if s.Vectors > 0 && poolMatches(s, q.Pool) {
			withVectors = append(withVectors, s)
		}
	}
	switch {
	case len(withVectors) == 1:
		return withVectors[0], nil
	case len(withVectors) == 0:
		return store.FeatureSet{}, fmt.Errorf("%w: no feature set with vectors matches %s; %s (run `pipeline extract` first)", ErrNoFeatures, q.describe(), listSets(ctx, db))
	}
	return store.FeatureSet{}, ambiguous(q, withVectors)
}

func listSets(ctx context.Context, db *store.DB) string {
	sets, err := db.FeatureSets(ctx)
	if err != nil || len(sets) == 0 {
		return "the database has no feature sets"
	}
	var names []string
	for _, s := range sets {
		names = append(names, fmt.Sprintf("%s: %d vectors", s, s.Vectors))
	}
	return "the database has: " + strings.Join(names, "; ")
}

// FitOptions configure `pipeline fit`.
type FitOptions struct {
	DB      string
	More    []string // further databases read with DB (read-only); the classifier is stored in DB
	Set     SetQuery
	Name    string
	Replace bool
	Params  classify.Params
	CV      int  // folds; 0 = no cross-validation report
	Grid    bool // search C (and gamma) first
	// GridC and GridGamma are log2 {start, stop, step} ranges; zero means
	// libsvm grid.py's.
	GridC, GridGamma [3]float64
	// GridProgress, when set, is called after each grid point.
	GridProgress func(classify.GridProgress)
	// Final refits the chosen configuration on every labelled image
	// (training and held-out split) after the CV report on the training
	// split; the stored classifier then has no held-out estimate.
	Final    bool
	TestFrac float64
	// ResetSplit deletes the automatic split first (the user's stays), so
	// that TestFrac makes a new one.
	ResetSplit bool
	Wait       time.Duration
	Args       []string
	Log        func(format string, args ...any)
}

// FitResult is what fit did (the --json contract).
type FitResult struct {
	Name        string               `json:"name"`
	Kind        string               `json:"kind"`
	FeatureSet  store.FeatureSet     `json:"feature_set"`
	Classes     []string             `json:"classes"`
	TrainCounts []int                `json:"train_counts"`
	Train       int                  `json:"train"`
	Test        int                  `json:"test"`
	Unlabeled   int                  `json:"unlabeled"`
	NewlySplit  int                  `json:"newly_split"`
	Final       bool                 `json:"final"`                 // trained on train + held-out (fit --final)
	FinalTrain  int                  `json:"final_train,omitempty"` // vectors the final model was trained on
	Params      classify.Params      `json:"params"`
	CV          *CVSummary           `json:"cv,omitempty"`
	Grid        *classify.GridResult `json:"grid,omitempty"`
	FitSeconds  float64              `json:"fit_seconds"`
	GridSeconds float64              `json:"grid_seconds,omitempty"`
	CVSeconds   float64              `json:"cv_seconds,omitempty"`
	ModelBytes  int                  `json:"model_bytes"`
	RunID       int64                `json:"run_id"`
}

// CVSummary is the cross-validation part of a fit.
type CVSummary struct {
	Folds        int     `json:"folds"`
	MeanAccuracy float64 `json:"mean_accuracy"`
	StdAccuracy  float64 `json:"std_accuracy"`
	MeanMacroF1  float64 `json:"mean_macro_f1"`
	StdMacroF1   float64 `json:"std_macro_f1"`
}

var classifierName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Fit trains a classifier on the training split of a feature set and
// stores it in the database.
func Fit(ctx context.Context, o FitOptions) (res FitResult, err error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if !classifierName.MatchString(o.Name) {
		return res, usagef("name %q: use letters, digits, '.', '_' or '-' (e.g. cats-svm)", o.Name)
	}
	if o.TestFrac <= 0 || o.TestFrac >= 1 {
		return res, usagef("test fraction %v must be between 0 and 1", o.TestFrac)
	}
	if err := o.Params.Validate(); err != nil {
		return res, err
	}
	// fit trains on stored vectors: it never creates a database (a
	// mistyped --db must not leave an empty one behind).
	if err := mustExist(o.DB); err != nil {
		return res, err
	}
	db, err := store.Open(o.DB, store.Options{})
	if err != nil {
		return res, err
	}
	defer db.Close()
	// What the command line names is checked before the run starts: a
	// request that cannot work records no run.
	bg := context.WithoutCancel(ctx)
	fs, err := ResolveFeatureSet(bg, db, o.Set)
	if err != nil {
		return res, err
	}
	if !o.Replace {
		if _, err := db.Classifier(bg, o.Name); err == nil {
			return res, fmt.Errorf("%w: classifier %q exists", store.ErrClassifierExists, o.Name)
		}
	}
	err = withRun(ctx, db, "fit", o.Args, o.Wait, func(r *runScope) error {
		res.RunID = r.ID
		err := fit(ctx, db, o, fs, &res, logf)
		r.Counts = store.Counts{Seen: int64(res.Train)}
		return err
	})
	return res, err
}

// mustExist fails with store.ErrNoDatabase when there is no file at path.
func mustExist(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w there (`pipeline extract` creates it)", path, store.ErrNoDatabase)
	}
	return nil
}

func fit(ctx context.Context, db *store.DB, o FitOptions, fs store.FeatureSet, res *FitResult, logf func(string, ...any)) error {
	bg := context.WithoutCancel(ctx)
	res.FeatureSet = fs
	added, err := assignSplit(bg, db, o.TestFrac, o.ResetSplit, "fit", logf)
	if err != nil {
		return err
	}
	res.NewlySplit = added
	ds, counts, err := loadSplit(bg, db, fs, store.PartTrain, nil)
	if len(o.More) > 0 {
		ds, counts, err = loadSplitMany(bg, db, fs, o.More, store.PartTrain)
	}
	if err != nil {
		return err
	}
	res.Train, res.Test, res.Unlabeled = len(ds.X), counts.test, counts.unlabeled
	res.Classes = ds.Classes
	res.TrainCounts = ds.Counts()
	res.Kind = o.Params.Classifier
	if len(ds.Classes) < 2 {
		return fmt.Errorf("%w: the training split of %s has %d class(es) %v; label the images by sub-folder or by a path,label list",
			classify.ErrTooFewClasses, fs, len(ds.Classes), ds.Classes)
	}
	logf("fit: %s on %s: %d training vectors in %d classes (%s), %d held out",
		o.Params.Classifier, fs, len(ds.X), len(ds.Classes), classCounts(ds), counts.test)
	p, err := tune(ctx, ds, o, res, logf)
	if err != nil {
		return err
	}
	fitDS := ds
	if o.Final {
		all, _, err := loadSplit(bg, db, fs, partAll, nil)
		if err != nil {
			return err
		}
		fitDS = all
		res.Final, res.FinalTrain, res.Classes = true, len(all.X), all.Classes
		logf("fit (final): refitting on all %d labelled vectors (%s); no held-out estimate will exist for this classifier",
			len(all.X), classCounts(all))
	}
	t0 := time.Now()
	m, err := classify.Fit(fitDS, p)
	if err != nil {
		return err
	}
	res.FitSeconds = time.Since(t0).Seconds()
	res.Params = p
	blob, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	res.ModelBytes = len(blob)
	res.Name = o.Name
	// What is stored and what `fit --json` prints must be valid JSON: a NaN
	// (a metric of a degenerate fold, a parameter) fails the fit before
	// anything is stored, instead of after.
	params, err := json.Marshal(p)
	if err != nil {
		return nonFinite("parameters", err)
	}
	transform, err := json.Marshal(p.Transform)
	if err != nil {
		return nonFinite("transform", err)
	}
	metrics, err := json.Marshal(storedMetrics{Train: res.Train, Test: res.Test, TrainCounts: res.TrainCounts, CV: res.CV,
		FitSeconds: res.FitSeconds, GridBest: gridBest(res.Grid), GridEdges: gridEdges(res.Grid), Final: res.Final, FinalTrain: res.FinalTrain})
	if err != nil {
		return nonFinite("metrics", err)
	}
	if _, err := json.Marshal(res); err != nil {
		return nonFinite("result", err)
	}
	_, err = db.SaveClassifier(bg, store.Classifier{
		Name: o.Name, Kind: p.Classifier, Params: params, Transform: transform, Labels: fitDS.Classes,
		FeatureSetID: fs.ID, Dim: fs.Dim, Metrics: metrics, Command: strings.Join(o.Args, " "), RunID: res.RunID, Model: blob,
	}, o.Replace)
	return err
}

// tune runs fit's grid search (--grid) and cross-validation (--cv) on the
// training split, records them in res and returns the parameters to fit
// with: the grid's pick, or o.Params.
func tune(ctx context.Context, ds *classify.Dataset, o FitOptions, res *FitResult, logf func(string, ...any)) (classify.Params, error) {
	p := o.Params
	if o.Grid {
		if o.CV == 0 {
			o.CV = 5
		}
		t0 := time.Now()
		logf("fit: grid search over C%s with %d-fold CV (libsvm grid.py ranges, coarse then fine)", map[bool]string{true: " and gamma", false: ""}[p.Classifier == classify.SVM && p.Kernel != "linear"], o.CV)
		g, err := classify.GridSearch(ds, p, classify.GridSpec{Folds: o.CV, Log2C: o.GridC, Log2Gamma: o.GridGamma, Progress: o.GridProgress})
		if err != nil {
			return p, err
		}
		res.Grid, res.GridSeconds = g, time.Since(t0).Seconds()
		p = g.Params
	}
	if err := ctx.Err(); err != nil {
		return p, err
	}
	if o.CV > 0 {
		t0 := time.Now()
		cv, err := classify.CrossValidate(ds, p, o.CV)
		if err != nil {
			return p, err
		}
		res.CVSeconds = time.Since(t0).Seconds()
		res.CV = &CVSummary{Folds: o.CV, MeanAccuracy: cv.MeanAccuracy, StdAccuracy: cv.StdAccuracy, MeanMacroF1: cv.MeanMacroF1, StdMacroF1: cv.StdMacroF1}
	}
	return p, ctx.Err()
}

// nonFinite is the error of a fit whose numbers cannot be written as JSON
// (NaN or Inf: encoding/json refuses them).
func nonFinite(what string, err error) error {
	return errclass.Errorf(errclass.Data, "fit: the %s hold NaN or Inf (%v); nothing was stored: look for NaN vectors (pipeline check) or a degenerate split", what, err)
}

// storedMetrics is classifiers.metrics (JSON; documented in
// docs/SCHEMA.md's classifiers section).
type storedMetrics struct {
	Train       int                 `json:"train"`
	Test        int                 `json:"test"`
	TrainCounts []int               `json:"train_counts"`
	CV          *CVSummary          `json:"cv"`
	FitSeconds  float64             `json:"fit_seconds"`
	GridBest    *classify.GridPoint `json:"grid_best"`
	GridEdges   []classify.GridEdge `json:"grid_edges,omitempty"`
	Final       bool                `json:"final,omitempty"`       // trained on every labelled image
	FinalTrain  int                 `json:"final_train,omitempty"` // how many
}

func gridBest(g *classify.GridResult) *classify.GridPoint {
	if g == nil {
		return nil
	}
	return &g.Best
}

func gridEdges(g *classify.GridResult) []classify.GridEdge {
	if g == nil {
		return nil
	}
	return g.Edges
}

func classCounts(ds *classify.Dataset) string {
	var parts []string
	for i, c := range ds.Counts() {
		parts = append(parts, fmt.Sprintf("%s %d", ds.Classes[i], c))
	}
	return strings.Join(parts, ", ")
}

type splitCounts struct{ train, test, unlabeled, unknownClass, unsplit int }

// count tallies one vector by its label and part; false when it has no
// label or no part (it is in no split).
func (c *splitCounts) count(label, part string) bool {
	switch {
	case label == "":
		c.unlabeled++
		return false
	case part == "":
		c.unsplit++
		return false
	case part == store.PartTest:
		c.test++
	case part == store.PartTrain:
		c.train++
	}
	return true
}

// classIndex maps each class to its index in classes.
func classIndex(classes []string) map[string]int {
	index := make(map[string]int, len(classes))
	for i, l := range classes {
		index[l] = i
	}
	return index
}

// partAll asks loadSplit for both parts of the split.
const partAll = "*"

// loadSplit reads the labeled vectors of one part of the split (or both:
// partAll). classes
// fixes the class list (a trained model's); nil means the sorted labels
// found. Vectors whose label is not in a fixed list are counted, not used.
func loadSplit(ctx context.Context, db *store.DB, fs store.FeatureSet, part string, classes []string) (*classify.Dataset, splitCounts, error) {
	var c splitCounts
	type row struct {
		label string
		v     []float32
	}
	var rows []row
	seen := map[string]bool{}
	err := db.Vectors(ctx, fs.ID, func(r store.VectorRow) error {
		if !c.count(r.Label, r.Part) {
			return nil
		}
		if part != partAll && r.Part != part {
			return nil
		}
		rows = append(rows, row{r.Label, r.Vector})
		seen[r.Label] = true
		return nil
	})
	if err != nil {
		return nil, c, err
	}
	if classes == nil {
		classes = sortedKeys(seen)
	}
	index := classIndex(classes)
	ds := &classify.Dataset{Classes: classes}
	for _, r := range rows {
		i, ok := index[r.label]
		if !ok {
			c.unknownClass++
			continue
		}
		ds.X = append(ds.X, r.v)
		ds.Y = append(ds.Y, i)
	}
	return ds, c, nil
}

// LoadedClassifier is a stored classifier, decoded.
type LoadedClassifier struct {
	Row   store.Classifier
	Set   store.FeatureSet
	Model *classify.Model
}

// LoadClassifier reads a classifier and its feature set.
func LoadClassifier(ctx context.Context, db *store.DB, name string) (*LoadedClassifier, error) {
	row, err := db.Classifier(ctx, name)
	if err != nil {
		return nil, err
	}
	m, err := classify.Load(row.Model)
	if err != nil {
		return nil, fmt.Errorf("classifier %s: %w", name, err)
	}
	fs, err := db.FeatureSet(ctx, row.FeatureSetID)
	if err != nil {
		return nil, fmt.Errorf("classifier %s: %w", name, err)
	}
	if m.Dim != fs.Dim {
		return nil, fmt.Errorf("classifier %s expects %d-d vectors but its feature set %s has %d-d: %w", name, m.Dim, fs, fs.Dim, classify.ErrDimMismatch)
	}
	return &LoadedClassifier{Row: row, Set: fs, Model: m}, nil
}

// EvalResult is `pipeline eval` (the --json contract).
type EvalResult struct {
	Classifier   string            `json:"classifier"`
	Kind         string            `json:"kind"`
	FeatureSet   store.FeatureSet  `json:"feature_set"`
	Metrics      *classify.Metrics `json:"metrics"`
	Errors       []Mistake         `json:"errors,omitempty"`
	UnknownClass int               `json:"test_images_of_unknown_classes"`
	Unsplit      int               `json:"labeled_images_not_in_the_split_yet"`
	TrainCV      json.RawMessage   `json:"training_metrics,omitempty"`
}

// Mistake is one misclassified held-out image.
type Mistake struct {
	Path        string   `json:"path"`
	PathB64     string   `json:"path_b64,omitempty"` // the path's bytes, when they are not valid UTF-8
	True        string   `json:"true"`
	Predicted   string   `json:"predicted"`
	Probability *float64 `json:"probability,omitempty"`
}

// Eval scores a stored classifier on the held-out split.
func Eval(ctx context.Context, dbPath, name string) (*EvalResult, error) {
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	lc, err := LoadClassifier(ctx, db, name)
	if err != nil {
		return nil, err
	}
	var sm storedMetrics
	if len(lc.Row.Metrics) > 0 && json.Unmarshal(lc.Row.Metrics, &sm) == nil && sm.Final {
		cv := "it was fitted without cross-validation, so there is no estimate at all"
		if sm.CV != nil {
			cv = fmt.Sprintf("its %d-fold cross-validation on the training split before the refit: accuracy %.4f ± %.4f, macro-F1 %.4f ± %.4f",
				sm.CV.Folds, sm.CV.MeanAccuracy, sm.CV.StdAccuracy, sm.CV.MeanMacroF1, sm.CV.StdMacroF1)
		}
		return nil, fmt.Errorf("%w for classifier %s: it was trained on all %d labelled images (a final fit), held-out ones included; %s",
			ErrNoHeldOut, name, sm.FinalTrain, cv)
	}
	res := &EvalResult{Classifier: name, Kind: lc.Row.Kind, FeatureSet: lc.Set, TrainCV: lc.Row.Metrics}
	var paths []string
	var ds = &classify.Dataset{Classes: lc.Model.Classes}
	index := classIndex(lc.Model.Classes)
	err = db.Vectors(ctx, lc.Set.ID, func(r store.VectorRow) error {
		if r.Label == "" {
			return nil
		}
		if r.Part == "" {
			res.Unsplit++
			return nil
		}
		if r.Part != store.PartTest {
			return nil
		}
		i, ok := index[r.Label]
		if !ok {
			res.UnknownClass++
			return nil
		}
		ds.X = append(ds.X, r.Vector)
		ds.Y = append(ds.Y, i)
		paths = append(paths, r.Path)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ds.X) == 0 {
		return nil, fmt.Errorf("%w: no held-out images with a known class for %s (the split is made by `pipeline fit`)", ErrNoFeatures, name)
	}
	met, preds, err := lc.Model.Evaluate(ds)
	if err != nil {
		return nil, err
	}
	res.Metrics = met
	for i, p := range preds {
		if p.Label == ds.Y[i] {
			continue
		}
		m := Mistake{Path: paths[i], PathB64: PathB64(paths[i]), True: ds.Classes[ds.Y[i]], Predicted: p.Class}
		if p.Probs != nil {
			v := p.Probs[p.Label]
			m.Probability = &v
		}
		res.Errors = append(res.Errors, m)
	}
	return res, nil
}

// assignSplit completes the automatic split (after deleting it, with
// reset). A test fraction that differs from the stored one is an error that
// names the command that starts the split over.
func assignSplit(ctx context.Context, db *store.DB, testFrac float64, reset bool, cmd string, logf func(string, ...any)) (int, error) {
	if reset {
		n, err := db.ResetSplit(ctx)
		if err != nil {
			return 0, err
		}
		logf("%s: deleted the automatic split of %d images; the split chosen by the user (folder layout, a split given to extract) stays", cmd, n)
	}
	added, err := db.AssignSplit(ctx, testFrac)
	if errors.Is(err, store.ErrSplitFrac) {
		return 0, fmt.Errorf("%w; a new automatic split with fraction %v must be asked for (held-out images may then become training images of classifiers fitted before: evaluate those again), or the stored fraction kept",
			err, testFrac)
	}
	return added, err
}
