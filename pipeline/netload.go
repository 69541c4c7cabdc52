package pipeline

import (
	"context"
	"fmt"

	"pipeline/extract"
)

// loadNets loads the engine's networks so that nothing about the load can
// leave the process dying: a load that would run out of memory is refused
// first (extract.CheckLoadMemory), and a signal abandons the load (see
// abandonable). It runs before any database or run exists, so neither
// leaves a run behind.
func (e *engine) loadNets(ctx context.Context) error {
	if err := extract.CheckLoadMemory(e.o.Model, e.o.Nets); err != nil {
		return err
	}
	return abandonable(ctx, "loading "+e.o.Model.Path, e.openNets, e.close)
}

// abandonable runs load on a goroutine of its own and returns its error,
// or ErrInterrupted as soon as ctx is done. Loading a model is long C calls
// (OpenCV's importer, oneDNN's primitives) that cannot stop halfway, and a
// pathological graph takes minutes: Ctrl-C or SIGTERM must not wait for
// it. An abandoned load goes on until the process exits; if it finishes
// first, undo frees what it made.
func abandonable(ctx context.Context, what string, load func() error, undo func()) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ErrInterrupted)
	}
	done := make(chan error, 1)
	go func() { done <- load() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		go func() {
			if err := <-done; err == nil {
				undo()
			}
		}()
		return fmt.Errorf("%s: %w (abandoned; nothing was recorded)", what, ErrInterrupted)
	}
}

// openExtractor is extract.NewExtractor with loadNets' guarantees (similar
// computes its query vector with one extractor).
func openExtractor(ctx context.Context, cfg extract.ExtractorConfig) (*extract.Extractor, error) {
	if err := extract.CheckLoadMemory(cfg.Model, 1); err != nil {
		return nil, err
	}
	var ex *extract.Extractor
	err := abandonable(ctx, "loading "+cfg.Model.Path, func() error {
		var err error
		ex, err = extract.NewExtractor(cfg)
		return err
	}, func() { ex.Close() })
	if err != nil {
		return nil, err // ex is the abandoned load's
	}
	return ex, nil
}

// OpenNet is extract.OpenNet for commands that only read a model's graph
// (`pipeline layers`), with loadNets' guarantees: the memory check first,
// and a signal abandons the load. Close the net when done.
func OpenNet(ctx context.Context, m extract.Model) (*extract.Net, *extract.Graph, error) {
	if err := extract.CheckLoadMemory(m, 1); err != nil {
		return nil, nil, err
	}
	var net *extract.Net
	var g *extract.Graph
	err := abandonable(ctx, "loading "+m.Path, func() error {
		var err error
		net, g, err = extract.OpenNet(m)
		return err
	}, func() { net.Close() })
	if err != nil {
		return nil, nil, err // net and g are the abandoned load's
	}
	return net, g, nil
}

// loadAliases is modelAliases with abandonable's guarantee (sweep without
// --layers loads the graph for its aliases before anything is recorded).
func loadAliases(ctx context.Context, m extract.Model) ([]string, error) {
	var names []string
	err := abandonable(ctx, "loading "+m.Path, func() error {
		var err error
		names, err = modelAliases(m)
		return err
	}, func() {})
	if err != nil {
		return nil, err
	}
	return names, nil
}
