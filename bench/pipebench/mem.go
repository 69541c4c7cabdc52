package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"pipeline/pipeline"
)

// MemReport compares the peak RSS of extract runs over n and factor x n
// images: the engine bounds the images in flight, so the peak must not
// grow with the dataset.
type MemReport struct {
	Model     string  `json:"model"`
	Layer     string  `json:"layer"`
	Base      int     `json:"base_images"`
	Factor    int     `json:"factor"`
	Tolerance float64 `json:"tolerance"`
	Copies    string  `json:"copies"` // folder of the marked copies
	Runs      []*E2E  `json:"runs"`
	Growth    float64 `json:"growth"` // median peak RSS of the large runs / of the small ones - 1
	// SteadyGrowth is the same for the largest RSS over the second half
	// of each run, after the model is loaded.
	SteadyGrowth float64 `json:"steady_growth"`
	Pass         bool    `json:"pass"`
}

// memOpts are `pipebench mem`'s options.
type memOpts struct {
	data, out, pipelineBin, model, arch string
	engine, precision                   string
	n, factor, batch, threads, workers  int
	runs                                int
	tol                                 float64
	keep                                bool
}

func parseMemFlags(args []string, stderr io.Writer) (memOpts, error) {
	fs := flag.NewFlagSet("mem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o memOpts
	fs.StringVar(&o.data, "data", "", "folder of labelled JPEGs (default ../shared/datasets/seed4, then /work/shared/datasets/seed4)")
	fs.StringVar(&o.out, "out", "bench/out", "results, logs, copies and temporary databases (git-ignored)")
	fs.StringVar(&o.model, "model", "resnet50", "network: resnet50 (avg_pool; default, 4x faster than VGG-16 on CPU) or vgg16 (fc2)")
	fs.StringVar(&o.arch, "arch", "", "generated architecture to run (default resnet50-arch or vgg16-arch)")
	fs.IntVar(&o.n, "n", 0, "images of the small run, spread over the dataset (0 = all)")
	fs.IntVar(&o.factor, "factor", 8, "the large run has factor x n images: marked copies with distinct contents")
	fs.IntVar(&o.batch, "batch", 8, "pipeline extract --batch")
	fs.StringVar(&o.engine, "engine", "auto", "pipeline extract --engine")
	fs.StringVar(&o.precision, "precision", "fp32", "pipeline extract --precision")
	fs.IntVar(&o.threads, "threads", runtime.NumCPU(), "pipeline extract --threads")
	fs.IntVar(&o.workers, "workers", 0, "pipeline extract --workers (0 = its default)")
	fs.Float64Var(&o.tol, "tolerance", 0.10, "allowed growth of the peak RSS")
	fs.BoolVar(&o.keep, "keep", false, "keep the databases")
	fs.IntVar(&o.runs, "runs", 1, "runs of each size (peak RSS varies by up to 15% between identical runs: the medians are compared)")
	fs.StringVar(&o.pipelineBin, "pipeline", "", "pipeline binary (default: go build -o OUT/bin/pipeline ./cmd/pipeline)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.factor < 2 || o.batch < 1 || o.runs < 1 {
		return o, fmt.Errorf("mem: --factor must be at least 2, --batch and --runs at least 1")
	}
	return o, nil
}

func cmdMem(args []string, stdout, stderr io.Writer) error {
	o, err := parseMemFlags(args, stderr)
	if err != nil {
		return err
	}
	spec, err := lookupNet(o.model)
	if err != nil {
		return fmt.Errorf("mem: --model: %w", err)
	}
	if o.arch != "" {
		spec.Arch = o.arch
	}
	b, err := newBench(o.out, o.data, o.pipelineBin, "", stderr)
	if err != nil {
		return err
	}
	rep := &Report{Kind: "memory", Started: time.Now().Format(time.RFC3339)}
	rep.Settings = Settings{Data: b.data, Threads: o.threads, Workers: o.workers, E2EBatches: []int{o.batch},
		Command: shellJoin(append([]string{"pipebench", "mem"}, args...))}
	rep.Machine = b.machine()
	all, err := listImages(b.data)
	if err != nil {
		return err
	}
	ins := subset(all, o.n)
	copies := filepath.Join(b.out, "data", fmt.Sprintf("%s-n%d-x%d", filepath.Base(b.data), len(ins), o.factor))
	fmt.Fprintf(stderr, "writing %d marked copies into %s (reused by later runs)\n", o.factor*len(ins), relTo(b.root, copies))
	big, err := makeCopies(copies, ins, o.factor)
	if err != nil {
		return err
	}
	rep.Settings.Images = len(big)
	if err := b.ensureModel(spec.Arch); err != nil {
		return err
	}
	mr := &MemReport{Model: spec.Arch, Layer: spec.Layer, Base: len(ins), Factor: o.factor, Tolerance: o.tol, Copies: copies}
	rep.Memory = mr
	if err := mr.measure(b, rep, spec, o, big); err != nil {
		return err
	}
	rep.Finished = time.Now().Format(time.RFC3339)
	rep.Machine.LoadEnd = loadAvg()
	return b.finish(rep, stdout)
}

// measure runs extract over the first Base images of big and over all of
// them, o.runs times each, and compares the median peaks. A failed run
// ends the measurement and is recorded in rep; only a list it cannot
// write is returned.
func (mr *MemReport) measure(b *bench, rep *Report, spec netSpec, o memOpts, big []pipeline.Input) error {
	// Both sizes read marked copies (copy0 alone, then all), so that the
	// files differ only in number. Runs alternate small, large, small, ...
	var peaks, steady [2][]float64
	sizes := []int{mr.Base, len(big)}
runs:
	for r := 0; r < o.runs; r++ {
		for i, size := range sizes {
			part := big[:size]
			list := filepath.Join(b.r.logDir, fmt.Sprintf("list-%d.csv", size))
			if err := writeList(list, part); err != nil {
				return err
			}
			e, err := b.e2e(spec, o.batch, combo{o.engine, o.precision}, o.threads, o.workers, []string{"--list", list}, part, o.keep)
			if e != nil {
				mr.Runs = append(mr.Runs, e)
			}
			if err != nil {
				rep.Errors = append(rep.Errors, fmt.Sprintf("extract %d images: %v", size, err))
				break runs
			}
			peaks[i] = append(peaks[i], float64(e.PeakRSSKiB))
			steady[i] = append(steady[i], float64(secondHalfMax(e.RSSByTenth)))
		}
	}
	if len(peaks[1]) == o.runs && median(peaks[0]) > 0 {
		mr.Growth = median(peaks[1])/median(peaks[0]) - 1
		if median(steady[0]) > 0 {
			mr.SteadyGrowth = median(steady[1])/median(steady[0]) - 1
		}
		mr.Pass = mr.Growth <= mr.Tolerance
		if !mr.Pass {
			rep.Errors = append(rep.Errors, fmt.Sprintf("peak RSS grew %.1f%% from %d to %d images, over the %.0f%% allowed",
				100*mr.Growth, sizes[0], sizes[1], 100*mr.Tolerance))
		}
	}
	return nil
}

// secondHalfMax is the largest RSS over the last five tenths of a run.
func secondHalfMax(tenths []int64) int64 {
	var m int64
	for i := len(tenths) / 2; i < len(tenths); i++ {
		m = max(m, tenths[i])
	}
	return m
}

func (mr *MemReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n## Peak RSS against dataset size (%s, layer %s)\n\n", mr.Model, mr.Layer)
	fmt.Fprintf(w, "Copies of the dataset with a JPEG comment added (same pixels and decoding work, distinct SHA-256) in %s.\n\n", mr.Copies)
	fmt.Fprintf(w, "| images | img/s | wall s | forward s | wait s | write s | batch, threads, workers | peak RSS | RSS by tenth of the run (MiB) |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, e := range mr.Runs {
		sm := e.Summary
		tenths := make([]string, len(e.RSSByTenth))
		for i, k := range e.RSSByTenth {
			tenths[i] = fmt.Sprintf("%.0f", float64(k)/1024)
		}
		fmt.Fprintf(w, "| %d/%d | %.2f | %.1f | %.1f | %.1f | %.1f | %d, %d, %d | %s (%d KiB) | %s |\n", sm.Counts.Extracted, e.Images, sm.ImagesPerSec,
			sm.WallSeconds, sm.Timing.Forward, sm.Timing.Wait, sm.Timing.Write, sm.Batch, sm.Threads, sm.Workers, mib(e.PeakRSSKiB), e.PeakRSSKiB,
			strings.Join(tenths, " "))
	}
	if mr.Growth != 0 || mr.Pass {
		verdict := "PASS"
		if !mr.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "\n**%s**: peak RSS grew %+.1f%% from %d to %d images (allowed: %.0f%%); the largest RSS over the second half of the runs (after loading) grew %+.1f%%\n",
			verdict, 100*mr.Growth, mr.Base, mr.Base*mr.Factor, 100*mr.Tolerance, 100*mr.SteadyGrowth)
	}
}
