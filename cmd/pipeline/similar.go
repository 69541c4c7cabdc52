package main

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"text/tabwriter"

	"pipeline/extract"
	"pipeline/pipeline"
	"pipeline/store"
)

func init() {
	register(command{"similar", "find the stored images nearest to an image by CNN code", cmdSimilar})
}

func cmdSimilar(e *env, args []string) error {
	fs := newFlags(e, "similar", "similar IMAGE|PATH|SHA256 --layer NAME [--model NAME|FILE] [--k 10] [--metric cosine|l2] [--csv|--json]")
	dbs := addDBListFlag(fs)
	var q pipeline.SetQuery
	fs.StringVar(&q.Layer, "layer", "", "feature set: layer alias or OpenCV name as extract stored it (e.g. fc2)")
	fs.StringVar(&q.Model, "model", "", "model name, when several models have that layer; a model file's path also serves as --model-file")
	fs.StringVar(&q.Pool, "pool", "", "pooling of the feature set, when the layer was stored with several: avg, max or none")
	fs.Int64Var(&q.ID, "set", 0, "feature set id (list them: pipeline sql \"SELECT * FROM feature_sets\")")
	k := fs.Int("k", 10, "number of neighbours")
	metric := fs.String("metric", "cosine", "distance: cosine (1 - cosine similarity) or l2 (Euclidean)")
	self := fs.Bool("include-self", false, "keep the query image itself (and its copies at other paths) in the results")
	asCSV := fs.Bool("csv", false, "print CSV: rank,distance,path,label")
	asJSON := fs.Bool("json", false, "print the query and its neighbours as one JSON object")
	modelFile := fs.String("model-file", "", "the set's CNN file, to compute a new image's code when the model cannot be found by its name")
	method := fs.String("method", "auto", "search: auto, c, go or sql (all exact; for benchmarks and cross-checks)")
	threads := fs.Int("threads", 0, "OpenCV threads for a new image (0 = all cores)")
	backend := fs.String("backend", "cpu", "cpu, opencl or cuda, for a new image")
	maxPixels := fs.Int64("max-pixels", 100_000_000, "refuse a query image with more pixels than this")
	engine, precision := addSetEngineFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("similar: want one image: a file, a stored path, a relative path as stored, or a sha256")
	}
	if err := checkBounds("similar", positive("k", int64(*k)), zeroOrMore("threads", int64(*threads), "all cores"),
		zeroOrMore("max-pixels", *maxPixels, "no limit")); err != nil {
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
		Compute: extract.Compute{Backend: *backend, Threads: *threads, Engine: *engine, Arith: *precision}, MaxPixels: *maxPixels, Log: e.infof,
	})
	if err != nil {
		return err // classed: unknown image 2, no vector or a zero vector 5
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
