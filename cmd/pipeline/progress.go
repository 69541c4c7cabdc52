package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"pipeline/pipeline"
	"pipeline/store"
)

// progress shows an extract (or predict) run on stderr: a redrawn bar on a
// terminal, a plain line every interval otherwise (cron logs), nothing with
// --quiet. Failures always get one line each.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	quiet    bool
	verb     string
	start    time.Time
	last     time.Time
	every    time.Duration
	drawn    bool
	lastDone int64
	e        *env
}

func newProgress(e *env, verb string) *progress {
	every := 10 * time.Second
	if e.tty {
		every = 200 * time.Millisecond
	}
	return &progress{w: e.stderr, tty: e.tty, quiet: e.quiet, verb: verb, start: time.Now(), every: every, e: e}
}

func (p *progress) Started(info pipeline.StartInfo) {
	if p.quiet {
		return
	}
	var sets []string
	for _, s := range info.Sets {
		sets = append(sets, s.String())
	}
	run := ""
	if info.RunID != 0 {
		run = fmt.Sprintf("run %d, ", info.RunID)
	}
	p.e.infof("%s: %s%s; batch %d, %d net(s) x %d %s threads, %d decode workers",
		p.verb, run, strings.Join(sets, "; "), info.Batch, info.Nets, info.Threads, engineName(info.Engine), info.Workers)
}

func (p *progress) Note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.e.log.Warn(msg)
}

func (p *progress) Failed(f store.Failure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, "%s: %s: %s\n", f.Path, f.Stage, f.Message)
}

func (p *progress) Progress(c store.Counts, total int64, walking bool) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.last.IsZero() {
		p.last = p.start
	}
	final := c.Seen == total && !walking
	if now.Sub(p.last) < p.every && !(final && p.tty) {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64(c.Extracted) / max(el, 1e-9)
	filesRate := float64(c.Seen) / max(el, 1e-9)
	tot := fmt.Sprint(total)
	if walking {
		tot += "+"
	}
	eta := "?"
	if !walking && filesRate > 0 {
		eta = fmtDuration(time.Duration(float64(total-c.Seen) / filesRate * float64(time.Second)))
	}
	if p.tty {
		frac := 0.0
		if total > 0 {
			frac = float64(c.Seen) / float64(total)
		}
		const width = 24
		n := int(frac * width)
		bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
		fmt.Fprintf(p.w, "\r\033[K%s [%s] %d/%s  %.1f img/s  ETA %s  (new %d, present %d, dup %d, failed %d)",
			p.verb, bar, c.Seen, tot, rate, eta, c.Extracted, c.Present, c.Duplicates, c.Failed)
		p.drawn = true
		return
	}
	if c.Seen == p.lastDone {
		return
	}
	p.lastDone = c.Seen
	fmt.Fprintf(p.w, "%s: %d/%s files, %.1f images/s, ETA %s (new %d, present %d, duplicates %d, failed %d)\n",
		p.verb, c.Seen, tot, rate, eta, c.Extracted, c.Present, c.Duplicates, c.Failed)
}

// clear removes the bar before a line is printed.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// Done ends the bar's line.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

func engineName(engine string) string {
	if engine == "onednn" {
		return "oneDNN"
	}
	return "OpenCV"
}
