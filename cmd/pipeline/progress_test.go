package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"pipeline/store"
)

// frames splits what the bar wrote into the lines a terminal shows.
func frames(out string) []string {
	var f []string
	for _, part := range strings.Split(out, "\r\033[K") {
		part = strings.TrimSuffix(part, "\n")
		if part != "" {
			f = append(f, part)
		}
	}
	return f
}

func TestProgress_TTY(t *testing.T) {
	t.Run("FitsTheTerminal", func(t *testing.T) {
		for _, width := range []int{80, 40, 20} {
			var buf bytes.Buffer
			p := &progress{w: &buf, tty: true, verb: "extract", start: time.Now().Add(-time.Hour), e: &env{}, width: width}
			p.Progress(store.Counts{Seen: 123456, Extracted: 100000, Present: 20000, Duplicates: 3456, Failed: 99999}, 9999999, false)
			p.Done()
			fs := frames(buf.String())
			if len(fs) == 0 {
				t.Fatalf("width %d: nothing drawn", width)
			}
			for _, f := range fs {
				if n := utf8.RuneCountInString(f); n >= width {
					t.Errorf("width %d: a %d-column frame would wrap: %q", width, n, f)
				}
			}
			if !strings.HasSuffix(buf.String(), "\n") {
				t.Errorf("width %d: Done did not end the line", width)
			}
		}
	})
	t.Run("LastFrameHasFinalCounts", func(t *testing.T) {
		var buf bytes.Buffer
		p := &progress{w: &buf, tty: true, verb: "extract", start: time.Now(), every: time.Hour, e: &env{}, width: 80}
		p.Progress(store.Counts{Seen: 1, Extracted: 1}, 10, false)
		p.last = time.Now() // the next reports fall inside the redraw interval
		p.Progress(store.Counts{Seen: 7, Extracted: 6, Failed: 1}, 10, false)
		p.Done()
		fs := frames(buf.String())
		last := fs[len(fs)-1]
		if !strings.Contains(last, " 7/10 ") || !strings.Contains(last, "new 6") || !strings.Contains(last, "fail 1") {
			t.Errorf("last frame %q does not show the final counts 7/10, new 6, fail 1", last)
		}
	})
	t.Run("TotalNeverShrinks", func(t *testing.T) {
		var buf bytes.Buffer
		p := &progress{w: &buf, tty: true, verb: "extract", start: time.Now(), e: &env{}, width: 80}
		p.Progress(store.Counts{Seen: 3, Extracted: 3}, 808, false)
		p.Progress(store.Counts{Seen: 4, Extracted: 4}, 4, false) // after Ctrl-C
		p.Done()
		for _, f := range frames(buf.String()) {
			if strings.Contains(f, "/4 ") {
				t.Errorf("the total shrank: %q", f)
			}
		}
	})
}

func TestProgress_ETACountsWorkLeft(t *testing.T) {
	// 1000 files already stored went by instantly, 10 needed work in 10 s:
	// the 90 left take 90 s, not the 1 s that counting stored files gives.
	p := &progress{start: time.Now().Add(-10 * time.Second), total: 1100, counts: store.Counts{Seen: 1010, Present: 1000, Extracted: 10}}
	_, _, eta := p.figures(p.start.Add(10 * time.Second))
	if eta != "1m30s" {
		t.Errorf("ETA = %s, want 1m30s", eta)
	}
}
