package extract

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The raw forward pass of the full networks, as `pipeline extract` runs
// them (same layer, average pooling, batch, OpenCV threads), on blobs made
// once: the ceiling of the end-to-end rate. bench/run.sh measures the same
// thing next to the end-to-end run and PyTorch (docs/PERFORMANCE.md).
//
//	go test -run '^$' -bench Forward -benchtime 3x ./extract/
//
// PIPELINE_BENCH_BATCHES (default 1,8,32) and PIPELINE_BENCH_THREADS
// (default: the number of cores) change the grid. The generated models
// must be in the cache (`pipeline models gen vgg16-arch resnet50-arch`):
// they are not written here, 650 MB is not a benchmark's side effect.

func BenchmarkForward_VGG16(b *testing.B) { benchForward(b, "vgg16-arch", "fc2") }

func BenchmarkForward_ResNet50(b *testing.B) { benchForward(b, "resnet50-arch", "avg_pool") }

func benchForward(b *testing.B, name, layer string) {
	if testing.Short() {
		b.Skip("-short: full-size networks")
	}
	cache, err := CacheDir()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(GeneratedPath(cache, name)); err != nil {
		b.Skipf("%s is not in the cache %s: run `pipeline models gen %s`", name, cache, name)
	}
	g, _ := LookupGenerated(name)
	path, sha, err := g.Ensure(cache)
	if err != nil {
		b.Fatal(err)
	}
	m := Model{Name: name, Format: "onnx", Path: path, SHA256: sha, Input: "data", Preprocess: Presets["torch"]}
	threads := benchEnvInts(b, "PIPELINE_BENCH_THREADS", []int{runtime.NumCPU()})[0]
	for _, batch := range benchEnvInts(b, "PIPELINE_BENCH_BATCHES", []int{1, 8, 32}) {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ex, err := NewExtractor(ExtractorConfig{Model: m, Layers: []string{layer},
				Compute: Compute{Backend: "cpu", Target: "fp32", Threads: threads}, Batch: batch})
			if err != nil {
				b.Fatal(err)
			}
			defer ex.Close()
			if ex.BatchSize() != batch {
				b.Logf("%s runs batch %d: %s", name, ex.BatchSize(), strings.Join(ex.Notes, "; "))
			}
			rng := rand.New(rand.NewPCG(1, uint64(batch)))
			blob := make([]float32, batch*ex.InputLen())
			for i := range blob {
				blob[i] = float32(rng.Float64()*4.6 - 2.1) // ImageNet-normalized pixel range
			}
			// The first pass allocates OpenCV's buffers: not timed.
			if _, err := ex.Forward(blob, batch); err != nil {
				b.Fatal(err)
			}
			n := 0
			for b.Loop() {
				out, err := ex.Forward(blob, batch)
				if err != nil {
					b.Fatal(err)
				}
				if len(out) != batch {
					b.Fatalf("got %d vectors, want %d", len(out), batch)
				}
				n++
			}
			b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "images/s")
			b.ReportMetric(float64(ex.BatchSize()), "run-batch")
			b.ReportMetric(float64(NumThreads()), "threads")
		})
	}
}

// benchEnvInts reads a comma-separated list of positive integers.
func benchEnvInts(b *testing.B, name string, def []int) []int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want positive integers, e.g. 1,8,32", name, s)
		}
		out = append(out, n)
	}
	return out
}
