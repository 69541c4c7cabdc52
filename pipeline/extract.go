package pipeline

import (
	"context"
	"fmt"
	"io"
	"time"

	"pipeline/extract"
	"pipeline/store"
)

// ExtractOptions configure one `pipeline extract` run.
type ExtractOptions struct {
	DB      string        // database path
	Model   extract.Model // resolved model (extract.ResolveModel)
	Layers  []string      // --layer
	Pool    string        // --pool: avg, max, none
	Compute extract.Compute
	Batch   int // images per forward pass
	Workers int // decode goroutines (0 = number of CPUs)
	// Nets is the number of copies of the network run side by side on
	// different batches (0 = 1). With Nets > 1 and Compute.Threads = 0,
	// OpenCV gets cores/Nets threads (the copies share the cores instead of
	// every layer being split across them).
	Nets int

	Shard      Shard     // take only this shard of the inputs (zero: all)
	Images     string    // --images DIR, or
	List       string    // --list FILE ("-" = ListReader)
	ListReader io.Reader // stdin for --list -
	Split      string    // --split: train or test, for every image of the run ("" = from the layout, else the automatic split)

	MaxPixels int64 // reject images with more pixels (0 = no limit)
	Reduce    bool  // --fast-decode: reduced-size JPEG decoding
	MaxBytes  int64 // reject files larger than this (0 = 1 GiB)

	Wait time.Duration // wait for the writer lock this long
	Args []string      // the command line, for the runs table

	// Events receives progress and per-file failure reports; may be nil.
	Events Events
}

// FileOutcome is what became of one input file (what a sink gets).
type FileOutcome struct {
	Input   Input
	SHA256  string
	ImageID int64     // 0 when the content is not in the database
	Vector  []float32 // of the first feature set; nil on failure or skip
	Failure *store.Failure
	Skipped bool // passed over (--new-only)
}

// sink is what becomes of each finished file besides its rows being stored
// (the engine stores them in a writing run). Extract has none; predict's
// predicts each file, prints it and stores the prediction.
type sink interface {
	// file gets every file's outcome, in input order, once its vector is
	// known.
	file(FileOutcome) error
	// skip reports whether the files of a stored image are passed over
	// (predict --new-only).
	skip(imageID int64) bool
	// end runs after the last batch, before the run is finished.
	end() error
}

// Events are the hooks the CLI uses for progress and messages.
type Events interface {
	// Started is called once the model is loaded and the run recorded.
	Started(info StartInfo)
	// Progress is called after every file with the counts so far; total is
	// the number of files found so far, final once walking is done.
	Progress(c store.Counts, total int64, walking bool)
	// Failed is called for each file that cannot be used.
	Failed(f store.Failure)
	// Note is something the user should know (batch fallback, OpenCL setup).
	Note(msg string)
}

// StartInfo describes a run that has started.
type StartInfo struct {
	RunID   int64
	Sets    []store.FeatureSet
	Outputs []extract.Output
	Batch   int
	Nets    int
	Threads int
	Workers int
	Engine  string // opencv or onednn
}

// ExtractSummary is the outcome of an extract run (the --json contract).
type ExtractSummary struct {
	RunID        int64              `json:"run_id"`
	Status       string             `json:"status"` // ok, partial, interrupted, failed
	DB           string             `json:"db"`
	Model        string             `json:"model"`
	Shard        string             `json:"shard,omitempty"` // "I/N" when one shard of the inputs was taken
	FeatureSets  []store.FeatureSet `json:"feature_sets"`
	Counts       store.Counts       `json:"counts"`
	Skipped      int                `json:"skipped_non_images"`
	WallSeconds  float64            `json:"wall_seconds"`
	ImagesPerSec float64            `json:"images_per_second"` // extracted files / wall time
	Timing       Timing             `json:"timing"`
	Batch        int                `json:"batch"`
	Nets         int                `json:"nets"`
	Threads      int                `json:"threads"`
	Workers      int                `json:"workers"`
	Engine       string             `json:"engine"`    // opencv or onednn
	Precision    string             `json:"precision"` // fp32, fp16 or bf16
	Notes        []string           `json:"notes,omitempty"`
	Relabeled    int                `json:"relabeled"` // images whose label this run changed (see notes)
	Error        string             `json:"error,omitempty"`
}

// Timing splits the wall time of the main loop (seconds).
type Timing struct {
	Forward float64 `json:"forward"` // inside OpenCV's forward pass (summed over the nets)
	Write   float64 `json:"write"`   // SQLite transactions
	Wait    float64 `json:"wait"`    // waiting for decoded images (the forward pass starved)
}

// Extract runs the extraction: every input file's CNN codes for every
// requested layer end up in the database, computing only what is missing.
func Extract(ctx context.Context, o ExtractOptions) (ExtractSummary, error) {
	return extractFrom(ctx, o, nil)
}

// extractFrom is Extract with the files from src (nil: o.Images or o.List).
func extractFrom(ctx context.Context, o ExtractOptions, src inputSource) (ExtractSummary, error) {
	sum := newSummary(o)
	// The networks load first: an unknown layer, a bad --pool or an
	// unavailable backend fail before a database, a lock file or a run
	// exists.
	e, err := newEngine(ctx, o, src)
	if err != nil {
		return sum, err
	}
	defer e.close()
	db, err := store.Open(o.DB, store.Options{})
	if err != nil {
		return sum, err
	}
	defer db.Close()
	err = e.recorded(ctx, db, "extract", nil, nil, &sum)
	return sum, err
}

// newSummary is the summary of a run that failed before it started.
func newSummary(o ExtractOptions) ExtractSummary {
	return ExtractSummary{DB: o.DB, Model: o.Model.Name, Status: store.RunFailed, Shard: o.Shard.String()}
}

// recorded runs the engine inside a recorded run of command (withRun):
// sets are the feature sets to compute (nil: made from the outputs), s
// gets every file (nil: the rows are only stored).
func (e *engine) recorded(ctx context.Context, db *store.DB, command string, sets []store.FeatureSet, s sink, sum *ExtractSummary) error {
	o := e.o
	err := withRun(ctx, db, command, o.Args, o.Wait, func(r *runScope) error {
		sum.RunID = r.ID
		if !o.Shard.All() {
			if err := db.SetRunShard(e.bg, r.ID, o.Shard.String()); err != nil {
				return err
			}
		}
		runErr := e.run(ctx, db, r.ID, sets, s)
		if s != nil {
			if err := s.end(); err != nil && runErr == nil {
				runErr = err
			}
		}
		e.summarize(sum)
		// The final counters are what was committed: after a failed
		// commit, the files of the lost batch are not counted.
		r.Counts = e.committed
		if runErr == nil && e.counts.Failed > 0 {
			runErr = fmt.Errorf("%w: %d of %d files (see `pipeline sql \"SELECT path, stage, message FROM failures WHERE run_id = %d\"`)",
				ErrPartial, e.counts.Failed, e.counts.Seen, r.ID)
		}
		return runErr
	})
	if sum.RunID != 0 {
		sum.Status = runStatus(err)
		if sum.Status == store.RunFailed {
			sum.Error = err.Error()
		}
	}
	return err
}

// readOnly runs the engine on a database opened read-only: no lock, no
// run, nothing written; the vectors only flow to s.
func (e *engine) readOnly(ctx context.Context, db *store.DB, sets []store.FeatureSet, s sink, sum *ExtractSummary) error {
	runErr := e.run(ctx, db, 0, sets, s)
	if err := s.end(); err != nil && runErr == nil {
		runErr = err
	}
	e.summarize(sum)
	if runErr == nil && e.counts.Failed > 0 {
		runErr = fmt.Errorf("%w: %d of %d files", ErrPartial, e.counts.Failed, e.counts.Seen)
	}
	sum.Status = runStatus(runErr)
	return runErr
}

func (e *engine) summarize(sum *ExtractSummary) {
	sum.Counts = e.counts
	sum.Skipped = e.skipped
	sum.Notes = e.notes
	sum.Relabeled = e.relabels
	sum.FeatureSets = e.sets
	sum.Batch, sum.Threads, sum.Workers, sum.Nets = e.batch, extract.NumThreads(), e.workers, len(e.nets)
	if e.ex != nil {
		sum.Threads, sum.Engine, sum.Precision = e.ex.Threads(), e.ex.Engine(), e.o.Compute.Precision()
	}
	sum.Timing = Timing{Forward: e.tForward.Seconds(), Write: e.tWrite.Seconds(), Wait: e.tWait.Seconds()}
	sum.WallSeconds = time.Since(e.start).Seconds()
	if sum.WallSeconds > 0 {
		sum.ImagesPerSec = float64(e.counts.Extracted) / sum.WallSeconds
	}
}

type nopEvents struct{}

func (nopEvents) Started(StartInfo)                  {}
func (nopEvents) Progress(store.Counts, int64, bool) {}
func (nopEvents) Failed(store.Failure)               {}
func (nopEvents) Note(string)                        {}

// SetEngine is the engine that computed a feature set's vectors (sets made
// before engines were recorded are OpenCV's).
func SetEngine(fs store.FeatureSet) string {
	if fs.Engine == "" {
		return store.EngineOpenCV
	}
	return fs.Engine
}
