package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"pipeline/errclass"
)

// inputSource produces a run's files in order, instead of
// ExtractOptions.Images or List (predict's files and folders); stats, if
// given, gets what a directory walk passed over.
type inputSource func(emit func(Input) error, stats func(WalkStats)) error

// feed is the input side of a run: a walker goroutine produces the files
// in order, workers prepare them (prepare), and the loop takes the results.
// In-flight files are bounded by tokens: memory does not grow with the
// dataset.
type feed struct {
	tokens   chan struct{} // one per file between the walker and the loop
	results  chan result   // prepared files, in any order (result.idx)
	stopWalk context.CancelFunc
	walkErr  chan error // the walker's error, once it is done
	counted  int64      // files counted before the run (-1: not counted)

	mu         sync.Mutex
	total      int64 // files emitted so far
	walkDone   bool
	unreadable []UnreadableDir // folders the walk could not list: failures
	skipped    *int            // non-images passed over (the engine's count)
}

// startFeed starts the walker and the workers.
func (e *engine) startFeed(ctx context.Context) *feed {
	window := (len(e.nets)+1)*e.batch + 4*e.workers
	walkCtx, stop := context.WithCancel(ctx)
	f := &feed{
		tokens: make(chan struct{}, window), results: make(chan result, window),
		stopWalk: stop, walkErr: make(chan error, 1), counted: e.countInputs(), skipped: &e.skipped,
	}
	jobs := make(chan job, window)
	go func() {
		defer close(jobs)
		f.walkErr <- f.walk(walkCtx, e, jobs)
	}()
	var wg sync.WaitGroup
	for w := 0; w < e.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				f.results <- e.prepare(j)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(f.results)
	}()
	return f
}

// countInputs counts the files first (a directory walk or a list read
// costs milliseconds), so that progress has a total and an ETA from the
// start; the walker is held back by the in-flight window. Standard input
// is read once: not counted (-1).
func (e *engine) countInputs() int64 {
	if e.o.List == "-" {
		return -1
	}
	n := int64(0)
	if err := e.walk(func(Input) error { n++; return nil }, nil); err != nil {
		return -1
	}
	return n
}

// walk sends the files to the workers, each once a token is free.
func (f *feed) walk(ctx context.Context, e *engine, jobs chan<- job) error {
	idx := 0
	emit := func(in Input) error {
		select {
		case f.tokens <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		jobs <- job{idx, in}
		idx++
		f.mu.Lock()
		f.total++
		f.mu.Unlock()
		return nil
	}
	err := e.walk(emit, func(st WalkStats) {
		f.mu.Lock()
		*f.skipped += st.Skipped
		f.unreadable = append(f.unreadable, st.Unreadable...)
		f.mu.Unlock()
	})
	f.mu.Lock()
	f.walkDone = true
	f.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// progress is the total to show and whether the walk is still going.
func (f *feed) progress() (total int64, walking bool) {
	f.mu.Lock()
	total, done := f.total, f.walkDone
	f.mu.Unlock()
	if f.counted >= 0 && !done {
		total, done = max(f.counted, total), true
	}
	return total, !done
}

// unreadableDirs are the folders the walk could not list.
func (f *feed) unreadableDirs() []UnreadableDir {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]UnreadableDir(nil), f.unreadable...)
}

// discard drops the files still in flight after an interrupt.
func (f *feed) discard(blobs *sync.Pool) {
	for r := range f.results {
		if r.blob != nil {
			blobs.Put(r.blob)
		}
	}
}

// walk produces the input files in order; stats, if given, gets what a
// directory walk passed over.
func (e *engine) walk(emit func(Input) error, stats func(WalkStats)) error {
	o := e.o
	emit = withSplit(o.Shard.Filter(emit), o.Split)
	switch {
	case e.src != nil:
		return e.src(emit, stats)
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

// checkInputPaths refuses a --images folder or a --list file that is
// missing or of the wrong kind before the model loads: a typo then costs no
// load, creates no database and records no run, and exits 2 like every
// name on the command line that names nothing (README, Exit codes). The
// walk and the list reader still report what changes after this check.
func checkInputPaths(o ExtractOptions) error {
	if o.Images != "" {
		info, err := os.Stat(o.Images)
		if err != nil {
			return errclass.Errorf(errclass.NotFound, "images %s: %w", o.Images, unwrapPathErr(err))
		}
		if !info.IsDir() {
			return usageKindf(ErrNotDir, "images %s: %v", o.Images, ErrNotDir)
		}
	}
	if o.List != "" && o.List != "-" {
		info, err := os.Stat(o.List)
		if err != nil {
			return errclass.Errorf(errclass.NotFound, "list %s: %w", o.List, unwrapPathErr(err))
		}
		if info.IsDir() {
			return usageKindf(ErrListIsDir, "list %s: %v", o.List, ErrListIsDir)
		}
	}
	return nil
}
