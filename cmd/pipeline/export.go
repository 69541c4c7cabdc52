package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"pipeline/pipeline"
	"pipeline/store"
)

func cmdExport(e *env, args []string) error {
	fs := newFlags(e, "export", "export [flags] --layer NAME|--set ID [--format libsvm|csv|npy] [--out FILE]")
	db := addDBFlag(fs)
	var q pipeline.SetQuery
	addFeatureSetFlags(fs, &q)
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
