package fetch

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress reports a download. On a terminal it redraws one line (bar,
// bytes, speed, ETA) at most every 200 ms; elsewhere it writes a plain line
// each time another 10% is done or 30 s have passed. A nil *progress is
// silent.
type progress struct {
	w     io.Writer
	tty   bool
	name  string
	total int64
	now   func() time.Time

	done      int64
	base      int64     // bytes present when timing started
	start     time.Time // zero until the first begin
	last      time.Time // last draw (tty) or last line (plain)
	lastStep  int64     // last 10% step reported (plain)
	lineLen   int       // length of the drawn line (tty)
	drawn     bool      // a tty line is on screen, not ended by a newline
	announced bool
}

const (
	ttyInterval   = 200 * time.Millisecond
	plainInterval = 30 * time.Second
	barWidth      = 24
)

func newProgress(w io.Writer, tty bool, name string, total int64) *progress {
	return &progress{w: w, tty: tty, name: name, total: total, now: time.Now, lastStep: -1}
}

// begin starts (or restarts) an attempt at byte off.
func (p *progress) begin(off int64) {
	if p == nil {
		return
	}
	now := p.now()
	if p.start.IsZero() || off < p.done {
		// First attempt, or a restart from scratch: measure speed afresh.
		p.start, p.base = now, off
		p.lastStep = off * 10 / p.total
	}
	p.done = off
	if !p.announced && !p.tty {
		p.announced = true
		if off > 0 {
			fmt.Fprintf(p.w, "%s: resuming at %s of %s\n", p.name, mib(off), mib(p.total))
		} else {
			fmt.Fprintf(p.w, "%s: downloading %s\n", p.name, mib(p.total))
		}
		p.last = now
	}
	if p.tty {
		p.draw(now)
	}
}

func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.done += n
	now := p.now()
	if p.tty {
		if now.Sub(p.last) >= ttyInterval || p.done == p.total {
			p.draw(now)
		}
		return
	}
	step := p.done * 10 / p.total
	if (step > p.lastStep && p.done < p.total) || now.Sub(p.last) >= plainInterval {
		p.lastStep = step
		p.last = now
		fmt.Fprintf(p.w, "%s: %3d%% (%s of %s), %s, ETA %s\n", p.name, p.done*100/p.total,
			mib(p.done), mib(p.total), p.rate(now), p.eta(now))
	}
}

// finish reports the end of a successful download.
func (p *progress) finish() {
	if p == nil {
		return
	}
	now := p.now()
	if p.tty {
		p.draw(now)
		p.breakLine()
		return
	}
	fmt.Fprintf(p.w, "%s: 100%% (%s) in %s, %s\n", p.name, mib(p.total),
		now.Sub(p.start).Round(time.Second), p.rate(now))
}

// breakLine ends a drawn bar so that other output starts on its own line.
func (p *progress) breakLine() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprintln(p.w)
	p.drawn = false
}

func (p *progress) draw(now time.Time) {
	p.last = now
	filled := int(p.done * barWidth / p.total)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled)
	if filled > 0 && filled < barWidth {
		bar = bar[:filled-1] + ">" + bar[filled:]
	}
	line := fmt.Sprintf("%s [%s] %3d%% %s/%s %s ETA %s", p.name, bar, p.done*100/p.total,
		mibNum(p.done), mib(p.total), p.rate(now), p.eta(now))
	pad := max(0, p.lineLen-len(line))
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.lineLen = len(line)
	p.drawn = true
}

// speed is in bytes per second over this run (not counting resumed bytes).
func (p *progress) speed(now time.Time) float64 {
	el := now.Sub(p.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(p.done-p.base) / el
}

func (p *progress) rate(now time.Time) string {
	return fmt.Sprintf("%.1f MiB/s", p.speed(now)/(1<<20))
}

func (p *progress) eta(now time.Time) string {
	s := p.speed(now)
	if s <= 0 {
		return "--:--"
	}
	d := time.Duration(float64(p.total-p.done) / s * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func mibNum(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }
func mib(n int64) string    { return mibNum(n) + " MiB" }
