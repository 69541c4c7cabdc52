package pipeline

import (
	"context"
	"fmt"

	"pipeline/extract"
)

// loadNets loads the engine's networks with loadModel's guarantees. It
// runs before any database or run exists, so neither a refused nor an
// abandoned load leaves a run behind.
func (e *engine) loadNets(ctx context.Context) error {
	_, err := loadModel(ctx, e.o.Model, e.o.Nets, func() (struct{}, error) {
		return struct{}{}, e.openNets()
	}, func(struct{}) { e.close() })
	return err
}

// loadModel loads model m (nets copies) so that nothing about the load can
// leave the process dying: a load that would run out of memory is refused
// first (extract.CheckLoadMemory), and load runs on a goroutine of its own
// so that ctx's end (Ctrl-C, SIGTERM) returns ErrInterrupted at once.
// Loading a model is long C calls (OpenCV's importer, oneDNN's primitives)
// that cannot stop halfway, and a pathological graph takes minutes. An
// abandoned load goes on until the process exits; if it finishes first,
// undo frees what it made.
func loadModel[T any](ctx context.Context, m extract.Model, nets int, load func() (T, error), undo func(T)) (T, error) {
	var zero T
	if err := extract.CheckLoadMemory(m, nets); err != nil {
		return zero, err
	}
	what := "loading " + m.Path
	if ctx.Err() != nil {
		return zero, fmt.Errorf("%s: %w", what, ErrInterrupted)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := load()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return zero, r.err
		}
		return r.v, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				undo(r.v)
			}
		}()
		return zero, fmt.Errorf("%s: %w (abandoned; nothing was recorded)", what, ErrInterrupted)
	}
}

// openExtractor is extract.NewExtractor with loadModel's guarantees
// (similar computes its query vector with one extractor).
func openExtractor(ctx context.Context, cfg extract.ExtractorConfig) (*extract.Extractor, error) {
	return loadModel(ctx, cfg.Model, 1, func() (*extract.Extractor, error) {
		return extract.NewExtractor(cfg)
	}, func(ex *extract.Extractor) { ex.Close() })
}

// OpenNet is extract.OpenNet for commands that only read a model's graph
// (`pipeline layers`, sweep's aliases) with loadModel's guarantees. Close
// the net when done.
func OpenNet(ctx context.Context, m extract.Model) (*extract.Net, *extract.Graph, error) {
	type opened struct {
		net *extract.Net
		g   *extract.Graph
	}
	o, err := loadModel(ctx, m, 1, func() (opened, error) {
		net, g, err := extract.OpenNet(m)
		return opened{net, g}, err
	}, func(o opened) { o.net.Close() })
	return o.net, o.g, err
}
