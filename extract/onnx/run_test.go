package onnx

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// in is a graph input of a one-node test graph.
type in struct {
	name string
	dims []int
	data []float64
}

// runNode builds a graph with one node whose inputs are all graph inputs
// (so that Run gets them as Double tensors) and returns its outputs.
func runNode(t *testing.T, opset int64, op string, attrs []*Attribute, outputs []string, ins ...in) (map[string]*Tensor, error) {
	t.Helper()
	b := NewBuilder("test")
	b.Opset = opset
	feed := map[string]*Tensor{}
	var names []string
	for _, x := range ins {
		if x.name == "" {
			names = append(names, "")
			continue
		}
		b.Input(x.name, Dims(x.dims...)...)
		feed[x.name] = NewFloat64(x.name, x.dims, x.data)
		names = append(names, x.name)
	}
	b.Node(op, "n", names, outputs, attrs...)
	for _, o := range outputs {
		if o != "" {
			b.Output(o)
		}
	}
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return Run(m, feed)
}

func run1(t *testing.T, opset int64, op string, attrs []*Attribute, ins ...in) (*Tensor, error) {
	t.Helper()
	out, err := runNode(t, opset, op, attrs, []string{"y"}, ins...)
	if err != nil {
		return nil, err
	}
	return out["y"], nil
}

func seq(from, to float64) []float64 {
	var s []float64
	for v := from; v <= to; v++ {
		s = append(s, v)
	}
	return s
}

func neg(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = -x
	}
	return out
}

// mustOK(t)(run1(...)) fails the test on error.
func mustOK(t *testing.T) func(*Tensor, error) *Tensor {
	return func(got *Tensor, err error) *Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
}

func wantErr(t *testing.T, err error, target error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substr)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v does not wrap %v", err, target)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("error %q does not contain %q", err, substr)
	}
}

func TestRun_Conv(t *testing.T) {
	t.Run("AsymmetricPadsStrides", func(t *testing.T) {
		// X = [[1 2 3] [4 5 6] [7 8 9]] padded with a zero row on top and a
		// zero column on the right (pads = [top 1, left 0, bottom 0,
		// right 1]); W = [[1 0] [0 -1]], stride 2 down, 1 across, bias 0.5:
		//   y[oy][ox] = P[2oy][ox] - P[2oy+1][ox+1] + 0.5
		//   row 0: 0-2, 0-3, 0-0 (+0.5)   row 1: 4-8, 5-9, 6-0 (+0.5)
		got := mustOK(t)(run1(t, 11, "Conv", []*Attribute{IntsAttr("pads", 1, 0, 0, 1), IntsAttr("strides", 2, 1)},
			in{"x", []int{1, 1, 3, 3}, seq(1, 9)},
			in{"w", []int{1, 1, 2, 2}, []float64{1, 0, 0, -1}},
			in{"b", []int{1}, []float64{0.5}}))
		closeTo(t, "y", got, []int{1, 1, 2, 3}, []float64{-1.5, -2.5, 0.5, -3.5, -3.5, 6.5}, 1e-15)
	})
	t.Run("ChannelsAndBatch", func(t *testing.T) {
		// 1x1 kernels mix channels: m0 = c0 + 0.1 c1, m1 = -c0 + 2 c1;
		// the second batch item is the first negated.
		x := append(append(seq(1, 4), 10, 20, 30, 40), neg(append(seq(1, 4), 10, 20, 30, 40))...)
		got := mustOK(t)(run1(t, 11, "Conv", nil,
			in{"x", []int{2, 2, 2, 2}, x},
			in{"w", []int{2, 2, 1, 1}, []float64{1, 0.1, -1, 2}}))
		want := []float64{2, 4, 6, 8, 19, 38, 57, 76}
		closeTo(t, "y", got, []int{2, 2, 2, 2}, append(want, neg(want)...), 1e-15)
	})
	t.Run("Unsupported", func(t *testing.T) {
		x := in{"x", []int{1, 2, 3, 3}, make([]float64, 18)}
		w := in{"w", []int{2, 1, 1, 1}, []float64{1, 1}}
		_, err := run1(t, 11, "Conv", []*Attribute{IntAttr("group", 2)}, x, w)
		wantErr(t, err, ErrUnsupported, `node "n" (Conv): group 2`)
		w = in{"w", []int{1, 2, 2, 2}, make([]float64, 8)}
		_, err = run1(t, 11, "Conv", []*Attribute{IntsAttr("dilations", 2, 2)}, x, w)
		wantErr(t, err, ErrUnsupported, "dilations [2 2]")
		_, err = run1(t, 11, "Conv", []*Attribute{StringAttr("auto_pad", "SAME_UPPER")}, x, w)
		wantErr(t, err, ErrUnsupported, "auto_pad SAME_UPPER")
		_, err = run1(t, 11, "Conv", []*Attribute{IntAttr("mystery", 1)}, x, w)
		wantErr(t, err, ErrUnsupported, `attribute "mystery"`)
	})
	t.Run("BadShapes", func(t *testing.T) {
		_, err := run1(t, 11, "Conv", nil, in{"x", []int{1, 3, 2, 2}, make([]float64, 12)}, in{"w", []int{1, 2, 1, 1}, []float64{1, 1}})
		wantErr(t, err, nil, "weight [1 2 1 1] has 2 input channels, input [1 3 2 2] has 3")
		_, err = run1(t, 11, "Conv", nil, in{"x", []int{1, 1, 2, 2}, make([]float64, 4)}, in{"w", []int{1, 1, 3, 3}, make([]float64, 9)})
		wantErr(t, err, nil, "kernel 3x3 larger than padded input 2x2")
	})
}

func TestRun_Pool(t *testing.T) {
	// 3x3 input, kernel 2, stride 2, pads 1 on every side: the windows are
	// {x00}, {x01 x02}, {x10 x20}, {x11 x12 x21 x22} plus padding.
	attrs := func(extra ...*Attribute) []*Attribute {
		return append([]*Attribute{IntsAttr("kernel_shape", 2, 2), IntsAttr("strides", 2, 2), IntsAttr("pads", 1, 1, 1, 1)}, extra...)
	}
	t.Run("MaxPoolIgnoresPadding", func(t *testing.T) {
		// All values negative: zero padding would win every window.
		got := mustOK(t)(run1(t, 11, "MaxPool", attrs(), in{"x", []int{1, 1, 3, 3}, neg(seq(1, 9))}))
		closeTo(t, "y", got, []int{1, 1, 2, 2}, []float64{-1, -2, -4, -5}, 0)
	})
	t.Run("AveragePoolExcludePad", func(t *testing.T) {
		// {1}, {2 3}, {4 7}, {5 6 8 9}
		got := mustOK(t)(run1(t, 11, "AveragePool", attrs(), in{"x", []int{1, 1, 3, 3}, seq(1, 9)}))
		closeTo(t, "y", got, []int{1, 1, 2, 2}, []float64{1, 2.5, 5.5, 7}, 1e-15)
	})
	t.Run("AveragePoolIncludePad", func(t *testing.T) {
		// The same sums divided by the kernel size 4.
		got := mustOK(t)(run1(t, 11, "AveragePool", attrs(IntAttr("count_include_pad", 1)), in{"x", []int{1, 1, 3, 3}, seq(1, 9)}))
		closeTo(t, "y", got, []int{1, 1, 2, 2}, []float64{0.25, 1.25, 2.75, 7}, 1e-15)
	})
	t.Run("ChannelsStayApart", func(t *testing.T) {
		x := append(seq(1, 4), 40, 30, 20, 10)
		got := mustOK(t)(run1(t, 11, "MaxPool", []*Attribute{IntsAttr("kernel_shape", 2, 2)}, in{"x", []int{1, 2, 2, 2}, x}))
		closeTo(t, "y", got, []int{1, 2, 1, 1}, []float64{4, 40}, 0)
	})
	t.Run("Unsupported", func(t *testing.T) {
		x := in{"x", []int{1, 1, 3, 3}, seq(1, 9)}
		_, err := run1(t, 11, "MaxPool", attrs(IntAttr("ceil_mode", 1)), x)
		wantErr(t, err, ErrUnsupported, "ceil_mode 1")
		_, err = run1(t, 11, "AveragePool", []*Attribute{IntsAttr("kernel_shape", 2, 2), IntsAttr("pads", 2, 0, 0, 0)}, x)
		wantErr(t, err, ErrUnsupported, "not smaller than kernel")
		_, err = run1(t, 11, "MaxPool", nil, x)
		wantErr(t, err, nil, "no kernel_shape")
		_, err = runNode(t, 11, "MaxPool", attrs(), []string{"y", "indices"}, x)
		wantErr(t, err, ErrUnsupported, `optional output "indices"`)
	})
}

func TestRun_GlobalAveragePool(t *testing.T) {
	got := mustOK(t)(run1(t, 11, "GlobalAveragePool", nil, in{"x", []int{1, 2, 2, 2}, append(seq(1, 4), 10, 20, 30, 40)}))
	closeTo(t, "y", got, []int{1, 2, 1, 1}, []float64{2.5, 25}, 1e-15)
}

func TestRun_BatchNormalization(t *testing.T) {
	params := func(scale, bias, mean, vr []float64) []in {
		return []in{{"s", []int{2}, scale}, {"b", []int{2}, bias}, {"m", []int{2}, mean}, {"v", []int{2}, vr}}
	}
	t.Run("Formula", func(t *testing.T) {
		// eps 1: sqrt(var+eps) = [2 4].
		// c0: (1-1)/2*2+0.1, (3-1)/2*2+0.1; c1: (-2-0)/4*0.5-1, 4/4*0.5-1
		ins := append([]in{{"x", []int{1, 2, 1, 2}, []float64{1, 3, -2, 4}}}, params([]float64{2, 0.5}, []float64{0.1, -1}, []float64{1, 0}, []float64{3, 15})...)
		got := mustOK(t)(run1(t, 11, "BatchNormalization", []*Attribute{FloatAttr("epsilon", 1)}, ins...))
		closeTo(t, "y", got, []int{1, 2, 1, 2}, []float64{0.1, 2.1, -1.25, -0.5}, 1e-15)
	})
	t.Run("DefaultEpsilonIsFloat32", func(t *testing.T) {
		// The attribute is a float32: the default 1e-5 is float32(1e-5).
		ins := append([]in{{"x", []int{1, 2}, []float64{1, 1}}}, params([]float64{1, 1}, []float64{0, 0}, []float64{0, 0}, []float64{0.25, 0.25})...)
		got := mustOK(t)(run1(t, 11, "BatchNormalization", nil, ins...))
		want := 1 / math.Sqrt(0.25+float64(float32(1e-5)))
		closeTo(t, "y", got, []int{1, 2}, []float64{want, want}, 1e-16)
	})
	t.Run("Unsupported", func(t *testing.T) {
		ins := append([]in{{"x", []int{1, 2}, []float64{1, 1}}}, params([]float64{1, 1}, []float64{0, 0}, []float64{0, 0}, []float64{1, 1})...)
		_, err := run1(t, 7, "BatchNormalization", []*Attribute{IntAttr("spatial", 0)}, ins...)
		wantErr(t, err, ErrUnsupported, "spatial 0")
		_, err = runNode(t, 11, "BatchNormalization", nil, []string{"y", "mean"}, ins...)
		wantErr(t, err, ErrUnsupported, `optional output "mean"`)
		ins[1].dims, ins[1].data = []int{3}, []float64{1, 1, 1}
		_, err = run1(t, 11, "BatchNormalization", nil, ins...)
		wantErr(t, err, nil, "scale [3], want [2]")
	})
}

func TestRun_Gemm(t *testing.T) {
	// A·Bᵀ with A = [[1 2 3] [4 5 6]], B = [[1 0 -1] [2 1 0]] is
	// [[-2 4] [-2 13]].
	a := in{"a", []int{2, 3}, seq(1, 6)}
	b := in{"b", []int{2, 3}, []float64{1, 0, -1, 2, 1, 0}}
	t.Run("AlphaBetaBiasRow", func(t *testing.T) {
		got := mustOK(t)(run1(t, 11, "Gemm", []*Attribute{IntAttr("transB", 1), FloatAttr("alpha", 0.5), FloatAttr("beta", 2)},
			a, b, in{"c", []int{2}, []float64{10, 20}}))
		closeTo(t, "y", got, []int{2, 2}, []float64{-1 + 20, 2 + 40, -1 + 20, 6.5 + 40}, 1e-15)
	})
	t.Run("TransAColumnBias", func(t *testing.T) {
		at := in{"a", []int{3, 2}, []float64{1, 4, 2, 5, 3, 6}}
		bt := in{"b", []int{3, 2}, []float64{1, 2, 0, 1, -1, 0}}
		got := mustOK(t)(run1(t, 11, "Gemm", []*Attribute{IntAttr("transA", 1)}, at, bt, in{"c", []int{2, 1}, []float64{1, 2}}))
		closeTo(t, "y", got, []int{2, 2}, []float64{-1, 5, 0, 15}, 1e-15)
	})
	t.Run("ScalarBiasNoBias", func(t *testing.T) {
		got := mustOK(t)(run1(t, 11, "Gemm", []*Attribute{IntAttr("transB", 1)}, a, b, in{"c", []int{}, []float64{3}}))
		closeTo(t, "y", got, []int{2, 2}, []float64{1, 7, 1, 16}, 1e-15)
		got = mustOK(t)(run1(t, 11, "Gemm", []*Attribute{IntAttr("transB", 1)}, a, b))
		closeTo(t, "y", got, []int{2, 2}, []float64{-2, 4, -2, 13}, 1e-15)
	})
	t.Run("BadShapes", func(t *testing.T) {
		_, err := run1(t, 11, "Gemm", nil, a, b)
		wantErr(t, err, nil, "do not multiply")
		_, err = run1(t, 11, "Gemm", []*Attribute{IntAttr("transB", 1)}, a, b, in{"c", []int{3}, []float64{1, 2, 3}})
		wantErr(t, err, nil, "C [3] does not broadcast to [2 2]")
	})
}

func TestRun_Add(t *testing.T) {
	t.Run("Equal", func(t *testing.T) {
		got := mustOK(t)(run1(t, 11, "Add", nil, in{"a", []int{1, 3}, []float64{1, 2, 3}}, in{"b", []int{1, 3}, []float64{0.5, -2, 7}}))
		closeTo(t, "y", got, []int{1, 3}, []float64{1.5, 0, 10}, 0)
	})
	t.Run("BiasLike", func(t *testing.T) {
		got := mustOK(t)(run1(t, 11, "Add", nil, in{"a", []int{2, 3}, seq(1, 6)}, in{"b", []int{3}, []float64{10, 20, 30}}))
		closeTo(t, "y", got, []int{2, 3}, []float64{11, 22, 33, 14, 25, 36}, 0)
		got = mustOK(t)(run1(t, 11, "Add", nil, in{"a", []int{1, 2, 2, 1}, []float64{1, 2, 3, 4}}, in{"b", []int{2, 1, 1}, []float64{100, 200}}))
		closeTo(t, "y", got, []int{1, 2, 2, 1}, []float64{101, 102, 203, 204}, 0)
	})
	t.Run("BothSides", func(t *testing.T) {
		got := mustOK(t)(run1(t, 11, "Add", nil, in{"a", []int{2, 1}, []float64{1, 2}}, in{"b", []int{1, 3}, []float64{10, 20, 30}}))
		closeTo(t, "y", got, []int{2, 3}, []float64{11, 21, 31, 12, 22, 32}, 0)
	})
	t.Run("Incompatible", func(t *testing.T) {
		_, err := run1(t, 11, "Add", nil, in{"a", []int{2, 3}, seq(1, 6)}, in{"b", []int{2}, []float64{1, 2}})
		wantErr(t, err, nil, "shapes [2 3] and [2] do not broadcast")
	})
}

func TestRun_Flatten(t *testing.T) {
	x := in{"x", []int{2, 3, 4}, seq(1, 24)}
	for _, tc := range []struct {
		opset, axis int64
		want        []int
	}{{11, 0, []int{1, 24}}, {11, 2, []int{6, 4}}, {11, 3, []int{24, 1}}, {11, -1, []int{6, 4}}, {9, 1, []int{2, 12}}} {
		got := mustOK(t)(run1(t, tc.opset, "Flatten", []*Attribute{IntAttr("axis", tc.axis)}, x))
		closeTo(t, "y", got, tc.want, seq(1, 24), 0)
	}
	got := mustOK(t)(run1(t, 7, "Flatten", nil, in{"x", []int{2, 1, 2, 1}, seq(1, 4)}))
	closeTo(t, "default axis 1", got, []int{2, 2}, seq(1, 4), 0)
	_, err := run1(t, 9, "Flatten", []*Attribute{IntAttr("axis", -1)}, x)
	wantErr(t, err, nil, "negative axis -1 needs opset 11")
}

func TestRun_Softmax(t *testing.T) {
	x := in{"x", []int{1, 2, 2}, []float64{1, 2, 3, 4}}
	e := math.Exp
	t.Run("Opset11Coerces2D", func(t *testing.T) {
		// axis 1 (the default): the input is viewed as [1, 4] and all four
		// values are normalised together.
		s := e(1) + e(2) + e(3) + e(4)
		want := []float64{e(1) / s, e(2) / s, e(3) / s, e(4) / s}
		got := mustOK(t)(run1(t, 11, "Softmax", nil, x))
		closeTo(t, "default", got, []int{1, 2, 2}, want, 1e-15)
		got = mustOK(t)(run1(t, 11, "Softmax", []*Attribute{IntAttr("axis", 1)}, x))
		closeTo(t, "axis 1", got, []int{1, 2, 2}, want, 1e-15)
	})
	t.Run("Opset13SingleAxis", func(t *testing.T) {
		// axis 1: pairs (1,3) and (2,4) down the axis.
		got := mustOK(t)(run1(t, 13, "Softmax", []*Attribute{IntAttr("axis", 1)}, x))
		closeTo(t, "axis 1", got, []int{1, 2, 2},
			[]float64{e(1) / (e(1) + e(3)), e(2) / (e(2) + e(4)), e(3) / (e(1) + e(3)), e(4) / (e(2) + e(4))}, 1e-15)
		// default axis -1: pairs (1,2) and (3,4).
		got = mustOK(t)(run1(t, 13, "Softmax", nil, x))
		closeTo(t, "default", got, []int{1, 2, 2},
			[]float64{e(1) / (e(1) + e(2)), e(2) / (e(1) + e(2)), e(3) / (e(3) + e(4)), e(4) / (e(3) + e(4))}, 1e-15)
	})
	t.Run("AxisOutOfRange", func(t *testing.T) {
		_, err := run1(t, 11, "Softmax", []*Attribute{IntAttr("axis", 3)}, x)
		wantErr(t, err, nil, "axis 3 out of range for [1 2 2]")
	})
	t.Run("LargeValues", func(t *testing.T) {
		got := mustOK(t)(run1(t, 11, "Softmax", nil, in{"x", []int{1, 2}, []float64{1000, 1000}}))
		closeTo(t, "y", got, []int{1, 2}, []float64{0.5, 0.5}, 1e-15)
	})
}

func TestRun_Reshape(t *testing.T) {
	x := in{"x", []int{2, 3, 4}, seq(1, 24)}
	for _, tc := range []struct {
		shape []float64
		want  []int
	}{{[]float64{0, -1}, []int{2, 12}}, {[]float64{4, 0, -1}, []int{4, 3, 2}}, {[]float64{24}, []int{24}}} {
		got := mustOK(t)(run1(t, 11, "Reshape", nil, x, in{"s", []int{len(tc.shape)}, tc.shape}))
		closeTo(t, "y", got, tc.want, seq(1, 24), 0)
	}
	for _, tc := range []struct {
		shape []float64
		err   string
	}{{[]float64{-1, 4, 0}, "cannot reshape [2 3 4] to [-1 4 0]"}, {[]float64{-1, -1}, "more than one -1"}, {[]float64{5, 5}, "cannot reshape [2 3 4] (24 values)"}} {
		_, err := run1(t, 11, "Reshape", nil, x, in{"s", []int{len(tc.shape)}, tc.shape})
		wantErr(t, err, nil, tc.err)
	}
	got := mustOK(t)(run1(t, 4, "Reshape", []*Attribute{IntsAttr("shape", 0, -1)}, x))
	closeTo(t, "opset 4 attribute", got, []int{2, 12}, seq(1, 24), 0)
}

func TestRun_PassThrough(t *testing.T) {
	x := in{"x", []int{1, 3}, []float64{-1, 0, 2}}
	for _, op := range []string{"Identity", "Dropout"} {
		got := mustOK(t)(run1(t, 11, op, nil, x))
		closeTo(t, op, got, []int{1, 3}, x.data, 0)
	}
	got := mustOK(t)(run1(t, 11, "Relu", nil, x))
	closeTo(t, "Relu", got, []int{1, 3}, []float64{0, 0, 2}, 0)
	out, err := runNode(t, 11, "Dropout", []*Attribute{FloatAttr("ratio", 0.5)}, []string{"y", "mask"}, x)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "mask", out["mask"], []int{1, 3}, []float64{1, 1, 1}, 0)
	_, err = run1(t, 12, "Dropout", nil, x, in{"ratio", []int{}, []float64{0.5}}, in{"training", []int{}, []float64{1}})
	wantErr(t, err, ErrUnsupported, "training_mode true")
	got = mustOK(t)(run1(t, 12, "Dropout", nil, x, in{"ratio", []int{}, []float64{0.5}}, in{"training", []int{}, []float64{0}}))
	closeTo(t, "training_mode false", got, []int{1, 3}, x.data, 0)
	_, err = run1(t, 6, "Dropout", []*Attribute{IntAttr("is_test", 0)}, x)
	wantErr(t, err, ErrUnsupported, "is_test 0")
	_, err = run1(t, 11, "Relu", []*Attribute{FloatAttr("alpha", 0.1)}, x)
	wantErr(t, err, ErrUnsupported, `node "n" (Relu): attribute "alpha"`)
}

func TestRun_Constant(t *testing.T) {
	b := NewBuilder("c")
	x := b.Input("x", Dims(2)...)
	b.Node("Constant", "k", nil, []string{"k"}, TensorAttr("value", NewFloat32("", []int{2}, []float32{1.5, -1})))
	b.Add("add", x, "k", "y")
	b.Output("y")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Run(m, map[string]*Tensor{"x": NewFloat64("x", []int{2}, []float64{1, 2})})
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "y", out["y"], []int{2}, []float64{2.5, 1}, 0)
}

// branchy is x → relu → r → relu2 → out, and x → an LSTM that Run does not
// implement → bad.
func branchy(t *testing.T) *Model {
	t.Helper()
	b := NewBuilder("g")
	x := b.Input("data", Dim{Param: "N"}, Dim{Value: 2})
	b.Relu("/relu/Relu", x, "/relu/Relu_output_0")
	b.Relu("relu2", "/relu/Relu_output_0", "out")
	b.Node("LSTM", "lstm1", []string{x}, []string{"bad"})
	b.Output("out")
	b.Output("bad")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRun(t *testing.T) {
	feed := map[string]*Tensor{"data": NewFloat32("data", []int{1, 2}, []float32{-1, 3})}
	t.Run("OnlyNeededNodes", func(t *testing.T) {
		out, err := Run(branchy(t), feed, "out", "/relu/Relu_output_0")
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 {
			t.Errorf("got %d tensors, want the 2 requested", len(out))
		}
		closeTo(t, "out", out["out"], []int{1, 2}, []float64{0, 3}, 0)
		closeTo(t, "relu", out["/relu/Relu_output_0"], []int{1, 2}, []float64{0, 3}, 0)
	})
	t.Run("ErrUnsupported", func(t *testing.T) {
		_, err := Run(branchy(t), feed)
		wantErr(t, err, ErrUnsupported, `node "lstm1" (LSTM)`)
	})
	t.Run("ErrUnknownTensor", func(t *testing.T) {
		_, err := Run(branchy(t), feed, "nope")
		wantErr(t, err, ErrUnknownTensor, `tensor "nope"`)
		_, err = Run(branchy(t), feed, "/relu/Relu")
		wantErr(t, err, ErrUnknownTensor, `that is a node name; its output is "/relu/Relu_output_0"`)
		_, err = Run(branchy(t), map[string]*Tensor{"image": feed["data"]}, "out")
		wantErr(t, err, ErrUnknownTensor, `"image" is not a graph input (inputs: data)`)
	})
	t.Run("MissingInput", func(t *testing.T) {
		_, err := Run(branchy(t), nil, "out")
		wantErr(t, err, nil, `graph input "data" not given`)
	})
	t.Run("InitializerOverride", func(t *testing.T) {
		// IR 3 files list weights as inputs; feeding one replaces it.
		b := NewBuilder("g")
		b.InitializersAsInputs = true
		x := b.Input("x", Dims(1, 2)...)
		b.Gemm("fc", x, "y", NewFloat32("w", []int{1, 2}, []float32{1, 1}), nil, GemmAttrs{TransB: true})
		b.Output("y")
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		in := map[string]*Tensor{"x": NewFloat64("x", []int{1, 2}, []float64{2, 3})}
		out, err := Run(m, in)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "y", out["y"], []int{1, 1}, []float64{5}, 0)
		in["w"] = NewFloat64("w", []int{1, 2}, []float64{10, 0})
		out, err = Run(m, in)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "y overridden", out["y"], []int{1, 1}, []float64{20}, 0)
	})
	t.Run("NoPayload", func(t *testing.T) {
		m, err := OpsModel()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "ops.onnx")
		if err := WriteFile(path, m); err != nil {
			t.Fatal(err)
		}
		g, err := ReadGraph(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Run(g, map[string]*Tensor{"data": NewFloat64("data", []int{1, 3, 12, 12}, make([]float64, 432))})
		wantErr(t, err, nil, `node "conv" (Conv): initializer "conv.weight" has no data (model read with ReadGraph?)`)
	})
}
