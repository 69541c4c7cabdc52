package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

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
	width    int // terminal columns (80 when unknown)

	// The last figures the engine reported.
	counts  store.Counts
	total   int64
	walking bool
	seenAny bool
}

func newProgress(e *env, verb string) *progress {
	every := 10 * time.Second
	if e.tty {
		every = 200 * time.Millisecond
	}
	// With --log-format json every stderr line is a JSON object: no bar.
	tty := e.tty && !e.jsonLog
	if !tty {
		every = 10 * time.Second
	}
	return &progress{w: e.stderr, tty: tty, quiet: e.quiet, verb: verb, start: time.Now(), every: every, e: e, width: termWidth(e.stderr)}
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
	if p.e.jsonLog {
		attrs := []any{"path", f.Path, "stage", f.Stage, "message", f.Message}
		if b := pipeline.PathB64(f.Path); b != "" {
			attrs = append(attrs, "path_b64", b)
		}
		p.e.log.Warn("file failed", attrs...)
		return
	}
	fmt.Fprintf(p.w, "%s: %s: %s\n", f.Path, f.Stage, f.Message)
}

func (p *progress) Progress(c store.Counts, total int64, walking bool) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// The total never shrinks on screen (after Ctrl-C the engine stops
	// counting, which is no reason to show less work than was announced).
	if total < p.total {
		total = p.total
	}
	p.total, p.counts, p.walking, p.seenAny = total, c, walking, true
	now := time.Now()
	if p.last.IsZero() {
		p.last = p.start
	}
	final := c.Seen == total && !walking
	if now.Sub(p.last) < p.every && !(final && p.tty) {
		return
	}
	p.last = now
	if p.tty {
		p.draw(now)
		return
	}
	if c.Seen == p.lastDone {
		return
	}
	p.lastDone = c.Seen
	rate, tot, eta := p.figures(now)
	if p.e.jsonLog {
		p.e.log.Info("progress", "command", p.verb, "seen", c.Seen, "total", total, "walking", walking,
			"images_per_second", rate, "extracted", c.Extracted, "present", c.Present, "duplicates", c.Duplicates, "failed", c.Failed)
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%s files, %.1f images/s, ETA %s (new %d, present %d, duplicates %d, failed %d)\n",
		p.verb, c.Seen, tot, rate, eta, c.Extracted, c.Present, c.Duplicates, c.Failed)
}

// figures are the rate of new images, the total as shown and the ETA. The
// ETA counts only the work left: files already stored cost nothing, so the
// rate it uses is that of the files that needed work (new, duplicate or
// failed), and the files left are assumed to need it too.
func (p *progress) figures(now time.Time) (rate float64, tot, eta string) {
	c := p.counts
	el := max(now.Sub(p.start).Seconds(), 1e-9)
	rate = float64(c.Extracted) / el
	tot = fmt.Sprint(p.total)
	if p.walking {
		tot += "+"
	}
	eta = "?"
	worked := c.Seen - c.Present
	left := p.total - c.Seen
	switch {
	case left <= 0 && !p.walking:
		eta = "0s"
	case !p.walking && worked > 0:
		eta = fmtDuration(time.Duration(float64(left) / (float64(worked) / el) * float64(time.Second)))
	}
	return rate, tot, eta
}

// draw redraws the terminal line. It never wraps: the bar shrinks first,
// then the line is cut to the terminal's width.
func (p *progress) draw(now time.Time) {
	c := p.counts
	rate, tot, eta := p.figures(now)
	tail := fmt.Sprintf(" %d/%s %.1f img/s ETA %s new %d dup %d fail %d",
		c.Seen, tot, rate, eta, c.Extracted, c.Duplicates, c.Failed)
	if c.Present > 0 {
		tail += fmt.Sprintf(" had %d", c.Present)
	}
	width := p.width - 1 // the last column would wrap on some terminals
	barw := min(24, width-len(p.verb)-len(tail)-3)
	line := p.verb + tail
	if barw >= 5 {
		frac := 0.0
		if p.total > 0 {
			frac = min(float64(c.Seen)/float64(p.total), 1)
		}
		n := int(frac * float64(barw))
		line = p.verb + " [" + strings.Repeat("#", n) + strings.Repeat(".", barw-n) + "]" + tail
	}
	if r := []rune(line); len(r) > width {
		line = string(r[:width])
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

// clear removes the bar before a line is printed.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// Done ends the bar's line; its last frame shows the final counts.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.seenAny && !p.quiet {
		p.draw(time.Now())
	}
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	if p.e.jsonLog && !p.quiet && p.seenAny && p.counts.Seen != p.lastDone {
		// The last counts reported, once: a script reading the log sees
		// them, not only the last 10-second tick (the summary has the
		// final ones).
		c := p.counts
		el := time.Since(p.start).Seconds()
		p.e.log.Info("progress", "command", p.verb, "seen", c.Seen, "total", p.total, "walking", false,
			"images_per_second", float64(c.Extracted)/max(el, 1e-9), "extracted", c.Extracted, "present", c.Present,
			"duplicates", c.Duplicates, "failed", c.Failed)
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

// termWidth is the width of the terminal w writes to: its size when it is
// one, else $COLUMNS, else 80.
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}

func engineName(engine string) string {
	if engine == "onednn" {
		return "oneDNN"
	}
	return "OpenCV"
}
