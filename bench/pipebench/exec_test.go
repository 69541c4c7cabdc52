package main

import (
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("median reordered its input: %v", c.in)
			}
		}
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"bench/out/bin/pipeline", "extract", "--list", "a b.csv", "--layer", "it's", ""})
	want := `bench/out/bin/pipeline extract --list 'a b.csv' --layer 'it'\''s' ''`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRepPlan(t *testing.T) {
	for _, c := range []struct{ batch, min, want int }{{1, 8, 8}, {8, 8, 1}, {32, 8, 1}, {3, 8, 3}, {1, 1, 1}} {
		if got := repPlan(c.batch, c.min); got != c.want {
			t.Errorf("repPlan(%d, %d) = %d, want %d", c.batch, c.min, got, c.want)
		}
	}
}

func TestNetReport_ComputeRatios(t *testing.T) {
	nr := &NetReport{Cost: &Cost{GFLOP: 30}, PeerCost: &Cost{GFLOP: 40}}
	nr.Forward = []*ForwardRun{
		{ForwardResult: ForwardResult{RequestedBatch: 1, ImagesPerSec: 4, Engine: "onednn", Precision: "fp32"}},
		{ForwardResult: ForwardResult{RequestedBatch: 8, ImagesPerSec: 5, Engine: "onednn", Precision: "fp32"}},
		{ForwardResult: ForwardResult{RequestedBatch: 8, ImagesPerSec: 12, Engine: "onednn", Precision: "bf16"}},
	}
	nr.Torch = &TorchNet{Results: []TorchResult{
		{Mode: "eager", Batch: 8, ImagesPerSec: 1.5},
		{Mode: "torchscript", Batch: 8, ImagesPerSec: 2},
		{Mode: "bf16", Batch: 32, ImagesPerSec: 6},
	}}
	e := &E2E{Engine: "onednn", Precision: "fp32", RequestedBatch: 8}
	e.Summary.ImagesPerSec = 4
	e16 := &E2E{Engine: "onednn", Precision: "bf16", RequestedBatch: 8}
	e16.Summary.ImagesPerSec = 9
	nr.E2E = []*E2E{e, e16}
	nr.computeRatios(&GEMMResult{GFLOPS: 300})
	want := map[string]float64{
		"e2e/raw_forward onednn_fp32@b8":          4.0 / 5,
		"e2e/torch_best onednn_fp32@b8":           4.0 / 2, // the best fp32 configuration, not bf16
		"e2e/raw_forward onednn_bf16@b8":          9.0 / 12,
		"e2e/torch_best onednn_bf16@b8":           9.0 / 6,
		"raw_forward_best/torch_best onednn_fp32": 5.0 / 2,
		"raw_forward_best/torch_best onednn_bf16": 12.0 / 6,
		"raw_forward_best/roofline onednn_fp32":   5.0 / (300.0 / 30),
		"torch_best/roofline":                     2.0 / (300.0 / 40),
	}
	if len(nr.Ratios) != len(want) {
		t.Errorf("ratios %v, want the keys of %v", nr.Ratios, want)
	}
	for k, w := range want {
		if got := nr.Ratios[k].Value; math.Abs(got-w) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, got, w)
		}
	}
	if of := nr.Ratios["e2e/torch_best onednn_fp32@b8"].Of; !strings.Contains(of, "batch 8") || !strings.Contains(of, "torchscript") {
		t.Errorf("ratio description %q does not name the batch and the configuration", of)
	}
	if nr.Roofline != 10 {
		t.Errorf("roofline = %v img/s, want 10", nr.Roofline)
	}
}

func TestParseCombos(t *testing.T) {
	got, _, err := parseCombos("onednn,opencv", "fp32,bf16")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 || got[0] != (combo{"onednn", "fp32"}) || got[len(got)-1] != (combo{"opencv", "fp32"}) {
		t.Errorf("combos %v: want onednn fp32 first, opencv fp32 last, no opencv bf16", got)
	}
	if _, _, err := parseCombos("tvm", "fp32"); err == nil {
		t.Error("--engines tvm accepted")
	}
}
