package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"pipeline/classify"
	"pipeline/pipeline"
)

func cmdEval(e *env, args []string) error {
	fs := newFlags(e, "eval", "eval [flags] NAME")
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
