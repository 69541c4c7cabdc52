package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
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

	// Hooks for predict, which runs the same engine.
	command   string                                                    // runs.command and lock holder ("extract" if empty)
	readOnly  bool                                                      // no lock, no run, no writes: vectors only flow to onFile
	fixedSets []store.FeatureSet                                        // use these sets (checked against the outputs) instead of creating them
	onFile    func(FileOutcome) error                                   // every file, in input order, once its vector is known
	skip      func(imageID int64) bool                                  // files of these known images are passed over (predict --new-only)
	inputs    func(emit func(Input) error, stats func(WalkStats)) error // the files, instead of Images or List
	onDB      func(db *store.DB, runID int64)                           // called once the run is recorded (writing runs)
	// beforeFinish runs after the last batch, before the run is closed.
	beforeFinish func() error
}

// FileOutcome is what became of one input file (predict's view).
type FileOutcome struct {
	Input   Input
	SHA256  string
	ImageID int64     // 0 when the content is not in the database
	Vector  []float32 // of the first feature set; nil on failure or skip
	Failure *store.Failure
	Skipped bool // passed over (--new-only)
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

type resultKind int

const (
	kindFailed  resultKind = iota
	kindPresent            // path known, content unchanged, all vectors stored
	kindDup                // content already stored (other path or changed metadata)
	kindForward            // needs a forward pass
)

type job struct {
	idx int
	in  Input
}

type result struct {
	idx     int
	in      Input
	kind    resultKind
	rec     store.ImageRecord
	path    store.PathRecord
	write   bool    // kindPresent/kindDup: the path row needs writing
	imageID int64   // kindPresent/kindDup: the stored image
	missing []int64 // kindForward: feature sets without a vector
	blob    []float32
	fail    store.Failure
}

// Extract runs the extraction: every input file's CNN codes for every
// requested layer end up in the database, computing only what is missing.
func Extract(ctx context.Context, o ExtractOptions) (sum ExtractSummary, err error) {
	o.command, o.readOnly, o.fixedSets, o.onFile, o.skip = "extract", false, nil, nil, nil
	return runEngine(ctx, o)
}

func runEngine(ctx context.Context, o ExtractOptions) (sum ExtractSummary, err error) {
	start := time.Now()
	sum.DB, sum.Model, sum.Status, sum.Shard = o.DB, o.Model.Name, "failed", o.Shard.String()
	if o.Images == "" && o.List == "" && o.inputs == nil {
		return sum, usagef("no input: want an images folder or a list of files")
	}
	if o.Images != "" && o.List != "" {
		return sum, usagef("an images folder or a list of files, not both")
	}
	if err := checkSplitOption(o); err != nil {
		return sum, err
	}
	ev := o.Events
	if ev == nil {
		ev = nopEvents{}
	}
	// The networks load first: an unknown layer, a bad --pool or an
	// unavailable backend fail before a database, a lock file or a run
	// exists.
	e := &engine{o: o, ev: ev, bg: context.WithoutCancel(ctx)} // database writes finish even after Ctrl-C
	if err := e.openNets(); err != nil {
		return sum, err
	}
	defer e.closeNets()
	db, err := store.Open(o.DB, store.Options{ReadOnly: o.readOnly})
	if err != nil {
		return sum, err
	}
	defer db.Close()
	e.db = db
	if o.readOnly {
		sum.Status = store.RunOK
		runErr := e.run(ctx)
		e.summarize(&sum, start)
		if runErr == nil && e.counts.Failed > 0 {
			runErr = fmt.Errorf("%w: %d of %d files", ErrPartial, e.counts.Failed, e.counts.Seen)
			sum.Status = store.RunPartial
		} else if runErr != nil {
			sum.Status = store.RunFailed
			if errors.Is(runErr, ErrInterrupted) {
				sum.Status = store.RunInterrupted
			}
		}
		return sum, runErr
	}
	err = withRun(ctx, db, o.command, o.Args, o.Wait, func(r *runScope) error {
		sum.RunID, e.runID = r.ID, r.ID
		if !o.Shard.All() {
			if err := db.SetRunShard(context.WithoutCancel(ctx), r.ID, o.Shard.String()); err != nil {
				return err
			}
		}
		if o.onDB != nil {
			o.onDB(db, r.ID)
		}
		runErr := e.run(ctx)
		if o.beforeFinish != nil {
			if err := o.beforeFinish(); err != nil && runErr == nil {
				runErr = err
			}
		}
		e.summarize(&sum, start)
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
	return sum, err
}

func (e *engine) summarize(sum *ExtractSummary, start time.Time) {
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
	sum.WallSeconds = time.Since(start).Seconds()
	if sum.WallSeconds > 0 {
		sum.ImagesPerSec = float64(e.counts.Extracted) / sum.WallSeconds
	}
}

type nopEvents struct{}

func (nopEvents) Started(StartInfo)                  {}
func (nopEvents) Progress(store.Counts, int64, bool) {}
func (nopEvents) Failed(store.Failure)               {}
func (nopEvents) Note(string)                        {}

// engine is one extract run's state. The main loop (run) is the only
// goroutine that forwards and writes; workers read, hash and decode.
type engine struct {
	o        ExtractOptions
	db       *store.DB
	ev       Events
	bg       context.Context
	runID    int64
	ex       *extract.Extractor
	sets     []store.FeatureSet
	setIDs   []int64
	batch    int
	workers  int
	notes    []string
	skipped  int
	relabels int // images whose label a written batch changed

	counts    store.Counts // committed + pending
	delta     store.Counts // not yet written
	committed store.Counts // written: what the run's row holds

	// The batch being assembled.
	fwd      []*result
	fwdItems map[string]*store.Item // sha → item in the forward batch
	other    []store.Item           // path-only items
	fails    []store.Failure
	recent   shaRing // shas written by this run recently (closes a lookup race)

	// Counts of files whose rows wait on an image in flight (see pend).
	pendingCounts map[string]store.Counts

	// For onFile: outcomes in input order, waiting for their vectors.
	queue      []*outcome
	waiting    map[string][]*outcome // sha → outcomes in the forward batch
	recentVecs map[string][]float32  // sha → vector, for shas in recent (onFile only)
	recentLen  int                   // floats held in recentVecs

	blobs sync.Pool

	// Forward passes run on len(nets) goroutines, one network each; batches
	// are finished (checked, written) in the order they were made.
	nets        []*extract.Extractor
	fwdJobs     chan *fwdBatch
	fwdDone     chan *fwdBatch
	inFlight    int
	nextSeq     int
	doneSeq     int
	doneBatches map[int]*fwdBatch

	tForward, tWrite, tWait time.Duration
}

func (e *engine) note(msg string) {
	e.notes = append(e.notes, msg)
	e.ev.Note(msg)
}

// openNets loads the network copies (closeNets frees them).
func (e *engine) openNets() error {
	o := e.o
	nets := max(o.Nets, 1)
	compute := o.Compute
	if nets > 1 && compute.Threads == 0 {
		compute.Threads = max(1, runtime.NumCPU()/nets)
	}
	for i := 0; i < nets; i++ {
		ex, err := extract.NewExtractor(extract.ExtractorConfig{
			Model: o.Model, Layers: o.Layers, Pool: o.Pool, Compute: compute, Batch: o.Batch,
		})
		if err != nil {
			e.closeNets()
			return err
		}
		e.nets = append(e.nets, ex)
	}
	return nil
}

func (e *engine) closeNets() {
	for _, ex := range e.nets {
		ex.Close()
	}
	e.nets = nil
}

func (e *engine) run(ctx context.Context) error {
	o := e.o
	ex := e.nets[0]
	e.ex = ex
	if e.runID != 0 && !o.readOnly {
		if err := e.db.SetRunEngine(e.bg, e.runID, ex.Engine()); err != nil {
			return err
		}
	}
	e.fwdJobs = make(chan *fwdBatch)
	e.fwdDone = make(chan *fwdBatch, len(e.nets)+1)
	e.doneBatches = map[int]*fwdBatch{}
	var fwg sync.WaitGroup
	for _, net := range e.nets {
		fwg.Add(1)
		go func(net *extract.Extractor) {
			defer fwg.Done()
			for b := range e.fwdJobs {
				b.run(net)
				e.fwdDone <- b
			}
		}(net)
	}
	defer fwg.Wait()
	defer close(e.fwdJobs)
	for _, n := range ex.Notes {
		e.note(n)
	}
	e.batch = ex.BatchSize()
	pre := ex.Preprocess()
	if o.fixedSets != nil {
		if err := e.useFixedSets(pre.Key()); err != nil {
			return err
		}
	}
	for _, out := range ex.Outputs() {
		if o.fixedSets != nil {
			break
		}
		fs, err := e.db.EnsureFeatureSet(e.bg, store.FeatureSet{
			ModelSHA256: o.Model.SHA256, ModelName: o.Model.Name, Layer: out.Layer.Name, Alias: out.Alias,
			Pooling: out.Pool, Preprocess: pre.Key(), Precision: o.Compute.Precision(), Engine: ex.Engine(),
			Shape: out.Layer.ShapeString(), Dim: out.Dim,
		})
		if err != nil {
			return err
		}
		e.sets = append(e.sets, fs)
		e.setIDs = append(e.setIDs, fs.ID)
	}
	e.workers = o.Workers
	if e.workers <= 0 {
		e.workers = runtime.NumCPU()
	}
	e.layoutNote()
	e.ev.Started(StartInfo{RunID: e.runID, Sets: e.sets, Outputs: ex.Outputs(), Batch: e.batch, Nets: len(e.nets), Threads: ex.Threads(), Workers: e.workers, Engine: ex.Engine()})
	inLen := ex.InputLen()
	e.blobs.New = func() any { return make([]float32, inLen) }
	e.fwdItems = map[string]*store.Item{}
	e.waiting = map[string][]*outcome{}
	e.recentVecs = map[string][]float32{}
	e.pendingCounts = map[string]store.Counts{}

	// In-flight files are bounded: memory does not grow with the dataset.
	window := (len(e.nets)+1)*e.batch + 4*e.workers
	tokens := make(chan struct{}, window)
	jobs := make(chan job, window)
	results := make(chan result, window)
	walkCtx, stopWalk := context.WithCancel(ctx)
	defer stopWalk()

	var total int64
	var walkDone bool
	var walkMu sync.Mutex
	var unreadable []UnreadableDir // folders the walk could not list: failures
	// Count the files first (a directory walk or a list read costs
	// milliseconds), so that progress has a total and an ETA from the start;
	// the producer below is held back by the in-flight window.
	counted := int64(-1)
	if o.List != "-" {
		n := int64(0)
		if err := e.walk(func(Input) error { n++; return nil }, nil); err == nil {
			counted = n
		}
	}
	walkErr := make(chan error, 1)
	go func() {
		defer close(jobs)
		idx := 0
		emit := func(in Input) error {
			select {
			case tokens <- struct{}{}:
			case <-walkCtx.Done():
				return walkCtx.Err()
			}
			jobs <- job{idx, in}
			idx++
			walkMu.Lock()
			total++
			walkMu.Unlock()
			return nil
		}
		err := e.walk(emit, func(st WalkStats) {
			walkMu.Lock()
			e.skipped += st.Skipped
			unreadable = append(unreadable, st.Unreadable...)
			walkMu.Unlock()
		})
		walkMu.Lock()
		walkDone = true
		walkMu.Unlock()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		walkErr <- err
	}()

	var wg sync.WaitGroup
	for w := 0; w < e.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				results <- e.prepare(j)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	// Consume results in input order, so that which path becomes an image's
	// canonical path does not depend on goroutine timing.
	pending := map[int]result{}
	next := 0
	interrupted := false
	var loopErr error
	waitStart := time.Now()
results:
	for {
		var r result
		select {
		case res, ok := <-results:
			if !ok {
				break results
			}
			r = res
		case <-ctx.Done():
			// Stop now, even when no result is coming (a --list - whose
			// producer keeps stdin open): the files in flight are dropped,
			// as after any interrupt, and drained in the background.
			interrupted = true
			stopWalk()
			go func() {
				for r := range results {
					if r.blob != nil {
						e.blobs.Put(r.blob)
					}
				}
			}()
			break results
		}
		pending[r.idx] = r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			e.tWait += time.Since(waitStart)
			if loopErr == nil && !interrupted {
				if err := e.consume(r); err != nil {
					loopErr = err
					stopWalk()
				}
			} else if r.blob != nil {
				e.blobs.Put(r.blob)
			}
			<-tokens
			walkMu.Lock()
			t, done := total, walkDone
			walkMu.Unlock()
			if counted >= 0 && !done {
				t, done = max(counted, t), true
			}
			e.ev.Progress(e.counts, t, !done)
			if !interrupted && ctx.Err() != nil {
				interrupted = true
				stopWalk()
			}
			waitStart = time.Now()
		}
	}
	if loopErr != nil {
		return loopErr
	}
	// A cancel that came after the last result (the walker stopped on it,
	// or a --list - producer died with the same Ctrl-C) is an interrupt too.
	if !interrupted && ctx.Err() != nil {
		interrupted = true
	}
	walkMu.Lock()
	for _, u := range unreadable {
		e.count(store.Counts{Seen: 1, Failed: 1})
		e.failRow(store.Failure{Path: u.Path, Stage: "read", Message: "cannot list this directory: " + u.Err.Error()})
	}
	walkMu.Unlock()
	if interrupted {
		// Stop after the batch that was being computed: drop the images
		// gathered for the next forward pass, keep everything else.
		for _, r := range e.fwd {
			e.blobs.Put(r.blob)
			delete(e.fwdItems, r.rec.SHA256)
			e.unpend(r.rec.SHA256)
		}
		e.fwd = nil
		if err := e.settleAll(); err != nil {
			return err
		}
		if err := e.write(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %d files done, everything computed so far is committed; rerun the same command to finish", ErrInterrupted, e.counts.Seen)
	}
	if err := e.flush(); err != nil {
		return err
	}
	if err := <-walkErr; err != nil {
		return err
	}
	return nil
}

// useFixedSets takes the feature sets predict was given, after checking that
// the extractor really computes them.
func (e *engine) useFixedSets(preKey string) error {
	outs := e.ex.Outputs()
	if len(outs) != len(e.o.fixedSets) {
		return fmt.Errorf("internal: %d outputs for %d feature sets", len(outs), len(e.o.fixedSets))
	}
	for i, fs := range e.o.fixedSets {
		o := outs[i]
		if o.Layer.Name != fs.Layer || o.Pool != fs.Pooling || o.Dim != fs.Dim || preKey != fs.Preprocess || e.ex.Engine() != SetEngine(fs) {
			return fmt.Errorf("model %s does not reproduce feature set %s: layer %s, pooling %s, %d-d, preprocessing %s, engine %s",
				e.o.Model.Name, fs, o.Layer.Name, o.Pool, o.Dim, preKey, e.ex.Engine())
		}
		e.sets = append(e.sets, fs)
		e.setIDs = append(e.setIDs, fs.ID)
	}
	return nil
}

// walk produces the input files in order; stats, if given, gets what a
// directory walk passed over.
func (e *engine) walk(emit func(Input) error, stats func(WalkStats)) error {
	o := e.o
	emit = withSplit(o.Shard.Filter(emit), o.Split)
	switch {
	case o.inputs != nil:
		return o.inputs(emit, stats)
	case o.Images != "":
		st, err := WalkImages(o.Images, emit)
		if stats != nil {
			stats(st)
		}
		return err
	}
	return e.readList(emit)
}

func (e *engine) readList(emit func(Input) error) error {
	o := e.o
	if o.List == "-" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		r := o.ListReader
		if r == nil {
			r = os.Stdin
		}
		return ReadList(r, "stdin", wd, emit)
	}
	f, err := os.Open(o.List)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	defer f.Close()
	abs, err := filepath.Abs(o.List)
	if err != nil {
		return err
	}
	return ReadList(f, o.List, filepath.Dir(abs), emit)
}

// prepare does a file's work up to the forward pass: stat, database
// lookups, read, hash, decode and preprocess. It runs on the workers.
func (e *engine) prepare(j job) result {
	r := result{idx: j.idx, in: j.in}
	fail := func(stage string, err error) result {
		r.kind = kindFailed
		r.fail = store.Failure{Path: j.in.Path, Stage: stage, Message: err.Error()}
		return r
	}
	if j.in.Invalid != "" {
		return fail("list", errors.New(j.in.Invalid))
	}
	fi, err := os.Stat(j.in.Path)
	if err != nil {
		return fail("read", unwrapPathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return fail("read", fmt.Errorf("not a regular file (%s)", fi.Mode().Type()))
	}
	maxBytes := e.o.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 1 << 30
	}
	if fi.Size() > maxBytes {
		return fail("size", fmt.Errorf("file is %d bytes, over the %d byte limit", fi.Size(), maxBytes))
	}
	mtime := fi.ModTime().UnixNano()
	r.path = store.PathRecord{Path: j.in.Path, RelPath: j.in.RelPath, Label: j.in.Label, Split: j.in.Split, Size: fi.Size(), MtimeNS: mtime}
	ctx := e.bg
	pi, known, err := e.db.LookupPath(ctx, j.in.Path)
	if err != nil {
		return fail("read", err)
	}
	if known && j.in.KeepLabel {
		r.path.Label, r.path.RelPath = pi.Label, pi.RelPath
		j.in.Label, j.in.RelPath = pi.Label, pi.RelPath
	}
	if known && pi.Size == fi.Size() && pi.MtimeNS == mtime {
		missing, err := e.db.MissingSets(ctx, pi.ImageID, e.setIDs)
		if err != nil {
			return fail("read", err)
		}
		if len(missing) == 0 {
			r.kind, r.imageID = kindPresent, pi.ImageID
			r.rec = store.ImageRecord{SHA256: pi.SHA256}
			r.write = pi.Label != j.in.Label || pi.RelPath != j.in.RelPath || pi.NeedsSplit(j.in.Split, j.in.Label)
			return r
		}
	}
	data, err := os.ReadFile(j.in.Path)
	if err != nil {
		return fail("read", unwrapPathErr(err))
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	r.rec = store.ImageRecord{SHA256: sha, Bytes: int64(len(data))}
	if img, ok, err := e.db.ImageBySHA(ctx, sha); err != nil {
		return fail("read", err)
	} else if ok {
		missing, err := e.db.MissingSets(ctx, img.ID, e.setIDs)
		if err != nil {
			return fail("read", err)
		}
		if len(missing) == 0 {
			r.kind, r.write, r.imageID = kindDup, true, img.ID
			r.rec = store.ImageRecord{SHA256: sha, Width: img.Width, Height: img.Height, Bytes: img.Bytes, Format: img.Format}
			if known && pi.SHA256 == sha {
				r.kind = kindPresent // same path, same bytes, new mtime
			}
			return r
		}
		r.missing = missing
	} else {
		r.missing = e.setIDs
	}
	blob := e.blobs.Get().([]float32)
	info, err := e.ex.Preprocess().DecodeInto(data, extract.DecodeOptions{
		MaxPixels: e.o.MaxPixels, Reduce: e.o.Reduce,
		MinWidth: e.ex.Preprocess().Width, MinHeight: e.ex.Preprocess().Height,
	}, blob) // DecodeInto applies the preprocessing's IgnoreOrientation
	if err != nil {
		e.blobs.Put(blob)
		stage := "decode"
		if errors.Is(err, extract.ErrTooLarge) {
			stage = "size"
		}
		return fail(stage, err)
	}
	r.rec.Width, r.rec.Height, r.rec.Format = info.Width, info.Height, info.Format
	r.kind, r.blob = kindForward, blob
	return r
}

// unwrapPathErr drops the *PathError wrapper: the failure row names the path.
func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, syscall.EACCES) {
			return errors.New("permission denied")
		}
		return pe.Err
	}
	return err
}

// consume handles one prepared file in input order.
func (e *engine) consume(r result) error {
	var out *outcome
	if e.o.onFile != nil {
		out = &outcome{FileOutcome: FileOutcome{Input: r.in, SHA256: r.rec.SHA256, ImageID: r.imageID}}
		e.queue = append(e.queue, out)
		if (r.kind == kindPresent || r.kind == kindDup) && e.o.skip != nil && e.o.skip(r.imageID) {
			e.count(store.Counts{Seen: 1, Present: 1})
			out.Skipped, out.done = true, true
			return e.drain()
		}
	}
	switch r.kind {
	case kindFailed:
		e.count(store.Counts{Seen: 1, Failed: 1})
		e.failRow(r.fail)
		if out != nil {
			f := r.fail
			out.Failure, out.done = &f, true
		}
	case kindPresent, kindDup:
		c := store.Counts{Seen: 1, Present: 1}
		if r.kind == kindDup {
			c = store.Counts{Seen: 1, Duplicates: 1}
		}
		if it := e.fwdItems[r.rec.SHA256]; r.write && it != nil {
			// Its path row goes with the image's batch, and so does its count.
			it.Paths = append(it.Paths, r.path)
			e.pend(r.rec.SHA256, c)
		} else {
			if r.write {
				e.other = append(e.other, store.Item{Image: r.rec, Paths: []store.PathRecord{r.path}})
			}
			e.count(c)
		}
		if out != nil {
			v, ok, err := e.db.Vector(e.bg, r.imageID, e.setIDs[0])
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: image %d has no vector in %s although the lookup said so", r.in.Path, r.imageID, e.sets[0])
			}
			out.Vector, out.done = v, true
		}
	case kindForward:
		sha := r.rec.SHA256
		recent := e.recent.has(sha) && (e.o.onFile == nil || e.recentVecs[sha] != nil)
		if it := e.fwdItems[sha]; it != nil || recent {
			// The same content at another path, already in this batch or
			// written by this run after the worker looked it up.
			e.blobs.Put(r.blob)
			c := store.Counts{Seen: 1, Duplicates: 1}
			if it != nil {
				it.Paths = append(it.Paths, r.path)
				e.pend(sha, c)
				if out != nil {
					e.waiting[sha] = append(e.waiting[sha], out)
				}
			} else {
				e.other = append(e.other, store.Item{Image: r.rec, Paths: []store.PathRecord{r.path}})
				e.count(c)
				if out != nil {
					out.Vector, out.done = e.recentVecs[sha], true
				}
			}
			break
		}
		e.fwd = append(e.fwd, &r)
		e.fwdItems[sha] = &store.Item{Image: r.rec, Paths: []store.PathRecord{r.path}}
		e.pend(sha, store.Counts{Seen: 1}) // extracted or failed: decided in finish
		if out != nil {
			e.waiting[sha] = append(e.waiting[sha], out)
		}
		if len(e.fwd) >= e.batch {
			return e.dispatch()
		}
	}
	// Commit path updates and failures regularly, also while images wait
	// for a forward pass: they only ever refer to images already stored,
	// and the counts of files still in flight are not in delta yet.
	if len(e.other)+len(e.fails) >= 512 {
		if err := e.write(); err != nil {
			return err
		}
	}
	return e.drain()
}

// count adds a settled file to the run's counters (committed with the next
// write).
func (e *engine) count(c store.Counts) {
	e.counts = e.counts.Add(c)
	e.delta = e.delta.Add(c)
}

// pend counts a file whose rows go with an image still waiting for its
// forward pass: the live totals include it, the committed counters only once
// the image's batch is written (finish), so that a run's counters always
// match its rows, even after a kill.
func (e *engine) pend(sha string, c store.Counts) {
	e.counts = e.counts.Add(c)
	e.pendingCounts[sha] = e.pendingCounts[sha].Add(c)
}

// unpend forgets the pending counts of an image dropped on an interrupt.
func (e *engine) unpend(sha string) {
	c := e.pendingCounts[sha]
	delete(e.pendingCounts, sha)
	e.counts = e.counts.Add(store.Counts{Seen: -c.Seen, Present: -c.Present, Duplicates: -c.Duplicates, Failed: -c.Failed, Extracted: -c.Extracted})
}

// outcome is a FileOutcome waiting in the queue.
type outcome struct {
	FileOutcome
	done bool
}

// drain hands the finished outcomes at the head of the queue to onFile, so
// that they come out in input order.
func (e *engine) drain() error {
	for len(e.queue) > 0 && e.queue[0].done {
		out := e.queue[0]
		e.queue = e.queue[1:]
		if err := e.o.onFile(out.FileOutcome); err != nil {
			return err
		}
	}
	return nil
}

// failRow records a failure row and tells the user; counting is the
// caller's (a file is counted once, whatever its number of rows).
func (e *engine) failRow(f store.Failure) {
	e.fails = append(e.fails, f)
	e.ev.Failed(f)
}

// flush hands the gathered images to a network, then finishes every batch
// that is done; at the end of the input, it waits for all of them.
func (e *engine) flush() error {
	if err := e.dispatch(); err != nil {
		return err
	}
	if err := e.settleAll(); err != nil {
		return err
	}
	if err := e.write(); err != nil {
		return err
	}
	if e.o.onFile != nil {
		return e.drain()
	}
	return nil
}

// fwdBatch is one forward pass: the images, and what came out.
type fwdBatch struct {
	seq   int
	items []*result
	in    []float32
	n     int
	vecs  [][][]float32 // per image; nil for an image the network failed on
	err   error         // every image failed
	dur   time.Duration
}

// run does the forward pass on one network. One bad image should not sink
// its batch: on an error, the images are retried one by one.
func (b *fwdBatch) run(ex *extract.Extractor) {
	t0 := time.Now()
	defer func() { b.dur = time.Since(t0) }()
	defer func() { b.in = nil }() // a finished batch waiting for its turn holds no input
	vecs, err := ex.Forward(b.in, b.n)
	if err == nil {
		b.vecs = vecs
		return
	}
	inLen := ex.InputLen()
	b.vecs = make([][][]float32, b.n)
	bad := 0
	for i := 0; i < b.n; i++ {
		v, err1 := ex.Forward(b.in[i*inLen:(i+1)*inLen], 1)
		if err1 != nil {
			bad++
			continue
		}
		b.vecs[i] = v[0]
	}
	if bad == b.n {
		b.err = err
	}
}

// dispatch sends the gathered images to the networks (blocking while they
// are all busy), and finishes the batches that are done meanwhile.
func (e *engine) dispatch() error {
	if len(e.fwd) == 0 {
		return nil
	}
	inLen := e.ex.InputLen()
	b := &fwdBatch{seq: e.nextSeq, items: e.fwd, n: len(e.fwd), in: make([]float32, len(e.fwd)*inLen)}
	for i, r := range e.fwd {
		copy(b.in[i*inLen:], r.blob)
		e.blobs.Put(r.blob)
		r.blob = nil
	}
	e.nextSeq++
	e.fwd = nil
	// At most nets+1 batches in flight, finished ones included: a stalled
	// network must not let the others pile up results in memory.
	for e.inFlight > len(e.nets) {
		if err := e.received(<-e.fwdDone); err != nil {
			return err
		}
	}
	for {
		select {
		case e.fwdJobs <- b:
			e.inFlight++
			return e.collect(false)
		case done := <-e.fwdDone:
			if err := e.received(done); err != nil {
				return err
			}
		}
	}
}

// collect finishes the batches that are done, in order; with wait, it
// waits for every batch in flight.
func (e *engine) collect(wait bool) error {
	for e.inFlight > 0 {
		if wait {
			if err := e.received(<-e.fwdDone); err != nil {
				return err
			}
			continue
		}
		select {
		case done := <-e.fwdDone:
			if err := e.received(done); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

func (e *engine) received(b *fwdBatch) error {
	e.doneBatches[b.seq] = b
	for {
		b, ok := e.doneBatches[e.doneSeq]
		if !ok {
			return nil
		}
		delete(e.doneBatches, e.doneSeq)
		e.doneSeq++
		e.inFlight--
		if err := e.finish(b); err != nil {
			return err
		}
	}
}

// settleAll waits for every batch in flight and finishes it.
func (e *engine) settleAll() error { return e.collect(true) }

// finish checks a batch's vectors and queues them for writing.
func (e *engine) finish(b *fwdBatch) error {
	e.tForward += b.dur
	if b.err != nil {
		return fmt.Errorf("forward pass: %w", b.err)
	}
	vecs := b.vecs
	outs := e.ex.Outputs()
	for i, r := range b.items {
		sha := r.rec.SHA256
		it := e.fwdItems[sha]
		delete(e.fwdItems, sha)
		waiting := e.waiting[sha]
		delete(e.waiting, sha)
		pc := e.pendingCounts[sha]
		delete(e.pendingCounts, sha)
		var fails []store.Failure
		var vec0 []float32
		if vecs[i] == nil {
			fails = append(fails, store.Failure{Path: r.in.Path, Stage: "forward", Message: "OpenCV's forward pass failed on this image"})
		} else {
			want := map[int64]bool{}
			for _, id := range r.missing {
				want[id] = true
			}
			for j, v := range vecs[i] {
				if !want[e.setIDs[j]] {
					continue
				}
				if k := extract.BadValue(v); k >= 0 {
					fails = append(fails, store.Failure{Path: r.in.Path, Stage: "vector",
						Message: fmt.Sprintf("layer %s: value %d of %d is %v", outs[j].Layer.Name, k, len(v), v[k])})
					continue
				}
				it.Vectors = append(it.Vectors, store.Vector{FeatureSetID: e.setIDs[j], Data: v})
				if j == 0 {
					vec0 = v
				}
			}
		}
		if len(fails) > 0 {
			// A file is extracted whole or not at all: nothing of it is
			// stored, and the other paths of the same content fail with it.
			for _, f := range fails {
				e.failRow(f)
			}
			for _, p := range it.Paths[1:] {
				e.failRow(store.Failure{Path: p.Path, Stage: fails[0].Stage, Message: "same content as " + r.in.Path + ": " + fails[0].Message})
			}
			moved := pc.Duplicates + pc.Present
			e.counts = e.counts.Add(store.Counts{Duplicates: -pc.Duplicates, Present: -pc.Present, Failed: moved + 1})
			pc.Duplicates, pc.Present, pc.Failed = 0, 0, pc.Failed+moved+1
			e.delta = e.delta.Add(pc)
			for _, out := range waiting {
				f := fails[0]
				out.Failure, out.done = &f, true
			}
			continue
		}
		pc.Extracted++
		e.counts.Extracted++
		e.delta = e.delta.Add(pc)
		for _, out := range waiting {
			out.Vector, out.done = vec0, true
		}
		e.other = append(e.other, *it)
		if e.o.onFile != nil {
			// Bounded (128 MiB): a forgotten vector is computed again.
			if e.recentLen += len(vec0); e.recentLen > 1<<25 {
				e.recentVecs, e.recentLen = map[string][]float32{}, len(vec0)
			}
			e.recentVecs[sha] = vec0
		}
		if old := e.recent.add(sha); old != "" {
			delete(e.recentVecs, old)
		}
	}
	// One transaction per batch: what a crash can lose is bounded by it.
	if err := e.write(); err != nil {
		return err
	}
	if e.o.onFile != nil {
		return e.drain()
	}
	return nil
}

// write commits the path-only items, the forward results and the failures
// gathered so far in one transaction.
func (e *engine) write() error {
	if e.o.readOnly {
		e.other, e.fails, e.delta = e.other[:0], e.fails[:0], store.Counts{}
		return nil
	}
	if len(e.other) == 0 && len(e.fails) == 0 && e.delta == (store.Counts{}) {
		return nil
	}
	t0 := time.Now()
	var rep store.BatchReport
	err := writeFault()
	if err == nil {
		rep, err = e.db.WriteBatchReport(e.bg, e.runID, store.Batch{Items: e.other, Failures: e.fails, Counts: e.delta})
	}
	e.tWrite += time.Since(t0)
	if err != nil {
		return fmt.Errorf("write batch: %w (everything committed before is kept; rerun to continue)", err)
	}
	e.relabeled(rep.Relabels)
	e.committed = e.committed.Add(e.delta)
	e.other, e.fails, e.delta = e.other[:0], e.fails[:0], store.Counts{}
	return nil
}

// shaRing remembers the last few thousand content hashes written.
type shaRing struct {
	set  map[string]bool
	ring [4096]string
	pos  int
}

// add remembers sha and returns the one it forgot, if any.
func (s *shaRing) add(sha string) (forgot string) {
	if s.set == nil {
		s.set = map[string]bool{}
	}
	if old := s.ring[s.pos]; old != "" {
		delete(s.set, old)
		forgot = old
	}
	s.ring[s.pos] = sha
	s.set[sha] = true
	s.pos = (s.pos + 1) % len(s.ring)
	return forgot
}

func (s *shaRing) has(sha string) bool { return s.set[sha] }

// SetEngine is the engine that computed a feature set's vectors (sets made
// before engines were recorded are OpenCV's).
func SetEngine(fs store.FeatureSet) string {
	if fs.Engine == "" {
		return store.EngineOpenCV
	}
	return fs.Engine
}
