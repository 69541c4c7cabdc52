package pipeline

import (
	"time"

	"pipeline/extract"
)

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
	if e.sink != nil {
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
