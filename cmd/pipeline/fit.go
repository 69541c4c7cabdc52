package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"pipeline/classify"
	"pipeline/pipeline"
)

// fitFlags are fit's flags beyond the feature set and the database.
type fitFlags struct {
	name, clf, kernel, gamma, hidden, metric, scale, gridC, gridGamma string
	c, coef0, dropout, lr, valFrac, testFrac                          float64
	degree, epochs, patience, batchSize, k, trees, pca, cv            int
	seed                                                              int64
	replace, prob, balanced, l2, grid, verbose, final, resetSplit     bool
	asJSON                                                            bool
}

func addFitFlags(fs *flag.FlagSet) *fitFlags {
	f := &fitFlags{}
	fs.StringVar(&f.name, "name", "", "name to store the classifier under")
	fs.BoolVar(&f.replace, "replace", false, "replace an existing classifier of that name")
	fs.StringVar(&f.clf, "clf", "logreg", "classifier: softmax (multinomial logistic regression, the tutorial's softmax head), mlp (dense layers on the codes), svm, linear (liblinear linear SVM), logreg (liblinear logistic regression: one-vs-rest for more than 2 classes, not softmax), knn or forest")
	fs.StringVar(&f.kernel, "kernel", "rbf", "svm kernel: linear, rbf, poly or sigmoid")
	fs.Float64Var(&f.c, "C", 1, "regularisation C (svm, linear, logreg, softmax)")
	fs.StringVar(&f.gamma, "gamma", "scale", "svm gamma: scale (1/(d*var)), auto (1/d) or a number")
	fs.IntVar(&f.degree, "degree", 3, "poly kernel degree")
	fs.Float64Var(&f.coef0, "coef0", 0, "poly/sigmoid kernel coef0")
	fs.BoolVar(&f.prob, "probability", true, "svm: fit probability estimates (Platt scaling, 5 more fits); the label is then the most probable class, else the one-vs-one vote")
	fs.BoolVar(&f.balanced, "balanced", false, "weight classes by n/(k*n_class) (svm, linear, logreg, softmax, mlp)")
	fs.StringVar(&f.hidden, "hidden", "256,128", "mlp: hidden layer widths, comma-separated")
	fs.Float64Var(&f.dropout, "dropout", 0.5, "mlp: dropout probability after each hidden layer")
	fs.IntVar(&f.epochs, "epochs", 200, "mlp: maximum epochs")
	fs.IntVar(&f.patience, "patience", 10, "mlp: stop after this many epochs without a better validation loss")
	fs.IntVar(&f.batchSize, "batch-size", 32, "mlp: mini-batch size")
	fs.Float64Var(&f.lr, "learning-rate", 1e-3, "mlp: Adam step size")
	fs.Float64Var(&f.valFrac, "val-frac", 0.1, "mlp: fraction of each class of the training split held out for early stopping")
	fs.IntVar(&f.k, "k", 5, "knn: neighbours")
	fs.StringVar(&f.metric, "metric", "euclidean", "knn: euclidean or cosine")
	fs.IntVar(&f.trees, "trees", 100, "forest: trees")
	fs.StringVar(&f.scale, "scale", "none", "feature scaling fitted on the training split: standard, minmax or none")
	fs.BoolVar(&f.l2, "l2", false, "L2-normalise each vector first")
	fs.IntVar(&f.pca, "pca", 0, "project on this many principal components (fitted on the training split)")
	fs.IntVar(&f.cv, "cv", 0, "report stratified K-fold cross-validation on the training split")
	fs.BoolVar(&f.grid, "grid", false, "search C (and gamma for rbf) with cross-validation first (libsvm grid.py ranges), using all cores")
	fs.StringVar(&f.gridC, "grid-c", "", "grid: log2 C range start:stop:step (default -5:15:2); implies --grid")
	fs.StringVar(&f.gridGamma, "grid-gamma", "", "grid: log2 gamma range start:stop:step (default 3:-15:-2); implies --grid")
	fs.BoolVar(&f.verbose, "verbose", false, "print the whole grid table")
	fs.BoolVar(&f.final, "final", false, "after the CV report on the training split, refit on all labelled images (held-out split included); eval then has nothing held out")
	fs.Float64Var(&f.testFrac, "test-frac", 0.2, "held-out fraction per class of the automatic split (fixed by the first fit of a database; see --reset-split)")
	fs.BoolVar(&f.resetSplit, "reset-split", false, "delete the automatic train/test split first and make a new one with --test-frac (a split chosen by folders or extract --split stays)")
	fs.Int64Var(&f.seed, "seed", 1, "seed for folds, Platt scaling and the forest")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	return f
}

func cmdFit(e *env, args []string) error {
	fs := newFlags(e, "fit", "fit [flags] --layer NAME --name NAME")
	dbs := addDBListFlag(fs)
	var q pipeline.SetQuery
	addFeatureSetFlags(fs, &q)
	f := addFitFlags(fs)
	wait := addWaitFlag(fs, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	o, err := f.options()
	if err != nil {
		return err
	}
	gp := newGridProgress(e)
	o.DB, o.More, o.Set, o.Wait, o.Args, o.Log, o.GridProgress = dbs()[0], dbs()[1:], q, *wait, e.args, e.infof, gp.report
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
	if f.asJSON {
		return writeJSON(e, res)
	}
	printFit(e.stdout, res, f.verbose)
	return nil
}

// options checks fit's flags and turns them into FitOptions (without the
// database, feature set and logging).
func (f *fitFlags) options() (pipeline.FitOptions, error) {
	var o pipeline.FitOptions
	if f.name == "" {
		return o, usageError("fit: --name is required (e.g. --name cats-svm)")
	}
	for _, v := range []struct {
		name string
		v    float64
	}{{"C", f.c}, {"coef0", f.coef0}, {"test-frac", f.testFrac}} {
		if math.IsNaN(v.v) || math.IsInf(v.v, 0) {
			return o, usageError("fit: --%s %v: want a finite number", v.name, v.v)
		}
	}
	if f.cv == 1 || f.cv < 0 {
		return o, usageError("fit: --cv %d: want 0 (no cross-validation) or 2 folds or more", f.cv)
	}
	if err := checkBounds("fit", zeroOrMore("pca", int64(f.pca), "no projection"), positive("k", int64(f.k)), positive("trees", int64(f.trees))); err != nil {
		return o, err
	}
	p := classify.DefaultParams(f.clf)
	p.Kernel, p.C, p.Degree, p.Coef0, p.Probability, p.Balanced = f.kernel, f.c, f.degree, f.coef0, f.prob, f.balanced
	p.K, p.Metric, p.Trees, p.Seed = f.k, f.metric, f.trees, f.seed
	p.Dropout, p.Epochs, p.Patience, p.BatchSize, p.LearningRate, p.ValFrac = f.dropout, f.epochs, f.patience, f.batchSize, f.lr, f.valFrac
	p.Hidden = nil
	for _, h := range strings.Split(f.hidden, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		v, err := strconv.Atoi(h)
		if err != nil {
			return o, usageError("fit: --hidden %q: want comma-separated widths, e.g. 256,128", f.hidden)
		}
		p.Hidden = append(p.Hidden, v)
	}
	grid := f.grid
	for _, r := range []struct {
		flag string
		s    string
		dst  *[3]float64
	}{{"--grid-c", f.gridC, &o.GridC}, {"--grid-gamma", f.gridGamma, &o.GridGamma}} {
		if r.s == "" {
			continue
		}
		v, err := classify.ParseGridRange(r.s)
		if err != nil {
			return o, usageError("fit: %s: %w", r.flag, err)
		}
		*r.dst, grid = v, true
	}
	p.Transform = classify.TransformSpec{Scale: f.scale, L2: f.l2, PCA: f.pca}
	g, err := classify.ParseGamma(f.gamma)
	if err != nil {
		return o, err // ErrBadParam: a usage error
	}
	p.Gamma = g
	o.Name, o.Replace, o.Params, o.CV, o.Grid, o.Final, o.TestFrac, o.ResetSplit = f.name, f.replace, p, f.cv, grid, f.final, f.testFrac, f.resetSplit
	return o, nil
}

// printFit is fit's report: the grid search, the split, the CV estimate
// and what to run next.
func printFit(w io.Writer, res pipeline.FitResult, verbose bool) {
	if res.Grid != nil && verbose {
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
		return
	}
	fmt.Fprintf(w, "fit in %.2fs, model %d bytes; next: pipeline eval %s\n", res.FitSeconds, res.ModelBytes, res.Name)
}
