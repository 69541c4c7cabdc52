package onnx

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/models from the generators")

// modelsDir is the repository's testdata/models.
var modelsDir = filepath.Join("..", "..", "testdata", "models")

func nodeNames(m *Model) []string {
	var s []string
	for _, n := range m.Graph.Nodes {
		s = append(s, n.Name)
	}
	return s
}

// containsRun reports whether want appears in names as a contiguous run.
func containsRun(names, want []string) bool {
	for i := 0; i+len(want) <= len(names); i++ {
		if slices.Equal(names[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func mustBuild(t *testing.T) func(*Model, error) *Model {
	return func(m *Model, err error) *Model {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
}

// vgg16ZooNodes is OpenCV's layer list of the model zoo's vgg16-7.onnx as
// printed in github.com/...ImgSoh VggHelperTests.cs (OpenCV's
// "onnx_node!" prefix and its internal ".../flatten" layers removed).
var vgg16ZooNodes = strings.Fields(`
vgg0_conv0_fwd vgg0_relu0_fwd vgg0_conv1_fwd vgg0_relu1_fwd vgg0_pool0_fwd
vgg0_conv2_fwd vgg0_relu2_fwd vgg0_conv3_fwd vgg0_relu3_fwd vgg0_pool1_fwd
vgg0_conv4_fwd vgg0_relu4_fwd vgg0_conv5_fwd vgg0_relu5_fwd vgg0_conv6_fwd vgg0_relu6_fwd vgg0_pool2_fwd
vgg0_conv7_fwd vgg0_relu7_fwd vgg0_conv8_fwd vgg0_relu8_fwd vgg0_conv9_fwd vgg0_relu9_fwd vgg0_pool3_fwd
vgg0_conv10_fwd vgg0_relu10_fwd vgg0_conv11_fwd vgg0_relu11_fwd vgg0_conv12_fwd vgg0_relu12_fwd vgg0_pool4_fwd
flatten_60 vgg0_dense0_fwd vgg0_dense0_relu_fwd vgg0_dropout0_fwd
flatten_65 vgg0_dense1_fwd vgg0_dense1_relu_fwd vgg0_dropout1_fwd
flatten_70 vgg0_dense2_fwd`)

// TensorRT's layer list of resnet50-v1-12.onnx (the opset-12 re-export of
// resnet50-v1-7.onnx, same node names) from the trt-summary README, rows
// 1-36 and 141-184 without TensorRT's unnamed helper layers.
var resnet50v1ZooHead = strings.Fields(`
resnetv17_conv0_fwd resnetv17_batchnorm0_fwd resnetv17_relu0_fwd resnetv17_pool0_fwd
resnetv17_stage1_conv0_fwd resnetv17_stage1_batchnorm0_fwd resnetv17_stage1_relu0_fwd
resnetv17_stage1_conv1_fwd resnetv17_stage1_batchnorm1_fwd resnetv17_stage1_relu1_fwd
resnetv17_stage1_conv2_fwd resnetv17_stage1_batchnorm2_fwd resnetv17_stage1_conv3_fwd resnetv17_stage1_batchnorm3_fwd
resnetv17_stage1__plus0 resnetv17_stage1_activation0
resnetv17_stage1_conv4_fwd resnetv17_stage1_batchnorm4_fwd resnetv17_stage1_relu2_fwd
resnetv17_stage1_conv5_fwd resnetv17_stage1_batchnorm5_fwd resnetv17_stage1_relu3_fwd
resnetv17_stage1_conv6_fwd resnetv17_stage1_batchnorm6_fwd resnetv17_stage1__plus1 resnetv17_stage1_activation1
resnetv17_stage1_conv7_fwd resnetv17_stage1_batchnorm7_fwd resnetv17_stage1_relu4_fwd
resnetv17_stage1_conv8_fwd resnetv17_stage1_batchnorm8_fwd resnetv17_stage1_relu5_fwd
resnetv17_stage1_conv9_fwd resnetv17_stage1_batchnorm9_fwd resnetv17_stage1__plus2 resnetv17_stage1_activation2`)

var resnet50v1ZooTail = strings.Fields(`
resnetv17_stage4_conv0_fwd resnetv17_stage4_batchnorm0_fwd resnetv17_stage4_relu0_fwd
resnetv17_stage4_conv1_fwd resnetv17_stage4_batchnorm1_fwd resnetv17_stage4_relu1_fwd
resnetv17_stage4_conv2_fwd resnetv17_stage4_batchnorm2_fwd resnetv17_stage4_conv3_fwd resnetv17_stage4_batchnorm3_fwd
resnetv17_stage4__plus0 resnetv17_stage4_activation0
resnetv17_stage4_conv4_fwd resnetv17_stage4_batchnorm4_fwd resnetv17_stage4_relu2_fwd
resnetv17_stage4_conv5_fwd resnetv17_stage4_batchnorm5_fwd resnetv17_stage4_relu3_fwd
resnetv17_stage4_conv6_fwd resnetv17_stage4_batchnorm6_fwd resnetv17_stage4__plus1 resnetv17_stage4_activation1
resnetv17_stage4_conv7_fwd resnetv17_stage4_batchnorm7_fwd resnetv17_stage4_relu4_fwd
resnetv17_stage4_conv8_fwd resnetv17_stage4_batchnorm8_fwd resnetv17_stage4_relu5_fwd
resnetv17_stage4_conv9_fwd resnetv17_stage4_batchnorm9_fwd resnetv17_stage4__plus2 resnetv17_stage4_activation2
resnetv17_pool1_fwd flatten_473 resnetv17_dense0_fwd`)

func TestVGG_Zoo(t *testing.T) {
	m := mustBuild(t)(VGG(Options{WidthDiv: 64}))
	if got := nodeNames(m); !slices.Equal(got, vgg16ZooNodes) {
		t.Errorf("node names differ from vgg16-7.onnx:\n got %v\nwant %v", got, vgg16ZooNodes)
	}
	for _, n := range m.Graph.Nodes {
		if n.Outputs[0] != n.Name {
			t.Errorf("node %q outputs %q; MXNet exports name the output after the node", n.Name, n.Outputs[0])
		}
	}
	if m.IRVersion != 3 || m.Opset() != 7 {
		t.Errorf("IR %d opset %d, want 3 and 7 as in vgg16-7.onnx", m.IRVersion, m.Opset())
	}
	in := m.Graph.Inputs
	if in[0].Name != "data" || fmt.Sprint(in[0].Dims) != "[1 3 224 224]" || len(in) != 1+len(m.Graph.Initializers) {
		t.Errorf("inputs start %s %v, %d inputs for %d initializers; want data [1 3 224 224] then every initializer",
			in[0].Name, in[0].Dims, len(in), len(m.Graph.Initializers))
	}
	if got := m.Graph.DataInputs(); len(got) != 1 || got[0].Name != "data" {
		t.Errorf("DataInputs = %v, want only data", got)
	}
}

func TestResNetV1_Zoo(t *testing.T) {
	m := mustBuild(t)(ResNetV1(Options{WidthDiv: 16}))
	names := nodeNames(m)
	if len(names) != 175 {
		t.Errorf("%d nodes, want 175", len(names))
	}
	if !slices.Equal(names[:len(resnet50v1ZooHead)], resnet50v1ZooHead) {
		t.Errorf("first nodes differ from resnet50-v1:\n got %v\nwant %v", names[:len(resnet50v1ZooHead)], resnet50v1ZooHead)
	}
	if !slices.Equal(names[len(names)-len(resnet50v1ZooTail):], resnet50v1ZooTail) {
		t.Errorf("last nodes differ from resnet50-v1:\n got %v\nwant %v", names[len(names)-len(resnet50v1ZooTail):], resnet50v1ZooTail)
	}
	// GluonCV v1 puts the stride on the first 1x1 convolution.
	conv := m.Graph.Node("resnetv17_stage2_conv0_fwd")
	if a := conv.Attr("strides"); fmt.Sprint(a.Ints) != "[2 2]" || fmt.Sprint(conv.Attr("kernel_shape").Ints) != "[1 1]" {
		t.Errorf("stage2 conv0: strides %v kernel %v, want [2 2] on a 1x1", a.Ints, conv.Attr("kernel_shape").Ints)
	}
}

func TestResNetV2_Zoo(t *testing.T) {
	m := mustBuild(t)(ResNetV2(Options{WidthDiv: 16}))
	names := nodeNames(m)
	// Confirmed in public listings of resnet50-v2-7.onnx: the input
	// BatchNormalization feeding conv0, stage1 conv0/conv3 and _plus0, and
	// relu1 → pool1 → flatten0_reshape0 → dense0 at the end.
	if !slices.Equal(names[:2], []string{"resnetv24_batchnorm0_fwd", "resnetv24_conv0_fwd"}) {
		t.Errorf("first nodes %v", names[:2])
	}
	tail := []string{"resnetv24_batchnorm2_fwd", "resnetv24_relu1_fwd", "resnetv24_pool1_fwd", "resnetv24_flatten0_reshape0", "resnetv24_dense0_fwd"}
	if !slices.Equal(names[len(names)-5:], tail) {
		t.Errorf("last nodes %v, want %v", names[len(names)-5:], tail)
	}
	block := []string{"resnetv24_stage1_batchnorm0_fwd", "resnetv24_stage1_activation0", "resnetv24_stage1_conv0_fwd",
		"resnetv24_stage1_batchnorm1_fwd", "resnetv24_stage1_activation1", "resnetv24_stage1_conv1_fwd",
		"resnetv24_stage1_batchnorm2_fwd", "resnetv24_stage1_activation2", "resnetv24_stage1_conv2_fwd",
		"resnetv24_stage1_conv3_fwd", "resnetv24_stage1__plus0"}
	if !containsRun(names, block) {
		t.Errorf("no first block %v in %v", block, names)
	}
	bn := m.Graph.Nodes[0]
	if bn.Inputs[0] != "data" || bn.Attr("spatial") == nil || bn.Attr("epsilon").F != 1e-5 || bn.Attr("momentum").F != 0.9 {
		t.Errorf("input BatchNormalization %+v", bn)
	}
	if got := m.Graph.Node("resnetv24_conv0_fwd").Inputs; !slices.Equal(got, []string{"resnetv24_batchnorm0_fwd", "resnetv24_conv0_weight"}) {
		t.Errorf("conv0 inputs %v", got)
	}
	// The downsample reads the pre-activated input, the stride is on 3x3.
	if got := m.Graph.Node("resnetv24_stage2_conv3_fwd"); got.Inputs[0] != "resnetv24_stage2_activation0" || fmt.Sprint(got.Attr("strides").Ints) != "[2 2]" {
		t.Errorf("stage2 downsample %+v", got)
	}
	if got := m.Graph.Node("resnetv24_stage2_conv1_fwd"); fmt.Sprint(got.Attr("strides").Ints) != "[2 2]" {
		t.Errorf("stage2 conv1 (3x3) strides %v, want [2 2]", got.Attr("strides").Ints)
	}
	if got := m.Graph.Node("resnetv24_flatten0_reshape0").Inputs[1]; got != "reshape_attr_tensor430" {
		t.Errorf("reshape shape tensor %q", got)
	}
	if _, err := ResNetV2(Options{Style: Torchvision}); err == nil || !strings.Contains(err.Error(), "torchvision has no ResNet v2") {
		t.Errorf("torchvision v2: got %v", err)
	}
}

// golden reads a listing written by testdata/torchvision_golden.py.
func golden(t *testing.T, name string) (nodes, inits []string) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "node "):
			nodes = append(nodes, line)
		case strings.HasPrefix(line, "init "):
			inits = append(inits, line)
		}
	}
	return nodes, inits
}

// listing renders a model in the golden files' format.
func listing(m *Model) (nodes, inits []string) {
	for _, n := range m.Graph.Nodes {
		var attrs []string
		for _, a := range n.Attrs {
			switch a.Type {
			case AttrFloat:
				attrs = append(attrs, fmt.Sprintf("%s=f:%08x", a.Name, math.Float32bits(a.F)))
			case AttrInt:
				attrs = append(attrs, fmt.Sprintf("%s=%d", a.Name, a.I))
			case AttrInts:
				s := strings.Trim(strings.ReplaceAll(fmt.Sprint(a.Ints), " ", ","), "[]")
				attrs = append(attrs, fmt.Sprintf("%s=%s", a.Name, s))
			}
		}
		nodes = append(nodes, strings.TrimSpace(fmt.Sprintf("node %s %s %s %s %s", n.Name, n.OpType,
			strings.Join(n.Inputs, ","), strings.Join(n.Outputs, ","), strings.Join(attrs, ";"))))
	}
	for _, t := range m.Graph.Initializers {
		inits = append(inits, fmt.Sprintf("init %s %s", t.Name, strings.Trim(strings.ReplaceAll(fmt.Sprint(t.Dims), " ", ","), "[]")))
	}
	return nodes, inits
}

func TestTorchvision_MatchesRealExport(t *testing.T) {
	for _, tc := range []struct {
		file  string
		build func(Options) (*Model, error)
	}{{"torchvision_vgg16.txt", VGG}, {"torchvision_resnet50.txt", ResNetV1}} {
		t.Run(tc.file, func(t *testing.T) {
			m := mustBuild(t)(tc.build(Options{Style: Torchvision, skeleton: true}))
			gotNodes, gotInits := listing(m)
			wantNodes, wantInits := golden(t, tc.file)
			if len(gotNodes) != len(wantNodes) {
				t.Errorf("%d nodes, want %d", len(gotNodes), len(wantNodes))
			}
			for i := range min(len(gotNodes), len(wantNodes)) {
				if gotNodes[i] != wantNodes[i] {
					t.Errorf("node %d:\n got %s\nwant %s", i, gotNodes[i], wantNodes[i])
				}
			}
			if len(gotInits) != len(wantInits) {
				t.Errorf("%d initializers, want %d", len(gotInits), len(wantInits))
			}
			for i := range min(len(gotInits), len(wantInits)) {
				if gotInits[i] != wantInits[i] {
					t.Errorf("initializer %d: got %s, want %s", i, gotInits[i], wantInits[i])
				}
			}
			in := m.Graph.Inputs
			if len(in) != 1 || in[0].Name != "data" || fmt.Sprint(in[0].Dims) != "[N 3 224 224]" {
				t.Errorf("inputs %v", in)
			}
		})
	}
}

func TestShapes(t *testing.T) {
	t.Run("FullSizeZoo", func(t *testing.T) {
		vgg := mustBuild(t)(VGG(Options{skeleton: true}))
		rn := mustBuild(t)(ResNetV1(Options{skeleton: true}))
		v2 := mustBuild(t)(ResNetV2(Options{skeleton: true}))
		v2.Graph.Initializer("reshape_attr_tensor430").Int64 = []int64{0, -1} // skeleton: data not drawn
		for _, tc := range []struct {
			m      *Model
			tensor string
			want   string
		}{
			{vgg, "vgg0_pool4_fwd", "[1 512 7 7]"},
			{vgg, "flatten_60", "[1 25088]"},
			{vgg, "vgg0_dense0_weight", "[4096 25088]"},
			{vgg, "vgg0_dense2_fwd", "[1 1000]"},
			// Shapes printed by trt-summary for resnet50-v1-12.onnx.
			{rn, "resnetv17_conv0_fwd", "[1 64 112 112]"},
			{rn, "resnetv17_pool0_fwd", "[1 64 56 56]"},
			{rn, "resnetv17_stage1_conv2_fwd", "[1 256 56 56]"},
			{rn, "resnetv17_stage2_conv0_fwd", "[1 128 28 28]"},
			{rn, "resnetv17_stage3_conv2_fwd", "[1 1024 14 14]"},
			{rn, "resnetv17_stage4_conv0_fwd", "[1 512 7 7]"},
			{rn, "resnetv17_stage4__plus2", "[1 2048 7 7]"},
			{rn, "resnetv17_pool1_fwd", "[1 2048 1 1]"},
			{rn, "flatten_473", "[1 2048]"},
			{rn, "resnetv17_dense0_fwd", "[1 1000]"},
			{v2, "resnetv24_stage1_conv3_fwd", "[1 256 56 56]"},
			{v2, "resnetv24_stage4__plus2", "[1 2048 7 7]"},
			{v2, "resnetv24_flatten0_reshape0", "[1 2048]"},
		} {
			shapes, err := Shapes(tc.m, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(shapes[tc.tensor]); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.tensor, got, tc.want)
			}
		}
	})
	t.Run("DynamicBatch", func(t *testing.T) {
		m := mustBuild(t)(ResNetV1(Options{Style: Torchvision, skeleton: true}))
		if _, err := Shapes(m, nil); err == nil || !strings.Contains(err.Error(), `graph input "data" has dims [N 3 224 224]; give them in inputDims`) {
			t.Errorf("got %v", err)
		}
		shapes, err := Shapes(m, map[string][]int{"data": {8, 3, 224, 224}})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(shapes["/layer4/layer4.2/relu_2/Relu_output_0"]); got != "[8 2048 7 7]" {
			t.Errorf("layer4 output %s", got)
		}
		if got := fmt.Sprint(shapes["output"]); got != "[8 1000]" {
			t.Errorf("output %s", got)
		}
	})
	t.Run("AgreesWithRun", func(t *testing.T) {
		for _, s := range SmallModels() {
			m := mustBuild(t)(s.Build())
			shapes, err := Shapes(m, map[string][]int{s.Input: s.Dims})
			if err != nil {
				t.Fatal(err)
			}
			out, err := Run(m, map[string]*Tensor{s.Input: randomInput(s.Dims, 1)})
			if err != nil {
				t.Fatal(err)
			}
			for name, v := range out {
				if !slices.Equal(shapes[name], v.Dims) {
					t.Errorf("%s %s: Shapes %v, Run %v", s.File, name, shapes[name], v.Dims)
				}
			}
		}
	})
}

func randomInput(dims []int, seed uint64) *Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	n, _ := numElements(dims)
	data := make([]float64, n)
	for i := range data {
		data[i] = r.NormFloat64()
	}
	return NewFloat64("data", dims, data)
}

func TestGenerators_Deterministic(t *testing.T) {
	for name, f := range map[string]func(Options) (*Model, error){"vgg": VGG, "v1": ResNetV1, "v2": ResNetV2} {
		o := Options{InputSize: 32, WidthDiv: 32, Hidden: 16, Classes: 5, Seed: 9}
		a, _ := Marshal(mustBuild(t)(f(o)))
		b, _ := Marshal(mustBuild(t)(f(o)))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: same options, different bytes", name)
		}
		o.Seed = 10
		c, _ := Marshal(mustBuild(t)(f(o)))
		if bytes.Equal(a, c) {
			t.Errorf("%s: different seeds, same bytes", name)
		}
	}
}

func TestGenerators_WeightDistributions(t *testing.T) {
	m := mustBuild(t)(ResNetV1(Options{WidthDiv: 2, InputSize: 64, Seed: 3}))
	blocks := 16.0
	branchLast := branchLastConvs(m)
	if len(branchLast) != 16 {
		t.Fatalf("%d residual branches, want 16", len(branchLast))
	}
	for _, w := range m.Graph.Initializers {
		v := w.Float32
		mean, sq := 0.0, 0.0
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range v {
			mean += float64(x)
			sq += float64(x) * float64(x)
			lo, hi = math.Min(lo, float64(x)), math.Max(hi, float64(x))
		}
		mean /= float64(len(v))
		std := math.Sqrt(sq/float64(len(v)) - mean*mean)
		name := w.Name
		switch {
		case strings.HasSuffix(name, "_weight") && len(w.Dims) == 4 && len(v) >= 20000:
			want := math.Sqrt(2 / float64(w.Dims[1]*w.Dims[2]*w.Dims[3]))
			if w.Dims[1] == 3 {
				want *= math.Sqrt(0.5) // the stem reads the image, no ReLU
			}
			if branchLast[name] {
				want /= math.Sqrt(blocks)
			}
			if math.Abs(std/want-1) > 0.03 || math.Abs(mean) > 4*want/math.Sqrt(float64(len(v))) {
				t.Errorf("%s: mean %.3g std %.4g, want 0 and He std %.4g", name, mean, std, want)
			}
		case strings.HasSuffix(name, "_bias"):
			if lo < -0.1 || hi > 0.1 || slices.Contains(v, 0) || len(v) > 50 && std < 0.04 {
				t.Errorf("%s: range [%g, %g] std %g, want non-zero uniform ±0.1", name, lo, hi, std)
			}
		case strings.HasSuffix(name, "_gamma"), strings.HasSuffix(name, "_running_var"):
			if lo < 0.5 || hi > 1.5 {
				t.Errorf("%s: range [%g, %g], want within [0.5, 1.5]", name, lo, hi)
			}
		case strings.HasSuffix(name, "_beta"), strings.HasSuffix(name, "_running_mean"):
			if lo < -0.1 || hi > 0.1 {
				t.Errorf("%s: range [%g, %g], want within ±0.1", name, lo, hi)
			}
		}
	}
}

// branchLastConvs returns the weights of the last convolution of every
// residual branch: Add's first input is the branch's BatchNormalization,
// which reads that convolution.
func branchLastConvs(m *Model) map[string]bool {
	out := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Add" {
			bn := m.Graph.Producer(n.Inputs[0])
			conv := m.Graph.Producer(bn.Inputs[0])
			out[conv.Inputs[1]] = true
		}
	}
	return out
}

func TestGenerators_ActivationsStayO1(t *testing.T) {
	// Full depth (VGG-16's 13 convolutions, ResNet-50's 16 blocks) at
	// reduced width: every activation's RMS stays within [0.1, 10].
	for _, tc := range []struct {
		name  string
		build func(Options) (*Model, error)
		style Style
	}{{"vgg zoo", VGG, Zoo}, {"v1 zoo", ResNetV1, Zoo}, {"v1 torchvision", ResNetV1, Torchvision}, {"v2 zoo", ResNetV2, Zoo}} {
		o := Options{Style: tc.style, InputSize: 64, WidthDiv: 4, Hidden: 256, Seed: 11}
		m := mustBuild(t)(tc.build(o))
		out, err := Run(m, map[string]*Tensor{"data": randomInput([]int{1, 3, 64, 64}, 2)})
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range out {
			sq := 0.0
			for _, x := range v.Float64 {
				sq += x * x
			}
			if rms := math.Sqrt(sq / float64(len(v.Float64))); !(rms >= 0.1 && rms <= 10) {
				t.Errorf("%s: %s rms %.3g", tc.name, name, rms)
			}
		}
	}
}

func TestSmallModels(t *testing.T) {
	if *update {
		if err := WriteSmallModels(modelsDir); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if err := WriteSmallModels(dir); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range SmallModels() {
		t.Run(s.File, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, s.File))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(modelsDir, s.File))
			if err != nil {
				t.Fatalf("%v (run go test ./extract/onnx -run TestSmallModels -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what the generator writes (run go test ./extract/onnx -run TestSmallModels -update)", s.File)
			}
			total += len(got)
			if len(got) > 200<<10 {
				t.Errorf("%s is %d bytes, budget 200 KB", s.File, len(got))
			}
			m, err := ReadModel(filepath.Join(modelsDir, s.File))
			if err != nil {
				t.Fatal(err)
			}
			out, err := Run(m, map[string]*Tensor{s.Input: randomInput(s.Dims, 3)}, s.Output)
			if err != nil {
				t.Fatal(err)
			}
			if got := out[s.Output]; got == nil || got.Dims[0] != 1 {
				t.Errorf("output %s: %v", s.Output, got)
			}
		})
	}
	if total > 1<<20 {
		t.Errorf("committed models total %d bytes, budget 1 MB", total)
	}
}

func TestReadGraph_FullSize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100 MB model")
	}
	m := mustBuild(t)(ResNetV1(Options{Seed: 1}))
	path := filepath.Join(t.TempDir(), "resnet50-v1.onnx")
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	g, err := ReadGraph(path)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("ReadGraph of %d MB: %v, %d KB allocated", st.Size()>>20, elapsed, alloc>>10)
	if alloc > 8<<20 {
		t.Errorf("ReadGraph allocated %d MB for a %d MB file; payloads must be skipped", alloc>>20, st.Size()>>20)
	}
	if !reflect.DeepEqual(g.Graph.Nodes, m.Graph.Nodes) {
		t.Errorf("nodes differ")
	}
	if !reflect.DeepEqual(g.Graph.Inputs, m.Graph.Inputs) || !reflect.DeepEqual(g.Graph.Outputs, m.Graph.Outputs) {
		t.Errorf("inputs or outputs differ")
	}
	if len(g.Graph.Initializers) != len(m.Graph.Initializers) {
		t.Fatalf("%d initializers, want %d", len(g.Graph.Initializers), len(m.Graph.Initializers))
	}
	for i, w := range g.Graph.Initializers {
		want := m.Graph.Initializers[i]
		if w.Name != want.Name || !slices.Equal(w.Dims, want.Dims) || w.DataType != want.DataType || w.HasData() {
			t.Errorf("initializer %d: %s %v %v data %v, want %s %v %v without data", i, w.Name, w.Dims, w.DataType, w.HasData(), want.Name, want.Dims, want.DataType)
		}
	}
	if w := g.Graph.Initializer("resnetv17_dense0_weight"); w == nil || fmt.Sprint(w.Dims) != "[1000 2048]" {
		t.Errorf("dense0 weight %v", w)
	}
	full, err := ReadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(full, m) {
		t.Errorf("ReadModel differs from the model written")
	}
}

func TestOptions_Softmax(t *testing.T) {
	for _, tc := range []struct {
		style     Style
		build     func(Options) (*Model, error)
		node, out string
		logits    string
	}{
		{Zoo, VGG, "prob", "prob", "vgg0_dense2_fwd"},
		{Torchvision, VGG, "/Softmax", "output", "/classifier/classifier.6/Gemm_output_0"},
		{Torchvision, ResNetV1, "/Softmax", "output", "/fc/Gemm_output_0"},
		{Zoo, ResNetV2, "prob", "prob", "resnetv24_dense0_fwd"},
	} {
		o := Options{Style: tc.style, InputSize: 32, WidthDiv: 16, Hidden: 16, Classes: 7, Blocks: []int{1, 1}, Softmax: true}
		m := mustBuild(t)(tc.build(o))
		last := m.Graph.Nodes[len(m.Graph.Nodes)-1]
		if last.Name != tc.node || last.OpType != "Softmax" || last.Outputs[0] != tc.out || last.Inputs[0] != tc.logits {
			t.Errorf("%v: last node %+v, want Softmax %s(%s) -> %s", tc.style, last, tc.node, tc.logits, tc.out)
		}
		out, err := Run(m, map[string]*Tensor{"data": randomInput([]int{1, 3, 32, 32}, 4)}, tc.out)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, p := range out[tc.out].Float64 {
			sum += p
		}
		if math.Abs(sum-1) > 1e-12 || len(out[tc.out].Float64) != 7 {
			t.Errorf("%v: %d probabilities summing to %v", tc.style, len(out[tc.out].Float64), sum)
		}
	}
}

func TestOptions_Invalid(t *testing.T) {
	for _, tc := range []struct {
		build func(Options) (*Model, error)
		o     Options
		want  string
	}{
		{VGG, Options{InputSize: 40}, "vgg: input size 40 is not a multiple of 32"},
		{VGG, Options{Blocks: []int{1, 1, 1, 1, 1, 1}}, "vgg: 6 blocks, at most 5"},
		{VGG, Options{Blocks: []int{2, 0}}, "every entry must be at least 1"},
		{ResNetV1, Options{Blocks: []int{1, 1, 1, 1, 1}}, "resnet v1: 5 stages, at most 4"},
		{ResNetV1, Options{InputSize: 30}, "input size 30 is not a multiple of 4"},
		{ResNetV1, Options{Style: 7}, "unknown style Style(7)"},
		{ResNetV2, Options{WidthDiv: -1}, "sizes must be positive"},
	} {
		_, err := tc.build(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
}
