package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"pipeline/extract"
)

// ForwardResult is one raw-forward measurement: the extractor in a tight
// loop on blobs made once, as `pipeline extract` would run it (same model
// resolution, layer, pooling, batch and OpenCV threads), without decoding,
// preprocessing or storing.
type ForwardResult struct {
	Model          string    `json:"model"`
	Layer          string    `json:"layer"`
	RequestedBatch int       `json:"requested_batch"`
	Batch          int       `json:"batch"`     // what the extractor really runs (a fixed-batch model falls back to 1)
	Threads        int       `json:"threads"`   // the engine's threads after setting
	Engine         string    `json:"engine"`    // opencv or onednn (what ran)
	Precision      string    `json:"precision"` // fp32 or bf16
	CallsPerRep    int       `json:"calls_per_rep"`
	ImagesPerRep   int       `json:"images_per_rep"`
	Seconds        []float64 `json:"seconds"`           // per repetition
	ImagesPerSec   float64   `json:"images_per_second"` // images per repetition / median seconds
	LoadSeconds    float64   `json:"load_seconds"`      // NewExtractor
	FirstSeconds   float64   `json:"first_seconds"`     // the first forward pass (allocations, not timed)
	VmHWMKiB       int64     `json:"vmhwm_kib"`         // peak RSS seen from inside (VmHWM)
	Notes          []string  `json:"notes,omitempty"`
}

// repPlan says how many forward calls of batch images one repetition
// makes: enough to cover minImages, so that batch 1 is not timed on a
// single short pass while batch 32 is.
func repPlan(batch, minImages int) (calls int) {
	return max(1, (minImages+batch-1)/batch)
}

func cmdForward(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "model as for pipeline extract --model (e.g. vgg16-arch)")
	layer := fs.String("layer", "", "layer as for --layer (e.g. fc2)")
	batch := fs.Int("batch", 8, "images per forward pass")
	threads := fs.Int("threads", 0, "engine threads (0 = the engine's default)")
	engine := fs.String("engine", "auto", "auto, onednn or opencv (pipeline's --engine)")
	precision := fs.String("precision", "fp32", "fp32 or bf16 (pipeline's --precision)")
	warmup := fs.Int("warmup", 1, "untimed repetitions first")
	reps := fs.Int("reps", 5, "timed repetitions")
	minImages := fs.Int("min-images", 8, "images per repetition, at least")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" || *layer == "" || *batch < 1 || *reps < 1 {
		return fmt.Errorf("forward: give --model, --layer, --batch >= 1 and --reps >= 1")
	}
	m, err := resolveModel(*model)
	if err != nil {
		return err
	}
	t0 := time.Now()
	ex, err := extract.NewExtractor(extract.ExtractorConfig{
		Model: m, Layers: []string{*layer}, Pool: "avg",
		Compute: extract.Compute{Backend: "cpu", Target: "fp32", Threads: *threads, Engine: *engine, Arith: *precision},
		Batch:   *batch,
	})
	if err != nil {
		return err
	}
	defer ex.Close()
	res := ForwardResult{Model: m.Name, Layer: *layer, RequestedBatch: *batch, Batch: ex.BatchSize(),
		Threads: ex.Threads(), LoadSeconds: time.Since(t0).Seconds(), Notes: ex.Notes,
		Engine: ex.Engine(), Precision: *precision}
	// Values in the range of ImageNet-normalized pixels; the speed of a
	// dense float32 network does not depend on them.
	rng := rand.New(rand.NewPCG(1, uint64(*batch)))
	blob := make([]float32, *batch*ex.InputLen())
	for i := range blob {
		blob[i] = float32(rng.Float64()*4.6 - 2.1)
	}
	pass := func() error {
		_, err := ex.Forward(blob, *batch)
		return err
	}
	t0 = time.Now()
	if err := pass(); err != nil {
		return err
	}
	res.FirstSeconds = time.Since(t0).Seconds()
	res.CallsPerRep = repPlan(*batch, *minImages)
	res.ImagesPerRep = res.CallsPerRep * *batch
	for r := -*warmup; r < *reps; r++ {
		t0 := time.Now()
		for c := 0; c < res.CallsPerRep; c++ {
			if err := pass(); err != nil {
				return err
			}
		}
		d := time.Since(t0).Seconds()
		if r < 0 {
			fmt.Fprintf(stderr, "forward %s %s batch %d: warm-up %.2f img/s\n", m.Name, *layer, *batch, float64(res.ImagesPerRep)/d)
			continue
		}
		res.Seconds = append(res.Seconds, d)
		fmt.Fprintf(stderr, "forward %s %s batch %d: rep %d/%d %.2f img/s\n", m.Name, *layer, *batch, r+1, *reps, float64(res.ImagesPerRep)/d)
	}
	res.ImagesPerSec = float64(res.ImagesPerRep) / median(res.Seconds)
	res.VmHWMKiB = procStatusKiB("VmHWM")
	return writeJSON(stdout, res)
}

// procStatusKiB reads a "kB" field of /proc/self/status (VmHWM: peak RSS).
func procStatusKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return statusKiB(b, field)
}

// statusKiB reads a "kB" field of a /proc/PID/status text.
func statusKiB(b []byte, field string) int64 {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
