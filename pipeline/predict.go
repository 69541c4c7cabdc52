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

	Batch   int
	Nets    int
	Workers int
	// Compute's Engine and Arith (precision) default to the feature set's
	// (see setCompute): "" = the set's.
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
	s := &predictSink{bg: context.WithoutCancel(ctx), topK: max(o.TopK, 1), emit: o.Emit, sum: &sum}
	if s.emit == nil {
		s.emit = func(PredictRow) error { return nil }
	}
	if err := s.load(o); err != nil {
		return sum, err
	}
	model, err := classifierModel(s.lc.Set, o.ModelPath)
	if err != nil {
		return sum, err
	}
	compute, err := setCompute(s.lc.Set, o.Compute)
	if err != nil {
		return sum, err
	}
	eo := ExtractOptions{
		DB: o.DB, Model: model, Layers: []string{s.lc.Set.Layer}, Pool: s.lc.Set.Pooling, Compute: compute,
		Batch: o.Batch, Nets: o.Nets, Workers: o.Workers, List: o.List, ListReader: o.ListReader, MaxPixels: o.MaxPixels,
		Wait: o.Wait, Args: o.Args, Events: o.Events,
	}
	sum.ExtractSummary = newSummary(eo)
	e, err := newEngine(ctx, eo, pathInputs(o.Paths))
	if err != nil {
		return sum, err
	}
	defer e.close()
	db, err := store.Open(o.DB, store.Options{ReadOnly: !o.Store})
	if err != nil {
		return sum, err
	}
	defer db.Close()
	sets := []store.FeatureSet{s.lc.Set}
	if !o.Store {
		err = e.readOnly(ctx, db, sets, s, &sum.ExtractSummary)
		return sum, err
	}
	s.db = db
	err = e.recorded(ctx, db, "predict", sets, s, &sum.ExtractSummary)
	return sum, err
}

// predictSink predicts each file's class, hands the row to emit and, when
// db is set (predict --store), stores the prediction with the run.
type predictSink struct {
	bg        context.Context
	lc        *LoadedClassifier
	topK      int
	emit      func(PredictRow) error
	predicted map[int64]bool // --new-only: the images this classifier has predicted
	db        *store.DB      // nil: nothing is stored
	sum       *PredictSummary
	pending   []store.Prediction
}

// load reads the classifier (and, for --new-only, what it has predicted)
// from a read-only connection, closed before the run.
func (s *predictSink) load(o PredictOptions) error {
	db, err := store.Open(o.DB, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	if s.lc, err = LoadClassifier(s.bg, db, o.Name); err != nil {
		return err
	}
	if o.NewOnly {
		s.predicted, err = db.PredictedImages(s.bg, s.lc.Row.ID)
	}
	return err
}

func (s *predictSink) skip(imageID int64) bool {
	return s.predicted[imageID]
}

func (s *predictSink) file(f FileOutcome) error {
	row := PredictRow{Path: f.Input.Path, PathB64: PathB64(f.Input.Path), SHA256: f.SHA256}
	switch {
	case f.Skipped:
		row.Skipped = true
		s.sum.Skipped++
	case f.Failure != nil:
		row.Stage, row.Error = f.Failure.Stage, f.Failure.Message
	default:
		if err := s.predict(f, &row); err != nil {
			return err
		}
	}
	return s.emit(row)
}

// predict fills in a file's classes and queues its prediction for storing.
func (s *predictSink) predict(f FileOutcome, row *PredictRow) error {
	p, err := s.lc.Model.Predict(f.Vector)
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
		for _, i := range order[:min(s.topK, len(order))] {
			row.Top = append(row.Top, ClassProb{s.lc.Model.Classes[i], p.Probs[i]})
		}
	}
	s.sum.Predicted++
	if s.db == nil {
		return nil
	}
	id := f.ImageID
	if id == 0 {
		img, ok, err := s.db.ImageBySHA(s.bg, f.SHA256)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: image %s not stored", f.Input.Path, f.SHA256)
		}
		id = img.ID
	}
	s.pending = append(s.pending, store.Prediction{ImageID: id, ClassifierID: s.lc.Row.ID, Path: f.Input.Path, Label: p.Class, Probability: row.Probability})
	if len(s.pending) >= 256 {
		return s.end()
	}
	return nil
}

// end stores the predictions not stored yet.
func (s *predictSink) end() error {
	if len(s.pending) == 0 || s.db == nil {
		return nil
	}
	err := s.db.WritePredictions(s.bg, s.sum.RunID, s.pending)
	if err == nil {
		s.sum.Stored += len(s.pending)
	}
	s.pending = s.pending[:0]
	return err
}

// classifierModel finds the CNN a classifier's codes came from (see
// featureSetModel).
func classifierModel(fs store.FeatureSet, override string) (extract.Model, error) {
	return featureSetModel(fs, override)
}

// pathInputs walks files and folders given on the command line, in order;
// images in folders are unlabeled (predict does not label).
func pathInputs(paths []string) inputSource {
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
