package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"pipeline/extract"
	"pipeline/store"
)

// PredictOptions configure `pipeline predict`.
type PredictOptions struct {
	DB   string
	Name string // classifier

	Paths      []string  // files and folders
	List       string    // --list FILE ("-" = ListReader)
	ListReader io.Reader //
	Store      bool      // write images, vectors and predictions (else read-only)
	NewOnly    bool      // skip images this classifier has already predicted
	TopK       int       // classes listed per image (default 1)
	ModelPath  string    // --model: where the classifier's CNN is, when not found by name

	Batch     int
	Nets      int
	Workers   int
	Compute   extract.Compute
	MaxPixels int64
	Wait      time.Duration
	Args      []string
	Events    Events
	// Emit receives each file's result, in input order.
	Emit func(PredictRow) error
}

// PredictRow is one file's prediction (the --json / CSV contract).
type PredictRow struct {
	Path        string      `json:"path"`
	PathB64     string      `json:"path_b64,omitempty"` // the path's bytes, when they are not valid UTF-8
	SHA256      string      `json:"sha256,omitempty"`
	Label       string      `json:"label,omitempty"`
	Probability *float64    `json:"probability,omitempty"` // of Label; absent when the classifier has none
	Top         []ClassProb `json:"top,omitempty"`
	Skipped     bool        `json:"skipped,omitempty"` // --new-only: already predicted
	Stage       string      `json:"stage,omitempty"`   // on failure
	Error       string      `json:"error,omitempty"`
}

// ClassProb is a class and its probability.
type ClassProb struct {
	Label       string  `json:"label"`
	Probability float64 `json:"probability"`
}

// PredictSummary is the outcome of a predict run.
type PredictSummary struct {
	ExtractSummary
	Classifier string `json:"classifier"`
	Predicted  int    `json:"predicted"`
	Skipped    int    `json:"skipped_already_predicted"`
	Stored     int    `json:"stored"`
}

// Predict classifies image files with a stored classifier: their codes are
// computed with exactly the classifier's model, layer, pooling and
// preprocessing, or read from the database when the content is known.
func Predict(ctx context.Context, o PredictOptions) (PredictSummary, error) {
	var sum PredictSummary
	sum.Classifier = o.Name
	if len(o.Paths) == 0 && o.List == "" {
		return sum, usagef("no input: want image files or folders, or a list of them")
	}
	if len(o.Paths) > 0 && o.List != "" {
		return sum, usagef("image files or folders, or a list of them, not both")
	}
	if o.Emit == nil {
		o.Emit = func(PredictRow) error { return nil }
	}
	topK := max(o.TopK, 1)
	db, err := store.Open(o.DB, store.Options{ReadOnly: true})
	if err != nil {
		return sum, err
	}
	lc, err := LoadClassifier(ctx, db, o.Name)
	var predicted map[int64]bool
	if err == nil && o.NewOnly {
		predicted, err = db.PredictedImages(ctx, lc.Row.ID)
	}
	db.Close()
	if err != nil {
		return sum, err
	}
	model, err := classifierModel(lc.Set, o.ModelPath)
	if err != nil {
		return sum, err
	}
	compute := o.Compute
	if lc.Set.Precision == "fp16" {
		compute.Target = "fp16"
	}
	compute.Engine = SetEngine(lc.Set)
	if lc.Set.Precision == "bf16" {
		compute.Arith = "bf16"
	}
	var pending []store.Prediction
	var wdb *store.DB // the engine's database, for storing predictions
	flushPreds := func() error {
		if len(pending) == 0 || wdb == nil {
			return nil
		}
		err := wdb.WritePredictions(context.WithoutCancel(ctx), sum.RunID, pending)
		if err == nil {
			sum.Stored += len(pending)
		}
		pending = pending[:0]
		return err
	}
	onFile := func(f FileOutcome) error {
		row := PredictRow{Path: f.Input.Path, PathB64: PathB64(f.Input.Path), SHA256: f.SHA256}
		switch {
		case f.Skipped:
			row.Skipped = true
			sum.Skipped++
		case f.Failure != nil:
			row.Stage, row.Error = f.Failure.Stage, f.Failure.Message
		default:
			p, err := lc.Model.Predict(f.Vector)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Input.Path, err)
			}
			row.Label = p.Class
			if p.Probs != nil {
				v := p.Probs[p.Label]
				row.Probability = &v
				order := make([]int, len(p.Probs))
				for i := range order {
					order[i] = i
				}
				sort.SliceStable(order, func(a, b int) bool { return p.Probs[order[a]] > p.Probs[order[b]] })
				for _, i := range order[:min(topK, len(order))] {
					row.Top = append(row.Top, ClassProb{lc.Model.Classes[i], p.Probs[i]})
				}
			}
			sum.Predicted++
			if o.Store {
				id := f.ImageID
				if id == 0 {
					img, ok, err := wdb.ImageBySHA(context.WithoutCancel(ctx), f.SHA256)
					if err != nil {
						return err
					}
					if !ok {
						return fmt.Errorf("%s: image %s not stored", f.Input.Path, f.SHA256)
					}
					id = img.ID
				}
				pending = append(pending, store.Prediction{ImageID: id, ClassifierID: lc.Row.ID, Path: f.Input.Path, Label: p.Class, Probability: row.Probability})
				if len(pending) >= 256 {
					if err := flushPreds(); err != nil {
						return err
					}
				}
			}
		}
		return o.Emit(row)
	}
	eo := ExtractOptions{
		DB: o.DB, Model: model, Layers: []string{lc.Set.Layer}, Pool: lc.Set.Pooling, Compute: compute,
		Batch: o.Batch, Nets: o.Nets, Workers: o.Workers, List: o.List, ListReader: o.ListReader, MaxPixels: o.MaxPixels,
		Wait: o.Wait, Args: o.Args, Events: o.Events,
		command: "predict", readOnly: !o.Store, fixedSets: []store.FeatureSet{lc.Set}, onFile: onFile,
		inputs: pathInputs(o.Paths),
	}
	if o.NewOnly {
		eo.skip = func(id int64) bool { return predicted[id] }
	}
	if o.Store {
		eo.onDB = func(db *store.DB, runID int64) { wdb, sum.RunID = db, runID }
		eo.beforeFinish = flushPreds
	}
	es, err := runEngine(ctx, eo)
	sum.ExtractSummary = es
	return sum, err
}

// classifierModel finds the CNN a classifier's codes came from (see
// featureSetModel).
func classifierModel(fs store.FeatureSet, override string) (extract.Model, error) {
	return featureSetModel(fs, override)
}

// pathInputs walks files and folders given on the command line, in order;
// images in folders are unlabeled (predict does not label).
func pathInputs(paths []string) func(emit func(Input) error, stats func(WalkStats)) error {
	if len(paths) == 0 {
		return nil
	}
	return func(emit func(Input) error, stats func(WalkStats)) error {
		for _, p := range paths {
			abs, err := filepath.Abs(p)
			if err != nil {
				return err
			}
			fi, err := os.Stat(abs)
			if err == nil && fi.IsDir() {
				st, err := WalkImages(abs, func(in Input) error {
					in.Label, in.Labeled, in.KeepLabel = "", false, true
					return emit(in)
				})
				if stats != nil {
					stats(st)
				}
				if err != nil {
					return err
				}
				continue
			}
			// A missing or unreadable file is reported as that file's failure.
			if err := emit(Input{Path: filepath.Clean(abs), RelPath: p, KeepLabel: true}); err != nil {
				return err
			}
		}
		return nil
	}
}
