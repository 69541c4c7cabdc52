package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"pipeline/classify"
	"pipeline/extract"
	"pipeline/pipeline"
	"pipeline/store"
)

func init() {
	register(command{"fit", "train a classifier on stored CNN codes", cmdFit})
	register(command{"eval", "score a classifier on the held-out split", cmdEval})
	register(command{"predict", "classify image files with a stored classifier", cmdPredict})
	register(command{"export", "write stored CNN codes as libsvm, CSV or .npy", cmdExport})
}

func addSetFlags(fs *flag.FlagSet, q *pipeline.SetQuery) {
	fs.StringVar(&q.Layer, "layer", "", "feature set: layer alias or OpenCV name as extract stored it (e.g. fc2)")
	fs.StringVar(&q.Model, "model", "", "model name, when several models have that layer")
	fs.StringVar(&q.Pool, "pool", "", "pooling of the feature set, when the layer was stored with several: avg, max or none (layers that are vectors, such as fc2, match any)")
	fs.Int64Var(&q.ID, "set", 0, "feature set id (pipeline sql \"SELECT id, model_name, alias, layer, pooling, dim FROM feature_sets\")")
}

func cmdFit(e *env, args []string) error {
	fs := newFlags(e, "fit", "fit --layer NAME --clf softmax|mlp|svm|linear|logreg|knn|forest --name NAME [flags]")
	dbs := addDBListFlag(fs)
	var q pipeline.SetQuery
	addSetFlags(fs, &q)
	name := fs.String("name", "", "name to store the classifier under")
	replace := fs.Bool("replace", false, "replace an existing classifier of that name")
	clf := fs.String("clf", "logreg", "classifier: softmax (multinomial logistic regression, the tutorial's softmax head), mlp (dense layers on the codes), svm, linear (liblinear linear SVM), logreg (liblinear logistic regression: one-vs-rest for more than 2 classes, not softmax), knn or forest")
	kernel := fs.String("kernel", "rbf", "svm kernel: linear, rbf, poly or sigmoid")
	c := fs.Float64("C", 1, "regularisation C (svm, linear, logreg, softmax)")
	gamma := fs.String("gamma", "scale", "svm gamma: scale (1/(d*var)), auto (1/d) or a number")
	degree := fs.Int("degree", 3, "poly kernel degree")
	coef0 := fs.Float64("coef0", 0, "poly/sigmoid kernel coef0")
	prob := fs.Bool("probability", true, "svm: fit probability estimates (Platt scaling, 5 more fits); the label is then the most probable class, else the one-vs-one vote")
	balanced := fs.Bool("balanced", false, "weight classes by n/(k*n_class) (svm, linear, logreg, softmax, mlp)")
	hidden := fs.String("hidden", "256,128", "mlp: hidden layer widths, comma-separated")
	dropout := fs.Float64("dropout", 0.5, "mlp: dropout probability after each hidden layer")
	epochs := fs.Int("epochs", 200, "mlp: maximum epochs")
	patience := fs.Int("patience", 10, "mlp: stop after this many epochs without a better validation loss")
	batchSize := fs.Int("batch-size", 32, "mlp: mini-batch size")
	lr := fs.Float64("learning-rate", 1e-3, "mlp: Adam step size")
	valFrac := fs.Float64("val-frac", 0.1, "mlp: fraction of each class of the training split held out for early stopping")
	k := fs.Int("k", 5, "knn: neighbours")
	metric := fs.String("metric", "euclidean", "knn: euclidean or cosine")
	trees := fs.Int("trees", 100, "forest: trees")
	scale := fs.String("scale", "none", "feature scaling fitted on the training split: standard, minmax or none")
	l2 := fs.Bool("l2", false, "L2-normalise each vector first")
	pca := fs.Int("pca", 0, "project on this many principal components (fitted on the training split)")
	cv := fs.Int("cv", 0, "report stratified K-fold cross-validation on the training split")
	grid := fs.Bool("grid", false, "search C (and gamma for rbf) with cross-validation first (libsvm grid.py ranges), using all cores")
	gridC := fs.String("grid-c", "", "grid: log2 C range start:stop:step (default -5:15:2); implies --grid")
	gridGamma := fs.String("grid-gamma", "", "grid: log2 gamma range start:stop:step (default 3:-15:-2); implies --grid")
	verbose := fs.Bool("verbose", false, "print the whole grid table")
	final := fs.Bool("final", false, "after the CV report on the training split, refit on all labelled images (held-out split included); eval then has nothing held out")
	testFrac := fs.Float64("test-frac", 0.2, "held-out fraction per class of the automatic split (fixed by the first fit of a database; see --reset-split)")
	resetSplit := fs.Bool("reset-split", false, "delete the automatic train/test split first and make a new one with --test-frac (a split chosen by folders or extract --split stays)")
	seed := fs.Int64("seed", 1, "seed for folds, Platt scaling and the forest")
	wait := fs.Duration("wait", 0, "wait this long if another process is writing the database")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usageError("fit: --name is required (e.g. --name cats-svm)")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"C", *c}, {"coef0", *coef0}, {"test-frac", *testFrac}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return usageError("fit: --%s %v: want a finite number", f.name, f.v)
		}
	}
	if *cv == 1 || *cv < 0 {
		return usageError("fit: --cv %d: want 0 (no cross-validation) or 2 folds or more", *cv)
	}
	if err := checkBounds("fit", zeroOrMore("pca", int64(*pca), "no projection"), positive("k", int64(*k)), positive("trees", int64(*trees))); err != nil {
		return err
	}
	p := classify.DefaultParams(*clf)
	p.Kernel, p.C, p.Degree, p.Coef0, p.Probability, p.Balanced = *kernel, *c, *degree, *coef0, *prob, *balanced
	p.K, p.Metric, p.Trees, p.Seed = *k, *metric, *trees, *seed
	p.Dropout, p.Epochs, p.Patience, p.BatchSize, p.LearningRate, p.ValFrac = *dropout, *epochs, *patience, *batchSize, *lr, *valFrac
	p.Hidden = nil
	for _, h := range strings.Split(*hidden, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		v, err := strconv.Atoi(h)
		if err != nil {
			return usageError("fit: --hidden %q: want comma-separated widths, e.g. 256,128", *hidden)
		}
		p.Hidden = append(p.Hidden, v)
	}
	var o pipeline.FitOptions
	for _, r := range []struct {
		flag string
		s    string
		dst  *[3]float64
	}{{"--grid-c", *gridC, &o.GridC}, {"--grid-gamma", *gridGamma, &o.GridGamma}} {
		if r.s == "" {
			continue
		}
		v, err := classify.ParseGridRange(r.s)
		if err != nil {
			return usageError("fit: %s: %w", r.flag, err)
		}
		*r.dst, *grid = v, true
	}
	p.Transform = classify.TransformSpec{Scale: *scale, L2: *l2, PCA: *pca}
	g, err := classify.ParseGamma(*gamma)
	if err != nil {
		return err // ErrBadParam: a usage error
	}
	p.Gamma = g
	gp := newGridProgress(e)
	o.DB, o.More, o.Set, o.Name, o.Replace, o.Params, o.CV = dbs()[0], dbs()[1:], q, *name, *replace, p, *cv
	o.Grid, o.Final, o.TestFrac, o.ResetSplit, o.Wait, o.Args, o.Log, o.GridProgress = *grid, *final, *testFrac, *resetSplit, *wait, e.args, e.infof, gp.report
	res, err := pipeline.Fit(e.ctx, o)
	gp.done()
	if err != nil {
		return err
	}
	if res.Grid != nil {
		for _, edge := range res.Grid.Edges {
			flag := map[string]string{"C": "--grid-c", "gamma": "--grid-gamma"}[edge.Param]
			e.warnf("grid: the best %s (log2 %g) is on the %s edge of the searched range %g..%g: the optimum may lie beyond it; widen the range with %s",
				edge.Param, edge.Log2, edge.Side, edge.Min, edge.Max, flag)
		}
	}
	if *asJSON {
		return writeJSON(e, res)
	}
	w := e.stdout
	if res.Grid != nil && *verbose {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "stage\tlog2 C\tlog2 gamma\tCV accuracy\t±\tCV macro-F1\t")
		for _, pt := range res.Grid.Points {
			lg := "-"
			if pt.Gamma != 0 {
				lg = strconv.FormatFloat(pt.Log2Gamma, 'f', 1, 64)
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%s\t%.4f\t%.4f\t%.4f\t\n", pt.Stage, pt.Log2C, lg, pt.MeanAccuracy, pt.StdAccuracy, pt.MeanMacroF1)
		}
		tw.Flush()
	}
	if res.Grid != nil {
		fmt.Fprintf(w, "grid: best C=%g", res.Grid.Best.C)
		if res.Grid.Best.Gamma != 0 {
			fmt.Fprintf(w, " gamma=%g", res.Grid.Best.Gamma)
		}
		fmt.Fprintf(w, " (CV accuracy %.4f), %d points in %.1fs\n", res.Grid.Best.MeanAccuracy, len(res.Grid.Points), res.GridSeconds)
	}
	fmt.Fprintf(w, "classifier %s: %s on %s\n", res.Name, res.Kind, res.FeatureSet)
	fmt.Fprintf(w, "training split: %d vectors, classes %s; held out: %d", res.Train, strings.Join(res.Classes, ", "), res.Test)
	if res.Unlabeled > 0 {
		fmt.Fprintf(w, "; unlabeled (never trained on): %d", res.Unlabeled)
	}
	fmt.Fprintln(w)
	if res.CV != nil {
		fmt.Fprintf(w, "%d-fold CV: accuracy %.4f ± %.4f, macro-F1 %.4f ± %.4f (%.1fs)\n", res.CV.Folds,
			res.CV.MeanAccuracy, res.CV.StdAccuracy, res.CV.MeanMacroF1, res.CV.StdMacroF1, res.CVSeconds)
	}
	if res.Final {
		fmt.Fprintf(w, "final model: refitted on all %d labelled images (held-out split included): no held-out estimate exists for it; the CV above is the estimate\n", res.FinalTrain)
		fmt.Fprintf(w, "fit in %.2fs, model %d bytes; next: pipeline predict %s FILES\n", res.FitSeconds, res.ModelBytes, res.Name)
		return nil
	}
	fmt.Fprintf(w, "fit in %.2fs, model %d bytes; next: pipeline eval %s\n", res.FitSeconds, res.ModelBytes, res.Name)
	return nil
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdEval(e *env, args []string) error {
	fs := newFlags(e, "eval", "eval NAME [--json] [--plot FILE.png] [--errors]")
	db := addDBFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	plot := fs.String("plot", "", "draw the confusion matrix into this PNG file")
	errs := fs.Bool("errors", false, "list the misclassified held-out images")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("eval: want one classifier name; %s", classifierNames(e, *db))
	}
	res, err := pipeline.Eval(e.ctx, *db, pos[0])
	if err != nil {
		return err
	}
	if *plot != "" {
		var names []string
		for _, c := range res.Metrics.PerClass {
			names = append(names, c.Class)
		}
		png, err := classify.PlotConfusion(res.Metrics.Confusion, names, fmt.Sprintf("%s on %s (held out, n=%d)", res.Classifier, res.FeatureSet.Alias, res.Metrics.N))
		if err != nil {
			return err
		}
		if err := os.WriteFile(*plot, png, 0o644); err != nil {
			return err
		}
	}
	if !*errs {
		res.Errors = nil
	}
	if *asJSON {
		return writeJSON(e, res)
	}
	w := e.stdout
	m := res.Metrics
	fmt.Fprintf(w, "classifier %s (%s) on %s, held-out split: %d images\n", res.Classifier, res.Kind, res.FeatureSet, m.N)
	fmt.Fprintf(w, "accuracy %.4f, macro-F1 %.4f, weighted-F1 %.4f\n\n", m.Accuracy, m.MacroF1, m.WeightedF1)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tprecision\trecall\tF1\tsupport\t")
	for _, c := range m.PerClass {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%d\t\n", c.Class, c.Precision, c.Recall, c.F1, c.Support)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nconfusion matrix (rows: true class, columns: predicted):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, c := range m.PerClass {
		fmt.Fprintf(tw, "%s\t", c.Class)
	}
	fmt.Fprintln(tw)
	for i, row := range m.Confusion {
		fmt.Fprintf(tw, "%s\t", m.PerClass[i].Class)
		for _, v := range row {
			fmt.Fprintf(tw, "%d\t", v)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if res.UnknownClass > 0 {
		fmt.Fprintf(w, "\n%d held-out images have a class the classifier was not trained on (left out)\n", res.UnknownClass)
	}
	if res.Unsplit > 0 {
		fmt.Fprintf(w, "\n%d labeled images came after the split (the next `pipeline fit` assigns them)\n", res.Unsplit)
	}
	if *errs {
		fmt.Fprintf(w, "\n%d misclassified:\n", len(res.Errors))
		for _, x := range res.Errors {
			prob := ""
			if x.Probability != nil {
				prob = fmt.Sprintf(" (%.3f)", *x.Probability)
			}
			fmt.Fprintf(w, "  %s: %s, predicted %s%s\n", x.Path, x.True, x.Predicted, prob)
		}
	}
	if *plot != "" {
		fmt.Fprintf(w, "\nconfusion matrix drawn in %s\n", *plot)
	}
	return nil
}

func cmdPredict(e *env, args []string) error {
	fs := newFlags(e, "predict", "predict NAME FILE|DIR... [--list FILE|-] [--store] [--new-only] [--top K] [--csv|--json]")
	db := addDBFlag(fs)
	list := fs.String("list", "", "file listing images (one per line, or CSV path,label); - for stdin")
	storeIt := fs.Bool("store", false, "store the images, their codes and the predictions (predictions table)")
	newOnly := fs.Bool("new-only", false, "skip images this classifier has already predicted")
	top := fs.Int("top", 1, "list the K most probable classes")
	asCSV := fs.Bool("csv", false, "print CSV")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	model := fs.String("model", "", "the classifier's CNN file, when it cannot be found by the name it was extracted with")
	batch := fs.Int("batch", 8, "images per forward pass")
	threads := fs.Int("threads", 0, "OpenCV threads (0 = all cores, or cores/nets)")
	nets := fs.Int("nets", 1, "copies of the network working side by side")
	backend := fs.String("backend", "cpu", "cpu, opencl or cuda")
	maxPixels := fs.Int64("max-pixels", 100_000_000, "skip images with more pixels than this")
	wait := fs.Duration("wait", 0, "with --store: wait this long if another process is writing the database")
	engine, precision := addSetEngineFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usageError("predict: want a classifier name, then image files or folders")
	}
	if err := checkBounds("predict", positive("batch", int64(*batch)), positive("nets", int64(*nets)), positive("top", int64(*top)),
		zeroOrMore("threads", int64(*threads), "all cores"), zeroOrMore("max-pixels", *maxPixels, "no limit")); err != nil {
		return err
	}
	name, paths := pos[0], pos[1:]
	var cw *csv.Writer
	var tw *tabwriter.Writer
	switch {
	case *asCSV:
		cw = csv.NewWriter(e.stdout)
		cw.Write([]string{"path", "label", "probability", "top", "error"})
	case *asJSON:
	default:
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	}
	header := false
	enc := json.NewEncoder(e.stdout)
	emit := func(r pipeline.PredictRow) error {
		prob, top := "", ""
		if r.Probability != nil {
			prob = strconv.FormatFloat(*r.Probability, 'f', 4, 64)
		}
		var tops []string
		for _, t := range r.Top {
			tops = append(tops, fmt.Sprintf("%s:%.4f", t.Label, t.Probability))
		}
		top = strings.Join(tops, " ")
		switch {
		case cw != nil:
			msg := r.Error
			if r.Skipped {
				msg = "skipped: already predicted"
			}
			cw.Write([]string{r.Path, r.Label, prob, top, msg})
			cw.Flush()
			return cw.Error()
		case tw != nil:
			if !header {
				fmt.Fprintln(tw, "PATH\tLABEL\tPROBABILITY\tTOP")
				header = true
			}
			if r.Error != "" {
				fmt.Fprintf(tw, "%s\t-\t-\t%s: %s\n", r.Path, r.Stage, r.Error)
			} else if r.Skipped {
				fmt.Fprintf(tw, "%s\t-\t-\tskipped: already predicted\n", r.Path)
			} else {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Path, r.Label, prob, top)
			}
			return nil
		}
		return enc.Encode(r)
	}
	pr := newProgress(e, "predict")
	sum, err := pipeline.Predict(e.ctx, pipeline.PredictOptions{
		DB: *db, Name: name, Paths: paths, List: *list, ListReader: e.stdin, Store: *storeIt, NewOnly: *newOnly, TopK: *top,
		ModelPath: *model, Batch: *batch, Nets: *nets, Compute: extract.Compute{Backend: *backend, Threads: *threads, Engine: *engine, Arith: *precision},
		MaxPixels: *maxPixels, Wait: *wait, Args: e.args, Events: pr, Emit: emit,
	})
	pr.Done()
	if tw != nil {
		tw.Flush()
	}
	if !e.quiet && (sum.Predicted+sum.Skipped > 0 || err == nil) {
		c := sum.Counts
		msg := fmt.Sprintf("predict: %d files, %d predicted, %d failed", c.Seen, sum.Predicted, c.Failed)
		if sum.Skipped > 0 {
			msg += fmt.Sprintf(", %d skipped (already predicted)", sum.Skipped)
		}
		if sum.Stored > 0 {
			msg += fmt.Sprintf(", %d stored in run %d", sum.Stored, sum.RunID)
		}
		e.infof("%s", msg)
	}
	return err
}

func cmdExport(e *env, args []string) error {
	fs := newFlags(e, "export", "export --layer NAME --format libsvm|csv|npy [--split all|train|test] [--out FILE] > file")
	db := addDBFlag(fs)
	var q pipeline.SetQuery
	addSetFlags(fs, &q)
	format := fs.String("format", "csv", "libsvm, csv or npy")
	split := fs.String("split", "all", "all, train or test")
	unlabeled := fs.Bool("unlabeled", false, "include unlabeled images (csv, npy)")
	out := fs.String("out", "", "write here instead of stdout")
	labels := fs.String("labels", "", "npy: write row,path,label lines to this file")
	allowNonFinite := fs.Bool("allow-nonfinite", false, "write vectors holding NaN or Inf (refused by default: most tools choke on them)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	o := pipeline.ExportOptions{DB: *db, Set: q, Format: *format, Part: *split, Unlabeled: *unlabeled, Out: e.stdout, AllowNonFinite: *allowNonFinite}
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		o.Out = f
	}
	if *labels != "" {
		f, err := os.Create(*labels)
		if err != nil {
			return err
		}
		defer f.Close()
		o.Labels = f
	}
	sum, err := pipeline.Export(e.ctx, o)
	if err != nil {
		// No half-written file is left behind for another tool to read.
		for _, p := range []string{*out, *labels} {
			if p != "" {
				os.Remove(p)
			}
		}
	}
	if errors.Is(err, store.ErrNonFinite) {
		return withHint(err, "pipeline check lists them; --allow-nonfinite exports them anyway")
	}
	if err != nil {
		return err
	}
	if *format == "libsvm" {
		var m []string
		for i, c := range sum.Classes {
			m = append(m, fmt.Sprintf("%d=%s", i, c))
		}
		e.infof("export: %d rows of %s; labels %s", sum.Rows, sum.Set, strings.Join(m, " "))
	} else {
		e.infof("export: %d rows of %s", sum.Rows, sum.Set)
	}
	return nil
}
