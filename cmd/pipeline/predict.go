package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"pipeline/pipeline"
)

func cmdPredict(e *env, args []string) error {
	fs := newFlags(e, "predict", "predict [flags] NAME FILE|DIR...")
	db := addDBFlag(fs)
	var list string
	addListFlag(fs, &list)
	storeIt := fs.Bool("store", false, "store the images, their codes and the predictions (predictions table)")
	newOnly := fs.Bool("new-only", false, "skip images this classifier has already predicted")
	top := fs.Int("top", 1, "list the K most probable classes")
	asCSV := fs.Bool("csv", false, "print CSV")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	model := fs.String("model", "", "the classifier's CNN file, when it cannot be found by the name it was extracted with")
	cf := addComputeFlags(fs, withBatch|withSetEngine)
	wait := addWaitFlag(fs, "with --store")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usageError("predict: want a classifier name, then image files or folders")
	}
	if len(pos) == 1 && list == "" {
		return usageError("predict: give image files or folders, or --list FILE")
	}
	if len(pos) > 1 && list != "" {
		return usageError("predict: give image files or folders, or --list FILE, not both")
	}
	if err := cf.check("predict"); err != nil {
		return err
	}
	if err := checkBounds("predict", positive("top", int64(*top))); err != nil {
		return err
	}
	out := newPredictWriter(e.stdout, *asCSV, *asJSON)
	pr := newProgress(e, "predict")
	sum, err := pipeline.Predict(e.ctx, pipeline.PredictOptions{
		DB: *db, Name: pos[0], Paths: pos[1:], List: list, ListReader: e.stdin, Store: *storeIt, NewOnly: *newOnly, TopK: *top,
		ModelPath: *model, Batch: cf.batch, Nets: cf.nets, Compute: cf.compute(),
		MaxPixels: cf.maxPixels, Wait: *wait, Args: e.args, Events: pr, Emit: out.emit,
	})
	pr.Done()
	out.flush()
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
	if errors.Is(err, pipeline.ErrSetModel) {
		return withHint(err, "pass --model PATH to the model file")
	}
	return err
}

// predictWriter prints predict's rows as they come: an aligned table, CSV
// (--csv) or one JSON object per line (--json).
type predictWriter struct {
	cw     *csv.Writer
	tw     *tabwriter.Writer
	enc    *json.Encoder
	header bool
}

func newPredictWriter(w io.Writer, asCSV, asJSON bool) *predictWriter {
	p := &predictWriter{enc: json.NewEncoder(w)}
	switch {
	case asCSV:
		p.cw = csv.NewWriter(w)
		p.cw.Write([]string{"path", "label", "probability", "top", "error"})
	case asJSON:
	default:
		p.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	}
	return p
}

func (p *predictWriter) emit(r pipeline.PredictRow) error {
	prob := ""
	if r.Probability != nil {
		prob = strconv.FormatFloat(*r.Probability, 'f', 4, 64)
	}
	var tops []string
	for _, t := range r.Top {
		tops = append(tops, fmt.Sprintf("%s:%.4f", t.Label, t.Probability))
	}
	top := strings.Join(tops, " ")
	switch {
	case p.cw != nil:
		msg := r.Error
		if r.Skipped {
			msg = "skipped: already predicted"
		}
		p.cw.Write([]string{r.Path, r.Label, prob, top, msg})
		p.cw.Flush()
		return p.cw.Error()
	case p.tw != nil:
		if !p.header {
			fmt.Fprintln(p.tw, "PATH\tLABEL\tPROBABILITY\tTOP")
			p.header = true
		}
		if r.Error != "" {
			fmt.Fprintf(p.tw, "%s\t-\t-\t%s: %s\n", r.Path, r.Stage, r.Error)
		} else if r.Skipped {
			fmt.Fprintf(p.tw, "%s\t-\t-\tskipped: already predicted\n", r.Path)
		} else {
			fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\n", r.Path, r.Label, prob, top)
		}
		return nil
	}
	return p.enc.Encode(r)
}

// flush writes out the table (rows are aligned once all are in).
func (p *predictWriter) flush() {
	if p.tw != nil {
		p.tw.Flush()
	}
}
