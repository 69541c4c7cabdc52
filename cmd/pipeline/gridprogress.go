package main

import (
	"fmt"
	"math"
	"sync"

	"pipeline/classify"
)

// gridProgress draws the grid search on a terminal: points done of the
// stage and the best point so far, redrawn in place; nothing otherwise
// (the table is in --verbose and --json).
type gridProgress struct {
	mu    sync.Mutex
	e     *env
	drawn bool
}

func newGridProgress(e *env) *gridProgress { return &gridProgress{e: e} }

func (g *gridProgress) report(p classify.GridProgress) {
	if !g.e.tty || g.e.quiet {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	fmt.Fprintf(g.e.stderr, "\r\033[Kgrid: %s %d/%d points; best so far %s: CV accuracy %.4f", p.Stage, p.Done, p.Total, gridPointName(p.Best), p.Best.MeanAccuracy)
	g.drawn = true
}

func (g *gridProgress) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.drawn {
		fmt.Fprintln(g.e.stderr)
		g.drawn = false
	}
}

func gridPointName(p classify.GridPoint) string {
	s := fmt.Sprintf("C=2^%g", p.Log2C)
	if !math.IsNaN(p.Log2Gamma) && p.Gamma != 0 {
		s += fmt.Sprintf(" gamma=2^%g", p.Log2Gamma)
	}
	return s
}
