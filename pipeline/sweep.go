package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"pipeline/classify"
	"pipeline/extract"
	"pipeline/store"
)

// DefaultSweepClassifiers are the heads a sweep compares when --clf is not
// given: the tutorial's softmax, an SVM and the tutorial's small dense
// network. Those this build does not have are left out with a note
// (softmax falls back to logreg, liblinear's logistic regression).
var DefaultSweepClassifiers = []string{"softmax", classify.SVM, "mlp"}

// SweepOptions configure `pipeline sweep`.
type SweepOptions struct {
	DB    string
	Model extract.Model
	// Layers to compare; nil = every alias of the model.
	Layers []string
	Pool   string // avg, max or none for C x H x W outputs ("" = avg)
	// Classifiers to cross-validate on every layer; nil =
	// DefaultSweepClassifiers (those this build has).
	Classifiers []string
	// Params is the template of every classifier's parameters: the fields
	// that differ from DefaultParams("") (transform, C, kernel, gamma,
	// balanced, seed) override each classifier's own defaults (rowParams).
	Params   classify.Params
	Folds    int     // K of the K-fold cross-validation (default 5)
	TestFrac float64 // the automatic split's held-out fraction
	// Extract is the extraction of the inputs: Images or List (with
	// ListReader), Split, Compute, Batch, Nets, Workers, MaxPixels,
	// Reduce, Events. DB, Model, Layers, Pool, Wait and Args are the
	// sweep's.
	Extract ExtractOptions
	Wait    time.Duration
	Args    []string
	// CommandDB is the --db to write into the recommended fit command
	// ("" = none: the default database).
	CommandDB string
	Log       func(format string, args ...any)
	// Progress is called before and after each (layer, classifier) pair.
	Progress func(SweepProgress)
}

// SweepProgress says where a sweep's cross-validation is.
type SweepProgress struct {
	Done, Total int
	Layer       string
	Classifier  string
	Row         *SweepRow // the pair just finished; nil when it starts
}

// SweepResult is the outcome of a sweep (the --json contract).
type SweepResult struct {
	RunID       int64           `json:"run_id"`
	Status      string          `json:"status"`
	DB          string          `json:"db"`
	Model       string          `json:"model"`
	Pool        string          `json:"pool"`
	Folds       int             `json:"folds"`
	Classes     []string        `json:"classes"`
	ClassCounts []int           `json:"class_counts"` // training split, per class (of the top layer's set)
	Train       int             `json:"train"`
	Test        int             `json:"test"`
	NewlySplit  int             `json:"newly_split"`
	Extract     ExtractSummary  `json:"extract"`
	Rows        []SweepRow      `json:"rows"` // by depth, then in --clf order
	Recommend   *Recommendation `json:"recommendation,omitempty"`
	Notes       []string        `json:"notes,omitempty"`
	Seconds     float64         `json:"seconds"` // the cross-validation, all pairs
}

// SweepRow is one (layer, classifier) pair's cross-validation.
type SweepRow struct {
	Layer        string  `json:"layer"`        // alias, else OpenCV name
	OpenCVLayer  string  `json:"opencv_layer"` // feature_sets.layer
	Depth        int     `json:"depth"`        // OpenCV layer id (larger is deeper)
	FeatureSetID int64   `json:"feature_set_id"`
	Pooling      string  `json:"pooling"`
	Spatial      bool    `json:"-"` // the layer has a spatial extent (pooling mattered)
	Dim          int     `json:"dim"`
	Classifier   string  `json:"classifier"`
	Train        int     `json:"train"`
	Accuracy     float64 `json:"cv_accuracy"`
	AccuracyStd  float64 `json:"cv_accuracy_std"`
	MacroF1      float64 `json:"macro_f1"`
	MacroF1Std   float64 `json:"macro_f1_std"`
	FitSeconds   float64 `json:"fit_seconds"` // mean of one fold's fit
	Recommended  bool    `json:"recommended"`
	Error        string  `json:"error,omitempty"` // the pair failed (others went on)
}

// MarshalJSON writes non-finite numbers as null (encoding/json refuses NaN).
func (r SweepRow) MarshalJSON() ([]byte, error) {
	type plain SweepRow
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		plain
		Accuracy    *float64 `json:"cv_accuracy"`
		AccuracyStd *float64 `json:"cv_accuracy_std"`
		MacroF1     *float64 `json:"macro_f1"`
		MacroF1Std  *float64 `json:"macro_f1_std"`
		FitSeconds  *float64 `json:"fit_seconds"`
	}{plain(r), num(r.Accuracy), num(r.AccuracyStd), num(r.MacroF1), num(r.MacroF1Std), num(r.FitSeconds)})
}

// sweepClassifiers checks the names to sweep. Unknown names given by the
// user are a usage error; the default list keeps what this build has.
func sweepClassifiers(names []string) ([]string, []string, error) {
	known := func(n string) bool {
		return !errors.Is(classify.DefaultParams(n).Validate(), classify.ErrUnknownClassifier)
	}
	if len(names) > 0 {
		seen := map[string]bool{}
		var out []string
		for _, n := range names {
			if !known(n) {
				return nil, nil, fmt.Errorf("sweep: classifier %s: %w (this build has %s)", n, classify.ErrUnknownClassifier, strings.Join(classify.Classifiers, ", "))
			}
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		return out, nil, nil
	}
	var out, missing []string
	for _, n := range DefaultSweepClassifiers {
		switch {
		case known(n):
			out = append(out, n)
		case n == "softmax" && known(classify.LogReg):
			out = append(out, classify.LogReg)
			missing = append(missing, "softmax (logreg, liblinear's logistic regression, stands in for it)")
		default:
			missing = append(missing, n)
		}
	}
	var notes []string
	if len(missing) > 0 {
		notes = append(notes, fmt.Sprintf("this build has no %s: sweeping %s", strings.Join(missing, ", no "), strings.Join(out, ", ")))
	}
	if len(out) == 0 {
		return nil, notes, fmt.Errorf("sweep: %w: none of the default classifiers %s is in this build, which has %s",
			classify.ErrUnknownClassifier, strings.Join(DefaultSweepClassifiers, ","), strings.Join(classify.Classifiers, ", "))
	}
	return out, notes, nil
}

// modelAliases lists the aliases of a model's graph, in network order
// (sweep without --layers loads the graph for them before anything is
// recorded; OpenNet's guarantees).
func modelAliases(ctx context.Context, m extract.Model) ([]string, error) {
	net, g, err := OpenNet(ctx, m)
	if err != nil {
		return nil, err
	}
	defer net.Close()
	names := g.AliasNames()
	if len(names) == 0 {
		return nil, usageKindf(ErrNoAliases, "model %s has no layer aliases (neither a VGG nor a ResNet pattern): the layers must be named", m.Name)
	}
	return names, nil
}

// outputsEvents passes events on and keeps the extractor's outputs.
type outputsEvents struct {
	Events
	outputs []extract.Output
}

func (o *outputsEvents) Started(info StartInfo) {
	o.outputs = info.Outputs
	o.Events.Started(info)
}

// Sweep extracts every requested layer of the inputs (one forward pass per
// image, incremental: it is an extract run), then cross-validates every
// classifier on every layer's training split, stores the results (a sweep
// run and its sweeps rows) and recommends a layer and classifier.
func Sweep(ctx context.Context, o SweepOptions) (res SweepResult, err error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res.DB, res.Model, res.Status = o.DB, o.Model.Name, store.RunFailed
	if o.Folds == 0 {
		o.Folds = 5
	}
	if o.Pool == "" {
		o.Pool = store.PoolAvg
	}
	res.Pool, res.Folds = o.Pool, o.Folds
	clfs, layers, err := sweepPlan(ctx, o, &res, logf)
	if err != nil {
		return res, err
	}

	// 1. The codes: an extract run over the inputs, all layers at once.
	sum, outputs, err := sweepExtract(ctx, o, layers, &res, logf)
	if err != nil {
		return res, err
	}
	pairs := sweepPairs(sum.FeatureSets, outputs, clfs)

	// 2. The sweep run: split, cross-validation, results.
	db, err := store.Open(o.DB, store.Options{})
	if err != nil {
		return res, err
	}
	defer db.Close()
	err = withRun(ctx, db, "sweep", o.Args, o.Wait, func(r *runScope) error {
		res.RunID = r.ID
		err := sweep(ctx, db, o, pairs, &res, logf)
		r.Counts = store.Counts{Seen: int64(res.Train)}
		res.Status = runStatus(err)
		return err
	})
	return res, err
}

// sweepPlan checks the options and lists the classifiers and layers to
// sweep; notes on classifiers left out go to res and the log.
func sweepPlan(ctx context.Context, o SweepOptions, res *SweepResult, logf func(string, ...any)) (clfs, layers []string, err error) {
	switch {
	case o.Folds < 2:
		return nil, nil, usagef("%d folds: want 2 or more", o.Folds)
	case !(o.TestFrac > 0 && o.TestFrac < 1):
		return nil, nil, usagef("test fraction %v must be between 0 and 1", o.TestFrac)
	case o.Pool != store.PoolAvg && o.Pool != store.PoolMax && o.Pool != store.PoolNone:
		return nil, nil, usagef("pool %q: want avg, max or none", o.Pool)
	}
	clfs, notes, err := sweepClassifiers(o.Classifiers)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range notes {
		logf("sweep: %s", n)
	}
	res.Notes = append(res.Notes, notes...)
	for _, c := range clfs {
		p := rowParams(o.Params, c)
		if err := p.Validate(); err != nil {
			return nil, nil, fmt.Errorf("sweep: classifier %s: %w", c, err)
		}
	}
	layers = o.Layers
	if len(layers) == 0 {
		if layers, err = modelAliases(ctx, o.Model); err != nil {
			return nil, nil, err
		}
		logf("sweep: every alias of %s: %s", o.Model.Name, strings.Join(layers, ", "))
	}
	return clfs, layers, nil
}

// sweepExtract runs the extraction of every layer and returns its summary
// (also in res) and the extractor's outputs, one per feature set. Files
// that failed leave a note; the sweep uses the others.
func sweepExtract(ctx context.Context, o SweepOptions, layers []string, res *SweepResult, logf func(string, ...any)) (ExtractSummary, []extract.Output, error) {
	eo := o.Extract
	eo.DB, eo.Model, eo.Layers, eo.Pool, eo.Wait, eo.Args = o.DB, o.Model, layers, o.Pool, o.Wait, o.Args
	ev := &outputsEvents{Events: eo.Events}
	if ev.Events == nil {
		ev.Events = nopEvents{}
	}
	eo.Events = ev
	sum, err := Extract(ctx, eo)
	res.Extract = sum
	switch {
	case errors.Is(err, ErrPartial):
		res.Notes = append(res.Notes, fmt.Sprintf("extract: %d of %d files failed (see run %d's failures); the sweep uses the others", sum.Counts.Failed, sum.Counts.Seen, sum.RunID))
		logf("sweep: %s", res.Notes[len(res.Notes)-1])
	case err != nil:
		return sum, nil, err
	}
	if len(ev.outputs) != len(sum.FeatureSets) {
		return sum, nil, fmt.Errorf("sweep: internal: %d outputs for %d feature sets", len(ev.outputs), len(sum.FeatureSets))
	}
	return sum, ev.outputs, nil
}

// sweepPairs lists the (layer, classifier) pairs to cross-validate, by
// depth, then in clfs order.
func sweepPairs(sets []store.FeatureSet, outputs []extract.Output, clfs []string) []SweepRow {
	var pairs []SweepRow
	for i, fs := range sets {
		out := outputs[i]
		name := out.Alias
		if name == "" {
			name = out.Layer.Name
		}
		for _, c := range clfs {
			pairs = append(pairs, SweepRow{Layer: name, OpenCVLayer: fs.Layer, Depth: out.Layer.ID, FeatureSetID: fs.ID,
				Pooling: fs.Pooling, Spatial: out.Layer.Spatial(), Dim: fs.Dim, Classifier: c})
		}
	}
	clfIndex := map[string]int{}
	for i, c := range clfs {
		clfIndex[c] = i
	}
	sort.SliceStable(pairs, func(i, j int) bool {
		if pairs[i].Depth != pairs[j].Depth {
			return pairs[i].Depth < pairs[j].Depth
		}
		return clfIndex[pairs[i].Classifier] < clfIndex[pairs[j].Classifier]
	})
	return pairs
}

func sweep(ctx context.Context, db *store.DB, o SweepOptions, pairs []SweepRow, res *SweepResult, logf func(string, ...any)) error {
	bg := context.WithoutCancel(ctx)
	added, err := assignSplit(bg, db, o.TestFrac, false, "sweep", logf)
	if err != nil {
		return err
	}
	res.NewlySplit = added
	// The training split of each set, loaded once for its classifiers.
	var cur int64
	var ds *classify.Dataset
	var saved []store.SweepResult
	defer func() {
		// What was measured is kept, also when the sweep stops early.
		if len(saved) > 0 {
			if err := db.SaveSweep(bg, res.RunID, saved); err != nil {
				logf("sweep: %v", err)
			}
		}
	}()
	t0 := time.Now()
	for i := range pairs {
		r := &pairs[i]
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %d of %d pairs cross-validated (kept in run %d)", ErrInterrupted, i, len(pairs), res.RunID)
		}
		if r.FeatureSetID != cur {
			fs, err := db.FeatureSet(bg, r.FeatureSetID)
			if err != nil {
				return err
			}
			var counts splitCounts
			ds, counts, err = loadSplit(bg, db, fs, store.PartTrain, nil)
			if err != nil {
				return err
			}
			cur = r.FeatureSetID
			if len(ds.Classes) < 2 {
				return fmt.Errorf("%w: the training split of %s has %d class(es) %v; label the images by sub-folder or by a path,label list",
					classify.ErrTooFewClasses, fs, len(ds.Classes), ds.Classes)
			}
			// The top layer's numbers describe the dataset (layers
			// extracted at other times may hold other images).
			res.Classes, res.ClassCounts, res.Train, res.Test = ds.Classes, ds.Counts(), len(ds.X), counts.test
		}
		if o.Progress != nil {
			o.Progress(SweepProgress{Done: i, Total: len(pairs), Layer: r.Layer, Classifier: r.Classifier})
		}
		sr, err := r.crossValidate(ds, o, logf)
		if err != nil {
			return err
		}
		saved = append(saved, sr)
		res.Rows = append(res.Rows, *r)
		if o.Progress != nil {
			o.Progress(SweepProgress{Done: i + 1, Total: len(pairs), Layer: r.Layer, Classifier: r.Classifier, Row: r})
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	rec, ok := Recommend(RecommendInput{Rows: res.Rows, Classes: res.Classes, ClassCounts: res.ClassCounts, Model: o.Model.Name,
		Pool: o.Pool, Folds: o.Folds, Params: o.Params, DB: o.CommandDB})
	if ok {
		res.Recommend = &rec
		for i := range res.Rows {
			if res.Rows[i].FeatureSetID == rec.FeatureSetID && res.Rows[i].Classifier == rec.Classifier {
				res.Rows[i].Recommended, saved[i].Recommended = true, true
			}
		}
	}
	return nil
}

// crossValidate fills the row with its classifier's cross-validation on
// the training split ds and returns it as stored. A classifier that fails
// leaves its error in the row (the other pairs go on); data too small for
// the folds fails the sweep.
func (r *SweepRow) crossValidate(ds *classify.Dataset, o SweepOptions, logf func(string, ...any)) (store.SweepResult, error) {
	p := rowParams(o.Params, r.Classifier)
	r.Train = len(ds.X)
	cv, err := classify.CrossValidate(ds, p, o.Folds)
	switch {
	case errors.Is(err, classify.ErrTooFewSamples), errors.Is(err, classify.ErrTooFewClasses):
		return store.SweepResult{}, err // the data, not the classifier: every pair would fail
	case err != nil:
		r.Error = err.Error()
		r.Accuracy, r.AccuracyStd, r.MacroF1, r.MacroF1Std, r.FitSeconds = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		logf("sweep: %s on %s failed: %v", r.Classifier, r.Layer, err)
	default:
		r.Accuracy, r.AccuracyStd, r.MacroF1, r.MacroF1Std = cv.MeanAccuracy, cv.StdAccuracy, cv.MeanMacroF1, cv.StdMacroF1
		var fit float64
		for _, f := range cv.Folds {
			fit += f.FitSeconds
		}
		r.FitSeconds = fit / float64(len(cv.Folds))
	}
	params, _ := json.Marshal(p)
	return store.SweepResult{FeatureSetID: r.FeatureSetID, Layer: r.Layer, Depth: r.Depth, Classifier: r.Classifier,
		Params: params, Folds: o.Folds, Train: r.Train, Accuracy: r.Accuracy, AccuracyStd: r.AccuracyStd, MacroF1: r.MacroF1,
		MacroF1Std: r.MacroF1Std, FitSeconds: r.FitSeconds}, nil
}

// rowParams is classifier clf's defaults with the sweep's overrides: the
// shared fields of template that differ from DefaultParams("").
func rowParams(template classify.Params, clf string) classify.Params {
	p, d := classify.DefaultParams(clf), classify.DefaultParams("")
	if template.Transform != d.Transform {
		p.Transform = template.Transform
	}
	if template.Kernel != d.Kernel {
		p.Kernel = template.Kernel
	}
	if template.C != d.C {
		p.C = template.C
	}
	if template.Gamma != d.Gamma {
		p.Gamma = template.Gamma
	}
	if template.Balanced != d.Balanced {
		p.Balanced = template.Balanced
	}
	if template.Seed != d.Seed {
		p.Seed = template.Seed
	}
	return p
}
