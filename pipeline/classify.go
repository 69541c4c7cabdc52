package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"pipeline/classify"
	"pipeline/store"
)

// ErrAmbiguous: --layer matches several feature sets.
var ErrAmbiguous = errors.New("ambiguous feature set")

// ErrNoFeatures: no feature set matches, or it has no vectors.
var ErrNoFeatures = errors.New("no such feature set")

// SetQuery names a feature set the way users do: --layer (alias or OpenCV
// name), optionally --model, or --set ID.
type SetQuery struct {
	Layer string
	Model string
	ID    int64
}

// ResolveFeatureSet finds the one feature set a query means.
func ResolveFeatureSet(ctx context.Context, db *store.DB, q SetQuery) (store.FeatureSet, error) {
	if q.ID != 0 {
		fs, err := db.FeatureSet(ctx, q.ID)
		if err != nil {
			return fs, fmt.Errorf("%w: --set %d: %v", ErrNoFeatures, q.ID, err)
		}
		return fs, nil
	}
	if q.Layer == "" {
		return store.FeatureSet{}, usagef("name the feature set with --layer (e.g. fc2), --model if several models have it, or --set ID; %s",
			listSets(ctx, db))
	}
	sets, err := db.FindFeatureSets(ctx, q.Layer, q.Model)
	if err != nil {
		return store.FeatureSet{}, err
	}
	var withVectors []store.FeatureSet
	for _, s := range sets {
		if s.Vectors > 0 {
			withVectors = append(withVectors, s)
		}
	}
	switch {
	case len(withVectors) == 1:
		return withVectors[0], nil
	case len(withVectors) == 0:
		what := "--layer " + q.Layer
		if q.Model != "" {
			what += " --model " + q.Model
		}
		return store.FeatureSet{}, fmt.Errorf("%w: no feature set with vectors matches %s; %s (run `pipeline extract` first)", ErrNoFeatures, what, listSets(ctx, db))
	}
	var names []string
	for _, s := range withVectors {
		names = append(names, s.String())
	}
	return store.FeatureSet{}, fmt.Errorf("%w: --layer %s matches %d feature sets: %s; add --model NAME or use --set ID",
		ErrAmbiguous, q.Layer, len(withVectors), strings.Join(names, "; "))
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
	DB       string
	More     []string // further databases read with DB (read-only); the classifier is stored in DB
	Set      SetQuery
	Name     string
	Replace  bool
	Params   classify.Params
	CV       int  // folds; 0 = no cross-validation report
	Grid     bool // search C (and gamma) first
	TestFrac float64
	Wait     time.Duration
	Args     []string
	Log      func(format string, args ...any)
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
		return res, usagef("--name %q: use letters, digits, '.', '_' or '-' (e.g. cats-svm)", o.Name)
	}
	if o.TestFrac <= 0 || o.TestFrac >= 1 {
		return res, usagef("--test-frac %v must be between 0 and 1", o.TestFrac)
	}
	if err := o.Params.Validate(); err != nil {
		return res, err
	}
	db, err := store.Open(o.DB, store.Options{})
	if err != nil {
		return res, err
	}
	defer db.Close()
	release, err := db.Lock(ctx, o.Wait, store.Holder{Command: "fit"})
	if err != nil {
		return res, err
	}
	defer release()
	bg := context.WithoutCancel(ctx)
	if _, err := db.AbandonStaleRuns(bg); err != nil {
		return res, err
	}
	if !o.Replace {
		if _, err := db.Classifier(bg, o.Name); err == nil {
			return res, fmt.Errorf("%w: classifier %q exists: choose another --name or add --replace", store.ErrClassifierExists, o.Name)
		}
	}
	runID, err := db.StartRun(bg, "fit", o.Args)
	if err != nil {
		return res, err
	}
	res.RunID = runID
	err = fit(ctx, db, o, &res, logf)
	status, code, msg := store.RunOK, 0, ""
	if err != nil {
		status, code, msg = store.RunFailed, 1, err.Error()
		if errors.Is(err, context.Canceled) {
			status, code = store.RunInterrupted, 130
		}
	}
	if ferr := db.FinishRun(bg, runID, status, code, store.Counts{Seen: int64(res.Train)}, msg); ferr != nil && err == nil {
		err = ferr
	}
	return res, err
}

func fit(ctx context.Context, db *store.DB, o FitOptions, res *FitResult, logf func(string, ...any)) error {
	bg := context.WithoutCancel(ctx)
	fs, err := ResolveFeatureSet(bg, db, o.Set)
	if err != nil {
		return err
	}
	res.FeatureSet = fs
	added, err := db.AssignSplit(bg, o.TestFrac)
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
		return fmt.Errorf("%w: the training split of %s has %d class(es) %v; label images by sub-folder (--images) or CSV (--list)",
			classify.ErrTooFewClasses, fs, len(ds.Classes), ds.Classes)
	}
	logf("fit: %s on %s: %d training vectors in %d classes (%s), %d held out",
		o.Params.Classifier, fs, len(ds.X), len(ds.Classes), classCounts(ds), counts.test)
	p := o.Params
	if o.Grid {
		if o.CV == 0 {
			o.CV = 5
		}
		t0 := time.Now()
		logf("fit: grid search over C%s with %d-fold CV (libsvm grid.py ranges, coarse then fine)", map[bool]string{true: " and gamma", false: ""}[p.Classifier == classify.SVM && p.Kernel != "linear"], o.CV)
		g, err := classify.GridSearch(ds, p, classify.GridSpec{Folds: o.CV})
		if err != nil {
			return err
		}
		res.Grid, res.GridSeconds = g, time.Since(t0).Seconds()
		p = g.Params
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.CV > 0 {
		t0 := time.Now()
		cv, err := classify.CrossValidate(ds, p, o.CV)
		if err != nil {
			return err
		}
		res.CVSeconds = time.Since(t0).Seconds()
		res.CV = &CVSummary{Folds: o.CV, MeanAccuracy: cv.MeanAccuracy, StdAccuracy: cv.StdAccuracy, MeanMacroF1: cv.MeanMacroF1, StdMacroF1: cv.StdMacroF1}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t0 := time.Now()
	m, err := classify.Fit(ds, p)
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
	params, _ := json.Marshal(p)
	transform, _ := json.Marshal(p.Transform)
	metrics, _ := json.Marshal(map[string]any{
		"train": res.Train, "test": res.Test, "train_counts": res.TrainCounts, "cv": res.CV,
		"fit_seconds": res.FitSeconds, "grid_best": gridBest(res.Grid),
	})
	_, err = db.SaveClassifier(bg, store.Classifier{
		Name: o.Name, Kind: p.Classifier, Params: params, Transform: transform, Labels: ds.Classes,
		FeatureSetID: fs.ID, Dim: fs.Dim, Metrics: metrics, Command: strings.Join(o.Args, " "), RunID: res.RunID, Model: blob,
	}, o.Replace)
	res.Name = o.Name
	return err
}

func gridBest(g *classify.GridResult) any {
	if g == nil {
		return nil
	}
	return g.Best
}

func classCounts(ds *classify.Dataset) string {
	var parts []string
	for i, c := range ds.Counts() {
		parts = append(parts, fmt.Sprintf("%s %d", ds.Classes[i], c))
	}
	return strings.Join(parts, ", ")
}

type splitCounts struct{ train, test, unlabeled, unknownClass, unsplit int }

// loadSplit reads the labeled vectors of one part of the split. classes
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
		switch {
		case r.Label == "":
			c.unlabeled++
			return nil
		case r.Part == "":
			c.unsplit++
			return nil
		case r.Part == store.PartTest:
			c.test++
		case r.Part == store.PartTrain:
			c.train++
		}
		if r.Part != part {
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
		for l := range seen {
			classes = append(classes, l)
		}
		sort.Strings(classes)
	}
	index := map[string]int{}
	for i, l := range classes {
		index[l] = i
	}
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
	res := &EvalResult{Classifier: name, Kind: lc.Row.Kind, FeatureSet: lc.Set, TrainCV: lc.Row.Metrics}
	var paths []string
	var ds = &classify.Dataset{Classes: lc.Model.Classes}
	index := map[string]int{}
	for i, c := range lc.Model.Classes {
		index[c] = i
	}
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
		m := Mistake{Path: paths[i], True: ds.Classes[ds.Y[i]], Predicted: p.Class}
		if p.Probs != nil {
			v := p.Probs[p.Label]
			m.Probability = &v
		}
		res.Errors = append(res.Errors, m)
	}
	return res, nil
}
