package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"pipeline/pipeline"
	"pipeline/store"
)

func cmdSimilar(e *env, args []string) error {
	fs := newFlags(e, "similar", "similar [flags] IMAGE|PATH|SHA256 --layer NAME|--set ID")
	dbs := addDBListFlag(fs)
	var q pipeline.SetQuery
	addFeatureSetFlags(fs, &q)
	k := fs.Int("k", 10, "number of neighbours")
	metric := fs.String("metric", "cosine", "distance: cosine (1 - cosine similarity) or l2 (Euclidean)")
	self := fs.Bool("include-self", false, "keep the query image itself (and its copies at other paths) in the results")
	asCSV := fs.Bool("csv", false, "print CSV: rank,distance,path,label")
	asJSON := fs.Bool("json", false, "print the query and its neighbours as one JSON object")
	modelFile := fs.String("model-file", "", "the set's CNN file, to compute a new image's code when the model cannot be found by its name")
	method := fs.String("method", "auto", "search: auto, c, go or sql (all exact; for benchmarks and cross-checks)")
	cf := addComputeFlags(fs, withSetEngine)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("similar: want one image: a file, a stored path, a relative path as stored, or a sha256")
	}
	if err := cf.check("similar"); err != nil {
		return err
	}
	if err := checkBounds("similar", positive("k", int64(*k))); err != nil {
		return err
	}
	if *asCSV && *asJSON {
		return usageError("similar: --csv or --json, not both")
	}
	m, err := store.ParseSearchMethod(*method)
	if err != nil {
		return usageError("similar: --method: %v", err)
	}
	res, err := pipeline.Similar(e.ctx, pipeline.SimilarOptions{
		DB: dbs()[0], More: dbs()[1:], Query: pos[0], Set: q, K: *k, Metric: *metric, IncludeSelf: *self, Method: m, ModelPath: *modelFile,
		Compute: cf.compute(), MaxPixels: cf.maxPixels, Log: e.infof,
	})
	if err != nil {
		return similarHint(err) // classed: unknown image 2, no vector or a zero vector 5
	}
	how := "stored vector"
	if res.Query.Source == "computed" {
		how = "computed now"
	}
	e.infof("similar: %s (%s) in %s: %d nearest by %s of %d, search %.3fs",
		pos[0], how, res.FeatureSet, len(res.Neighbors), res.Metric, res.FeatureSet.Vectors, res.SearchSeconds)
	switch {
	case *asJSON:
		return writeJSON(e, res)
	case *asCSV:
		cw := csv.NewWriter(e.stdout)
		cw.Write([]string{"rank", "distance", "path", "label"})
		for _, n := range res.Neighbors {
			cw.Write([]string{strconv.Itoa(n.Rank), strconv.FormatFloat(n.Distance, 'g', -1, 64), n.Path, n.Label})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	many := len(dbs()) > 1
	if many {
		fmt.Fprintln(tw, "RANK\tDISTANCE\tPATH\tLABEL\tDB")
	} else {
		fmt.Fprintln(tw, "RANK\tDISTANCE\tPATH\tLABEL")
	}
	for _, n := range res.Neighbors {
		label := n.Label
		if label == "" {
			label = "-"
		}
		if many {
			fmt.Fprintf(tw, "%d\t%.6f\t%s\t%s\t%s\n", n.Rank, n.Distance, n.Path, label, n.DB)
			continue
		}
		fmt.Fprintf(tw, "%d\t%.6f\t%s\t%s\n", n.Rank, n.Distance, n.Path, label)
	}
	return tw.Flush()
}

// similarHint says which flag helps with an image or a model similar could
// not find.
func similarHint(err error) error {
	switch {
	case errors.Is(err, pipeline.ErrSetModel):
		return withHint(err, "pass --model-file PATH to the model file")
	case errors.Is(err, pipeline.ErrUnknownImage):
		return withHint(err, "`pipeline extract ... --list FILE` stores images")
	}
	return err
}
