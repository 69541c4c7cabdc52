package extract

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
)

// testModel is a committed test model with the preset its test uses.
type testModel struct {
	file   string
	preset string
	// aliases: alias → ONNX node name it must resolve to. These are the
	// real exporters' names (model zoo MXNet files, torchvision exports),
	// written down from those files, not read from our alias code.
	aliases map[string]string
}

var testModels = []testModel{
	{"vgg-zoo-tiny.onnx", "caffe", map[string]string{
		"block1_pool": "vgg0_pool0_fwd", "block2_pool": "vgg0_pool1_fwd", "block3_pool": "vgg0_pool2_fwd",
		"flatten": "flatten_34", "fc1": "vgg0_dense0_relu_fwd", "fc2": "vgg0_dense1_relu_fwd", "predictions": "vgg0_dense2_fwd",
	}},
	{"vgg-torch-tiny.onnx", "torch", map[string]string{
		"block1_pool": "/features/features.4/MaxPool", "block2_pool": "/features/features.9/MaxPool",
		"block3_pool": "/features/features.16/MaxPool", "flatten": "/Flatten", "fc1": "/classifier/classifier.1/Relu",
		"fc2": "/classifier/classifier.4/Relu", "predictions": "/classifier/classifier.6/Gemm",
	}},
	{"resnet-v1-zoo-tiny.onnx", "tf", map[string]string{
		"conv1_relu": "resnetv17_relu0_fwd", "pool1_pool": "resnetv17_pool0_fwd",
		"conv2_block1_out": "resnetv17_stage1_activation0", "conv3_block1_out": "resnetv17_stage2_activation0",
		"conv3_block2_out": "resnetv17_stage2_activation1", "conv4_block1_out": "resnetv17_stage3_activation0",
		"avg_pool": "resnetv17_pool1_fwd", "predictions": "resnetv17_dense0_fwd",
	}},
	{"resnet-v1-torch-tiny.onnx", "torch", map[string]string{
		"conv1_relu": "/relu/Relu", "pool1_pool": "/maxpool/MaxPool",
		"conv2_block1_out": "/layer1/layer1.0/relu_2/Relu", "conv3_block1_out": "/layer2/layer2.0/relu_2/Relu",
		"conv3_block2_out": "/layer2/layer2.1/relu_2/Relu", "conv4_block1_out": "/layer3/layer3.0/relu_2/Relu",
		"avg_pool": "/avgpool/GlobalAveragePool", "predictions": "/fc/Gemm",
	}},
	{"resnet-v2-zoo-tiny.onnx", "caffe", map[string]string{
		"conv1_relu": "resnetv24_relu0_fwd", "pool1_pool": "resnetv24_pool0_fwd",
		"conv2_block1_out": "resnetv24_stage1__plus0", "conv3_block1_out": "resnetv24_stage2__plus0",
		"conv3_block2_out": "resnetv24_stage2__plus1", "conv4_block1_out": "resnetv24_stage3__plus0",
		"post_relu": "resnetv24_relu1_fwd", "avg_pool": "resnetv24_pool1_fwd", "predictions": "resnetv24_dense0_fwd",
	}},
}

func modelPath(file string) string { return filepath.Join("..", "testdata", "models", file) }

// loadTestModel returns the Model for a committed test model, its ONNX
// graph with weights, and its input size.
func loadTestModel(t *testing.T, file, preset string) (Model, *onnx.Model) {
	t.Helper()
	om, err := onnx.ReadModel(modelPath(file))
	if err != nil {
		t.Fatal(err)
	}
	in := om.Graph.DataInputs()[0]
	h, w := int(in.Dims[2].Value), int(in.Dims[3].Value)
	p := Presets[preset]
	p.Width, p.Height, p.Resize = w, h, Resize{}
	return Model{Name: file, Format: "onnx", Path: modelPath(file), Input: in.Name, Preprocess: p, HasPreprocess: true}, om
}

// randomImage is a deterministic w x h BGR image.
func randomImage(t *testing.T, seed uint64, w, h int) ([]byte, gocv.Mat) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	pix := make([]byte, w*h*3)
	for i := range pix {
		pix[i] = byte(r.IntN(256))
	}
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, append([]byte(nil), pix...))
	if err != nil {
		t.Fatal(err)
	}
	return pix, m
}

// referenceInput computes the network input from BGR pixels in float64,
// straight from the documented formula, independently of Preprocess.Blob.
func referenceInput(p Preprocess, pix []byte, w, h int) []float64 {
	out := make([]float64, 3*w*h)
	for c := 0; c < 3; c++ {
		src := c // BGR
		if p.SwapRB {
			src = 2 - c
		}
		for i := 0; i < w*h; i++ {
			out[c*w*h+i] = (float64(pix[3*i+src])*p.Scale - p.Mean[c]) / p.Std[c]
		}
	}
	return out
}

func TestAliases_MatchReference(t *testing.T) {
	for _, tm := range testModels {
		t.Run(strings.TrimSuffix(tm.file, ".onnx"), func(t *testing.T) {
			model, om := loadTestModel(t, tm.file, tm.preset)
			net, g, err := OpenNet(model)
			if err != nil {
				t.Fatal(err)
			}
			net.Close()
			// Every expected alias resolves to the exporter's node, and no
			// alias is there that we did not expect.
			for alias, node := range tm.aliases {
				l := g.Alias(alias)
				if l == nil {
					t.Errorf("alias %s missing (have %v)", alias, g.AliasNames())
					continue
				}
				if l.Name != "onnx_node!"+node {
					t.Errorf("alias %s = %s, want onnx_node!%s", alias, l.Name, node)
				}
			}
			for _, a := range g.AliasNames() {
				if _, ok := tm.aliases[a]; !ok {
					t.Errorf("unexpected alias %s → %s", a, g.Alias(a).Name)
				}
			}

			// All aliases from one forward pass, compared with the float64
			// reference of the same weights on the same pixels, on both
			// engines.
			names := g.AliasNames()
			for _, eng := range engines {
				t.Run(eng, func(t *testing.T) { checkAliasValues(t, model, om, g, names, eng) })
			}
		})
	}
}

// engines are the engines every alias test runs on.
var engines = []string{EngineOpenCV, EngineOneDNN}

func checkAliasValues(t *testing.T, model Model, om *onnx.Model, g *Graph, names []string, eng string) {
	p := model.Preprocess
	ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: names, Pool: "none", Batch: 1, Compute: Compute{Engine: eng}})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if ex.Engine() != eng {
		t.Fatalf("engine %s, want %s (notes %q)", ex.Engine(), eng, ex.Notes)
	}
	pix, img := randomImage(t, 1, p.Width, p.Height)
	defer img.Close()
	blob := make([]float32, ex.InputLen())
	if err := p.blobFromMat(img, blob); err != nil {
		t.Fatal(err)
	}
	got, err := ex.Forward(blob, 1)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []string
	for _, a := range names {
		tensors = append(tensors, om.Graph.Node(strings.TrimPrefix(g.Alias(a).Name, "onnx_node!")).Outputs[0])
	}
	in := onnx.NewFloat64(model.Input, []int{1, 3, p.Height, p.Width}, referenceInput(p, pix, p.Width, p.Height))
	ref, err := onnx.Run(om, map[string]*onnx.Tensor{model.Input: in}, tensors...)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range names {
		want := ref[tensors[i]].Float64
		if len(got[0][i]) != len(want) {
			t.Errorf("%s: %d values, reference has %d", a, len(got[0][i]), len(want))
			continue
		}
		e := testutil.RelErr(got[0][i], want)
		t.Logf("%-17s %-45s %6d values  max rel err %.2e", a, g.Alias(a).Name, len(want), e)
		if e > 1e-5 {
			t.Errorf("%s: max relative error %.3g > 1e-5", a, e)
		}
	}
}

// TestOpsModel_MatchesReference covers the operators the alias models do
// not: AveragePool with padding, Reshape [0,-1], Gemm with alpha and beta,
// Dropout, Identity, Softmax. Its AveragePool with count_include_pad=1 is
// one OpenCV 4.6 gets wrong (it follows the producer name): the extractor
// must warn, and everything downstream of it is left out of the comparison.
func TestOpsModel_MatchesReference(t *testing.T) {
	model, om := loadTestModel(t, "ops.onnx", "torch")
	p := model.Preprocess
	net, g, err := OpenNet(model)
	if err != nil {
		t.Fatal(err)
	}
	net.Close()
	if len(g.Warnings) != 1 || !strings.Contains(g.Warnings[0], `AveragePool node "avgpool_incl" has count_include_pad=1, but OpenCV 4.6 ignores it`) {
		t.Errorf("warnings = %q, want one about avgpool_incl", g.Warnings)
	}
	wrong := downstream(om, "avgpool_incl_out")
	var layers, tensors []string
	for _, n := range om.Graph.Nodes {
		if wrong[n.Outputs[0]] {
			continue
		}
		if l := g.Layer("onnx_node!" + n.Name); l != nil && len(l.Shape) > 0 {
			layers = append(layers, l.Name)
			tensors = append(tensors, n.Outputs[0])
		}
	}
	if len(layers) < 6 {
		t.Fatalf("only %d layers of the ops model found in OpenCV's graph: %v", len(layers), layers)
	}
	ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: layers, Pool: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	pix, img := randomImage(t, 2, p.Width, p.Height)
	defer img.Close()
	blob := make([]float32, ex.InputLen())
	if err := p.blobFromMat(img, blob); err != nil {
		t.Fatal(err)
	}
	got, err := ex.Forward(blob, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := onnx.NewFloat64(model.Input, []int{1, 3, p.Height, p.Width}, referenceInput(p, pix, p.Width, p.Height))
	ref, err := onnx.Run(om, map[string]*onnx.Tensor{model.Input: in}, tensors...)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range layers {
		e := testutil.RelErr(got[0][i], ref[tensors[i]].Float64)
		t.Logf("%-32s max rel err %.2e", name, e)
		if e > 1e-5 {
			t.Errorf("%s: max relative error %.3g > 1e-5", name, e)
		}
	}
}

// downstream returns the tensors computed from tensor (itself included).
func downstream(om *onnx.Model, tensor string) map[string]bool {
	bad := map[string]bool{tensor: true}
	for _, n := range om.Graph.Nodes { // nodes are in topological order
		for _, in := range n.Inputs {
			if bad[in] {
				for _, o := range n.Outputs {
					bad[o] = true
				}
			}
		}
	}
	return bad
}

func TestGraph_Resolve(t *testing.T) {
	model, _ := loadTestModel(t, "vgg-torch-tiny.onnx", "torch")
	net, g, err := OpenNet(model)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	fc2 := "onnx_node!/classifier/classifier.4/Relu"
	for _, c := range []struct{ in, via string }{
		{"fc2", "alias"},
		{fc2, "opencv"},
		{"/classifier/classifier.4/Relu", "source"},          // node name without the prefix
		{"/classifier/classifier.4/Relu_output_0", "source"}, // tensor name
	} {
		r, err := g.Resolve(c.in)
		if err != nil {
			t.Errorf("Resolve(%q): %v", c.in, err)
			continue
		}
		if r.Layer.Name != fc2 || r.Via != c.via || r.Alias != "fc2" {
			t.Errorf("Resolve(%q) = %s via %s alias %q, want %s via %s alias fc2", c.in, r.Layer.Name, r.Via, r.Alias, fc2, c.via)
		}
	}
	t.Run("ErrUnknownLayer", func(t *testing.T) {
		_, err := g.Resolve("fc9")
		msg := fmt.Sprint(err)
		for _, want := range []string{`unknown layer "fc9"`, "aliases: block1_pool, block2_pool, block3_pool, flatten, fc1, fc2, predictions", "closest names: fc1, fc2"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
	})
}

// TestExtractor_FusedBatchNorm: a BatchNormalization between a Conv and a
// Relu, requested alone, must give its own values (OpenCV 4.6 would fuse it
// away and return an unwritten buffer; see pinFusedInputs).
func TestExtractor_FusedBatchNorm(t *testing.T) {
	model, om := loadTestModel(t, "resnet-v1-torch-tiny.onnx", "torch")
	p := model.Preprocess
	layers := []string{"/bn1/BatchNormalization", "/layer1/layer1.0/bn1/BatchNormalization"}
	ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: layers, Pool: "none", Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	pix, img := randomImage(t, 9, p.Width, p.Height)
	defer img.Close()
	blob := make([]float32, ex.InputLen())
	if err := p.blobFromMat(img, blob); err != nil {
		t.Fatal(err)
	}
	got, err := ex.Forward(blob, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0]) != 2 {
		t.Fatalf("%d vectors, want 2 (hidden outputs must not show)", len(got[0]))
	}
	in := onnx.NewFloat64(model.Input, []int{1, 3, p.Height, p.Width}, referenceInput(p, pix, p.Width, p.Height))
	tensors := []string{"/bn1/BatchNormalization_output_0", "/layer1/layer1.0/bn1/BatchNormalization_output_0"}
	ref, err := onnx.Run(om, map[string]*onnx.Tensor{model.Input: in}, tensors...)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		if e := testutil.RelErr(got[0][i], ref[tensors[i]].Float64); e > 1e-5 {
			t.Errorf("%s: max rel err %.3g > 1e-5", l, e)
		}
	}
}
