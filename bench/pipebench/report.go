package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// finish writes the report as JSON and markdown under the output folder
// (stamped, and as latest-<kind>.*) and prints the markdown.
func (b *bench) finish(rep *Report, stdout io.Writer) error {
	md := rep.markdown()
	base := filepath.Join(b.out, fmt.Sprintf("%s-%s", rep.Kind, b.stamp))
	var js strings.Builder
	if err := writeJSON(&js, rep); err != nil {
		return err
	}
	for _, f := range []struct{ path, body string }{
		{base + ".json", js.String()}, {base + ".md", md},
		{filepath.Join(b.out, "latest-"+rep.Kind+".json"), js.String()},
		{filepath.Join(b.out, "latest-"+rep.Kind+".md"), md},
	} {
		if err := os.WriteFile(f.path, []byte(f.body), 0o644); err != nil {
			return err
		}
	}
	os.Remove(b.tmp) // empty unless --keep
	os.Remove(filepath.Dir(b.tmp))
	fmt.Fprintf(stdout, "\n%s\nwritten: %s.json, %s.md\n", md, relTo(b.root, base), relTo(b.root, base))
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%w: %s", errFailed, strings.Join(rep.Errors, "; "))
	}
	return nil
}

func (rep *Report) markdown() string {
	var w strings.Builder
	m, s := rep.Machine, rep.Settings
	title := "pipeline extraction benchmark"
	if rep.Kind == "memory" {
		title = "pipeline extract memory check"
	}
	fmt.Fprintf(&w, "# %s, %s\n\n", title, rep.Started)
	fmt.Fprintf(&w, "- machine: %s, %d cores (%s), %s, Linux %s\n", m.CPU, m.Cores, m.SIMD, m.MemTotal, m.Kernel)
	fmt.Fprintf(&w, "- software: pipeline %s at %s, %s, OpenCV %s (%s)", m.Pipeline, m.Commit, m.Go, m.OpenCV, m.Parallel)
	if m.Torch != "" {
		fmt.Fprintf(&w, ", torch %s", m.Torch)
	}
	if m.Torchvision != "" {
		fmt.Fprintf(&w, ", torchvision %s", m.Torchvision)
	}
	workers := "default (= cores)"
	if s.Workers > 0 {
		workers = strconv.Itoa(s.Workers)
	}
	threads := fmt.Sprintf("%d OpenCV threads", s.Threads)
	if rep.Kind == "speed" {
		threads = fmt.Sprintf("%d threads (OpenCV and PyTorch)", s.Threads)
	}
	fmt.Fprintf(&w, "\n- data: %s, %d images; %s, %s decode workers\n", s.Data, s.Images, threads, workers)
	if rep.Kind == "speed" {
		fmt.Fprintf(&w, "- timing: %d warm-up + median of %d repetitions of at least %d images (raw forward, PyTorch); one run per end-to-end batch, its wall time includes loading the model (\"other s\": wall time outside forward, wait and write)\n",
			s.Warmup, s.Reps, s.MinImages)
	}
	fmt.Fprintf(&w, "- load average: %s at the start, %s at the end", m.LoadStart, m.LoadEnd)
	if busy(m.LoadStart) || busy(m.LoadEnd) {
		fmt.Fprintf(&w, " (**the machine was not idle: numbers are noisy; rerun on an idle machine for final figures**)")
	}
	fmt.Fprintf(&w, "\n- command: `%s`\n", s.Command)
	if g := rep.GEMM; g != nil {
		fmt.Fprintf(&w, "\n**GEMM roofline**: float32 %dx%d matmul, %d threads: **%.0f GFLOP/s** (torch.mm, median %s)",
			g.Size, g.Size, g.Threads, g.GFLOPS, rangeOf(gflopsOf(g.TorchSeconds, g.Size), "%.0f"))
		if g.NumpyGFLOPS > 0 {
			fmt.Fprintf(&w, "; numpy/OpenBLAS %.0f GFLOP/s", g.NumpyGFLOPS)
		}
		fmt.Fprintln(&w)
	}
	for _, nr := range rep.Nets {
		nr.markdown(&w, rep.Settings)
	}
	if rep.Memory != nil {
		rep.Memory.markdown(&w)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&w, "\nNote: %s\n", n)
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(&w, "\n## Errors\n\n")
		for _, e := range rep.Errors {
			fmt.Fprintf(&w, "- %s\n", e)
		}
	}
	fmt.Fprintf(&w, "\n## Commands\n\n")
	for _, c := range rep.commands() {
		fmt.Fprintf(&w, "- `%s`\n", c)
	}
	return w.String()
}

// busy says whether a load average's 1-minute figure shows other work on
// the machine (more than half a core busy besides the benchmark's own
// short-lived checks).
func busy(load string) bool {
	f := strings.Fields(load)
	if len(f) == 0 {
		return false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return err == nil && v > 0.5
}

func (nr *NetReport) markdown(w io.Writer, s Settings) {
	fmt.Fprintf(w, "\n## %s (%s, layer %s)\n\n", nr.Title, nr.Arch, nr.Layer)
	nr.costLine(w)
	batches := unionInts(s.Batches, s.E2EBatches)
	sort.Ints(batches)
	fmt.Fprintf(w, "| images/s (median, min-max) |")
	for _, b := range batches {
		fmt.Fprintf(w, " batch %d |", b)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(batches)))
	combos := nr.combos()
	notes := nr.forwardRows(w, batches, combos, nil)
	notes = nr.torchRows(w, batches, notes)
	nr.e2eRows(w, batches, combos)
	notes = nr.e2eTable(w, notes)
	if len(nr.Ratios) > 0 {
		fmt.Fprintf(w, "\nRatios:\n")
		for _, k := range sortedKeys(nr.Ratios) {
			r := nr.Ratios[k]
			fmt.Fprintf(w, "- **%s = %.2f**: %s\n", k, r.Value, r.Of)
		}
	}
	nr.peakRSSLine(w)
	for _, n := range notes {
		fmt.Fprintf(w, "\nNote from pipeline: %s\n", strings.TrimSpace(n))
	}
}

// costLine says what one image costs and the roofline it allows.
func (nr *NetReport) costLine(w io.Writer) {
	c := nr.Cost
	if c == nil {
		return
	}
	fmt.Fprintf(w, "Cost: %.2f GMAC = **%.2f GFLOP per image** up to %s (Conv, Gemm, MatMul of %d ONNX nodes)", float64(c.MACs)/1e9, c.GFLOP, c.OpenCV, c.Nodes)
	if p := nr.PeerCost; p != nil && p.MACs != c.MACs {
		fmt.Fprintf(w, "; the peer's topology (%s): %.2f GFLOP", p.Model, p.GFLOP)
	}
	if nr.Roofline > 0 {
		fmt.Fprintf(w, ". Roofline: **%.2f img/s**", nr.Roofline)
	}
	fmt.Fprintf(w, "\n\n")
}

// combos lists the engine/precision pairs measured, raw forward first, in
// the order they were run.
func (nr *NetReport) combos() []combo {
	var combos []combo
	for _, f := range nr.Forward {
		if c := (combo{f.Engine, f.Precision}); !slices.Contains(combos, c) {
			combos = append(combos, c)
		}
	}
	for _, e := range nr.E2E {
		if c := (combo{e.Engine, e.Precision}); !slices.Contains(combos, c) {
			combos = append(combos, c)
		}
	}
	return combos
}

// forwardRows writes the speed table's raw-forward rows, one per combo
// measured, and returns notes with the runs' notes added.
func (nr *NetReport) forwardRows(w io.Writer, batches []int, combos []combo, notes []string) []string {
	for _, c := range combos {
		n := 0
		for _, f := range nr.Forward {
			if f.Engine == c.engine && f.Precision == c.precision {
				n++
			}
		}
		if n == 0 {
			continue
		}
		fmt.Fprintf(w, "| raw forward, %s |", c)
		for _, b := range batches {
			cell := ""
			for _, f := range nr.Forward {
				if f.RequestedBatch != b || f.Engine != c.engine || f.Precision != c.precision {
					continue
				}
				cell = fmt.Sprintf("%.2f (%s)", f.ImagesPerSec, rangeOf(ratesOf(f.Seconds, f.ImagesPerRep), "%.2f"))
				if f.Batch != f.RequestedBatch {
					cell += fmt.Sprintf(" runs batch %d", f.Batch)
				}
				for _, n := range f.Notes {
					notes = appendOnce(notes, n)
				}
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	return notes
}

// torchRows writes the speed table's PyTorch rows, one per mode, and
// returns notes with the modes not measured added.
func (nr *NetReport) torchRows(w io.Writer, batches []int, notes []string) []string {
	t := nr.Torch
	if t == nil {
		return notes
	}
	var modes []string
	for _, r := range t.Results {
		if !slices.Contains(modes, r.Mode) {
			modes = append(modes, r.Mode)
		}
	}
	for _, mode := range modes {
		fmt.Fprintf(w, "| PyTorch %s %s |", t.Torch, torchModeTitle(mode))
		for _, b := range batches {
			cell := ""
			for _, r := range t.Results {
				if r.Batch == b && r.Mode == mode {
					cell = fmt.Sprintf("%.2f (%s)", r.ImagesPerSec, rangeOf(ratesOf(r.Seconds, r.ImagesPerRep), "%.2f"))
				}
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	for mode, why := range t.Skipped {
		notes = appendOnce(notes, fmt.Sprintf("PyTorch %s not measured: %s", mode, why))
	}
	return notes
}

// e2eRows writes the speed table's end-to-end rows, one per combo.
func (nr *NetReport) e2eRows(w io.Writer, batches []int, combos []combo) {
	for _, c := range combos {
		fmt.Fprintf(w, "| end-to-end `pipeline extract`, %s |", c)
		for _, b := range batches {
			cell := ""
			for _, e := range nr.E2E {
				if e.RequestedBatch == b && e.Error == "" && e.Engine == c.engine && e.Precision == c.precision {
					cell = fmt.Sprintf("%.2f", e.Summary.ImagesPerSec)
					if e.Summary.Batch != b {
						cell += fmt.Sprintf(" runs batch %d", e.Summary.Batch)
					}
					if e.Summary.Engine != "" && e.Summary.Engine != c.engine {
						cell += " ran on " + e.Summary.Engine
					}
				}
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
}

// e2eTable writes where each end-to-end run spent its time, and returns
// notes with pipeline's notes added.
func (nr *NetReport) e2eTable(w io.Writer, notes []string) []string {
	if len(nr.E2E) == 0 {
		return notes
	}
	fmt.Fprintf(w, "\n| end-to-end | images | img/s | wall s | forward s | wait s | write s | other s | forward-only img/s | batch, threads, workers | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, e := range nr.E2E {
		sm := e.Summary
		t := sm.Timing
		fmt.Fprintf(w, "| %s, batch %d | %d/%d | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %d, %d, %d | %s |\n",
			combo{e.Engine, e.Precision}, e.RequestedBatch, sm.Counts.Extracted, e.Images, sm.ImagesPerSec, sm.WallSeconds, t.Forward, t.Wait, t.Write,
			sm.WallSeconds-t.Forward-t.Wait-t.Write, e.ForwardOnly, sm.Batch, sm.Threads, sm.Workers, mib(e.PeakRSSKiB))
		for _, n := range sm.Notes {
			notes = appendOnce(notes, n)
		}
	}
	return notes
}

// peakRSSLine lists every measured process's peak resident memory.
func (nr *NetReport) peakRSSLine(w io.Writer) {
	fmt.Fprintf(w, "\nPeak RSS:")
	sep := " "
	for _, f := range nr.Forward {
		fmt.Fprintf(w, "%sraw forward %s_%s b%d %s (load %.1f s)", sep, f.Engine, f.Precision, f.RequestedBatch, mib(f.PeakRSSKiB), f.LoadSeconds)
		sep = ", "
	}
	if nr.Torch != nil {
		fmt.Fprintf(w, "%sPyTorch (all batches) %s", sep, mib(nr.Torch.PeakRSSKiB))
		sep = ", "
	}
	for _, e := range nr.E2E {
		fmt.Fprintf(w, "%send-to-end %s_%s b%d %s", sep, e.Engine, e.Precision, e.RequestedBatch, mib(e.PeakRSSKiB))
		sep = ", "
	}
	fmt.Fprintln(w)
}

func (rep *Report) commands() []string {
	var c []string
	add := func(m Measured) {
		if m.Command != "" {
			c = append(c, m.Command)
		}
	}
	if rep.GEMM != nil {
		add(rep.GEMM.Measured)
	}
	for _, nr := range rep.Nets {
		for _, f := range nr.Forward {
			add(f.Measured)
		}
		if nr.Torch != nil {
			add(nr.Torch.Measured)
		}
		for _, e := range nr.E2E {
			add(e.Measured)
		}
	}
	if rep.Memory != nil {
		for _, e := range rep.Memory.Runs {
			add(e.Measured)
		}
	}
	return c
}

func ratesOf(seconds []float64, images int) []float64 {
	r := make([]float64, len(seconds))
	for i, s := range seconds {
		r[i] = float64(images) / s
	}
	return r
}

func gflopsOf(seconds []float64, n int) []float64 {
	r := make([]float64, len(seconds))
	for i, s := range seconds {
		r[i] = 2 * float64(n) * float64(n) * float64(n) / s / 1e9
	}
	return r
}

// rangeOf prints min-max of the values.
func rangeOf(v []float64, format string) string {
	if len(v) == 0 {
		return ""
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf(format+"-"+format, lo, hi)
}

func mib(kib int64) string {
	if kib <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f MiB", float64(kib)/1024)
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func torchModeTitle(mode string) string {
	switch mode {
	case "eager":
		return "eager NCHW"
	case "channels_last":
		return "channels_last"
	case "torchscript":
		return "TorchScript frozen (optimize_for_inference)"
	case "bf16":
		return "bf16 autocast, channels_last"
	}
	return mode
}
