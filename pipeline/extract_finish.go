package pipeline

import (
	"fmt"
	"time"

	"pipeline/extract"
	"pipeline/store"
)

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

// drain hands the finished outcomes at the head of the queue to the sink, so
// that they come out in input order.
func (e *engine) drain() error {
	for len(e.queue) > 0 && e.queue[0].done {
		out := e.queue[0]
		e.queue = e.queue[1:]
		if err := e.sink.file(out.FileOutcome); err != nil {
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
		if e.sink != nil {
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
	if e.sink != nil {
		return e.drain()
	}
	return nil
}

// write commits the path-only items, the forward results and the failures
// gathered so far in one transaction.
func (e *engine) write() error {
	if e.runID == 0 { // a read-only run
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
