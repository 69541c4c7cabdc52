package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"pipeline/classify"
	"pipeline/errclass"
	"pipeline/pipeline"
)

func cmdSweep(e *env, args []string) error {
	fs := newFlags(e, "sweep", "sweep [flags] --model NAME|PATH (--images DIR | --list FILE|-)")
	var mf modelFlags
	addModelFlags(fs, &mf)
	db := addDBFlag(fs)
	layers := fs.String("layers", "", "layers to compare, comma-separated (default: every alias of the model, e.g. block3_pool,block4_pool,block5_pool,fc1,fc2)")
	fs.StringVar(layers, "layer", "", "same as --layers")
	pool := addPoolFlag(fs)
	clf := fs.String("clf", "", "classifiers to cross-validate on every layer, comma-separated (default: "+strings.Join(pipeline.DefaultSweepClassifiers, ",")+", those this build has)")
	in := addInputFlags(fs)
	cv := fs.Int("cv", 5, "folds of the stratified cross-validation on the training split")
	testFrac := fs.Float64("test-frac", 0.2, "held-out fraction per class of the automatic split (fixed by the first fit or sweep of a database)")
	kernel := fs.String("kernel", "rbf", "svm kernel: linear, rbf, poly or sigmoid")
	c := fs.Float64("C", 1, "regularisation C (svm, linear, logreg, softmax)")
	gamma := fs.String("gamma", "scale", "svm gamma: scale, auto or a number")
	scale := fs.String("feature-scale", "none", "feature scaling fitted on each fold's training part: standard, minmax or none (fit's --scale; --scale here is the pixel scale)")
	l2 := fs.Bool("l2", false, "L2-normalise each vector first")
	balanced := fs.Bool("balanced", false, "weight classes by n/(k*n_class)")
	seed := fs.Int64("seed", 1, "seed for the folds and the classifiers")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	plot := fs.String("plot", "", "draw accuracy by depth per classifier into this PNG file")
	cf := addComputeFlags(fs, withTarget|withBatch|withWorkers)
	wait := addWaitFlag(fs, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := cf.check("sweep"); err != nil {
		return err
	}
	if mf.model == "" {
		return usageError("sweep: --model is required (a catalog name such as vgg16, or a model file)")
	}
	if in.images == "" && in.list == "" {
		return usageError("sweep: give the images with --images DIR or --list FILE (a rerun over the same images computes nothing again)")
	}
	dbGiven := false
	fs.Visit(func(f *flag.Flag) { dbGiven = dbGiven || f.Name == "db" })
	model, err := mf.resolve(true)
	if err != nil {
		return err
	}
	p := classify.DefaultParams("")
	p.Kernel, p.C, p.Balanced, p.Seed = *kernel, *c, *balanced, *seed
	p.Transform = classify.TransformSpec{Scale: *scale, L2: *l2}
	g, err := classify.ParseGamma(*gamma)
	if err != nil {
		return errclass.Wrap(errclass.Usage, err)
	}
	p.Gamma = g
	commandDB := ""
	if dbGiven {
		commandDB = *db
	}
	pr := newProgress(e, "sweep: extract")
	sp := &sweepProgress{e: e}
	res, err := pipeline.Sweep(e.ctx, pipeline.SweepOptions{
		DB: *db, Model: model, Layers: commaList(*layers), Pool: *pool, Classifiers: commaList(*clf), Params: p,
		Folds: *cv, TestFrac: *testFrac, Wait: *wait, Args: e.args, CommandDB: commandDB, Log: e.infof, Progress: sp.update,
		Extract: pipeline.ExtractOptions{
			Compute: cf.compute(), Batch: cf.batch, Nets: cf.nets, Workers: cf.workers,
			Images: in.images, List: in.list, ListReader: e.stdin, Split: in.split, MaxPixels: cf.maxPixels, Events: pr,
		},
	})
	pr.Done()
	sp.done()
	if err != nil && len(res.Rows) == 0 {
		if errors.Is(err, classify.ErrUnknownClassifier) {
			return withHint(err, "--clf takes a comma-separated list of them")
		}
		return err
	}
	if *plot != "" && len(res.Rows) > 0 {
		if perr := writeSweepPlot(*plot, res); perr != nil && err == nil {
			err = perr
		}
	}
	if *asJSON {
		if jerr := writeJSON(e, res); jerr != nil {
			return jerr
		}
		return err
	}
	printSweep(e, res, *plot)
	return err
}

// sweepProgress draws the cross-validation's progress: a bar on a
// terminal, one line per finished pair otherwise (cron logs).
type sweepProgress struct {
	mu    sync.Mutex
	e     *env
	start time.Time
	drawn bool
}

func (s *sweepProgress) update(p pipeline.SweepProgress) {
	if s.e.quiet {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start.IsZero() {
		s.start = time.Now()
	}
	if s.e.tty {
		const width = 24
		n := p.Done * width / max(p.Total, 1)
		what := "cross-validating " + p.Layer + " × " + p.Classifier
		if r := p.Row; r != nil {
			what = fmt.Sprintf("%s × %s: %.4f ± %.4f", r.Layer, r.Classifier, r.Accuracy, r.AccuracyStd)
		}
		fmt.Fprintf(s.e.stderr, "\r\033[Ksweep [%s%s] %d/%d pairs  %s  %s", strings.Repeat("#", n), strings.Repeat(".", width-n),
			p.Done, p.Total, fmtDuration(time.Since(s.start)), what)
		s.drawn = true
		return
	}
	if r := p.Row; r != nil {
		if r.Error != "" {
			s.e.infof("sweep: %d/%d %s × %s failed: %s", p.Done, p.Total, r.Layer, r.Classifier, r.Error)
			return
		}
		s.e.infof("sweep: %d/%d %s × %s: CV accuracy %.4f ± %.4f, fit %.2fs", p.Done, p.Total, r.Layer, r.Classifier, r.Accuracy, r.AccuracyStd, r.FitSeconds)
	}
}

func (s *sweepProgress) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drawn {
		fmt.Fprintln(s.e.stderr)
		s.drawn = false
	}
}

func writeSweepPlot(path string, res pipeline.SweepResult) error {
	var layers []string
	index := map[string]int{}
	for _, r := range res.Rows {
		if _, ok := index[r.Layer]; !ok {
			index[r.Layer] = len(layers)
			layers = append(layers, r.Layer)
		}
	}
	var series []classify.SweepSeries
	byClf := map[string]int{}
	for _, r := range res.Rows {
		k, ok := byClf[r.Classifier]
		if !ok {
			k = len(series)
			byClf[r.Classifier] = k
			s := classify.SweepSeries{Name: r.Classifier, Mean: make([]float64, len(layers)), Std: make([]float64, len(layers))}
			for i := range s.Mean {
				s.Mean[i], s.Std[i] = math.NaN(), math.NaN()
			}
			series = append(series, s)
		}
		series[k].Mean[index[r.Layer]], series[k].Std[index[r.Layer]] = r.Accuracy, r.AccuracyStd
	}
	png, err := classify.PlotSweep(layers, series, fmt.Sprintf("%s, %d-fold CV on %d training images", res.Model, res.Folds, res.Train))
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

func printSweep(e *env, res pipeline.SweepResult, plot string) {
	w := e.stdout
	x := res.Extract.Counts
	fmt.Fprintf(w, "sweep run %d %s: %s, %d layers, %d (layer, classifier) pairs in %s; extract run %d: %d files (%d extracted, %d present, %d duplicates, %d failed)\n",
		res.RunID, res.Status, res.Model, distinct(res.Rows), len(res.Rows), fmtDuration(time.Duration(res.Seconds*float64(time.Second))),
		res.Extract.RunID, x.Seen, x.Extracted, x.Present, x.Duplicates, x.Failed)
	fmt.Fprintf(w, "training split: %d images, classes %s; held out: %d; %d-fold CV, pooling %s\n\n",
		res.Train, classList(res.Classes, res.ClassCounts), res.Test, res.Folds, res.Pool)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tdim\tclassifier\tCV accuracy\t±\tmacro-F1\tfit s\t\t")
	for _, r := range res.Rows {
		mark := ""
		if r.Recommended {
			mark = "<- recommended"
		}
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\t-\t-\tfailed: %s\t\n", r.Layer, r.Dim, r.Classifier, r.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.4f\t%.4f\t%.4f\t%.2f\t%s\t\n", r.Layer, r.Dim, r.Classifier, r.Accuracy, r.AccuracyStd, r.MacroF1, r.FitSeconds, mark)
	}
	tw.Flush()
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if plot != "" {
		fmt.Fprintf(w, "accuracy by depth drawn in %s\n", plot)
	}
	if rec := res.Recommend; rec != nil {
		fmt.Fprintln(w)
		for _, t := range rec.Text {
			fmt.Fprintln(w, t)
		}
		fmt.Fprintf(w, "\n    %s\n", rec.Command)
	}
}

func distinct(rows []pipeline.SweepRow) int {
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.Layer] = true
	}
	return len(seen)
}

func classList(classes []string, counts []int) string {
	var parts []string
	for i, c := range classes {
		if i < len(counts) {
			parts = append(parts, fmt.Sprintf("%s %d", c, counts[i]))
		}
	}
	return strings.Join(parts, ", ")
}
