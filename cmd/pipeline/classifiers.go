package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"pipeline/pipeline"
)

func cmdClassifiers(e *env, args []string) error {
	fs := newFlags(e, "classifiers", "classifiers [flags]")
	db := addDBFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON (an array of objects)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("classifiers: takes no arguments")
	}
	list, err := pipeline.Classifiers(e.ctx, *db)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "no classifiers yet: train one with `pipeline fit --layer LAYER --clf KIND --name NAME`")
		return nil
	}
	return writeClassifierTable(e.stdout, list)
}

func writeClassifierTable(w io.Writer, list []pipeline.ClassifierSummary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSET\tLAYER\tDIM\tTRAIN/TEST\tCV ACCURACY\tCREATED")
	for _, c := range list {
		layer := c.Layer
		if c.Pooling != "" && c.Pooling != "none" {
			layer += " (" + c.Pooling + ")"
		}
		if c.Precision != "fp32" {
			layer += " " + c.Precision
		}
		cv := "- (no --cv)"
		if c.CVAccuracy != nil {
			cv = fmt.Sprintf("%.3f ± %.3f (%d-fold)", *c.CVAccuracy, *c.CVStd, c.CVFolds)
		}
		split := fmt.Sprintf("%d/%d", c.Train, c.Test)
		if c.Final {
			split = fmt.Sprintf("%d/- (final)", c.Train)
		}
		fmt.Fprintf(tw, "%s\t%s\t#%d %s\t%s\t%d\t%s\t%s\t%s\n", c.Name, c.Kind, c.FeatureSet, c.Model, layer, c.Dim,
			split, cv, c.CreatedAt.Local().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

// classifierNames lists the stored classifiers for an error message, or
// says there are none.
func classifierNames(e *env, db string) string {
	list, err := pipeline.Classifiers(e.ctx, db)
	if err != nil || len(list) == 0 {
		return "the database has no classifier yet (`pipeline fit ... --name NAME` makes one)"
	}
	var names []string
	for _, c := range list {
		names = append(names, fmt.Sprintf("%s (%s on %s)", c.Name, c.Kind, c.Layer))
	}
	return "stored classifiers: " + strings.Join(names, ", ") + " (`pipeline classifiers` lists them)"
}
