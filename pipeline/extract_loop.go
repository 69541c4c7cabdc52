package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"pipeline/extract"
	"pipeline/store"
)

// engine is the extraction engine: one run's state. The loop (run) is the
// only goroutine that forwards and writes; workers read, hash and decode
// (extract_inputs.go, extract_prepare.go), len(nets) goroutines run the
// forward passes (extract_batch.go), and finished batches are checked and
// written in order (extract_finish.go).
//
// Its collaborators are passed in: an open database (read-only when nothing
// is written) and a sink, what becomes of each finished file besides its
// rows being stored.
type engine struct {
	o        ExtractOptions
	src      inputSource // the files, instead of o.Images or o.List
	db       *store.DB
	sink     sink // nil: the rows are only stored (extract)
	ev       Events
	bg       context.Context
	start    time.Time
	runID    int64 // 0: a read-only run, nothing is written
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

	// For the sink: outcomes in input order, waiting for their vectors.
	queue      []*outcome
	waiting    map[string][]*outcome // sha → outcomes in the forward batch
	recentVecs map[string][]float32  // sha → vector, for shas in recent (sink only)
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

// newEngine checks the options and loads the networks (close frees them).
// src, if not nil, gives the files instead of o.Images or o.List.
func newEngine(ctx context.Context, o ExtractOptions, src inputSource) (*engine, error) {
	start := time.Now()
	if o.Images == "" && o.List == "" && src == nil {
		return nil, usagef("no input: want an images folder or a list of files")
	}
	if o.Images != "" && o.List != "" {
		return nil, usagef("an images folder or a list of files, not both")
	}
	if err := checkSplitOption(o); err != nil {
		return nil, err
	}
	if err := checkInputPaths(o); err != nil {
		return nil, err
	}
	ev := o.Events
	if ev == nil {
		ev = nopEvents{}
	}
	// Database writes finish even after Ctrl-C.
	e := &engine{o: o, src: src, ev: ev, bg: context.WithoutCancel(ctx), start: start}
	if err := e.loadNets(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *engine) note(msg string) {
	e.notes = append(e.notes, msg)
	e.ev.Note(msg)
}

// openNets loads the network copies.
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
			e.close()
			return err
		}
		e.nets = append(e.nets, ex)
	}
	return nil
}

// close frees the networks.
func (e *engine) close() {
	for _, ex := range e.nets {
		ex.Close()
	}
	e.nets = nil
}

// run computes the files of one run. db is open (read-only when runID is
// 0: then nothing is written); sets are the feature sets to compute, checked
// against the outputs (nil: made from the outputs); s gets every file, in
// input order, once its vector is known (nil: the rows are only stored).
func (e *engine) run(ctx context.Context, db *store.DB, runID int64, sets []store.FeatureSet, s sink) error {
	e.db, e.runID, e.sink = db, runID, s
	if err := e.begin(sets); err != nil {
		return err
	}
	stopNets := e.startNets()
	defer stopNets()
	f := e.startFeed(ctx)
	defer f.stopWalk()
	interrupted, err := e.loop(ctx, f)
	if err != nil {
		return err
	}
	return e.end(ctx, f, interrupted)
}

// begin records the engine, settles the feature sets and tells the user
// the run has started.
func (e *engine) begin(sets []store.FeatureSet) error {
	ex := e.nets[0]
	e.ex = ex
	if e.runID != 0 {
		if err := e.db.SetRunEngine(e.bg, e.runID, ex.Engine()); err != nil {
			return err
		}
	}
	for _, n := range ex.Notes {
		e.note(n)
	}
	e.batch = ex.BatchSize()
	var err error
	if sets != nil {
		err = e.useFixedSets(sets)
	} else {
		err = e.ensureSets()
	}
	if err != nil {
		return err
	}
	e.workers = e.o.Workers
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
	return nil
}

// startNets starts one forward goroutine per network; stop ends them.
func (e *engine) startNets() (stop func()) {
	e.fwdJobs = make(chan *fwdBatch)
	e.fwdDone = make(chan *fwdBatch, len(e.nets)+1)
	e.doneBatches = map[int]*fwdBatch{}
	var wg sync.WaitGroup
	for _, net := range e.nets {
		wg.Add(1)
		go func(net *extract.Extractor) {
			defer wg.Done()
			for b := range e.fwdJobs {
				b.run(net)
				e.fwdDone <- b
			}
		}(net)
	}
	return func() {
		close(e.fwdJobs)
		wg.Wait()
	}
}

// loop consumes the prepared files in input order, so that which path
// becomes an image's canonical path does not depend on goroutine timing.
// After an error it keeps draining the feed (dropping the files) until the
// walk has stopped.
func (e *engine) loop(ctx context.Context, f *feed) (interrupted bool, err error) {
	pending := map[int]result{}
	next := 0
	waitStart := time.Now()
	for {
		var r result
		select {
		case res, ok := <-f.results:
			if !ok {
				return interrupted, err
			}
			r = res
		case <-ctx.Done():
			// Stop now, even when no result is coming (a --list - whose
			// producer keeps stdin open): the files in flight are dropped,
			// as after any interrupt, and drained in the background.
			f.stopWalk()
			go f.discard(&e.blobs)
			return true, err
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
			if err == nil && !interrupted {
				if err = e.consume(r); err != nil {
					f.stopWalk()
				}
			} else if r.blob != nil {
				e.blobs.Put(r.blob)
			}
			<-f.tokens
			total, walking := f.progress()
			e.ev.Progress(e.counts, total, walking)
			if !interrupted && ctx.Err() != nil {
				interrupted = true
				f.stopWalk()
			}
			waitStart = time.Now()
		}
	}
}

// end settles the run after the last file: folders the walk could not list
// become failures; after an interrupt, the images gathered for the next
// forward pass are dropped and everything else is kept; otherwise the last
// batches are computed and written.
func (e *engine) end(ctx context.Context, f *feed, interrupted bool) error {
	// A cancel that came after the last result (the walker stopped on it,
	// or a --list - producer died with the same Ctrl-C) is an interrupt too.
	if !interrupted && ctx.Err() != nil {
		interrupted = true
	}
	for _, u := range f.unreadableDirs() {
		e.count(store.Counts{Seen: 1, Failed: 1})
		e.failRow(store.Failure{Path: u.Path, Stage: "read", Message: "cannot list this directory: " + u.Err.Error()})
	}
	if interrupted {
		// Stop after the batch that was being computed.
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
	return <-f.walkErr
}

// consume handles one prepared file in input order.
func (e *engine) consume(r result) error {
	var out *outcome
	if e.sink != nil {
		out = &outcome{FileOutcome: FileOutcome{Input: r.in, SHA256: r.rec.SHA256, ImageID: r.imageID}}
		e.queue = append(e.queue, out)
		if (r.kind == kindPresent || r.kind == kindDup) && e.sink.skip(r.imageID) {
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
		recent := e.recent.has(sha) && (e.sink == nil || e.recentVecs[sha] != nil)
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
