package onnx

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

var crosscheck = flag.String("crosscheck", "", "directory of *.ref.json files written by testdata/crosscheck.py")

type refTensor struct {
	Dims []int     `json:"dims"`
	Data []float64 `json:"data"`
}

// TestCrossCheck compares Run with PyTorch, tensor by tensor. It needs
// the files testdata/crosscheck.py writes, so it only runs when asked:
//
//	python3 extract/onnx/testdata/crosscheck.py /tmp/xc --full
//	go test ./extract/onnx -run TestCrossCheck -crosscheck /tmp/xc -v
func TestCrossCheck(t *testing.T) {
	if *crosscheck == "" {
		t.Skip("no -crosscheck directory")
	}
	files, err := filepath.Glob(filepath.Join(*crosscheck, "*.ref.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no *.ref.json in %s", *crosscheck)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ref struct {
				Model      string               `json:"model"`
				Input      string               `json:"input"`
				InputValue refTensor            `json:"input_value"`
				Outputs    map[string]refTensor `json:"outputs"`
			}
			if err := json.Unmarshal(raw, &ref); err != nil {
				t.Fatal(err)
			}
			m, err := ReadModel(ref.Model)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for name := range ref.Outputs {
				want = append(want, name)
			}
			sort.Strings(want)
			start := time.Now()
			got, err := Run(m, map[string]*Tensor{ref.Input: NewFloat64(ref.Input, ref.InputValue.Dims, ref.InputValue.Data)}, want...)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("Run: %v for %d nodes", time.Since(start), len(m.Graph.Nodes))
			worst, worstName := 0.0, ""
			for _, name := range want {
				r, g := ref.Outputs[name], got[name]
				if len(r.Data) != len(g.Float64) {
					t.Fatalf("%s: %v values, want %v", name, g.Dims, r.Dims)
				}
				// Error relative to the tensor's largest magnitude.
				scale, diff := 0.0, 0.0
				for i, v := range r.Data {
					scale = math.Max(scale, math.Abs(v))
					diff = math.Max(diff, math.Abs(v-g.Float64[i]))
				}
				rel := diff / math.Max(scale, 1e-300)
				if rel > worst {
					worst, worstName = rel, name
				}
				if rel > 1e-10 {
					t.Errorf("%s: max |diff| %.3g for max |value| %.3g (relative %.3g)", name, diff, scale, rel)
				}
			}
			t.Logf("%d tensors, worst relative error %.3g (%s)", len(want), worst, worstName)
		})
	}
}
