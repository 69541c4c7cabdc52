package testutil

import (
	"path/filepath"
	"testing"

	"pipeline/extract/onnx"
)

// SigmoidModel writes dir/sigmoid.onnx, a side x side input through a 3x3
// convolution, then Sigmoid (an operator the oneDNN engine lacks and
// OpenCV has), then a global average pool ("gap", 4 channels), and returns
// its path: the graph for the engine-fallback tests of extract and the CLI.
func SigmoidModel(t testing.TB, dir string, side int) string {
	t.Helper()
	w := make([]float32, 4*3*3*3)
	for i := range w {
		w[i] = float32(i%5-2) * 0.1
	}
	b := onnx.NewBuilder("sigmoid")
	x := b.Input("data", onnx.Dim{Param: "N"}, onnx.Dim{Value: 3}, onnx.Dim{Value: int64(side)}, onnx.Dim{Value: int64(side)})
	x = b.Conv("conv", x, "conv_out", onnx.NewFloat32("w", []int{4, 3, 3, 3}, w), nil, onnx.ConvAttrs{Pads: []int{1, 1, 1, 1}})
	s := b.Node("Sigmoid", "sig", []string{x}, []string{"sig_out"})
	y := b.GlobalAveragePool("gap", s.Outputs[0], "gap_out")
	b.Output(y, onnx.Dim{Param: "N"}, onnx.Dim{Value: 4}, onnx.Dim{Value: 1}, onnx.Dim{Value: 1})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sigmoid.onnx")
	if err := onnx.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}
